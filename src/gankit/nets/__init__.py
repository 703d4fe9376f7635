"""Networks: one family per file, looked up by ``cfg.net`` in ``registry.NETS``.

Families: ``mlp`` (Goodfellow et al. 2014), ``dcgan`` (Radford et al. 2016), ``stylegan``
(Karras et al. 2019, 2020), ``biggan`` (Brock et al. 2019) and ``progan`` (Karras et al. 2018,
progressive growing on a schedule: ``set_progress``), whose own options sit in
``model.options``; conditioning
(Mirza and Osindero 2014; Miyato and Koyama 2018) and EBGAN's autoencoder D (Zhao et al. 2017)
are options of both. Three remedies for mode collapse change D: packing (``packing.py``,
PacGAN, Lin et al. 2018; any family), spectral normalisation (``spectral.py``, Miyato et al. 2018)
and minibatch standard deviation (``model.mbstd``, Karras et al. 2018), the last two for the mlp
and dcgan D (StyleGAN's D has its own minibatch-std layer and equalized learning rate).
Differentiable augmentation of D's inputs (``augment.py``: DiffAugment, Zhao et al. 2020; ADA's
adaptive probability, Karras et al. 2020) wraps any D; the trainer attaches it (``train.augment``).

A family registers ``build(role, cfg, shape, num_classes) -> nn.Module``; one with options of its
own gives ``build`` an ``Options`` dataclass attribute.

Contract: ``G(z [N, z_dim], y [N] | None) -> [N, *shape]`` and ``D(x [N, *shape], y) -> [N]``
raw scores, higher = more real, no sigmoid. A packed D (``train.pac=m``) returns ``[N/m]``
scores, one per pack of m samples, and scores single points with ``D.score_points(x) -> [N]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from torch import nn

from ..config import ModelConfig, build_options
from ..errors import UserError
from ..registry import NETS
from . import biggan, dcgan, mlp, progan, stylegan  # noqa: F401  (registers the five families)
from .layers import check_build_args, check_labels, check_shape, init_normal
from .packing import PackedD, packed_shape
from .patchgan import PatchDiscriminator  # CycleGAN's D (Isola et al. 2017)
from .resnet import ResnetGenerator  # CycleGAN's G (Zhu et al. 2017)
from .spectral import has_sn_layers, spectral_norm_

__all__ = [
    "PackedD",
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
    ``cfg.spectral_norm_g``: every layer spectrally normalised (SAGAN's and BigGAN's G).
    """
    resolve_options(cfg)
    net = NETS.get(cfg.net)("G", cfg, shape, num_classes)
    return _spectral(net, "G", cfg.net, "spectral_norm_g") if cfg.spectral_norm_g else net


def build_discriminator(
    cfg: ModelConfig, shape: Sequence[int], num_classes: int = 0, pac: int = 1
) -> nn.Module:
    """D for one data sample's ``shape``; returns raw scores ``[N]``, higher = more real.

    ``pac > 1`` (``train.pac``): a ``PackedD`` around a D built for packs of ``pac`` samples,
    returning ``[N / pac]`` scores. ``cfg.spectral_norm``: every layer spectrally normalised."""
    resolve_options(cfg)
    if not (isinstance(pac, int) and pac >= 1):
        raise ValueError(f"pac must be an integer >= 1 (1 = no packing), got {pac!r}")
    autoencoder = cfg.d_output == "autoencoder"
    if cfg.mbstd and autoencoder:
        raise UserError(
            "model.mbstd is a layer of a D that scores samples, not of an autoencoder D "
            "(model.d_output=autoencoder, as ebgan's); set model.mbstd=0"
        )
    if pac == 1:
        net = NETS.get(cfg.net)("D", cfg, shape, num_classes)
    elif autoencoder or num_classes:
        what = "an autoencoder D (ebgan's)" if autoencoder else "a conditional D"
        raise UserError(f"train.pac cannot pack the inputs of {what}; set train.pac=1")
    else:
        shape = check_build_args(shape, 0)
        inner = NETS.get(cfg.net)("D", cfg, packed_shape(shape, pac), 0)  # input: m samples
        net = PackedD(inner, pac, shape)
    return _spectral(net, "D", cfg.net, "spectral_norm") if cfg.spectral_norm else net


def _spectral(net: nn.Module, player: str, family: str, key: str) -> nn.Module:
    """``net`` with every layer spectrally normalised; a net without linear or convolution
    layers (equalized ones, e.g. stylegan's G or progan's D) is refused, not silently left."""
    if not has_sn_layers(net):
        raise UserError(
            f"model.{key} normalises linear and convolution layers, and the {player} of "
            f"model.net={family} has none (its layers are its own); set model.{key}=false"
        )
    return spectral_norm_(net)
