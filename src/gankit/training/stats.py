"""Training statistics: gradient norms and windowed means that don't stall the GPU.

Per-step values stay on the device as tensors and are summed there; they become Python floats only
when a row is logged, so a logging interval costs one synchronisation, not one per step.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn


def grad_norm(params: Iterable[nn.Parameter]) -> Tensor:
    """L2 norm of all gradients together (0 if none)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


class Window:
    """Running sums of scalar tensors over one logging interval."""

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, logs: dict[str, Tensor]) -> None:
        for k, v in logs.items():
            v = v.detach().float()
            self.sums[k] = self.sums[k] + v if k in self.sums else v
            self.counts[k] = self.counts.get(k, 0) + 1

    def means(self) -> dict[str, float]:
        keys = list(self.sums)
        if not keys:
            return {}
        values = torch.stack([self.sums[k] / self.counts[k] for k in keys]).tolist()  # one sync
        self.sums, self.counts = {}, {}
        return dict(zip(keys, values, strict=True))
