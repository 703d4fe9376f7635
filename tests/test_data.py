"""Data sources: toy mixtures (exact modes, moments, densities), MNIST-like IDX files, image
folders (16-bit PNGs too), seeded samplers that resume exactly, and one-line errors for missing or
corrupt data, mistyped data roots, failed downloads and data sets smaller than a batch."""

from __future__ import annotations

import gzip
import io
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.testing import assert_close

from conftest import assert_resumes
from gankit.config import DataConfig
from gankit.data import ImageSource, build_source, check_fits
from gankit.data import data_root as resolve_root
from gankit.data.images import to_8bit
from gankit.data.stacked import StackedSource
from gankit.data.toy import ToySource
from gankit.errors import UserError
from gankit.registry import DATASETS


def toy(name: str, split: str = "train") -> ToySource:
    return build_source(DataConfig(name=name), split)


# ---------------------------------------------------------------------------------------------
# toy mixtures


@pytest.mark.parametrize("name, dim, k", [("ring", 2, 8), ("grid", 2, 25), ("gauss1d", 1, 2)])
def test_toy_shapes(name, dim, k):
    source = toy(name)
    assert source.kind == "toy" and source.shape == (dim,) and source.num_classes == k
    assert source.modes.shape == (k, dim)
    x, y = source.sampler(64, seed=0).next()
    assert x.shape == (64, dim) and x.dtype == torch.float32
    assert y.shape == (64,) and y.dtype == torch.int64 and 0 <= y.min() and y.max() < k


def test_ring_modes_exact():
    source = toy("ring")
    k = torch.arange(8, dtype=torch.float64)
    expected = torch.stack([torch.cos(2 * math.pi * k / 8), torch.sin(2 * math.pi * k / 8)], 1)
    assert_close(source.modes, expected.float())
    assert_close(source.modes[7], torch.tensor([math.sqrt(0.5), -math.sqrt(0.5)]))  # 7*pi/4
    dist = torch.cdist(source.modes, source.modes) + 10 * torch.eye(8)
    assert_close(dist.min(), torch.tensor(2 * math.sin(math.pi / 8)))  # 8 distinct, evenly spaced
    assert source.std == 0.01


def test_grid_modes_exact():
    source = toy("grid")
    expected = {(a, b) for a in (-4, -2, 0, 2, 4) for b in (-4, -2, 0, 2, 4)}
    assert {tuple(int(v) for v in m) for m in source.modes} == expected
    assert_close(source.modes, source.modes.round())
    assert source.std == 0.05


@pytest.mark.parametrize(
    "name, var",  # per-coordinate variance of the whole mixture
    [("ring", 0.5 + 0.01**2), ("grid", 8.0 + 0.05**2), ("gauss1d", 4.0 + 0.5**2)],
)
def test_toy_moments(name, var):
    source = toy(name)
    x, y = source.sample(40_000, torch.Generator().manual_seed(1))
    k = source.num_classes
    assert_close(x.mean(0), torch.zeros(source.shape), atol=4 * math.sqrt(var / 40_000), rtol=0)
    assert_close(x.var(0), torch.full(source.shape, var), rtol=0.05, atol=0)
    resid = x - source.modes[y]  # [N, D] noise around the own component
    assert_close(resid.std(0), torch.full(source.shape, source.std), rtol=0.03, atol=0)
    freq = torch.bincount(y, minlength=k).float() / len(y)
    assert_close(freq, torch.full((k,), 1 / k), atol=0.015, rtol=0)


def test_gauss1d_density_integrates_to_one():
    source = toy("gauss1d")
    xs = torch.linspace(-10, 10, 20_001, dtype=torch.float64)[:, None]  # [M, 1]
    p = source.density(xs)
    assert_close(torch.trapezoid(p, xs[:, 0]).item(), 1.0, atol=1e-6, rtol=0)
    peak = 0.5 / (0.5 * math.sqrt(2 * math.pi))  # the other component adds ~1e-14
    assert_close(source.density(torch.tensor([[2.0]])), torch.tensor([peak]))


