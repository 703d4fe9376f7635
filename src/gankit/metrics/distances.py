"""Sample-based distances between two distributions in R^D.

- Nearest-neighbour distance: each sample's L2 distance to the nearest of a reference set (the
  memorisation check, ``memorisation.py``).
- Energy distance (Szekely and Rizzo 2004; Baringhaus and Franz 2004):
  ``2 E||X - Y|| - E||X - X'|| - E||Y - Y'||``, zero if and only if the distributions are equal,
  with the unbiased U-statistics for the within-sample terms (so it can dip slightly below 0 for
  two samples of one distribution).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..registry import METRICS

CHUNK = 2048  # rows per block of pairwise distances: memory O(CHUNK * N), not O(N^2)


def nearest_distance(x: Tensor, ref: Tensor) -> Tensor:
    """``[n]``: the L2 distance of each row of ``x`` ``[n, D]`` to its nearest row of ``ref``
    ``[m, D]``, block by block (float32, matrix-product distances: a copy scores about 0)."""
    x, ref = x.to(torch.float32), ref.to(device=x.device, dtype=torch.float32)
    return torch.cat([torch.cdist(x[i : i + CHUNK], ref).amin(1) for i in range(0, len(x), CHUNK)])


def _mean_dist(x: Tensor, y: Tensor) -> Tensor:
    """Mean of ||x_i - y_j|| over all pairs, block by block."""
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for i in range(0, x.shape[0], CHUNK):
        total += torch.cdist(x[i : i + CHUNK], y).sum()
    return total / (x.shape[0] * y.shape[0])


def _mean_offdiag_dist(x: Tensor) -> Tensor:
    n = x.shape[0]
    return _mean_dist(x, x) * (n / (n - 1))  # the diagonal is 0


def energy_distance(x: Tensor, y: Tensor) -> float:
    """Energy distance between samples ``x`` ``[N, D]`` and ``y`` ``[M, D]`` (N, M >= 2).

    Computed in float64 on the inputs' device, in blocks of ``CHUNK`` rows: O((N + M) CHUNK)
    memory, O(N^2 + M^2 + NM) time.
    """
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(
            f"x and y must be [N, D] and [M, D], got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError("the energy distance needs at least 2 samples on each side")
    x, y = x.to(torch.float64), y.to(device=x.device, dtype=torch.float64)
    return float(2 * _mean_dist(x, y) - _mean_offdiag_dist(x) - _mean_offdiag_dist(y))


@METRICS.register("energy_distance")
def energy_distance_metric(samples: Tensor, reference: Tensor) -> dict[str, float]:
    """``{"energy_distance": ...}`` between generated ``samples`` and ``reference`` samples."""
    return {"energy_distance": energy_distance(samples.flatten(1), reference.flatten(1))}
