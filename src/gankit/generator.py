"""A trained generator and how to sample it, shared by training, evaluation and control.

``sample_from`` draws ``n`` seeded samples from a sampling net (in batches, checked against the
memory this machine has); ``Generator`` bundles that net with the config it was trained with.
Loading by path lives above, in ``gankit.api``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .config import Config
from .errors import UserError
from .memory import check as check_memory


@torch.no_grad()
def sample_from(
    net: nn.Module,
    n: int,
    seed: int | None = None,
    labels: Tensor | int | None = None,
    batch: int = 1024,
) -> Tensor:
    """n samples [n, *shape] on the CPU; labels: one class for all, or [n] classes."""
    if n <= 0:
        raise UserError(f"the number of samples must be positive, got {n}")
    device = next(net.parameters()).device
    check_memory(4.0 * n * (net.z_dim + 2), f"{n} latent codes", "ask for fewer samples")
    if seed is None:  # fresh entropy without reseeding torch's global generator
        seed = int.from_bytes(os.urandom(8), "little") >> 1
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, net.z_dim, generator=g)  # [n, z_dim]
    y = _labels(net, n, labels, g)
    was_training = net.training
    net.eval()
    out = []
    for i in range(0, n, batch):
        yi = y[i : i + batch].to(device) if y is not None else None
        out.append(net(z[i : i + batch].to(device), yi).float().cpu())
        if i == 0:  # now the size of one sample is known: the n samples and their concatenation
            per = out[0][0].numel() * 4
            check_memory(2.0 * per * n, f"{n} samples", "ask for fewer samples")
    net.train(was_training)
    return torch.cat(out)  # [n, *shape]


def _labels(net: nn.Module, n: int, labels: Tensor | int | None, g: torch.Generator):
    k = getattr(net, "num_classes", 0)
    if labels is None:
        return torch.randint(k, (n,), generator=g) if k else None  # [n]
    if not k:
        raise UserError("this generator is unconditional; sample it without a class")
    if isinstance(labels, int):
        labels = torch.full((n,), labels, dtype=torch.long)  # [n]
    labels = torch.as_tensor(labels, dtype=torch.long)
    if labels.shape != (n,):
        raise UserError(f"labels must have shape [{n}], got {list(labels.shape)}")
    if labels.min() < 0 or labels.max() >= k:
        raise UserError(f"class must be in 0..{k - 1}, got {labels.min()}..{labels.max()}")
    return labels


@dataclass
class Generator:
    """A trained generator and what it was trained with."""

    net: nn.Module
    config: Config
    shape: tuple[int, ...]
    num_classes: int
    kind: str  # "toy" or "image"
    step: int | None = None  # G updates it was trained for (checkpoints; None for exports)

    @property
    def z_dim(self) -> int:
        return self.net.z_dim

    def sample(self, n: int, seed: int | None = None, labels: Tensor | int | None = None) -> Tensor:
        return sample_from(self.net, n, seed=seed, labels=labels)

    def to(self, device: str | torch.device) -> Generator:
        self.net.to(device)
        return self
