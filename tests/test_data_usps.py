"""USPS (usps.h5 and torchvision's LIBSVM files: counts, exact pixels, precedence, the cross-check
of the two versions, one-line errors for missing, truncated and corrupt files, failed downloads)
and unpaired two-domain data (usps + mnist, the CycleGAN folder layout, independent seeded orders
that resume exactly, one-line errors for bad input)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import assert_resumes, restored
from gankit.config import DataConfig
from gankit.data import build_source
from gankit.data.images import resize_uint8
from gankit.data.paired import (
    PairSource,
    build_pair,
    build_pair_folder,
    check_pair_fits,
    domain_seeds,
)
from gankit.data.usps import BZ2_FILES
from gankit.errors import UserError

h5py = pytest.importorskip("h5py")

pytestmark = pytest.mark.usefixtures("one_thread")

TEST_COUNTS = [359, 264, 198, 166, 200, 160, 170, 147, 166, 177]  # shared README, usps.t.bz2
TRAIN_COUNTS = [1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644]  # ESL zip.info.txt
TEST_MD5 = "8ea070ee2aca1ac39742fdd1ef5ed118"


def usps_cfg(root: Path, **kw) -> DataConfig:
    return DataConfig(name="usps", root=str(root), download=kw.pop("download", False), **kw)


def link(data_root: Path, dst_root: Path, names: list[str]) -> Path:
    """``dst_root/usps/`` linking the named files of the session data root's ``usps/``."""
    folder = dst_root / "usps"
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).symlink_to((data_root / "usps" / name).resolve())
    return folder


@pytest.fixture(scope="module")
def usps16(data_root):
    """Both splits at the native 16 px, from usps.h5."""
    return {s: build_source(usps_cfg(data_root, size=16), s) for s in ("train", "test")}


@pytest.fixture(scope="module")
def bz2_root(data_root, tmp_path_factory) -> Path:
    """A data root holding only usps.t.bz2 (no usps.h5)."""
    root = tmp_path_factory.mktemp("bz2")
    link(data_root, root, ["usps.t.bz2"])
    return root


# ---------------------------------------------------------------------------------------------
# USPS


@pytest.mark.parametrize(
    "split, n, counts", [("train", 7291, TRAIN_COUNTS), ("test", 2007, TEST_COUNTS)]
)
def test_usps_counts(data_root, split, n, counts):
    source = build_source(usps_cfg(data_root), split)  # default size 28
    assert len(source) == n and source.shape == (1, 28, 28) and source.split == split
    assert source.num_classes == 10 and source.class_names == [str(i) for i in range(10)]
    assert torch.bincount(source.labels, minlength=10).tolist() == counts
    assert source.file.name == "usps.h5"  # both files are there: usps.h5 wins for both splits
    assert source.images.dtype == torch.uint8


def test_usps_h5_pixels_exact(data_root, usps16):
    source = usps16["test"]
    assert source.shape == (1, 16, 16)
    assert source.images[0, 0, 0, :8].tolist() == [0, 0, 0, 0, 0, 7, 56, 146]  # round(255 v)
    with h5py.File(data_root / "usps" / "usps.h5") as f:
        expected = np.round(f["test/data"][()].astype(np.float64) * 255).astype(np.uint8)
        labels = f["test/target"][()]
    assert torch.equal(source.images.reshape(2007, 256), torch.from_numpy(expected))
    assert torch.equal(source.labels, torch.from_numpy(labels.astype(np.int64)))
    assert int(source.images.min()) == 0 and int(source.images.max()) == 255
    x, y = source.sample(2007)
    assert x.dtype == torch.float32 and float(x.min()) == -1.0 and float(x.max()) == 1.0


def test_usps_bz2_pixels_exact_and_rounded(bz2_root):
    source = build_source(usps_cfg(bz2_root, size=16), "test")
    assert source.file.name == "usps.t.bz2" and len(source) == 2007
    assert torch.bincount(source.labels, minlength=10).tolist() == TEST_COUNTS
    # the first line: 1:-0.999999 ... 8:0.001891 -> round(127.5 (v + 1))
    assert source.images[0, 0, 0, :8].tolist() == [0, 0, 0, 3, 18, 51, 91, 128]
    from torchvision.datasets import USPS

    tv = USPS(str(bz2_root / "usps"), train=False)  # truncates: 127.741 -> 127
    assert int(tv.data[0, 0, 7]) == 127
    diff = source.images[:, 0].long() - torch.from_numpy(tv.data).long()  # [N, 16, 16]
    assert set(diff.unique().tolist()) == {0, 1}  # rounding is never below truncation
    assert source.labels.tolist() == list(tv.targets)


