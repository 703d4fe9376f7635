"""CIFAR-10 from the JPEG tarballs (Krizhevsky 2009): one-line errors for a missing or corrupt
tarball, a fake tarball that unpacks once and atomically with labels in class-folder order, the
real set's counts, and the cifar10-stylegan, cifar10-dcgan and folder-stylegan presets running
two steps on CPU."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from conftest import require
from gankit.config import DataConfig
from gankit.data import build_source, cifar10
from gankit.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread")

PER_CLASS = 3  # images per class in the fake tarballs
QUIET = ["log.quiet=true", "device=cpu"]


def colour(label: int, i: int) -> tuple[int, int, int]:
    """The flat colour of fake image ``i`` of class ``label``: red encodes the label."""
    return 20 * label + 10, 40 + 50 * i, 128


def make_tarball(path: Path, split: str, members: list[tuple[str, bytes]] | None = None) -> str:
    """A gzipped tar of ``<split>/<class>/NNNN.jpg`` flat-colour 32x32 JPEGs (or ``members``,
    (name, bytes) pairs); returns its sha256."""
    if members is None:
        members = []
        for label, name in enumerate(cifar10.CLASSES):
            for i in range(PER_CLASS):
                buf = io.BytesIO()
                Image.new("RGB", (32, 32), colour(label, i)).save(buf, "JPEG", quality=95)
                members.append((f"{split}/{name}/{i:04d}.jpg", buf.getvalue()))
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def fake_root(tmp_path, monkeypatch) -> Path:
    """A data root whose cifar10-jpg/ holds fake train and test tarballs (their sha256 patched
    in), and an empty gankit cache."""
    root = tmp_path / "data"
    for split in ("train", "test"):
        sha = make_tarball(root / cifar10.FOLDER / cifar10.tarball_name(split), split)
        monkeypatch.setitem(cifar10.SHA256, split, sha)
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    return root


def cfg(root: Path, **kw) -> DataConfig:
    return DataConfig(name="cifar10", root=str(root), **{"size": 32, "channels": 3, **kw})


def cache_entries() -> list[str]:
    folder = Path(os.environ["GANKIT_CACHE"]) / cifar10.FOLDER
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# ---------------------------------------------------------------------------------------------
# errors


def test_missing_tarball_is_one_line_naming_the_path(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(UserError) as e:
        build_source(cfg(tmp_path), "train")
    msg = str(e.value)
    assert "\n" not in msg
    assert str(tmp_path / "cifar10-jpg" / "cifar10-jpg-train.tar.gz") in msg
    assert "data.root (--data-dir)" in msg and "does not download" in msg


def test_checksum_failure_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "cifar10-jpg" / "cifar10-jpg-test.tar.gz"
    make_tarball(path, "test")  # a valid tarball, but not the real one's sha256
    with pytest.raises(UserError) as e:
        build_source(cfg(tmp_path), "test")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path} is corrupt or truncated")
    assert cifar10.SHA256["test"] in msg
    assert cache_entries() == []  # nothing unpacked


def test_wrong_layout_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "cifar10-jpg" / "cifar10-jpg-train.tar.gz"
    for members, why in (
        ([("train/../evil.txt", b"x")], "unexpected member"),
        ([("train/cat/0000.jpg", b"x")], "not the 10 class folders"),
    ):
        monkeypatch.setitem(cifar10.SHA256, "train", make_tarball(path, "train", members))
        with pytest.raises(UserError, match=why) as e:
            build_source(cfg(tmp_path), "train")
        assert "\n" not in str(e.value)
        assert cache_entries() == []
    assert not (tmp_path / "evil.txt").exists()


# ---------------------------------------------------------------------------------------------
# the fake tarballs


def test_fake_tarball_unpacks_with_labels_in_folder_order(fake_root):
    src = build_source(cfg(fake_root), "train")
    n = 10 * PER_CLASS
    assert src.name == "cifar10" and src.split == "train" and len(src) == n
    assert src.num_classes == 10 and src.class_names == cifar10.CLASSES
    assert torch.equal(src.labels, torch.arange(10).repeat_interleave(PER_CLASS))
    x, y = src.batch(torch.arange(n))
    assert x.shape == (n, 3, 32, 32) and x.dtype == torch.float32
    assert -1 <= x.min() and x.max() <= 1
    red = (x[:, 0].mean(dim=(1, 2)) + 1) * 127.5  # [N], the colour that encodes the label
    want = torch.tensor([colour(int(label), 0)[0] for label in y], dtype=torch.float32)
    torch.testing.assert_close(red, want, atol=3, rtol=0)
    assert cache_entries() == [f"train-{cifar10.SHA256['train'][:16]}"]


def test_unpacks_once_and_serves_both_splits(fake_root, monkeypatch):
    build_source(cfg(fake_root), "train")
    calls = []
    with monkeypatch.context() as m:
        m.setattr(cifar10, "_extract", lambda *a: calls.append(a))
        build_source(cfg(fake_root), "train")  # from the cache: no second unpack
    assert calls == []
    test = build_source(cfg(fake_root), "test")
    assert test.split == "test" and len(test) == 10 * PER_CLASS and test.shape == (3, 32, 32)
    assert len(cache_entries()) == 2


def test_size_and_channels(fake_root):
    small = build_source(cfg(fake_root, size=16), "train")
    assert small.shape == (3, 16, 16) and small.images.dtype == torch.uint8
    gray = build_source(cfg(fake_root, channels=1), "test")
    assert gray.shape == (1, 32, 32)


def test_classes_true_gives_ten_classes(fake_root):
    src = build_source(cfg(fake_root, classes=True), "train")
    x, y = src.sampler(8, seed=0).next()
    assert x.shape == (8, 3, 32, 32) and y.shape == (8,) and src.num_classes == 10


def test_interrupted_unpack_leaves_no_half_folder(fake_root, monkeypatch):
    extract = tarfile.TarFile.extract
    seen = []

    def stop_after_five(self, member, *args, **kwargs):
        seen.append(member)
        if len(seen) > 5:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the unpack
        return extract(self, member, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(tarfile.TarFile, "extract", stop_after_five)
        with pytest.raises(KeyboardInterrupt):
            build_source(cfg(fake_root), "train")
    assert len(seen) == 6 and cache_entries() == []  # neither the folder nor its temporary
    # a process killed mid-unpack (no cleanup ran) leaves its temporary; the next unpack removes it
    stale = Path(os.environ["GANKIT_CACHE"]) / cifar10.FOLDER / ".train-0123abcd.99999999.tmp"
    (stale / "train" / "cat").mkdir(parents=True)
    src = build_source(cfg(fake_root), "train")
    assert len(src) == 10 * PER_CLASS
    assert cache_entries() == [f"train-{cifar10.SHA256['train'][:16]}"]


# ---------------------------------------------------------------------------------------------
# the real set


@pytest.mark.slow  # unpacks 60,000 JPEGs and decodes them: ~30 s on two busy cores
def test_real_set_counts(shared_dir, tmp_path, monkeypatch):
    folder = shared_dir / "datasets" / "cifar10-jpg"
    root = tmp_path / "data" / cifar10.FOLDER
    root.mkdir(parents=True)
    for split in ("train", "test"):
        name = cifar10.tarball_name(split)
        require(folder / name, f"CIFAR-10 tarball {name}")
        (root / name).symlink_to(folder / name)
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    for split, n in (("train", 50_000), ("test", 10_000)):
        src = build_source(cfg(tmp_path / "data"), split)
        assert len(src) == n and src.shape == (3, 32, 32)
        assert torch.bincount(src.labels, minlength=10).tolist() == [n // 10] * 10
        assert src.class_names == cifar10.CLASSES
        assert cifar10.PER_CLASS[split] == n // 10


# ---------------------------------------------------------------------------------------------
# the presets


@pytest.mark.parametrize("preset", ["cifar10-stylegan", "cifar10-dcgan", "cifar10-cdcgan"])
def test_cifar10_presets_run_two_steps(fake_root, tmp_path, preset):
    c = gankit.load_config(preset)
    assert c.data.name == "cifar10" and c.data.size == 32 and c.data.channels == 3
    over = [f"data.root={fake_root}", f"out={tmp_path / 'runs'}", "train.steps=2"]
    over += ["train.batch_size=4", "log.n_samples=16", "log.every=1", *QUIET]
    run = gankit.train(preset, over)
    assert run.summary["steps"] == 2 and run.summary["data"] == "cifar10"
    assert np.isfinite(run.summary["loss_D"]) and np.isfinite(run.summary["loss_G"])
    y = torch.tensor([3, 7]) if c.data.classes else None
    assert run.sample(2, seed=0, labels=y).shape == (2, 3, 32, 32)


def test_folder_stylegan_needs_data_path(tmp_path):
    with pytest.raises(UserError, match="needs data.path") as e:
        gankit.train("folder-stylegan", [f"out={tmp_path}", "train.steps=1", *QUIET])
    assert "\n" not in str(e.value)
    assert not (tmp_path / "folder-stylegan").exists()


def test_folder_stylegan_runs_two_steps(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        pixels = rng.integers(0, 256, (72, 80, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / f"{i}.png")
    over = [f"data.path={images}", f"out={tmp_path / 'runs'}", "train.steps=2"]
    over += ["train.batch_size=4", "log.n_samples=8", "log.every=1", *QUIET]
    run = gankit.train("folder-stylegan", over)
    assert run.summary["steps"] == 2
    assert run.sample(2, seed=0).shape == (2, 3, 64, 64)
