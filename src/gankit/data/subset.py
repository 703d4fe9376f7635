"""Small-data subsets of an image training split (``data.limit``), for training on little data
as Karras et al. 2020 (ADA) and Zhao et al. 2020 (DiffAugment) do: the first N images of a
permutation of the split drawn from a fixed seed, ``LIMIT_SEED``, whatever the run's seed, so
every run with the same N trains on the same images (and a subset of 1,000 lies inside the
subset of 5,000). The images are kept in their order in the split; samplers shuffle as usual.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor

from ..errors import UserError
from . import Source
from .images import ImageSource

LIMIT_SEED = 2020


def chosen(total: int, n: int) -> Tensor:
    """The indices ``[n]`` of the subset of ``n`` of ``total`` items, sorted."""
    perm = torch.randperm(total, generator=torch.Generator().manual_seed(LIMIT_SEED))  # [total]
    return perm[:n].sort().values  # [n]


class _Rows:
    """A folder's dataset (``dataset[indices]`` -> a batch) restricted to the rows ``keep``."""

    def __init__(self, dataset, keep: Tensor):
        self.dataset, self.keep = dataset, keep
        self.shape = dataset.shape
        self.labels = None if dataset.labels is None else dataset.labels[keep]

    def __len__(self) -> int:
        return len(self.keep)

    def __getitem__(self, index: list[int]):
        return self.dataset[self.keep[torch.as_tensor(index, dtype=torch.long)].tolist()]


def limit(source: Source, n: int, what: str) -> Source:
    """``source`` cut to its subset of ``n`` images (``what`` names the data set in messages)."""
    from .folder import FolderSource  # folder.py builds on images.py
    from .stacked import StackedSource

    if source.kind != "image":
        hint = " (or data.a.limit, data.b.limit: a domain's own)" if source.kind == "pair" else ""
        raise UserError(
            f"data.limit keeps a subset of an image data set, but {what} is a {source.kind} data "
            f"set; set data.limit=0{hint}"
        )
    total = len(source)
    if n > total:
        raise UserError(
            f"data.limit={n} is more than the {total} training images of {what}; lower it to at "
            f"most {total}, or 0 for all"
        )
    keep = chosen(total, n)
    out = copy.copy(source)
    if isinstance(source, FolderSource):
        out.dataset = _Rows(source.dataset, keep)
    elif isinstance(source, StackedSource):
        out.triples = source.triples[keep]  # [n, 3]
    elif isinstance(source, ImageSource):
        out.images = source.images[keep]  # [n, C, H, W]
    else:
        raise UserError(f"data.limit cannot cut {what}; set data.limit=0")
    if source.labels is not None:
        out.labels = source.labels[keep]  # [n]
    origin = source.origin or f"the {source.split} split of {source.name}"
    out.origin = f"{n} images of {origin} (data.limit)"
    out.subset = (
        f"{n} of the {total} images of {origin}: the first {n} of a permutation seeded "
        f"{LIMIT_SEED} (data.limit)"
    )
    return out
