"""USPS handwritten digits (Hull 1994): 16x16 gray, 7,291 train and 2,007 test images, 10 classes.

J. J. Hull, "A database for handwritten text recognition research", IEEE TPAMI 16(5), 1994; the
second digit domain of the unpaired translation benchmarks (CycleGAN, Zhu et al. 2017; CyCADA,
Hoffman et al. 2018). Read from ``<root>/usps/``, which holds either or both of

- ``usps.h5``: the Elements of Statistical Learning ("zip code") version, HDF5 with ``train/data``
  float32 ``[7291, 256]`` in [0, 1], ``train/target`` 0..9, ``test/data``, ``test/target``
  (needs ``h5py``);
- ``usps.bz2`` (train) and ``usps.t.bz2`` (test): the LIBSVM files that
  ``torchvision.datasets.USPS`` reads and downloads, lines ``label index:value ...`` with values
  in [-1, 1] and labels 1..10 (stored here as 0..9).

Precedence: when ``usps.h5`` exists, **both splits come from it** and the ``.bz2`` files are
ignored, so that train and test share one grey-level preprocessing (the two versions hold the
same digits with pixels that correlate only 0.958). Without it each split reads its ``.bz2``
file, downloaded through torchvision when ``data.download`` is on. ``source.file`` says which file
a split came from.

Pixels become uint8 by rounding to the nearest grey level, ties to even (``torch.round``):
``round(255 v)`` for usps.h5, ``round(127.5 (v + 1))`` for LIBSVM (torchvision truncates instead,
so its ``USPS.data`` is up to one level darker than ours). ``data.size`` (default 28, like MNIST)
resizes with the antialiased bilinear ``resize_uint8``; ``channels=3`` tiles the gray channel.
Every file is checked (md5 of the ``.bz2`` files; groups, shapes, labels and value range of the
``.h5``), so a missing, truncated or corrupt file is a one-line ``UserError`` naming it.
"""

from __future__ import annotations

import bz2
import hashlib
from http.client import HTTPException
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torchvision import datasets as tvd

from ..config import DataConfig
from ..errors import UserError
from ..registry import DATASETS
from . import data_root
from .idx import _corrupt, _missing_dirs, _undo_download
from .images import ImageSource, resize_uint8

NAME = "usps"
FOLDER = "usps"  # <root>/usps/, the folder torchvision.datasets.USPS is given as its root
H5_NAME = "usps.h5"
SIDE = 16  # USPS digits are 16x16
CLASSES = [str(i) for i in range(10)]
# LIBSVM files of torchvision.datasets.USPS: split -> (file name, md5)
BZ2_FILES = {split: (v[1], v[2]) for split, v in tvd.USPS.split_list.items()}


def _h5_corrupt(path: Path, why: str) -> UserError:
    return UserError(
        f"{path} is corrupt or truncated ({why}); replace it with a good copy of the ESL usps.h5, "
        f"or delete it to read torchvision's usps.bz2 and usps.t.bz2 instead"
    )


def _to_uint8(values: Tensor, low: float, high: float) -> Tensor:
    """Pixel values in ``[low, high]`` ``[N, 256]`` -> uint8 0..255 ``[N, 1, 16, 16]``, rounded."""
    scaled = (values.double() - low) * (255 / (high - low))  # [N, 256]
    out = scaled.round_().clamp_(0, 255).to(torch.uint8)  # [N, 256]
    return out.reshape(-1, 1, SIDE, SIDE)  # [N, 1, 16, 16]


def _check_values(path: Path, values: Tensor, low: float, high: float, error) -> None:
    tol = 1e-4
    if not torch.isfinite(values).all():
        raise error(path, "pixel values that are not finite")
    lo, hi = float(values.min()), float(values.max())
    if lo < low - tol or hi > high + tol:
        raise error(path, f"pixel values from {lo:g} to {hi:g}, expected {low:g} to {high:g}")


def read_h5(path: Path, split: str) -> tuple[Tensor, Tensor]:
    """One split of the ESL ``usps.h5``: uint8 ``[N, 1, 16, 16]`` and int64 labels ``[N]``."""
    try:
        import h5py
    except ImportError:
        raise UserError(
            f"reading {path} needs h5py; install it (pip install h5py) or remove {path.name} to "
            "read usps.bz2 and usps.t.bz2 instead"
        ) from None
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in (f"{split}/data", f"{split}/target") if k not in f]
            if missing:
                raise _h5_corrupt(path, f"no dataset {' or '.join(missing)}")
            data = np.asarray(f[f"{split}/data"][()])  # [N, 256]
            target = np.asarray(f[f"{split}/target"][()])  # [N]
    except OSError as e:
        raise _h5_corrupt(path, " ".join(str(e).split())[:160] or type(e).__name__) from None
    if data.ndim != 2 or data.shape[1] != SIDE * SIDE or len(data) == 0:
        raise _h5_corrupt(path, f"{split}/data has shape {data.shape}, expected [N, 256]")
    if target.shape != (len(data),) or not np.issubdtype(target.dtype, np.integer):
        raise _h5_corrupt(
            path, f"{split}/target is {target.dtype} {target.shape}, expected [{len(data)}] ints"
        )
    if target.min() < 0 or target.max() > 9:
        raise _h5_corrupt(path, f"{split}/target holds {target.min()}..{target.max()}, not 0..9")
    values = torch.from_numpy(data.astype(np.float64))  # [N, 256]
    _check_values(path, values, 0.0, 1.0, _h5_corrupt)
    return _to_uint8(values, 0.0, 1.0), torch.from_numpy(target.astype(np.int64))