def test_grid_density_integrates_to_one():
    source = toy("grid")
    h = 0.02  # 2.5 points per std: a Riemann sum of a Gaussian is already exact to ~1e-50
    v = torch.arange(-5, 5 + h / 2, h)
    xs = torch.cartesian_prod(v, v)  # [M, 2]
    assert_close((source.density(xs).sum() * h * h).item(), 1.0, atol=1e-3, rtol=0)


def test_ring_log_density_values():
    source = toy("ring")
    at_mode = source.log_density(source.modes[:1])
    assert_close(at_mode, torch.tensor([math.log(1 / 8 / (2 * math.pi * 0.01**2))]))
    far = source.log_density(torch.tensor([[50.0, 50.0]]))
    assert torch.isfinite(far).all() and far.item() < -1e6
    with pytest.raises(ValueError):
        source.log_density(torch.zeros(3, 1))


def test_toy_sampler_seeded_and_resumable():
    source = toy("ring")
    a, b, c = (
        source.sampler(32, 0).next(),
        source.sampler(32, 0).next(),
        source.sampler(32, 1).next(),
    )
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert_resumes(source, 32)


def test_toy_sampler_leaves_global_rng_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    sampler = toy("grid").sampler(16, 0)
    sampler.next()
    toy("grid").sample(10)
    assert torch.equal(torch.rand(3), expected)


def test_toy_sample_default_streams():
    train, test = toy("ring", "train"), toy("ring", "test")
    assert torch.equal(train.sample(10)[0], train.sample(10)[0])
    assert not torch.equal(train.sample(10)[0], test.sample(10)[0])


def test_build_source_errors():
    with pytest.raises(UserError, match="unknown data set 'nope'"):
        build_source(DataConfig(name="nope"))
    with pytest.raises(UserError, match="split"):
        build_source(DataConfig(name="ring"), "valid")
    assert {"ring", "grid", "gauss1d", "mnist", "fashion-mnist", "folder"} <= set(DATASETS.names())


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("GANKIT_DATA", str(tmp_path / "env"))
    assert resolve_root(str(tmp_path / "cfg")) == tmp_path / "cfg"
    assert resolve_root(None) == tmp_path / "env"
    monkeypatch.delenv("GANKIT_DATA")
    monkeypatch.delenv("GANKIT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_root(None) == tmp_path / "xdg" / "gankit" / "data"
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))  # gankit's one cache folder
    assert resolve_root(None) == tmp_path / "cache" / "data"


# ---------------------------------------------------------------------------------------------
# MNIST and Fashion-MNIST


@pytest.fixture(scope="module")
def idx_sources(data_root):
    return {
        (name, split): build_source(
            DataConfig(name=name, root=str(data_root), download=False), split
        )
        for name in ("mnist", "fashion-mnist")
        for split in ("train", "test")
    }


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_idx_sizes_range_labels(idx_sources, name):
    for split, n in (("train", 60_000), ("test", 10_000)):
        source = idx_sources[name, split]
        assert len(source) == n and source.shape == (1, 28, 28) and source.kind == "image"
        assert source.num_classes == 10 and len(source.class_names) == 10
        x, y = source.sample(2000, torch.Generator().manual_seed(0))
        assert x.dtype == torch.float32 and x.shape == (2000, 1, 28, 28)
        assert x.min() == -1.0 and x.max() == 1.0
        assert y.dtype == torch.int64 and set(y.tolist()) == set(range(10))
    # the full test split is the evaluation reference: every image exactly once
    assert (
        len(torch.unique(idx_sources[name, "test"].sample(10_000)[1], return_counts=True)[1]) == 10
    )