def test_usps_resize_and_channels(data_root, usps16):
    big = build_source(usps_cfg(data_root, channels=3), "test")
    assert big.shape == (3, 28, 28) and len(big) == 2007
    assert torch.equal(big.images[:, 0], resize_uint8(usps16["test"].images, 28)[:, 0])
    assert torch.equal(big.images[:, 0], big.images[:, 2])  # the gray channel tiled
    x, _ = big.sampler(16, seed=0).next()
    assert x.shape == (16, 3, 28, 28) and -1 <= float(x.min()) and float(x.max()) <= 1


def test_usps_h5_test_split_matches_libsvm(usps16, bz2_root):
    h5, lib = usps16["test"], build_source(usps_cfg(bz2_root, size=16), "test")
    assert torch.equal(h5.labels, lib.labels)  # item for item
    a = h5.images.double().flatten()
    b = lib.images.double().flatten()
    corr = float(torch.corrcoef(torch.stack([a, b]))[0, 1])
    assert corr > 0.9 and abs(corr - 0.958) < 0.002  # the README's 0.958


def test_usps_only_the_split_needs_its_bz2(bz2_root):
    with pytest.raises(UserError) as err:
        build_source(usps_cfg(bz2_root), "train")
    folder = bz2_root / "usps"
    assert str(err.value) == (
        f"USPS files missing: neither usps.h5 nor usps.bz2 is in {folder}/ (data.download is off)"
        "; put usps.h5 (both splits) or usps.bz2 there, or point data.root (--data-dir) at a "
        "folder whose usps/ holds them"
    )


def test_usps_missing_files(tmp_path):
    with pytest.raises(UserError) as err:
        build_source(usps_cfg(tmp_path), "test")
    msg = str(err.value)
    assert "usps.h5" in msg and "usps.t.bz2" in msg and str(tmp_path / "usps") in msg
    assert "\n" not in msg and list(tmp_path.iterdir()) == []


def test_usps_download_fails_offline(tmp_path, monkeypatch):
    from torchvision.datasets import USPS

    offline = {s: ["http://127.0.0.1:9/" + v[1], v[1], v[2]] for s, v in USPS.split_list.items()}
    monkeypatch.setattr(USPS, "split_list", offline)  # nothing listens there
    with pytest.raises(UserError, match="usps.t.bz2 is in .* and the download failed") as err:
        build_source(usps_cfg(tmp_path, download=True), "test")
    assert "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []  # torchvision made usps/; the failure removed it


def test_usps_failed_download_removes_partial_file(tmp_path, monkeypatch):
    import torchvision.datasets.usps as tv_usps

    def partial(url, root, filename, md5):
        Path(root, filename).write_bytes(b"BZh9 partial")
        raise OSError("connection reset")

    monkeypatch.setattr(tv_usps, "download_url", partial)
    folder = tmp_path / "usps"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"download failed \(connection reset\)"):
        build_source(usps_cfg(tmp_path, download=True), "train")
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]  # partial usps.bz2 gone


