"""The uint8 disk cache of an image folder: decoded once, memory-mapped by every process after.

StyleGAN's ``dataset_tool`` (Karras et al. 2020) decodes a folder once into an archive that
training reads; here it is a raw uint8 file ``[N, C, S, S]`` in
``<gankit cache>/folders/<hash of the folder's resolved path>/``, named
``s<S>-c<C>-<crop>-<params>-<content>.u8``, with a ``.json`` beside it that describes it (count,
shape, the files left out and why). ``<params>`` hashes the decoding (``FORMAT``, the PIL version,
the pad value) and ``<content>`` every file's relative path, size and mtime (ns): adding,
removing, renaming or rewriting an image gives a new name, so the cache is rebuilt, and the old
caches of the same size, channels and crop are then removed. Both files are written atomically
(``files.atomic_path``; the ``.json`` last, so a cache without one is incomplete and rebuilt);
nothing is ever written into the image folder itself.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import PIL
import torch
from torch import Tensor
from torch.utils.data import Dataset

from .. import memory
from ..cache import cache_dir
from ..config import DataConfig
from ..errors import UserError
from ..files import atomic_path, remove_stale_temporaries
from .images import PAD_VALUE, to_float

FORMAT = 1  # the disk cache's layout and decoding; a new value rebuilds every cache
Bad = list[tuple[int, str]]  # (file index, reason) of the files that did not decode


def nothing_readable(root: Path) -> UserError:
    return UserError(
        f"no image under {root} can be read; check the files or point data.path elsewhere"
    )


class CachedImages(Dataset):
    """``self[indices]`` -> a batch read from the disk cache (memory-mapped in each process):
    float32 ``[n, C, S, S]`` in [-1, 1], labels ``[n]`` (or None), no bad files."""

    def __init__(self, path: Path, count: int, shape: list[int], labels: Tensor | None):
        self.path, self.count, self.labels = path, count, labels
        self.shape = tuple(shape)  # (C, S, S)
        self._images: np.memmap | None = None

    def __len__(self) -> int:
        return self.count

    def __getstate__(self) -> dict[str, Any]:  # a worker maps the file itself
        return {**self.__dict__, "_images": None}

    def images(self) -> np.memmap:
        if self._images is None:
            self._images = np.memmap(self.path, np.uint8, "r", shape=(self.count, *self.shape))
        return self._images  # [N, C, S, S]

    def __getitem__(self, index: list[int]) -> tuple[Tensor, Tensor | None, Bad]:
        idx = np.asarray(index, dtype=np.int64)
        x = torch.from_numpy(self.images()[idx])  # [n, C, S, S] uint8, a copy
        y = None if self.labels is None else self.labels[torch.from_numpy(idx)]  # [n]
        return to_float(x), y, []


def free_bytes(folder: Path) -> int:
    """Free bytes on the disk that holds ``folder`` (or would: its nearest existing parent)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 0


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def cache_folder(root: Path) -> Path:
    """Where the disk caches of the folder ``root`` live."""
    return cache_dir("folders", _digest(str(root.resolve()))[:16])


def cache_name(root: Path, files: list[Path], cfg: DataConfig) -> str:
    """``s<S>-c<C>-<crop>-<params>-<content>``: the decoding and every file's path, size, mtime."""
    params = _digest(f"format={FORMAT} pil={PIL.__version__} pad={PAD_VALUE}")[:8]
    content = hashlib.sha256()
    for f in files:
        st = f.stat()
        content.update(
            f"{f.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode()
        )
    return f"s{cfg.size}-c{cfg.channels}-{cfg.crop}-{params}-{content.hexdigest()[:16]}"


def read_meta(meta: Path, data: Path, n: int, shape: tuple[int, ...]) -> dict[str, Any] | None:
    """The cache's description when it is complete and matches, else None (rebuild it)."""
    try:
        info = json.loads(meta.read_text())
        ok = (
            info["format"] == FORMAT
            and info["files"] == n
            and info["shape"] == list(shape)
            and data.stat().st_size == info["count"] * math.prod(shape)
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info if ok else None


def build_cache(
    root: Path,
    files: list[Path],
    cfg: DataConfig,
    decode: Callable[[np.memmap], Bad],
    data: Path,
    meta: Path,
) -> dict[str, Any]:
    """Decode the folder into ``data`` (``decode(out)`` fills ``out`` uint8 ``[N, C, S, S]``
    from row 0 and returns the files it left out), describe it in ``meta``, drop older caches."""
    shape = (cfg.channels, cfg.size, cfg.size)
    nbytes, free = len(files) * math.prod(shape), free_bytes(data.parent)
    if nbytes > free:
        raise UserError(
            f"the disk cache of {root} needs {nbytes / memory.GIB:.1f} GiB, more than the "
            f"{free / memory.GIB:.1f} GiB free in {data.parent}; free some space, point "
            "$GANKIT_CACHE at a larger disk or set data.cache=none (decode from the files)"
        )
    data.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries([data.parent])
    with atomic_path(data) as tmp:
        out = np.memmap(tmp, np.uint8, "w+", shape=(len(files), *shape))  # [N, C, S, S]
        skipped = decode(out)
        out.flush()
        del out
        count = len(files) - len(skipped)
        if count == 0:
            raise nothing_readable(root)
        os.truncate(tmp, count * math.prod(shape))  # the skipped files' rows were never used
    info = {
        "format": FORMAT,
        "folder": str(root.resolve()),
        "files": len(files),
        "count": count,
        "shape": list(shape),
        "skipped": [[i, files[i].relative_to(root).as_posix(), why] for i, why in skipped],
    }
    with atomic_path(meta) as tmp:
        tmp.write_text(json.dumps(info, indent=1))
    prefix = data.name.rsplit("-", 2)[0] + "-"  # s<S>-c<C>-<crop>-: the same images, old files
    for p in data.parent.iterdir():
        if p.name.startswith(prefix) and p.stem != data.stem and p.suffix in (".u8", ".json"):
            p.unlink(missing_ok=True)  # a process still mapping it keeps reading (POSIX)
    return info


def open_cache(
    root: Path, files: list[Path], cfg: DataConfig, decode: Callable[[np.memmap], Bad]
) -> tuple[Path, dict[str, Any]]:
    """The cache file of ``files`` decoded as ``cfg`` says, and its description; built first
    (see ``build_cache``) when it is missing, incomplete or stale."""
    shape = (cfg.channels, cfg.size, cfg.size)
    name = cache_name(root, files, cfg)
    data, meta = cache_folder(root) / f"{name}.u8", cache_folder(root) / f"{name}.json"
    info = read_meta(meta, data, len(files), shape)
    if info is None:
        info = build_cache(root, files, cfg, decode, data, meta)
    return data, info