@pytest.mark.parametrize("size, channels", [(32, 1), (64, 3)])
def test_mnist_resize_and_channels(data_root, idx_sources, size, channels):
    cfg = DataConfig(
        name="mnist", root=str(data_root), size=size, channels=channels, download=False
    )
    source = build_source(cfg, "test")
    assert source.shape == (channels, size, size)
    x, y = source.sampler(16, seed=0).next()
    assert x.shape == (16, channels, size, size) and -1 <= x.min() and x.max() <= 1
    assert torch.equal(x[:, 0], x[:, -1])  # gray tiled
    ref = idx_sources["mnist", "test"].images.float().mean()
    assert_close(source.images.float().mean(), ref, rtol=0.03, atol=0)  # resizing keeps the ink


def test_mnist_sampler_resumes(idx_sources):
    assert_resumes(idx_sources["mnist", "train"], 64)


def link_split(src_root: Path, dst_root: Path, names: list[str], folder: str = "MNIST") -> Path:
    raw = dst_root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in names:
        (raw / name).symlink_to(src_root / folder / "raw" / name)
    return raw


def test_mnist_missing_files(tmp_path):
    cfg = DataConfig(name="mnist", root=str(tmp_path), download=False)
    with pytest.raises(UserError) as err:
        build_source(cfg, "train")
    msg = str(err.value)
    assert "train-images-idx3-ubyte.gz" in msg and "train-labels-idx1-ubyte.gz" in msg
    assert str(tmp_path / "MNIST" / "raw") in msg and "\n" not in msg


def test_mnist_download_fails_offline(tmp_path, monkeypatch):
    from torchvision.datasets import MNIST

    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])  # nothing listens there
    cfg = DataConfig(name="mnist", root=str(tmp_path), download=True)
    with pytest.raises(UserError, match="download failed") as err:
        build_source(cfg, "test")
    assert str(tmp_path / "MNIST" / "raw") in str(err.value) and "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []  # torchvision made MNIST/raw/; the failure removed it


def test_explicit_data_root_must_exist(tmp_path, monkeypatch):
    typo = tmp_path / "typo"
    cfg = DataConfig(name="mnist", root=str(typo), download=True)
    with pytest.raises(UserError) as err:
        build_source(cfg, "test")
    assert str(err.value) == (
        f"data root {typo} does not exist; create it first or fix data.root (--data-dir)"
    )
    assert not typo.exists()
    monkeypatch.setenv("GANKIT_DATA", str(typo))
    with pytest.raises(UserError, match=r"does not exist; create it first or fix \$GANKIT_DATA"):
        build_source(DataConfig(name="fashion-mnist", download=True), "train")
    assert not typo.exists()
    typo.write_text("a file")
    with pytest.raises(UserError, match="is a file, not a folder"):
        build_source(DataConfig(name="mnist", root=str(typo), download=True), "test")


def fail_download(monkeypatch, error: BaseException) -> None:
    """MNIST downloads create their folders, leave a partial .gz, then fail with ``error``."""
    from torchvision.datasets import MNIST

    def download(self):
        os.makedirs(self.raw_folder, exist_ok=True)
        Path(self.raw_folder, "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b partial")
        raise error

    monkeypatch.setattr(MNIST, "download", download)


@pytest.mark.parametrize("error", [OSError("connection reset"), KeyboardInterrupt()])
def test_failed_download_leaves_no_folders(tmp_path, monkeypatch, error):
    fail_download(monkeypatch, error)
    (tmp_path / "other").mkdir()  # the root's own content stays
    cfg = DataConfig(name="mnist", root=str(tmp_path), download=True)
    with pytest.raises(UserError if isinstance(error, OSError) else KeyboardInterrupt) as err:
        build_source(cfg, "test")
    if isinstance(error, OSError):
        assert "download failed (connection reset)" in str(err.value)
    assert [p.name for p in tmp_path.iterdir()] == ["other"]


