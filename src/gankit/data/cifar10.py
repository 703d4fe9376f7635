"""CIFAR-10 (Krizhevsky 2009): 32x32 RGB, 50,000 train and 10,000 test images of 10 classes.

A. Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", tech. report, 2009. Read
from the JPEG re-encoding (quality 75) of the real images and labels, two tarballs in
``<root>/cifar10-jpg/``: ``cifar10-jpg-train.tar.gz`` (``train/<class>/NNNN.jpg``, 5,000 per
class) and ``cifar10-jpg-test.tar.gz`` (``test/<class>/NNNN.jpg``, 1,000 per class). JPEG
blocking makes an FID against them **not comparable with published CIFAR-10 numbers**; compare
models with each other on the same files. gankit does not download them.

Each tarball is checked against its sha256, then unpacked once into gankit's cache
(``<cache>/cifar10-jpg/<split>-<sha256[:16]>/``, a folder of class subfolders, exactly what
``data.name=folder`` reads). The unpack goes into a temporary folder that is renamed when
complete, so a killed unpack never leaves a half folder; the temporaries of dead processes are
removed by the next unpack. Labels 0..9 follow the class folders in label order (airplane,
automobile, bird, cat, deer, dog, frog, horse, ship, truck: also their sorted order). Images are
read by the folder loader of ``images.py`` and held in memory as uint8; ``data.size`` other than
32 resizes with the antialiased bilinear ``resize_uint8``, ``data.channels=1`` converts to gray.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from ..cache import cache_dir
from ..config import DataConfig
from ..errors import UserError
from ..files import _pid_alive, sha256_file
from ..registry import DATASETS
from . import data_root
from .images import ImageSource, load_folder, resize_uint8

NAME = "cifar10"
FOLDER = "cifar10-jpg"  # <root>/cifar10-jpg/ holds the tarballs; <cache>/cifar10-jpg/ the unpacks
SIDE = 32
CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
SHA256 = {  # shared/datasets/README.md
    "train": "7fbc288d609f90919fd18916641e8aba05f9479e15158cab59ac6e722b12fd14",
    "test": "2868a7d9457f0c044c4dcf9711f27a830bf4b4adc45311f817dc4d17ca69999f",
}
PER_CLASS = {"train": 5000, "test": 1000}  # images per class in the real tarballs
_TMP_RE = re.compile(r"^\.(?:train|test)-[0-9a-f]+\.(\d+)\.tmp$")  # .<split>-<key>.<pid>.tmp


def tarball_name(split: str) -> str:
    return f"cifar10-jpg-{split}.tar.gz"


def tarball(root: Path, split: str) -> Path:
    """``<root>/cifar10-jpg/cifar10-jpg-<split>.tar.gz``, which must exist."""
    path = root / FOLDER / tarball_name(split)
    if not path.is_file():
        raise UserError(
            f"CIFAR-10 file missing: {path}; put the JPEG tarball {path.name} there or point "
            f"data.root (--data-dir) at a folder whose {FOLDER}/ holds it (gankit does not "
            "download CIFAR-10)"
        )
    return path


def check_sha256(path: Path, sha256: str) -> None:
    """Refuse ``path`` unless its sha256 is ``sha256``."""
    if sha256_file(path) != sha256:
        raise UserError(
            f"{path} is corrupt or truncated (its sha256 is not {sha256}); replace it with a good "
            f"copy of {path.name}"
        )


def _bad_tar(path: Path, why: str) -> UserError:
    return UserError(
        f"{path} does not hold the CIFAR-10 JPEG layout ({why}); replace it with a good copy of "
        f"{path.name}"
    )


def _extract(path: Path, split: str, dest: Path) -> None:
    """Unpack the tarball into ``dest``, refusing any member that is not a plain file or folder
    under ``<split>/``."""
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            parts = PurePosixPath(member.name).parts
            if (
                not parts
                or parts[0] != split
                or ".." in parts
                or not (member.isfile() or member.isdir())
            ):
                raise _bad_tar(path, f"unexpected member {member.name[:80]!r}")
            tar.extract(member, dest, **safe)


def _check_classes(path: Path, folder: Path) -> None:
    """``folder`` holds exactly the ten class folders."""
    found = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if found != CLASSES:
        raise _bad_tar(path, f"{folder.name}/ holds {found[:12]}, not the 10 class folders")


def _remove_stale(parent: Path) -> None:
    """Remove the temporary folders of unpacks whose process is gone (killed mid-unpack)."""
    for p in parent.iterdir():
        m = _TMP_RE.match(p.name)
        if m and p.is_dir() and not _pid_alive(int(m.group(1))):
            shutil.rmtree(p, ignore_errors=True)


def unpacked(path: Path, split: str, sha256: str) -> Path:
    """The folder of class subfolders of the (checked) tarball ``path``; unpacked on first use."""
    final = cache_dir(FOLDER, f"{split}-{sha256[:16]}")
    if final.is_dir():
        return final
    parent = final.parent
    tmp = parent / f".{final.name}.{os.getpid()}.tmp"
    try:
        parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(parent)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        _extract(path, split, tmp)
        _check_classes(path, tmp / split)
        try:
            os.rename(tmp / split, final)  # atomic: the folder appears complete or not at all
        except OSError:
            if not final.is_dir():  # else another process finished the same unpack first
                raise
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise _bad_tar(path, " ".join(str(e).split())[:120] or type(e).__name__) from None
    except OSError as e:
        raise UserError(
            f"cannot unpack {path.name} into {parent} ({e.strerror or e}); free some space there "
            "or point $GANKIT_CACHE at a folder you can write"
        ) from None
    finally:  # also on Ctrl-C
        shutil.rmtree(tmp, ignore_errors=True)
    return final


@DATASETS.register(NAME)
def cifar10(cfg: DataConfig, split: str = "train") -> ImageSource:
    root = data_root(cfg.root, must_exist=True)
    path = tarball(root, split)
    check_sha256(path, SHA256[split])
    folder = unpacked(path, split, SHA256[split])
    images, labels, names = load_folder(folder, SIDE, cfg.channels)  # [N, C, 32, 32], [N]
    if names != CLASSES or labels is None:
        raise UserError(
            f"the unpacked CIFAR-10 folder {folder} was changed (its classes are {names[:12]}); "
            "delete it and gankit unpacks the tarball again"
        )
    if cfg.size != SIDE:
        images = resize_uint8(images, cfg.size)  # [N, C, size, size]
    origin = f"the {split} split of cifar10 in {path}"
    return ImageSource(NAME, images, labels, len(CLASSES), split, list(CLASSES), origin)