def test_usps_truncated_bz2(data_root, tmp_path):
    folder = tmp_path / "usps"
    folder.mkdir()
    good = (data_root / "usps" / "usps.t.bz2").read_bytes()
    (folder / "usps.t.bz2").write_bytes(good[: len(good) // 2])
    with pytest.raises(UserError) as err:
        build_source(usps_cfg(tmp_path, download=True), "test")  # present: no download
    assert str(err.value).startswith(
        f"{folder / 'usps.t.bz2'} is corrupt or truncated (md5 is not {TEST_MD5}); delete it"
    )
    assert "\n" not in str(err.value) and BZ2_FILES["test"] == ("usps.t.bz2", TEST_MD5)


def _write_h5(path: Path, damage: str, good: Path) -> None:
    with h5py.File(good) as f:
        parts = {k: f[k][()] for k in ("train/data", "train/target", "test/data", "test/target")}
    if damage == "no test group":
        parts = {k: v for k, v in parts.items() if k.startswith("train")}
    if damage == "label 10":
        parts["test/target"][5] = 10
    if damage == "values":
        parts["test/data"][0, 0] = 2.0
    with h5py.File(path, "w") as f:
        for k, v in parts.items():
            f[k] = v


@pytest.mark.parametrize(
    "damage, why",
    [
        ("truncate", r"\(.*\)"),
        ("no test group", r"\(no dataset test/data or test/target\)"),
        ("label 10", r"\(test/target holds 0\.\.10, not 0\.\.9\)"),
        ("values", r"\(pixel values from 0 to 2, expected 0 to 1\)"),
    ],
)
def test_usps_corrupt_h5(data_root, tmp_path, damage, why):
    folder = tmp_path / "usps"
    folder.mkdir()
    good = data_root / "usps" / "usps.h5"
    if damage == "truncate":
        data = good.read_bytes()
        (folder / "usps.h5").write_bytes(data[: len(data) // 2])
    else:
        _write_h5(folder / "usps.h5", damage, good)
    with pytest.raises(
        UserError, match=f"^{folder / 'usps.h5'} is corrupt or truncated {why}; "
    ) as err:
        build_source(usps_cfg(tmp_path), "test")
    assert "\n" not in str(err.value)


def test_usps_sampler_resumes(usps16):
    assert_resumes(usps16["test"], 500)  # 8 batches of 500 cross the 2,007-image epoch
    a, b = usps16["test"].sampler(32, seed=3), usps16["test"].sampler(32, seed=3)
    for _ in range(3):
        assert torch.equal(a.next()[0], b.next()[0])


# ---------------------------------------------------------------------------------------------
# two unpaired domains


def pair_of(data_root: Path, split: str = "test", **kw) -> PairSource:
    mnist = DataConfig(name="mnist", root=str(data_root), download=False)
    return build_pair(usps_cfg(data_root, size=16), mnist, split, **kw)


def test_pair_usps_mnist_shapes(data_root):
    pair = pair_of(data_root, size=28, channels=1)
    assert pair.names == ("usps", "mnist") and pair.lengths == (2007, 10_000)
    assert pair.shape == (1, 28, 28) and pair.num_classes == (10, 10)
    (x_a, x_b), (y_a, y_b) = pair.sampler(64, seed=0).next()
    for x, y in ((x_a, y_a), (x_b, y_b)):
        assert x.shape == (64, 1, 28, 28) and x.dtype == torch.float32
        assert -1 <= float(x.min()) and float(x.max()) <= 1
        assert y.shape == (64,) and y.dtype == torch.int64 and 0 <= y.min() and y.max() <= 9
    rgb = pair_of(data_root, size=32, channels=3)
    (x_a, x_b), _ = rgb.sampler(8, seed=0).next()
    assert x_a.shape == x_b.shape == (8, 3, 32, 32)
    (s_a, s_b), (l_a, l_b) = rgb.sample(5)
    assert s_a.shape == s_b.shape == (5, 3, 32, 32) and l_a.shape == l_b.shape == (5,)


def test_pair_needs_one_size_and_channel_count(data_root):
    with pytest.raises(UserError) as err:
        pair_of(data_root)  # usps at 16 px, mnist at 28
    assert str(err.value) == (
        "domain A has data.size=16 but domain B data.size=28; pass one size= to build_pair so "
        "that both domains get it"
    )
    a, b = usps_cfg(data_root, channels=3), DataConfig(name="mnist", root=str(data_root))
    with pytest.raises(UserError, match="^domain A has data.channels=3 but domain B data.chan"):
        build_pair(a, b, "test")
    with pytest.raises(UserError, match="^channels must be 1 or 3, got 2$"):
        build_pair(a, b, "test", channels=2)
    with pytest.raises(UserError, match="^size must be a positive number of pixels, got 0$"):
        build_pair(a, b, "test", size=0, channels=1)


def test_pair_orders_independent(usps16, data_root):
    cfg = usps_cfg(data_root, size=16)
    pair = build_pair(cfg, cfg, "test")  # the same data set in both domains
    sampler = pair.sampler(100, seed=5)
    assert not torch.equal(sampler.a.perm, sampler.b.perm)  # two permutations of 2,007
    (x_a, x_b), (y_a, y_b) = sampler.next()
    assert not torch.equal(x_a, x_b) and not torch.equal(y_a, y_b)
    seed_a, seed_b = domain_seeds(5)
    assert seed_a != seed_b
    alone = usps16["test"].sampler(100, seed=seed_b)  # domain B is its own seeded sampler
    assert torch.equal(alone.next()[0], x_b)
    (again_a, again_b), _ = pair.sampler(100, seed=5).next()
    assert torch.equal(again_a, x_a) and torch.equal(again_b, x_b)
    (other_a, _), _ = pair.sampler(100, seed=6).next()
    assert not torch.equal(other_a, x_a)


def test_pair_sampler_resumes(data_root):
    pair = pair_of(data_root, size=16)
    s1, s2 = restored(pair, 700, skip=3)  # domain A (2,007 images) is into its second epoch
    assert s2.a.epoch == 1 and s2.b.epoch == 0
    for _ in range(4):
        (a1, b1), (ya1, yb1) = s1.next()
        (a2, b2), (ya2, yb2) = s2.next()
        assert torch.equal(a1, a2) and torch.equal(b1, b2)
        assert torch.equal(ya1, ya2) and torch.equal(yb1, yb2)
    with pytest.raises(ValueError, match="not a pair sampler state"):
        s2.load_state_dict(s2.a.state_dict())
    swapped = dict(s1.state_dict(), name_a="mnist", name_b="usps")
    with pytest.raises(ValueError, match="is for domains"):
        s2.load_state_dict(swapped)


def _png(path: Path, value: int, mode: str, size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    color = value if mode == "L" else (value, value, value)
    Image.new(mode, size, color).save(path)


@pytest.fixture
def cyclegan(tmp_path) -> Path:
    """trainA: 3 gray 8x8 images; trainB: 5 RGB 12x10; testA, testB: 2 each."""
    root = tmp_path / "horse2zebra"
    for i, v in enumerate((0, 100, 255)):
        _png(root / "trainA" / f"{i}.png", v, "L", (8, 8))
    for i, v in enumerate((10, 20, 30, 40, 50)):
        _png(root / "trainB" / f"{i}.png", v, "RGB", (12, 10))
    for d in "AB":
        for i, v in enumerate((60, 70)):
            _png(root / f"test{d}" / f"{i}.png", v, "RGB", (9, 9))
    return root


def test_pair_folder_layout(cyclegan):
    pair = build_pair_folder(cyclegan, 8, 1, "train")
    assert pair.lengths == (3, 5) and pair.shape == (1, 8, 8) and pair.num_classes == (0, 0)
    (x_a, x_b), (y_a, y_b) = pair.sampler(3, seed=0).next()
    assert y_a is None and y_b is None and x_a.shape == x_b.shape == (3, 1, 8, 8)
    means = sorted(round(float(m) * 127.5 + 127.5) for m in x_a.mean((1, 2, 3)))
    assert means == [0, 100, 255]  # one whole epoch of A
    assert x_a.flatten(1).std(1).max() == 0  # constant images stay constant
    values = {round(float(v) * 127.5 + 127.5) for v in x_b.unique()}
    assert values <= {10, 20, 30, 40, 50} and len(values) == 3
    test = build_pair_folder(cyclegan, 4, 3, "test")
    assert test.lengths == (2, 2) and test.shape == (3, 4, 4) and test.split == "test"
    with pytest.raises(UserError, match=r"trainA holds 3 images, fewer than train.batch_size=4"):
        check_pair_fits(pair, 4, 2)
    check_pair_fits(pair, 3, 3)


def test_pair_folder_bad_input(cyclegan, tmp_path):
    for f in (cyclegan / "trainB").iterdir():
        f.unlink()
    with pytest.raises(UserError) as err:
        build_pair_folder(cyclegan, 8, 1, "train")
    assert str(err.value) == (
        f"{cyclegan / 'trainB'} holds no .png/.jpg/.jpeg images; put the images of domain B there"
    )
    (cyclegan / "trainB").rmdir()
    layout = "a CycleGAN folder holds trainA/, trainB/, testA/ and testB/ with each domain's images"
    with pytest.raises(UserError) as err:
        build_pair_folder(cyclegan, 8, 1, "train")
    assert str(err.value) == f"{cyclegan} has no trainB/ subfolder; {layout}"
    build_pair_folder(cyclegan, 8, 1, "test")  # the test split does not need trainB
    missing = tmp_path / "nope"
    with pytest.raises(UserError) as err:
        build_pair_folder(missing, 8, 1)
    assert str(err.value) == f"pair folder {missing} does not exist; {layout}"
    with pytest.raises(UserError, match="^unknown data split 'val'"):
        build_pair_folder(cyclegan, 8, 1, "val")


def test_pair_bad_domains(data_root, tmp_path):
    with pytest.raises(UserError) as err:
        build_pair(DataConfig(name="ring"), usps_cfg(data_root), "test")
    assert str(err.value) == (
        "domain A data set 'ring' is a toy data set, not images; choose an image data set such "
        "as mnist, usps or folder"
    )
    with pytest.raises(UserError) as err:
        build_pair(usps_cfg(data_root), usps_cfg(tmp_path), "test")  # tmp_path: no USPS files
    assert str(err.value).startswith("domain B (usps): USPS files missing: neither usps.h5 nor")
    assert "\n" not in str(err.value)
