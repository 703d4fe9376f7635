"""Networks: one family per file, looked up by ``cfg.net`` in ``registry.NETS``.

Families: ``mlp`` (Goodfellow et al. 2014), ``dcgan`` (Radford et al. 2016) and ``stylegan``
(Karras et al. 2019, 2020), whose own options sit in ``model.options``; conditioning
(Mirza and Osindero 2014; Miyato and Koyama 2018) and EBGAN's autoencoder D (Zhao et al. 2017)
are options of both. A family registers ``build(role, cfg, shape, num_classes) -> nn.Module``;
one with options of its own gives ``build`` an ``Options`` dataclass attribute.

Contract: ``G(z [N, z_dim], y [N] | None) -> [N, *shape]`` and ``D(x [N, *shape], y) -> [N]``
raw scores, higher = more real, no sigmoid.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from torch import nn

from ..config import ModelConfig, build_options
from ..errors import UserError
from ..registry import NETS
from . import dcgan, mlp, stylegan  # noqa: F401  (registers "dcgan", "mlp" and "stylegan")
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
    "resolve_options",
]


def resolve_options(cfg: ModelConfig) -> dict[str, Any]:
    """``model.options`` checked against ``model.net``'s own options, defaults filled in; a
    family without options refuses any."""
    cls = getattr(NETS.get(cfg.net), "Options", None)
    if cls is None:
        if cfg.options:
            raise UserError(
                f"model.net={cfg.net} has no options; drop model.options."
                f"{sorted(cfg.options, key=str)[0]}"
            )
        return {}
    return dataclasses.asdict(
        build_options(cls, cfg.options, "model.options.", f"model.net={cfg.net}")
    )


def build_generator(cfg: ModelConfig, shape: Sequence[int], num_classes: int = 0) -> nn.Module:
    """G for one data sample's ``shape``: ``(D,)`` toy data, ``(C, H, W)`` images.

    ``num_classes > 0`` makes it conditional on int64 labels ``y [N]``.
    """
    resolve_options(cfg)
    return NETS.get(cfg.net)("G", cfg, shape, num_classes)


def build_discriminator(cfg: ModelConfig, shape: Sequence[int], num_classes: int = 0) -> nn.Module:
    """D for one data sample's ``shape``; returns raw scores ``[N]``, higher = more real."""
    resolve_options(cfg)
    return NETS.get(cfg.net)("D", cfg, shape, num_classes)