def test_failed_download_keeps_files_that_were_there(data_root, tmp_path, monkeypatch):
    raw = link_split(data_root, tmp_path, ["t10k-labels-idx1-ubyte.gz"])
    fail_download(monkeypatch, OSError("timed out"))
    with pytest.raises(UserError, match="t10k-images-idx3-ubyte.gz and the download failed"):
        build_source(DataConfig(name="mnist", root=str(tmp_path), download=True), "test")
    assert [p.name for p in raw.iterdir()] == ["t10k-labels-idx1-ubyte.gz"]  # partial .gz gone


def test_default_root_may_be_created(tmp_path, monkeypatch):
    monkeypatch.delenv("GANKIT_DATA", raising=False)
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    fail_download(monkeypatch, OSError("no network"))
    with pytest.raises(UserError, match="download failed") as err:
        build_source(DataConfig(name="mnist", download=True), "test")
    assert str(tmp_path / "cache" / "data" / "MNIST" / "raw") in str(err.value)
    assert list(tmp_path.iterdir()) == []  # the cache folders the download made are gone too


def test_only_the_split_needs_its_files(data_root, tmp_path):
    link_split(data_root, tmp_path, ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"])
    source = build_source(DataConfig(name="mnist", root=str(tmp_path), download=False), "test")
    assert len(source) == 10_000


@pytest.mark.parametrize("download", [False, True])
def test_truncated_gz(data_root, tmp_path, download):
    raw = link_split(data_root, tmp_path, ["t10k-images-idx3-ubyte.gz"])
    good = (data_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(good[: len(good) // 2])
    cfg = DataConfig(name="mnist", root=str(tmp_path), download=download)
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte.gz is corrupt.*delete it"):
        build_source(cfg, "test")


@pytest.mark.parametrize("damage", ["truncate", "magic"])
def test_corrupt_decompressed_idx(data_root, tmp_path, damage):
    raw = link_split(data_root, tmp_path, ["t10k-images-idx3-ubyte.gz"])
    data = gzip.decompress((data_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").read_bytes())
    data = data[:-10] if damage == "truncate" else (1234).to_bytes(4, "big") + data[4:]
    (raw / "t10k-labels-idx1-ubyte").write_bytes(data)
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte is corrupt"):
        build_source(DataConfig(name="mnist", root=str(tmp_path), download=False), "test")


# ---------------------------------------------------------------------------------------------
# image folders


def write_image(path: Path, size: tuple[int, int], mode: str, fill=128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, fill).save(path)


def folder_cfg(path: Path, size: int = 16, channels: int = 3) -> DataConfig:
    return DataConfig(name="folder", path=str(path), size=size, channels=channels)


def test_folder_with_classes(tmp_path):
    write_image(tmp_path / "cats" / "a.png", (40, 30), "RGB", (255, 0, 0))
    write_image(tmp_path / "cats" / "deep" / "b.JPG", (20, 50), "L", 0)
    write_image(tmp_path / "dogs" / "c.png", (16, 16), "RGBA", (0, 0, 255, 255))
    write_image(tmp_path / "dogs" / "d.jpeg", (64, 17), "RGB", (0, 255, 0))
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    write_image(tmp_path / "dogs" / ".hidden.png", (8, 8), "RGB")
    source = build_source(folder_cfg(tmp_path))
    assert source.shape == (3, 16, 16) and len(source) == 4 and source.kind == "image"
    assert source.num_classes == 2 and source.class_names == ["cats", "dogs"]
    assert source.labels.tolist() == [0, 0, 1, 1]
    x, y = source.sample(4)
    assert x.min() >= -1 and x.max() <= 1 and y.dtype == torch.int64
    red = source.batch(torch.tensor([0]))[0][0]  # [3, 16, 16]
    assert_close(red[:, 0, 0], torch.tensor([1.0, -1.0, -1.0]))
    gray = build_source(folder_cfg(tmp_path, size=8, channels=1), "test")
    assert gray.shape == (1, 8, 8) and len(gray) == 4


def test_folder_flat_center_crop(tmp_path):
    img = Image.new("L", (40, 20), 0)  # wide: black quarters left and right, white middle half
    img.paste(255, (10, 0, 30, 20))
    img.save(tmp_path / "wide.png")
    source = build_source(folder_cfg(tmp_path, size=16, channels=1))
    assert source.num_classes == 0 and source.labels is None
    x, y = source.sampler(4, seed=0).next()
    assert y is None and x.shape == (4, 1, 16, 16)
    assert x[0, 0, :, 2:-2].min() > 0.9  # cropped to the middle, not squashed


def test_folder_sampler_epochs_and_resume(tmp_path):
    images = torch.arange(5, dtype=torch.uint8).view(5, 1, 1, 1).expand(5, 1, 2, 2).clone()
    source = ImageSource("tiny", images, torch.arange(5), 5)
    sampler = source.sampler(3, seed=0)
    seen = torch.cat([sampler.next()[1] for _ in range(5)])  # 15 draws = 3 epochs
    for epoch in seen.view(3, 5):
        assert sorted(epoch.tolist()) == [0, 1, 2, 3, 4]
    assert_resumes(source, 3, skip=1, check=6)
    assert source.sampler(12, seed=0).next()[0].shape == (12, 1, 2, 2)  # batch > data set


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_folder_corrupt_image(tmp_path, kind):
    write_image(tmp_path / "ok.png", (8, 8), "RGB")
    buf = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(buf, "JPEG")
    data = b"this is not a png" if kind == "garbage" else buf.getvalue()[:300]
    (tmp_path / "bad.jpg").write_bytes(data)
    with pytest.raises(UserError, match="bad.jpg"):
        build_source(folder_cfg(tmp_path))


def test_folder_errors(tmp_path):
    with pytest.raises(UserError, match="data.path"):
        build_source(DataConfig(name="folder"))
    with pytest.raises(UserError, match="does not exist"):
        build_source(folder_cfg(tmp_path / "nowhere"))
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(UserError, match="not a folder"):
        build_source(folder_cfg(tmp_path / "file.txt"))
    with pytest.raises(UserError, match="no .png/.jpg/.jpeg images"):
        build_source(folder_cfg(tmp_path))
    write_image(tmp_path / "top.png", (8, 8), "RGB")
    write_image(tmp_path / "sub" / "x.png", (8, 8), "RGB")
    with pytest.raises(UserError, match="both at the top and in subfolders"):
        build_source(folder_cfg(tmp_path))


def test_sample_more_than_split(tmp_path):
    write_image(tmp_path / "a.png", (8, 8), "RGB")
    with pytest.raises(UserError, match="has 1 images"):
        build_source(folder_cfg(tmp_path)).sample(2)


def save_png16(path: Path, values: np.ndarray) -> None:
    """A 16-bit PNG written by hand: ``values`` uint16 [H, W] (gray) or [H, W, 3] (RGB), since PIL
    writes 16-bit grayscale PNGs but not 16-bit RGB ones."""
    h, w = values.shape[:2]
    color_type = 0 if values.ndim == 2 else 2
    rows = b"".join(b"\x00" + values[i].astype(">u2").tobytes() for i in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# 16x16 16-bit gradients whose high bytes are 0..255: 257 k (0..65535, exact multiples) and
# 256 k + 255 (the largest value of each high byte, where rounding v / 257 would give k + 1)
GRADIENTS = [np.arange(256, dtype=np.uint16) * 257, np.arange(256, dtype=np.uint16) * 256 + 255]
HIGH_BYTES = torch.arange(256, dtype=torch.uint8).view(16, 16)


@pytest.mark.parametrize("channels", [1, 3])
def test_folder_16bit_gray_png(tmp_path, channels):
    for name, values in zip(("a.png", "b.png"), GRADIENTS, strict=True):
        Image.fromarray(values.reshape(16, 16)).save(tmp_path / name)  # PIL writes 16-bit gray
        with Image.open(tmp_path / name) as img:
            assert img.mode == "I;16"  # a real 16-bit file, not 8 bits
    source = build_source(folder_cfg(tmp_path, size=16, channels=channels))
    assert source.images.shape == (2, channels, 16, 16)
    for c in range(channels):
        assert torch.equal(source.images[0, c], HIGH_BYTES)  # not clipped to 255
        assert torch.equal(source.images[1, c], HIGH_BYTES)  # >> 8, not rounded / 257


@pytest.mark.parametrize("channels", [1, 3])
def test_folder_16bit_rgb_png(tmp_path, channels):
    gray = GRADIENTS[1].reshape(16, 16)
    values = (
        np.stack([gray, gray, gray], -1)
        if channels == 1
        else np.stack([gray, gray[::-1], np.full_like(gray, 40_000)], -1)
    )  # [16, 16, 3]; channels=1 takes R = G = B, so PIL's gray conversion is exact
    save_png16(tmp_path / "rgb48.png", values)
    source = build_source(folder_cfg(tmp_path, size=16, channels=channels))
    assert torch.equal(source.images[0, 0], HIGH_BYTES)
    if channels == 3:
        assert torch.equal(source.images[0, 1], HIGH_BYTES.flip(0))
        assert torch.equal(source.images[0, 2], torch.full((16, 16), 156, dtype=torch.uint8))


def test_to_8bit_modes():
    values = GRADIENTS[1].reshape(16, 16)
    big_endian = Image.frombytes("I;16B", (16, 16), values.astype(">u2").tobytes())
    as_int32 = Image.fromarray(values.astype(np.int32))  # mode "I", as older PIL reads 16 bits
    for img in (big_endian, as_int32, Image.fromarray(values)):
        out = to_8bit(img)
        assert out.mode == "L"
        assert torch.equal(torch.from_numpy(np.asarray(out).copy()), HIGH_BYTES), img.mode
    odd = Image.fromarray(np.array([[-5, 70_000]], dtype=np.int32))
    assert np.asarray(to_8bit(odd)).tolist() == [[0, 255]]
    rgb = Image.new("RGB", (2, 2), (1, 2, 3))
    assert to_8bit(rgb) is rgb


# ---------------------------------------------------------------------------------------------
# data sets smaller than a batch or a sample grid


def test_check_fits_folder(tmp_path):
    for i in range(5):
        write_image(tmp_path / f"{i}.png", (8, 8), "RGB", (i, 0, 0))
    source = build_source(folder_cfg(tmp_path))
    check_fits(source, 5, 5)  # exactly as many images as a batch and a grid
    where = f"image folder {tmp_path} holds 5 images"
    cases = {
        (8, 4): "fewer than train.batch_size=8; lower train.batch_size to at most 5",
        (4, 64): "fewer than log.n_samples=64; lower log.n_samples to at most 5",
        (8, 64): "fewer than train.batch_size=8 and log.n_samples=64; "
        "lower train.batch_size and log.n_samples to at most 5",
    }
    for (batch, grid), why in cases.items():
        with pytest.raises(UserError) as err:
            check_fits(source, batch, grid)
        assert str(err.value) == f"{where}, {why} or add images to the folder"


def test_check_fits_idx_and_stacked(idx_sources):
    source = idx_sources["mnist", "test"]
    check_fits(source, 10_000, 10_000)
    with pytest.raises(UserError) as err:
        check_fits(source, 10_001, 64)
    assert str(err.value) == (
        "the test split of mnist holds 10000 images, fewer than train.batch_size=10001; "
        "lower train.batch_size to at most 10000"
    )
    digits = ImageSource("mnist", torch.zeros(4, 1, 2, 2, dtype=torch.uint8), torch.arange(4), 10)
    stacked = StackedSource(digits, torch.tensor([[0, 1, 2], [3, 2, 1], [0, 0, 0]]))
    check_fits(stacked, 3, 3)
    with pytest.raises(UserError, match="the train split of stacked-mnist holds 3 images"):
        check_fits(stacked, 2, 4)


def test_check_fits_toy_is_endless():
    check_fits(toy("ring"), 10**9, 10**9)
