"""Image folders at scale: decoded by DataLoader workers, held in memory, in a uint8 cache on
disk, or streamed from the files.

The loader is PyTorch's own (Paszke et al. 2019): ``torch.utils.data.DataLoader`` worker processes
decode PIL images in parallel and hand batches back through pinned memory when CUDA is present.
The disk cache follows StyleGAN's ``dataset_tool`` (Karras et al. 2020): decode once, train from
the decoded array; here a raw uint8 file that the workers memory-map.

``data.cache`` says where the decoded images live (the batches are the same bits in every mode):

- ``memory``: the whole folder decoded at start into one uint8 tensor ``[N, C, S, S]`` (an
  ``ImageSource``); batches are gathered from it.
- ``disk``: decoded once into a raw uint8 file in gankit's cache folder that the workers
  memory-map; later runs reuse it, and it is rebuilt when any file is added, removed, renamed or
  rewritten (its name hashes every file's path, size and mtime: ``folder_cache.py``).
- ``none``: streamed; each batch is decoded from the files by the workers just ahead of its use.
- ``auto`` (the default): ``memory`` when the decoded images take at most ``data.memory_gb`` GiB
  (4) and at most half the memory available now; else ``disk`` when the cache takes at most half
  the free space of gankit's cache folder; else ``none``.

``data.workers`` worker processes decode (None: one per core but one, at most 8, the cores shared
among torchrun's ``LOCAL_WORLD_SIZE`` processes; 0: the main process). A folder's samplers draw
the ``EpochOrder`` of images.py, the in-memory sampler's stream, so one seed gives the same
batches in every mode and a checkpoint of one resumes in another.

**Exact resume with prefetching workers.** The DataLoader reads the index stream ahead of use
from a *copy* of the order; for each batch it asks for, the copy's state after that batch is
queued; ``next()`` pops it into the sampler's own order. So ``state_dict()`` describes the batches
handed out, never those prefetched, and ``load_state_dict`` drops what was prefetched.

**Bad files.** An unreadable file is a one-line ``UserError`` naming it; with
``data.skip_bad=true`` it is left out and listed in ``source.skipped`` (full paths). ``memory``
and ``disk`` find every bad file while decoding the folder; ``none`` finds one only when it is
first drawn, and then gives its place in the batch to the next readable file in sorted order
(so batches keep their size and the stream stays a function of the seed and the files).
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from .. import memory
from ..config import DataConfig
from ..errors import UserError
from . import Sampler, check_batch_size
from .folder_cache import Bad, CachedImages, cache_folder, free_bytes, nothing_readable, open_cache
from .images import (
    DECODE_ERRORS,
    EpochOrder,
    ImageSource,
    check_shard,
    decode_image,
    decode_reason,
    folder_labels,
    list_images,
    to_float,
)

MAX_WORKERS = 8  # data.workers=null: one per core but one, at most this many
CHUNK_IMAGES = 256  # images per worker task when a whole folder is decoded ...
CHUNK_BYTES = 64 << 20  # ... and at most this many decoded bytes per task


def default_workers() -> int:
    """DataLoader workers for ``data.workers=null``: one per core but one (the main process
    trains), the cores shared among the processes torchrun started on this machine
    (``LOCAL_WORLD_SIZE``), at most ``MAX_WORKERS``; 0 with a single core."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        local = 1
    return max(0, min(MAX_WORKERS, cores // local - 1))


def unreadable(path: Path, reason: str) -> UserError:
    return UserError(
        f"cannot read image {path} ({reason}); delete or replace it, or set data.skip_bad=true "
        "to skip unreadable files"
    )


# ---------------------------------------------------------------------------------------------
# what the workers run: each item is a whole batch (a list of indices), so one task is one batch


class _Decode(Dataset):
    """``self[indices]`` -> the files decoded, uint8 ``[n, C, S, S]`` (zeros where a file is
    bad), and the bad ones."""

    def __init__(self, files: list[Path], size: int, channels: int, crop: str):
        self.files, self.size, self.channels, self.crop = files, size, channels, crop
        self.shape = (channels, size, size)

    def __len__(self) -> int:
        return len(self.files)

    def _empty(self, n: int) -> Tensor:
        return torch.zeros(n, self.channels, self.size, self.size, dtype=torch.uint8)

    def __getitem__(self, index: list[int]) -> tuple[Tensor, Bad]:
        out, bad = self._empty(len(index)), []  # [n, C, S, S]
        for k, i in enumerate(index):
            try:
                out[k] = decode_image(self.files[i], self.size, self.channels, self.crop)
            except DECODE_ERRORS as e:
                bad.append((i, decode_reason(e)))
        return out, bad


class _Stream(_Decode):
    """``self[indices]`` -> a batch decoded from the files: float32 ``[n, C, S, S]`` in [-1, 1],
    labels ``[n]`` (or None) and the bad files met. With ``skip_bad`` a bad file's place goes to
    the next readable file in sorted order (wrapping); index -1 in the bad list: none is."""

    def __init__(self, files, labels: Tensor | None, size, channels, crop, skip_bad: bool):
        super().__init__(files, size, channels, crop)
        self.labels, self.skip_bad = labels, skip_bad

    def __getitem__(self, index: list[int]) -> tuple[Tensor, Tensor | None, Bad]:
        out, bad, picked = self._empty(len(index)), [], []  # [n, C, S, S]
        n = len(self.files)
        for k, i in enumerate(index):
            j = i
            for step in range(n if self.skip_bad else 1):
                j = (i + step) % n
                try:
                    out[k] = decode_image(self.files[j], self.size, self.channels, self.crop)
                    break
                except DECODE_ERRORS as e:
                    bad.append((j, decode_reason(e)))
            else:
                if self.skip_bad:
                    bad.append((-1, "no readable file"))
            picked.append(j)
        y = None if self.labels is None else self.labels[torch.tensor(picked)]  # [n]
        return to_float(out), y, bad  # [n, C, S, S]


def _loader(dataset: Dataset, tasks: Iterable[list[int]], workers: int, pin: bool) -> DataLoader:
    """Each task (a list of indices) is one item: ``batch_size=None`` hands it to
    ``dataset[task]`` whole, in a worker, in order."""
    return DataLoader(dataset, sampler=tasks, batch_size=None, num_workers=workers, pin_memory=pin)


def _chunks(n: int, per_image: int) -> list[list[int]]:
    step = max(1, min(CHUNK_IMAGES, CHUNK_BYTES // per_image))
    return [list(range(i, min(i + step, n))) for i in range(0, n, step)]


def _decode_into(
    files: list[Path], size: int, channels: int, crop: str, workers: int, skip_bad: bool, out: Any
) -> Bad:
    """Decode every file into ``out`` (uint8 ``[N, C, S, S]``, a tensor or a memmap), the
    readable ones packed from row 0; the bad ones raise, or with ``skip_bad`` are returned."""
    tasks = _chunks(len(files), channels * size * size)
    workers = 0 if len(tasks) == 1 else min(workers, len(tasks))
    batches = iter(_loader(_Decode(files, size, channels, crop), tasks, workers, pin=False))
    row, skipped, error = 0, [], None
    for task in tasks:
        x, bad = next(batches)  # [n, C, S, S]
        if bad:
            if not skip_bad:
                error = unreadable(files[bad[0][0]], bad[0][1])
                break
            keep = torch.ones(len(x), dtype=torch.bool)
            keep[[i - task[0] for i, _ in bad]] = False
            x, skipped = x[keep], skipped + bad  # [n', C, S, S]
        out[row : row + len(x)] = x if isinstance(out, Tensor) else x.numpy()
        row += len(x)
    del batches  # the workers stop now, not when the error's traceback is dropped
    if error is not None:
        raise error
    return skipped


def _kept(n: int, skipped: Bad) -> Tensor:
    keep = torch.ones(n, dtype=torch.bool)  # [N]
    keep[[i for i, _ in skipped]] = False
    return keep


def _listing(root: Path) -> tuple[list[Path], Tensor | None, list[str]]:
    files = list_images(root)
    if not files:
        raise UserError(
            f"no .png/.jpg/.jpeg images in {root} or its subfolders; "
            "put images there or point data.path elsewhere"
        )
    labels, names = folder_labels(root, files)
    return files, labels, names


def decode_folder(
    root: Path, size: int, channels: int, crop: str = "center", workers: int | None = None
) -> tuple[Tensor, Tensor | None, list[str]]:
    """Every image under ``root`` decoded: uint8 ``[N, C, S, S]``, labels, class names."""
    files, labels, names = _listing(root)
    images = torch.empty(len(files), channels, size, size, dtype=torch.uint8)  # [N, C, S, S]
    workers = default_workers() if workers is None else workers
    _decode_into(files, size, channels, crop, workers, False, images)
    return images, labels, names


def _disk_dataset(
    root: Path, files: list[Path], labels: Tensor | None, cfg: DataConfig, workers: int
) -> tuple[CachedImages, Bad]:
    """The folder's disk cache (built when missing or stale) and the files it left out."""

    def decode(out: np.memmap) -> Bad:  # [N, C, S, S]
        return _decode_into(files, cfg.size, cfg.channels, cfg.crop, workers, cfg.skip_bad, out)

    path, info = open_cache(root, files, cfg, decode)
    skipped = [(int(i), str(why)) for i, _, why in info["skipped"]]
    if skipped and not cfg.skip_bad:
        raise unreadable(files[skipped[0][0]], skipped[0][1])
    labels = None if labels is None else labels[_kept(len(files), skipped)]  # [N']
    return CachedImages(path, int(info["count"]), info["shape"], labels), skipped


# ---------------------------------------------------------------------------------------------
# sources and samplers


def choose_cache(cache: str, nbytes: int, memory_gb: float, where: Path) -> str:
    """``data.cache`` resolved: ``auto`` -> memory, disk or none (see the module's docstring)."""
    if cache != "auto":
        return cache
    free = memory.available()
    budget = memory_gb * memory.GIB if free is None else min(memory_gb * memory.GIB, free / 2)
    if nbytes <= budget:
        return "memory"
    return "disk" if nbytes <= free_bytes(where) / 2 else "none"


class FolderSource(ImageSource):
    """An image folder served from its disk cache or its files (``cache`` "disk" or "none"):
    the interface of ``ImageSource`` without an ``images`` tensor; ``batch``, ``sample`` and the
    samplers decode (or read) only the images asked for, with ``workers`` processes."""

    def __init__(
        self,
        root: Path,
        dataset: _Stream | CachedImages,
        files: list[Path],  # the files; index i of a bad-file list is files[i]
        labels: Tensor | None,  # int64 [N], or None when unlabelled
        class_names: list[str],
        split: str,
        cache: str,  # "disk" or "none"
        workers: int,
        skip_bad: bool,
        skipped: Bad,
    ):
        self.name, self.split, self.root = "folder", split, root
        self.dataset, self.files, self.labels = dataset, files, labels
        self.num_classes, self.class_names = len(class_names), class_names
        self.shape = dataset.shape
        self.origin = f"image folder {root}"
        self.cache, self.workers, self.skip_bad = cache, workers, skip_bad
        self.skipped = [str(files[i]) for i, _ in skipped]
        self.pin = torch.cuda.is_available()  # pinned batches: the trainer's copies run async

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def images(self) -> Tensor:
        where = "its disk cache" if self.cache == "disk" else "its files"
        raise AttributeError(
            f"{self.origin} is served from {where} (data.cache), not held in memory: use "
            "batch(), sample() or a sampler"
        )

    def note_bad(self, bad: Bad) -> None:
        """Raise for a bad file, or (``skip_bad``) add it to ``skipped``."""
        if not bad:
            return
        if any(i < 0 for i, _ in bad):
            raise nothing_readable(self.root)
        if not self.skip_bad:
            raise unreadable(self.files[bad[0][0]], bad[0][1])
        for i, _ in bad:
            if str(self.files[i]) not in self.skipped:
                self.skipped.append(str(self.files[i]))

    def batch(self, index: Tensor) -> tuple[Tensor, Tensor | None]:
        """The images at ``index`` ``[B]``: float32 ``[B, C, H, W]`` in [-1, 1], and labels."""
        step = max(1, min(CHUNK_IMAGES, CHUNK_BYTES // (4 * math.prod(self.shape))))
        tasks = [index[i : i + step].tolist() for i in range(0, len(index), step)]
        workers = 0 if len(tasks) == 1 else min(self.workers, len(tasks))
        parts = list(_loader(self.dataset, tasks, workers, pin=False))  # workers done: stopped
        xs, ys = [], []
        for x, y, bad in parts:
            self.note_bad(bad)
            xs.append(x)
            ys.append(y)
        y = None if self.labels is None else torch.cat(ys)  # [B]
        return torch.cat(xs), y  # [B, C, H, W]

    def sampler(self, batch_size: int, seed: int) -> FolderSampler:
        check_batch_size(batch_size)
        return FolderSampler(self, batch_size, seed)


def _plan(ahead: EpochOrder, after: deque, batch_size: int, start: int, b: int) -> Iterator:
    """The loader's tasks: positions ``[start, start + b)`` of each global batch drawn from
    ``ahead``, whose state after each batch goes to ``after``. A function, not a method: the
    loader holds it, and a reference back to the sampler would keep the workers alive until the
    garbage collector finds the cycle."""
    while True:
        index = ahead.take(batch_size)  # [B], the global batch
        after.append(ahead.snapshot())
        yield index[start : start + b].tolist()  # [b]


class FolderSampler(Sampler):
    """Shuffled epochs (the ``EpochOrder`` of the in-memory sampler) of a ``FolderSource``,
    decoded by its DataLoader workers ahead of use; resumes exactly (see the module docstring).
    ``set_shard(rank, world)``: this process gets positions ``[rank * b, (rank + 1) * b)`` of
    each global batch (``b = batch_size // world``) and decodes only those."""

    def __init__(self, source: FolderSource, batch_size: int, seed: int):
        self.source, self.batch_size = source, batch_size
        self.order = EpochOrder(len(source), seed)  # after the batches handed out
        self.rank, self.world = 0, 1
        self._batches: Iterator | None = None  # started by the first next()
        self._after: deque = deque()  # the order after each batch asked of the loader

    @property
    def epoch(self) -> int:
        return self.order.epoch

    def _start(self) -> Iterator:
        self._after = deque()
        b = self.batch_size // self.world
        plan = _plan(self.order.copy(), self._after, self.batch_size, self.rank * b, b)
        return iter(_loader(self.source.dataset, plan, self.source.workers, self.source.pin))

    def close(self) -> None:
        """Stop the workers and drop what they prefetched (the next ``next()`` restarts them)."""
        self._batches = None  # the DataLoader iterator shuts its workers down when collected
        self._after = deque()

    def set_shard(self, rank: int, world: int) -> None:
        """From now on ``next()`` returns (and decodes) only this process's part of each global
        batch; the state stays the global stream's, identical on every process."""
        check_shard(self.batch_size, rank, world)
        self.rank, self.world = rank, world
        self.close()

    def next(self) -> tuple[Tensor, Tensor | None]:
        if self._batches is None:
            self._batches = self._start()
        x, y, bad = next(self._batches)  # [b, C, S, S], [b]
        self.order.restore(self._after.popleft())
        self.source.note_bad(bad)
        return x, y

    def state_dict(self) -> dict[str, Any]:
        return self.order.order_state()

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.order.load_order_state(d)
        self.close()


def build_folder(root: Path, cfg: DataConfig, split: str) -> ImageSource:
    """The folder ``root`` as ``cfg`` says: in memory (an ``ImageSource``), or a
    ``FolderSource`` on its disk cache or its files."""
    files, labels, names = _listing(root)
    shape = (cfg.channels, cfg.size, cfg.size)
    nbytes = len(files) * math.prod(shape)
    workers = default_workers() if cfg.workers is None else cfg.workers
    cache = choose_cache(cfg.cache, nbytes, cfg.memory_gb, cache_folder(root))
    if cache == "memory":
        memory.check(nbytes, f"data.cache=memory for {root}", "set data.cache=disk or none")
        images = torch.empty(len(files), *shape, dtype=torch.uint8)  # [N, C, S, S]
        skipped = _decode_into(
            files, cfg.size, cfg.channels, cfg.crop, workers, cfg.skip_bad, images
        )
        keep = _kept(len(files), skipped)
        if not keep.any():
            raise nothing_readable(root)
        labels = None if labels is None else labels[keep]
        images = images[: int(keep.sum())]  # [N', C, S, S], the readable ones
        origin = f"image folder {root}"
        source = ImageSource("folder", images, labels, len(names), split, names or None, origin)
        source.skipped = [str(files[i]) for i, _ in skipped]
        return source
    if cache == "disk":
        dataset, skipped = _disk_dataset(root, files, labels, cfg, workers)
    else:
        dataset = _Stream(files, labels, cfg.size, cfg.channels, cfg.crop, cfg.skip_bad)
        skipped = []
    labels = dataset.labels  # the disk cache's: those of the readable files
    return FolderSource(
        root, dataset, files, labels, names, split, cache, workers, cfg.skip_bad, skipped
    )
