"""MNIST (LeCun et al. 1998) and Fashion-MNIST (Xiao, Rasul and Vollgraf 2017) from their IDX files.

The official IDX files are read from where torchvision keeps them, ``<root>/MNIST/raw/`` and
``<root>/FashionMNIST/raw/`` (gzipped or not); torchvision fetches missing files when online.
Every file is checked first (md5 of the ``.gz``, IDX magic and size), so a missing, truncated or
corrupt file is a one-line ``UserError`` naming the file and the fix, never a traceback. A root
the user named must exist (a typo is refused, not filled with folders), and a failed download
removes the partial files and the folders it left. ``size`` other than 28 resizes with
antialiased bilinear interpolation (the DCGAN nets of Radford et al. 2016 want 32 or 64);
``channels=3`` tiles the gray channel (a view: no extra memory).
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from http.client import HTTPException
from pathlib import Path

import torch
from torch import Tensor
from torchvision import datasets as tvd

from ..config import DataConfig
from ..errors import UserError
from ..registry import DATASETS
from . import data_root
from .images import ImageSource, resize_uint8

_IDX_MAGIC = {"images": 2051, "labels": 2049}  # IDX: 0x0803 = uint8 x 3 dims, 0x0801 = 1 dim


def _corrupt(path: Path, why: str) -> UserError:
    return UserError(
        f"{path} is corrupt or truncated ({why}); delete it and download it again "
        "(data.download=true) or copy a good one from the official release"
    )


def _read_raw(raw: Path, gz_name: str, md5: str) -> tuple[Path, bytes]:
    """The decompressed bytes of one IDX file: the plain file if present, else the checked .gz."""
    plain, gz = raw / gz_name[: -len(".gz")], raw / gz_name
    if plain.is_file():
        return plain, plain.read_bytes()
    data = gz.read_bytes()
    if hashlib.md5(data).hexdigest() != md5:
        raise _corrupt(gz, f"md5 is not {md5}")
    try:
        return gz, gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise _corrupt(gz, f"bad gzip: {e}") from None


def _parse_idx(path: Path, data: bytes, kind: str) -> Tensor:
    """An IDX file of unsigned bytes -> uint8 tensor; checks the magic number and the size."""
    ndim = 3 if kind == "images" else 1
    header = 4 + 4 * ndim
    if len(data) < header:
        raise _corrupt(path, f"{len(data)} bytes, shorter than an IDX header")
    magic = int.from_bytes(data[:4], "big")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    if magic != _IDX_MAGIC[kind]:
        raise _corrupt(path, f"IDX magic {magic}, expected {_IDX_MAGIC[kind]}")
    count = 1
    for d in dims:
        count *= d
    if len(data) != header + count:
        raise _corrupt(path, f"{len(data)} bytes, the header promises {header + count}")
    flat = torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8)
    return flat.reshape(dims)  # [N, 28, 28] or [N]


def _split_files(split: str) -> dict[str, str]:
    """The official ``.gz`` names of a split's images and labels."""
    prefix = "train" if split == "train" else "t10k"
    return {"images": f"{prefix}-images-idx3-ubyte.gz", "labels": f"{prefix}-labels-idx1-ubyte.gz"}


def _raw_status(raw: Path, names: list[str]) -> list[str]:
    """The names of ``names`` (``.gz`` file names) present neither gzipped nor decompressed."""
    return [n for n in names if not (raw / n).is_file() and not (raw / n[: -len(".gz")]).is_file()]


def _missing_error(title: str, folder: str, raw: Path, missing: list[str], why: str) -> UserError:
    return UserError(
        f"{title} files missing: {', '.join(missing)}{why}; put them in {raw}/ or point data.root "
        f"(--data-dir) at a folder whose {folder}/raw/ holds them"
    )


def _missing_dirs(path: Path) -> list[Path]:
    """``path`` and those of its parents that do not exist yet, deepest first."""
    out = []
    while not path.exists() and path != path.parent:
        out.append(path)
        path = path.parent
    return out


def _undo_download(md5s: dict[str, str], raw: Path, before: set[Path], created: list[Path]) -> None:
    """After a failed download: delete the partial files it wrote (``md5s``: file name -> the
    official md5; a file whose md5 differs is partial) and the folders it created that are left
    empty. Files that were there stay."""
    for path in set(raw.iterdir() if raw.is_dir() else ()) - before:
        md5 = md5s.get(path.name)
        if md5 and path.is_file() and hashlib.md5(path.read_bytes()).hexdigest() != md5:
            path.unlink(missing_ok=True)
    for folder in created:  # deepest first
        try:
            folder.rmdir()  # only if empty
        except OSError:
            break


def _ensure_files(cls: type, title: str, root: Path, split: str, download: bool) -> Path:
    """The raw folder once the split's two files are present; download them if allowed."""
    raw = root / cls.__name__ / "raw"
    names = list(_split_files(split).values())
    missing = _raw_status(raw, names)
    if missing and download:
        created = _missing_dirs(raw)
        before = set(raw.iterdir()) if raw.is_dir() else set()
        done = False
        try:
            cls(str(root), train=split == "train", download=True)
            done = True
        except (OSError, RuntimeError, HTTPException) as e:
            reason = " ".join(str(e).split())[:160] or type(e).__name__
            raise _missing_error(
                title, cls.__name__, raw, missing, f" and the download failed ({reason})"
            ) from None
        finally:
            if not done:  # also on Ctrl-C
                _undo_download(dict(cls.resources), raw, before, created)
        missing = _raw_status(raw, names)
    if missing:
        raise _missing_error(title, cls.__name__, raw, missing, " (data.download is off)")
    return raw


def _read_split(cls: type, raw: Path, split: str) -> tuple[Tensor, Tensor]:
    """The checked images uint8 ``[N, 28, 28]`` and labels int64 ``[N]`` of one split."""
    md5s = dict(cls.resources)
    parsed = {}
    for kind, gz_name in _split_files(split).items():
        path, data = _read_raw(raw, gz_name, md5s[gz_name])
        parsed[kind] = (path, _parse_idx(path, data, kind))
    (_, images), (label_path, labels) = parsed["images"], parsed["labels"]
    if len(labels) != len(images) or len(labels) == 0 or int(labels.max()) >= len(cls.classes):
        raise _corrupt(label_path, f"{len(labels)} labels for {len(images)} images, or a bad value")
    return images, labels.long()


def load_idx_dataset(cls: type, title: str, name: str, cfg: DataConfig, split: str) -> ImageSource:
    """An MNIST-like data set; ``cls`` is its torchvision class (folder name, md5s, classes)."""
    root = data_root(cfg.root, must_exist=True)
    raw = _ensure_files(cls, title, root, split, cfg.download)
    images, labels = _read_split(cls, raw, split)  # [N, 28, 28], [N]
    images = images[:, None]  # [N, 1, 28, 28]
    if cfg.size != images.shape[-1]:
        images = resize_uint8(images, cfg.size)  # [N, 1, size, size]
    if cfg.channels == 3:
        images = images.expand(-1, 3, -1, -1)  # [N, 3, size, size], a view: no copy
    return ImageSource(name, images, labels, len(cls.classes), split, list(cls.classes))


@DATASETS.register("mnist")
def mnist(cfg: DataConfig, split: str = "train") -> ImageSource:
    return load_idx_dataset(tvd.MNIST, "MNIST", "mnist", cfg, split)


@DATASETS.register("fashion-mnist")
def fashion_mnist(cfg: DataConfig, split: str = "train") -> ImageSource:
    return load_idx_dataset(tvd.FashionMNIST, "Fashion-MNIST", "fashion-mnist", cfg, split)
