"""A trained generator and how to sample it, shared by training, evaluation and control.

``sample_from`` draws ``n`` seeded samples from a sampling net (in batches, checked against the
memory this machine has), or only some rows of them (``rows``: one process's share of a
distributed evaluation); ``Generator`` bundles that net with the config it was trained with.
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
    rows: tuple[int, int] | None = None,  # (start, stop): generate only these rows of the n
) -> Tensor:
    """n samples [n, *shape] on the CPU; labels: one class for all, or [n] classes.

    With ``rows`` the latents and labels of all ``n`` are drawn as without (the same seeded
    stream), and only rows ``start..stop-1`` go through the net: ``[stop - start, *shape]``, those
    rows of the full set (one process's share of a distributed evaluation)."""
    if n <= 0:
        raise UserError(f"the number of samples must be positive, got {n}")
    start, stop = (0, n) if rows is None else rows
    if not 0 <= start < stop <= n:
        raise ValueError(f"rows must satisfy 0 <= start < stop <= n={n}, got {rows}")
    device = next(net.parameters()).device
    check_memory(4.0 * n * (net.z_dim + 2), f"{n} latent codes", "ask for fewer samples")
    if seed is None:  # fresh entropy without reseeding torch's global generator
        seed = int.from_bytes(os.urandom(8), "little") >> 1
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, net.z_dim, generator=g)[start:stop]  # [m, z_dim], m = stop - start
    y = _labels(net, n, labels, g)
    y = y[start:stop] if y is not None else None  # [m]
    m = stop - start
    was_training = net.training
    net.eval()
    out = []
    for i in range(0, m, batch):
        yi = y[i : i + batch].to(device) if y is not None else None
        out.append(net(z[i : i + batch].to(device), yi).float().cpu())
        if i == 0:  # now the size of one sample is known: the m samples and their concatenation
            per = out[0][0].numel() * 4
            check_memory(2.0 * per * m, f"{m} samples", "ask for fewer samples")
    net.train(was_training)
    return torch.cat(out)  # [m, *shape]


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

    def sample(
        self,
        n: int,
        seed: int | None = None,
        labels: Tensor | int | None = None,
        rows: tuple[int, int] | None = None,  # only these rows of the n (see sample_from)
    ) -> Tensor:
        return sample_from(self.net, n, seed=seed, labels=labels, rows=rows)

    def to(self, device: str | torch.device) -> Generator:
        self.net.to(device)
        return self

    def _repr_html_(self) -> str:  # a notebook shows 64 samples of seed 0 and what this is
        from .report.notebook import generator_html

        return generator_html(self)
