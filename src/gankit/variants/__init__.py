"""GAN variants: one file each, registered by name. Importing this package registers them all."""

from . import cgan, ebgan, gan, lsgan, wgan, wgan_gp  # noqa: F401  (registers)
from .base import Batch, LossOut, Phase, Variant

__all__ = ["Batch", "LossOut", "Phase", "Variant"]