def parse_libsvm(path: Path, text: str) -> tuple[Tensor, Tensor]:
    """LIBSVM lines ``label index:value ...`` (indices 1..256, absent = 0, labels 1..10) ->
    values float64 ``[N, 256]`` and labels int64 ``[N]`` in 0..9."""
    lines = text.splitlines()
    values = np.zeros((len(lines), SIDE * SIDE), dtype=np.float64)  # [N, 256]
    labels = np.empty(len(lines), dtype=np.int64)  # [N]
    for n, line in enumerate(lines):
        tokens = line.split()
        try:
            labels[n] = int(float(tokens[0])) - 1
            for token in tokens[1:]:
                index, _, value = token.partition(":")
                values[n, int(index) - 1] = float(value)
        except (ValueError, IndexError):
            raise _corrupt(path, f"line {n + 1} is not 'label index:value ...'") from None
        if not 0 <= labels[n] <= 9:
            raise _corrupt(path, f"line {n + 1} has label {labels[n] + 1}, not 1..10")
    if len(lines) == 0:
        raise _corrupt(path, "no lines")
    return torch.from_numpy(values), torch.from_numpy(labels)


def read_bz2(path: Path, md5: str) -> tuple[Tensor, Tensor]:
    """One LIBSVM ``.bz2`` file: uint8 ``[N, 1, 16, 16]`` and int64 labels ``[N]``."""
    data = path.read_bytes()
    if hashlib.md5(data).hexdigest() != md5:
        raise _corrupt(path, f"md5 is not {md5}")
    try:
        text = bz2.decompress(data).decode("ascii")
    except (OSError, EOFError, ValueError) as e:
        raise _corrupt(path, f"bad bz2: {e}") from None
    values, labels = parse_libsvm(path, text)  # [N, 256], [N]
    _check_values(path, values, -1.0, 1.0, _corrupt)
    return _to_uint8(values, -1.0, 1.0), labels


def _missing_error(folder: Path, name: str, why: str) -> UserError:
    return UserError(
        f"USPS files missing: neither {H5_NAME} nor {name} is in {folder}/{why}; put {H5_NAME} "
        f"(both splits) or {name} there, or point data.root (--data-dir) at a folder whose "
        f"{FOLDER}/ holds them"
    )


def _download(folder: Path, split: str) -> None:
    """Fetch the split's ``.bz2`` file through torchvision; on failure remove what it left."""
    name, md5 = BZ2_FILES[split]
    created = _missing_dirs(folder)
    before = set(folder.iterdir()) if folder.is_dir() else set()
    done = False
    try:
        tvd.USPS(str(folder), train=split == "train", download=True)
        done = True
    except (OSError, RuntimeError, EOFError, HTTPException) as e:
        reason = " ".join(str(e).split())[:160] or type(e).__name__
        raise _missing_error(folder, name, f" and the download failed ({reason})") from None
    finally:
        if not done:  # also on Ctrl-C
            _undo_download({name: md5}, folder, before, created)


def usps_file(root: Path, split: str, download: bool) -> Path:
    """The file the split is read from: ``usps.h5`` if present, else the split's ``.bz2``."""
    folder = root / FOLDER
    if (folder / H5_NAME).is_file():
        return folder / H5_NAME
    name, _ = BZ2_FILES[split]
    if not (folder / name).is_file() and download:
        _download(folder, split)
    if not (folder / name).is_file():
        why = " after the download" if download else " (data.download is off)"
        raise _missing_error(folder, name, why)
    return folder / name


@DATASETS.register(NAME)
def usps(cfg: DataConfig, split: str = "train") -> ImageSource:
    root = data_root(cfg.root, must_exist=True)
    path = usps_file(root, split, cfg.download)
    if path.name == H5_NAME:
        images, labels = read_h5(path, split)  # [N, 1, 16, 16], [N]
    else:
        images, labels = read_bz2(path, BZ2_FILES[split][1])  # [N, 1, 16, 16], [N]
    if cfg.size != SIDE:
        images = resize_uint8(images, cfg.size)  # [N, 1, size, size]
    if cfg.channels == 3:
        images = images.expand(-1, 3, -1, -1)  # [N, 3, size, size], a view: no copy
    origin = f"the {split} split of usps in {path}"
    source = ImageSource(NAME, images, labels, len(CLASSES), split, list(CLASSES), origin)
    source.file = path  # which file (and so which preprocessing) the split came from
    return source
