"""The latent spaces control moves in: Z, the prior's, and W, a mapping network's (Karras et al.
2019, "A style-based generator architecture for GANs").

A ``LatentSpace`` is a pair of callables around one generator: ``encode`` takes prior draws
``z [N, z_dim]`` (and labels) to the space's codes ``[N, dim]``, ``decode`` takes codes to images,
differentiably. Editing and interpolation take a space instead of assuming z, so the same code
edits and walks Z and W:

- **Z**: codes are z; encode is the identity, decode is ``G(z, y)``. The prior is N(0, I):
  ``center`` 0, ``spread`` 1 (per dimension).
- **W** (nets with ``has_mapping``): codes are the per-sample ``w [N, w_dim]``, broadcast to every
  synthesis layer; encode is ``G.mapping(z, y)`` (the class, if any, is baked into w), decode is
  ``G.synthesis(w, "const")``. W has no closed-form density, so its prior is the moment-matched
  isotropic Gaussian ``N(center, spread^2 I)`` of ``n_prior`` seeded prior draws: ``center`` their
  mean w, ``spread`` the root mean square over dimensions of their deviation from it. Editing's
  prior term ``||c - center||^2 / (2 spread^2)`` and its default radius ``0.8 * spread *
  sqrt(dim)`` (a fraction of a prior code's typical distance from the centre) reduce to Z's
  ``||z||^2 / 2`` and ``0.8 sqrt(z_dim)``.

Paths: Z interpolates by slerp (Gaussian latents, White 2016) or lerp; W by lerp only, as the
StyleGAN paper's perceptual path length does: W is not a Gaussian shell, so slerp's great circle
has no meaning there and is refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import torch
from torch import Tensor, nn

from ..errors import UserError
from ..memory import check as check_memory
from .latent import check_labels, interpolate, sample_latents

SpaceName = Literal["z", "w"]
N_PRIOR = 2000  # prior draws that measure W's mean and spread
PRIOR_SEED = 0  # their seed: a fixed one, so an edit's W prior is the same on every call


def has_mapping(net: nn.Module) -> bool:
    """Whether ``net`` has a mapping network (``G.mapping``, ``G.synthesis``: a StyleGAN)."""
    return bool(getattr(net, "has_mapping", False))


def check_mapping(net: nn.Module, what: str = "W space") -> None:
    if not has_mapping(net):
        raise UserError(
            f"{what} needs a generator with a mapping network (model.net=stylegan); this one "
            "has none: use Z (--space z)"
        )


@dataclass(eq=False)
class LatentSpace:
    """Codes ``[N, dim]`` of one generator: from prior draws (``encode``) to images (``decode``)."""

    name: SpaceName
    net: nn.Module
    dim: int
    encode: Callable[[Tensor, Tensor | None], Tensor]  # z [N, z_dim] (+ labels) -> [N, dim]
    decode: Callable[[Tensor, Tensor | None], Tensor]  # [N, dim] (+ labels) -> [N, *shape]
    moments: Callable[[], tuple[Tensor, float]] = field(repr=False)  # -> (center [dim], spread)

    @cached_property
    def _moments(self) -> tuple[Tensor, float]:
        return self.moments()

    @property
    def center(self) -> Tensor:
        """``[dim]`` the prior's mean (CPU)."""
        return self._moments[0]

    @property
    def spread(self) -> float:
        """The prior's standard deviation per dimension."""
        return self._moments[1]

    @property
    def scale(self) -> float:
        """A prior code's typical (root mean square) distance from ``center``."""
        return self.spread * math.sqrt(self.dim)

    def prior_penalty(self, codes: Tensor) -> Tensor:
        """``[N]`` the prior's negative log-density up to a constant: ``||c - center||^2 / 2``
        in units of ``spread``."""
        c = self.center.to(codes.device, codes.dtype)
        return 0.5 * ((codes - c) / self.spread).pow(2).sum(1)  # [N]

    def check(self, codes: Tensor) -> None:
        if codes.dim() != 2 or codes.shape[1] != self.dim or len(codes) == 0:
            raise UserError(
                f"{self.name} must have shape [N >= 1, {self.dim}], got {list(codes.shape)}"
            )

    @torch.no_grad()
    def generate(self, codes: Tensor, labels: Tensor | None = None, batch: int = 512) -> Tensor:
        """Images ``[N, *shape]`` of ``codes`` on the CPU, G in eval mode, in batches."""
        self.check(codes)
        device = next(self.net.parameters()).device
        was = self.net.training
        self.net.eval()
        try:
            out = []
            for i in range(0, len(codes), batch):
                yi = None if labels is None else labels[i : i + batch].to(device)
                out.append(self.decode(codes[i : i + batch].to(device), yi).float().cpu())
                if i == 0:  # now the size of one sample is known
                    need = 8.0 * out[0][0].numel() * len(codes)
                    check_memory(need, f"{len(codes)} samples", "ask for fewer samples")
        finally:
            self.net.train(was)
        return torch.cat(out)  # [N, *shape]

    @torch.no_grad()
    def codes(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """The codes ``[N, dim]`` (CPU) of prior draws ``z [N, z_dim]``."""
        device = next(self.net.parameters()).device
        y = None if labels is None else labels.to(device)
        return self.encode(z.to(device), y).float().cpu()  # [N, dim]


def z_space(net: nn.Module) -> LatentSpace:
    """Z: codes are the prior's z ~ N(0, I)."""
    return LatentSpace(
        "z",
        net,
        net.z_dim,
        encode=lambda z, y: z,
        decode=lambda z, y: net(z, y),
        moments=lambda: (torch.zeros(net.z_dim), 1.0),
    )


def w_space(net: nn.Module, n_prior: int = N_PRIOR, seed: int = PRIOR_SEED) -> LatentSpace:
    """W: codes are ``w = G.mapping(z, y)``, decoded with every synthesis layer given the same w
    and the net's fixed noise maps; the prior's moments come from ``n_prior`` draws of ``seed``."""
    check_mapping(net)

    def moments() -> tuple[Tensor, float]:
        z, y = sample_latents(net.z_dim, n_prior, seed, getattr(net, "num_classes", 0))
        was = net.training
        net.eval()
        try:
            w = space.codes(z, y).double()  # [n_prior, w_dim]
        finally:
            net.train(was)
        center = w.mean(0)  # [w_dim]
        spread = (w - center).pow(2).mean().sqrt().item()
        if not spread > 0:
            raise UserError("every prior draw maps to the same w; W has no spread to edit in")
        return center.float(), spread

    space = LatentSpace(
        "w",
        net,
        net.w_dim,
        encode=lambda z, y: net.mapping(z, y),
        decode=lambda w, y: net.synthesis(w, "const"),
        moments=moments,
    )
    return space


def latent_space(net: nn.Module, space: SpaceName | LatentSpace = "z") -> LatentSpace:
    """The space named ``space`` ("z" or "w") of ``net``; a ``LatentSpace`` passes through."""
    if isinstance(space, LatentSpace):
        return space
    if space == "z":
        return z_space(net)
    if space == "w":
        return w_space(net)
    raise UserError(f"the latent space must be z or w, got {space!r}")


def interpolation_images(
    net: nn.Module,
    za: Tensor,  # [z_dim] the first end's prior draw
    zb: Tensor,  # [z_dim] the last end's
    steps: int,
    mode: Literal["lerp", "slerp"] | None = None,  # None: slerp in Z, lerp in W
    space: SpaceName = "z",
    label: int | None = None,  # the one class of a conditional G (both ends and the path)
) -> Tensor:
    """Images ``[steps, *shape]`` on the path between the codes of ``za`` and ``zb`` in
    ``space``, both ends included: in W, ``lerp(mapping(za), mapping(zb))`` decoded."""
    sp = latent_space(net, space)
    if mode is None:
        mode = "lerp" if sp.name == "w" else "slerp"
    if sp.name == "w" and mode == "slerp":
        raise UserError(
            "slerp follows the sphere Gaussian z lies near; W is no such shell: interpolate W "
            "with lerp (the default there)"
        )
    y = check_labels(net, 2, label)
    ends = sp.codes(torch.stack([za, zb]), y)  # [2, dim]
    path = interpolate(ends[0], ends[1], steps, mode)  # [steps, dim]
    return sp.generate(path, check_labels(net, steps, label))  # [steps, *shape]
