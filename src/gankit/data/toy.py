"""Toy Gaussian mixtures with known densities: the 1-D and 2-D benchmarks of GAN papers.

- ``ring``: 8 Gaussians on the unit circle at angles 2*pi*k/8, std 0.01, and ``grid``: 25
  Gaussians at {-4, -2, 0, 2, 4}^2, std 0.05 - the mode-collapse benchmarks of Metz et al. 2017
  (Unrolled GANs), Srivastava et al. 2017 (VEEGAN) and Lin et al. 2018 (PacGAN), exactly as in
  PROTOCOLS.md.
- ``gauss1d``: two Gaussians at -2 and +2, std 0.5, equal weight: a 1-D density for plots of the
  optimal discriminator D*(x) = p_data / (p_data + p_g) of Goodfellow et al. 2014.

Samples are drawn on the fly; the label of a sample is the index of its mixture component.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..config import DataConfig
from ..registry import DATASETS
from . import Sampler, Source, check_batch_size

# Fixed seeds of ``sample()`` without a generator; test differs from train, neither is a small
# integer that a training run would also use as its sampler seed.
_EVAL_SEEDS = {"train": 1_000_003, "test": 2_000_029}


class ToySource(Source):
    """A mixture of isotropic Gaussians: component k has mean ``modes[k]`` and std ``stds[k]``."""

    kind = "toy"

    def __init__(
        self,
        name: str,
        modes: Tensor,  # [K, D] component means
        stds: Tensor | float,  # [K] component stds, or one std for all
        weights: Tensor | None = None,  # [K] mixture weights (normalised here); None = equal
        split: str = "train",
    ):
        if modes.dim() != 2:
            raise ValueError(f"modes must be [K, D], got shape {tuple(modes.shape)}")
        k, d = modes.shape
        self.name, self.split = name, split
        self.modes = modes.to(torch.float32)  # [K, D]
        self.stds = torch.as_tensor(stds, dtype=torch.float32).expand(k).clone()  # [K]
        self._std = float(stds) if isinstance(stds, (int, float)) else None  # exact, unrounded
        w = torch.ones(k) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
        if w.shape != (k,) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"weights must be {k} non-negative numbers with a positive sum")
        self.weights = w / w.sum()  # [K]
        self.shape = (d,)
        self.num_classes = k

    @property
    def std(self) -> float:
        """The common std of all components (what the mode-coverage protocol takes)."""
        if self._std is not None:
            return self._std
        if not torch.all(self.stds == self.stds[0]):
            raise ValueError(f"{self.name} has components with different stds")
        return float(self.stds[0])

    def draw(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``n`` samples and their component labels, consuming only ``generator``."""
        y = torch.multinomial(self.weights, n, replacement=True, generator=generator)  # [n]
        noise = torch.randn(n, self.shape[0], generator=generator)  # [n, D]
        x = self.modes[y] + self.stds[y, None] * noise  # [n, D]
        return x, y

    def sampler(self, batch_size: int, seed: int) -> ToySampler:
        check_batch_size(batch_size)
        return ToySampler(self, batch_size, seed)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        if generator is None:
            generator = torch.Generator().manual_seed(_EVAL_SEEDS.get(self.split, 0))
        return self.draw(n, generator)

    def log_density(self, x: Tensor) -> Tensor:
        """The exact log density of the mixture at each row of ``x`` ``[N, D]`` -> ``[N]``."""
        if x.dim() != 2 or x.shape[1] != self.shape[0]:
            raise ValueError(f"x must be [N, {self.shape[0]}], got shape {tuple(x.shape)}")
        dtype = torch.promote_types(x.dtype, torch.float32)
        x, mu = x.to(dtype), self.modes.to(device=x.device, dtype=dtype)
        s = self.stds.to(device=x.device, dtype=dtype)  # [K]
        d = x.shape[1]
        sq = ((x[:, None, :] - mu[None]) ** 2).sum(-1)  # [N, K]
        log_norm = -d * torch.log(s) - 0.5 * d * math.log(2 * math.pi)  # [K]
        log_w = self.weights.to(device=x.device, dtype=dtype).log()  # [K]
        log_comp = -sq / (2 * s**2) + log_norm + log_w  # [N, K]
        return torch.logsumexp(log_comp, dim=1)  # [N]

    def density(self, x: Tensor) -> Tensor:
        """The exact mixture density at each row of ``x`` ``[N, D]`` -> ``[N]``."""
        return self.log_density(x).exp()


class ToySampler(Sampler):
    """Fresh mixture samples per batch; the state is just the generator state."""

    def __init__(self, source: ToySource, batch_size: int, seed: int):
        self.source, self.batch_size = source, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def next(self) -> tuple[Tensor, Tensor]:
        return self.source.draw(self.batch_size, self.generator)

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "toy", "generator": self.generator.get_state()}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        if d.get("kind") != "toy" or "generator" not in d:
            raise ValueError("not a toy sampler state (expected keys 'kind' and 'generator')")
        self.generator.set_state(d["generator"])


def ring_modes(n: int = 8, radius: float = 1.0) -> Tensor:
    """``n`` points on a circle at angles 2*pi*k/n, k = 0..n-1 (never linspace(0, 2*pi, n))."""
    angles = 2 * math.pi * torch.arange(n, dtype=torch.float64) / n  # [n]
    return radius * torch.stack([angles.cos(), angles.sin()], dim=1).float()  # [n, 2]


def grid_modes(values: tuple[float, ...] = (-4.0, -2.0, 0.0, 2.0, 4.0)) -> Tensor:
    """All points of ``values`` x ``values``, row-major: (-4, -4), (-4, -2), ... -> [25, 2]."""
    v = torch.tensor(values)
    return torch.cartesian_prod(v, v)  # [len(v)^2, 2]


@DATASETS.register("ring")
def ring(cfg: DataConfig, split: str = "train") -> ToySource:
    return ToySource("ring", ring_modes(8, 1.0), 0.01, split=split)


@DATASETS.register("grid")
def grid(cfg: DataConfig, split: str = "train") -> ToySource:
    return ToySource("grid", grid_modes(), 0.05, split=split)


@DATASETS.register("gauss1d")
def gauss1d(cfg: DataConfig, split: str = "train") -> ToySource:
    return ToySource("gauss1d", torch.tensor([[-2.0], [2.0]]), 0.5, split=split)
