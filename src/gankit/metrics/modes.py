"""Mode coverage of 2-D Gaussian mixtures: the protocol of VEEGAN (Srivastava et al. 2017) and
PacGAN (Lin et al. 2018), exactly as PROTOCOLS.md states it.

A sample is *high quality* if it lies within 3 std (Euclidean distance) of its nearest mode; a mode
is *captured* if it is the nearest mode of at least one high-quality sample. The reverse KL
``KL(p_gen || uniform)`` compares the histogram of high-quality samples over the modes with the
uniform distribution (natural log). The protocol draws 2,500 samples; that is the caller's job.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..registry import METRICS

PROTOCOL = "VEEGAN/PacGAN mode coverage: 3 std, nearest mode"


def nearest_mode(samples: Tensor, modes: Tensor) -> tuple[Tensor, Tensor]:
    """Distance to and index of the nearest mode: ``[N, D]``, ``[K, D]`` -> ``[N]``, ``[N]``.

    Exact differences, not the matmul shortcut of ``cdist``, so a sample on a mode is at 0.
    """
    x, m = samples.to(torch.float64), modes.to(device=samples.device, dtype=torch.float64)
    dist = ((x[:, None, :] - m[None]) ** 2).sum(-1).sqrt()  # [N, K]
    best = dist.min(dim=1)  # [N]
    return best.values, best.indices


def reverse_kl_uniform(counts: Tensor) -> float:
    """``KL(p || uniform)`` in nats of the histogram ``counts`` ``[K]``; log K when it is empty."""
    k, total = counts.numel(), counts.sum()
    if total == 0:
        return math.log(k)
    p = counts[counts > 0].to(torch.float64) / total  # [K']
    return float((p * (p * k).log()).sum())


@METRICS.register("modes2d")
def mode_coverage(samples: Tensor, modes: Tensor, std: float) -> dict[str, Any]:
    """Mode coverage of ``samples`` ``[N, D]`` around the mixture means ``modes`` ``[K, D]``.

    ``std`` is the std of each mixture component (ring 0.01, grid 0.05). Returns
    ``modes_captured`` (int), ``n_modes`` (K), ``high_quality`` (the fraction of high-quality
    samples, 0..1), ``reverse_kl`` (nats; when no sample is high quality it is defined as log K,
    its largest value, that of a single-mode histogram), ``n_samples`` (N) and ``protocol``.
    Non-finite samples (a diverged generator) count as low quality.
    """
    if samples.dim() != 2 or modes.dim() != 2 or samples.shape[1] != modes.shape[1]:
        raise ValueError(
            f"samples must be [N, D] and modes [K, D], got {tuple(samples.shape)} and "
            f"{tuple(modes.shape)}"
        )
    if len(samples) == 0 or len(modes) == 0:
        raise ValueError("mode coverage needs at least one sample and one mode")
    if not std > 0:
        raise ValueError(f"std must be positive, got {std}")
    dist, idx = nearest_mode(samples, modes)  # [N], [N]
    hq = dist <= 3 * std  # [N]; NaN compares False
    counts = torch.bincount(idx[hq], minlength=len(modes))  # [K]
    return {
        "modes_captured": int((counts > 0).sum()),
        "n_modes": len(modes),
        "high_quality": float(hq.double().mean()),
        "reverse_kl": reverse_kl_uniform(counts),
        "n_samples": len(samples),
        "protocol": PROTOCOL,
    }
