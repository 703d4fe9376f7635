"""Networks: one family per file, looked up by ``cfg.net`` in ``registry.NETS``.

Families: ``mlp`` (Goodfellow et al. 2014) and ``dcgan`` (Radford et al. 2016); conditioning
(Mirza and Osindero 2014; Miyato and Koyama 2018) and EBGAN's autoencoder D (Zhao et al. 2017)
are options of both. A family registers ``build(role, cfg, shape, num_classes) -> nn.Module``.

Contract: ``G(z [N, z_dim], y [N] | None) -> [N, *shape]`` and ``D(x [N, *shape], y) -> [N]``
raw scores, higher = more real, no sigmoid.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ..config import ModelConfig
from ..registry import NETS
from . import dcgan, mlp  # noqa: F401  (registers "dcgan" and "mlp")
from .layers import check_labels, check_shape, init_normal
from .patchgan import PatchDiscriminator  # CycleGAN's D (Isola et al. 2017)
from .resnet import ResnetGenerator  # CycleGAN's G (Zhu et al. 2017)

__all__ = [
    "PatchDiscriminator",
    "ResnetGenerator",
    "build_discriminator",
    "build_generator",
    "check_labels",
    "check_shape",
    "init_normal",
]


def build_generator(cfg: ModelConfig, shape: Sequence[int], num_classes: int = 0) -> nn.Module:
    """G for one data sample's ``shape``: ``(D,)`` toy data, ``(C, H, W)`` images.

    ``num_classes > 0`` makes it conditional on int64 labels ``y [N]``.
    """
    return NETS.get(cfg.net)("G", cfg, shape, num_classes)


def build_discriminator(cfg: ModelConfig, shape: Sequence[int], num_classes: int = 0) -> nn.Module:
    """D for one data sample's ``shape``; returns raw scores ``[N]``, higher = more real."""
    return NETS.get(cfg.net)("D", cfg, shape, num_classes)
