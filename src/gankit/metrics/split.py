"""One evaluation, several processes: each extracts the features of its share of the samples,
and the shares meet again in rank order (data parallelism, as in Li et al. 2020, PyTorch
Distributed, applied to evaluation).

A ``Split`` says which rows of every global sample set are this process's (contiguous blocks in
rank order: rank r of W takes rows ``r * n // W`` to ``(r + 1) * n // W``, so shares differ by at
most one row) and carries ``gather``, the collective that brings every rank's rows back together.
Concatenated in rank order the shares are the global set in its own order, so a statistic that
depends on the order (KID's subsets, the Inception Score's splits) is the one a single process
computes; rank 0 computes it, the other ranks return ``None``. How the rows travel
(torch.distributed) is the caller's business: metrics take a ``Split`` as an argument and never
import training code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Split:
    """This process's place in a distributed evaluation."""

    rank: int  # 0..world-1; rank 0 computes the statistics
    world: int  # processes taking part, each with its own share
    # this rank's rows [n_r, ...] -> every rank's rows [n_0 + ... + n_{W-1}, ...] in rank order,
    # on the CPU of every rank; a collective: every rank calls it, in the same order
    gather: Callable[[Tensor], Tensor]

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world:
            raise ValueError(f"rank must be in 0..world-1, got rank {self.rank} of {self.world}")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def bounds(self, n: int) -> tuple[int, int]:
        """Rows ``(start, stop)`` of a global set of ``n`` that are this rank's."""
        return self.rank * n // self.world, (self.rank + 1) * n // self.world

    def rows(self, x: Tensor) -> Tensor:
        """This rank's rows of a global tensor ``[n, ...] -> [n_r, ...]``."""
        start, stop = self.bounds(len(x))
        return x[start:stop]

    def total(self, count: int) -> int:
        """The sum of every rank's ``count`` (the global number of samples), on every rank."""
        return int(self.gather(torch.tensor([count], dtype=torch.int64)).sum())

    def agree(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank (e.g. whether its reference cache holds an entry)."""
        return bool(self.gather(torch.tensor([int(flag)], dtype=torch.int64))[0])

    def features(self, feats: dict[str, Tensor]) -> dict[str, Tensor]:
        """Every rank's features, name by name (gathered in sorted order on every rank)."""
        gathered = {name: self.gather(feats[name]) for name in sorted(feats)}  # [N, D] each
        return {name: gathered[name] for name in feats}
