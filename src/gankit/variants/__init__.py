"""GAN variants: one file each, registered by name. Importing this package registers them all."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..config import MOVED
from ..registry import VARIANTS
from . import cgan, cyclegan, ebgan, gan, hinge, lsgan, stylegan, wgan, wgan_gp  # noqa: F401
from .base import Batch, LossOut, Phase, Variant


def upgrade_stored(values: dict[str, Any]) -> dict[str, Any]:
    """A config mapping stored by an earlier gankit (a run's config.yaml, a checkpoint, an
    export), with the variant options that used to sit in ``train`` moved to ``variant``: the
    ones its variant declares move, the others (defaults every run carried) are dropped."""
    train = values.get("train")
    old = [k.split(".", 1)[1] for k in MOVED]
    if not isinstance(train, dict) or not any(k in train for k in old):
        return values
    train = dict(train)
    stored = {k: train.pop(k) for k in old if k in train}
    name = train.get("variant", "gan")
    own = {f.name for f in dataclasses.fields(VARIANTS.get(name).Options)}
    variant = {**{k: v for k, v in stored.items() if k in own}, **(values.get("variant") or {})}
    return {**values, "train": train, "variant": variant}


__all__ = ["Batch", "LossOut", "Phase", "Variant", "upgrade_stored"]
