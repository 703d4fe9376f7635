"""Reconstruction losses of CycleGAN (Zhu et al. 2017), as pure functions of images.

- Cycle consistency: ``||G_BA(G_AB(a)) - a||_1`` (and the same from B), the L1 distance between an
  image and its round trip through both translators.
- Identity: ``||G_AB(b) - b||_1``, which keeps a translator from changing an image that is
  already in its target domain (Taigman et al. 2017, used by CycleGAN for painting <-> photo).

Both are means over every pixel and channel, like ``nn.L1Loss``; the weights (the paper's
lambda = 10 for the cycle, 0.5 lambda for identity in the authors' code) are the variant's. The
adversarial half of CycleGAN is least squares on PatchGAN maps: ``adversarial.lsgan_d`` and
``lsgan_g`` take maps ``[N, H', W']`` as they are, since they average over every score.
"""

from __future__ import annotations

from torch import Tensor


def _l1(x: Tensor, y: Tensor, names: str) -> Tensor:
    if x.shape != y.shape:
        raise ValueError(
            f"{names} must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    return (x - y).abs().mean()


def cycle_loss(x: Tensor, x_rec: Tensor) -> Tensor:
    """mean |x - x_rec|: an image ``[N, C, H, W]`` against its round trip ``G_BA(G_AB(x))``."""
    return _l1(x, x_rec, "x and x_rec")


def identity_loss(x: Tensor, g_x: Tensor) -> Tensor:
    """mean |x - G(x)|: a target-domain image against its translation by the translator into
    that domain (``b`` against ``G_AB(b)``)."""
    return _l1(x, g_x, "x and g_x")
