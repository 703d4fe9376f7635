"""Data sources: seeded, resumable batch streams of toy mixtures and image data sets.

A ``Source`` is one split of one data set; ``Source.sampler(batch_size, seed)`` gives an endless
``Sampler`` whose ``state_dict()`` resumes it bit for bit (the trainer stores it in checkpoints),
and ``Source.sample(n)`` draws real samples for metrics and plots. Images are float32
``[N, C, H, W]`` in ``[-1, 1]``; toy data is ``[N, D]``. Every sampler owns its own
``torch.Generator``: nothing here touches the global RNG. ``check_fits`` refuses, before training,
a finite source with fewer images than a batch or a sample grid.

The data sets themselves live in ``toy.py`` (the 1-D and 2-D Gaussian mixtures of Goodfellow et al.
2014, Metz et al. 2017 and Srivastava et al. 2017) and ``idx.py`` (MNIST, LeCun et al. 1998;
Fashion-MNIST, Xiao et al. 2017), ``images.py`` (folders of images), ``cifar10.py``, ``usps.py``
and ``stacked.py``; each registers in ``registry.DATASETS``.
"""

from __future__ import annotations

import os
from collections.abc import Sized
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..config import DataConfig
from ..errors import UserError
from ..registry import DATASETS

SPLITS = ("train", "test")


class Sampler:
    """An endless, seeded batch stream; ``state_dict`` / ``load_state_dict`` resume it exactly."""

    def next(self) -> tuple[Tensor, Tensor | None]:
        """One batch: x float32 ``[B, *shape]`` on CPU, y int64 ``[B]`` or None."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Only tensors, ints, floats and strs: safe for ``torch.load(weights_only=True)``."""
        raise NotImplementedError

    def load_state_dict(self, d: dict[str, Any]) -> None:
        raise NotImplementedError

    def __iter__(self) -> Sampler:
        return self

    def __next__(self) -> tuple[Tensor, Tensor | None]:
        return self.next()


class Source:
    """One split of one data set."""

    kind: str  # "toy" or "image"
    shape: tuple[int, ...]  # one sample: (D,) for toy data, (C, H, W) for images
    num_classes: int  # labels the source has; 0 = unlabelled (y is None)
    name: str  # the registered data set name
    split: str  # "train" or "test"

    def sampler(self, batch_size: int, seed: int) -> Sampler:
        """An endless stream of ``batch_size`` batches, reproducible from ``seed``."""
        raise NotImplementedError

    def sample(
        self, n: int, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """``n`` real samples (float32, CPU) and their int64 labels (or None).

        Without a generator the draw is a fixed function of the split, so evaluations repeat.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, "
            f"shape={self.shape}, num_classes={self.num_classes})"
        )


def check_batch_size(batch_size: int) -> None:
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")


def check_fits(source: Source, batch_size: int, n_samples: int) -> None:
    """Refuse a finite source with fewer items than one training batch or one sample grid.

    Raises ``UserError`` before training starts, instead of a run that fails at its first sample
    grid (the mode-collapse check draws ``n_samples`` distinct real images) or trains on batches
    that repeat images. Sources without a length (toy mixtures, drawn on the fly) always fit.
    """
    for part in getattr(source, "domains", ()):  # a pair: each domain must fit
        check_fits(part, batch_size, n_samples)
    if not isinstance(source, Sized):
        return
    n = len(source)
    too_big = [
        f"{key}={value}"
        for key, value in (("train.batch_size", batch_size), ("log.n_samples", n_samples))
        if value > n
    ]
    if not too_big:
        return
    keys = " and ".join(k.split("=")[0] for k in too_big)
    origin = getattr(source, "origin", None) or f"the {source.split} split of {source.name}"
    more = " or add images to the folder" if source.name == "folder" else ""
    raise UserError(
        f"{origin} holds {n} images, fewer than {' and '.join(too_big)}; "
        f"lower {keys} to at most {n}{more}"
    )


def data_root(cfg_root: str | None, must_exist: bool = False) -> Path:
    """Where data sets live: ``cfg_root``, else ``$GANKIT_DATA``, else ``<gankit cache>/data``.

    With ``must_exist`` a root the user named (``cfg_root`` or ``$GANKIT_DATA``) must be an existing
    folder, so that a mistyped path is refused instead of filled with empty data set folders; the
    default cache root may be missing (downloads create it).
    """
    if cfg_root:
        root, via = Path(cfg_root).expanduser(), "data.root (--data-dir)"
    elif os.environ.get("GANKIT_DATA"):
        root, via = Path(os.environ["GANKIT_DATA"]).expanduser(), "$GANKIT_DATA"
    else:
        from ..cache import cache_dir

        return cache_dir("data")
    if must_exist and not root.is_dir():
        if root.exists():
            raise UserError(f"data root {root} is a file, not a folder; fix {via}")
        raise UserError(f"data root {root} does not exist; create it first or fix {via}")
    return root


def build_source(cfg: DataConfig, split: str = "train") -> Source:
    """The ``split`` of the data set ``cfg.name``, built by its registered constructor; the
    train split cut to ``cfg.limit`` images when that is set."""
    if split not in SPLITS:
        raise UserError(f"unknown data split {split!r}; use 'train' or 'test'")
    source = DATASETS.get(cfg.name)(cfg, split)
    if cfg.limit and split == "train":  # a small-data subset (subset.py); tests keep all
        from .subset import limit

        source = limit(source, cfg.limit, f"data.name={cfg.name}")
    return source


# Imported last so that the data sets can subclass Source and register themselves.
from . import cifar10, idx, images, paired, stacked, toy, usps  # noqa: E402, F401  (register data sets)
from .images import ImageSource  # noqa: E402
from .toy import ToySource  # noqa: E402

__all__ = [
    "SPLITS",
    "ImageSource",
    "Sampler",
    "Source",
    "ToySource",
    "build_source",
    "check_fits",
    "data_root",
    "images",
    "toy",
]
