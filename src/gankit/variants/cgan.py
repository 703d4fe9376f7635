"""Conditional GAN (Mirza and Osindero 2014): the GAN game with class labels fed to G and D.

G(z, y) and D(x, y) both see the label y (how is a net option: ``model.cond``, one-hot
concatenation as in the paper or a learned embedding); D scores real pairs (x, y) against
generated pairs (G(z, y), y), where the trainer draws y as the labels of the real batch. The
losses are those of the GAN (``gan.py``). Conditioning is not tied to this variant: any variant
trains conditionally with ``data.classes=true`` (e.g. ``train.variant=wgan-gp data.classes=true``);
``cgan`` is the name for the classic one and insists on labels.
"""

from __future__ import annotations

from ..config import Config
from ..errors import UserError
from ..registry import VARIANTS
from .gan import GAN


@VARIANTS.register("cgan")
class CGAN(GAN):
    def __init__(self, cfg: Config):
        if not cfg.data.classes:
            raise UserError(
                "train.variant=cgan is conditional on class labels; set data.classes=true "
                "(or use the ring-cgan / mnist-cgan presets)"
            )
        super().__init__(cfg)
