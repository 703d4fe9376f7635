"""Least-squares GAN (Mao et al. 2017), with the 0-1 coding a = 0, b = c = 1.

D regresses its raw output to 1 on real and 0 on generated samples; G pushes D(G(z)) towards 1.
Minimising these losses minimises a Pearson chi^2 divergence, and, unlike the saturating sigmoid
of the BCE loss, samples far on the correct side of the boundary still get a gradient. D's output
is a regression value, not a logit: no sigmoid anywhere, and it is logged raw (about 1 = real,
about 0 = fake).
"""

from __future__ import annotations

from torch import nn

from .. import losses
from ..registry import VARIANTS
from .base import Batch, LossOut, Variant


@VARIANTS.register("lsgan")
class LSGAN(Variant):
    probabilities = False  # D's output is the regression target itself, logged raw

    def loss(self, phase: str, nets: dict[str, nn.Module], batch: Batch) -> LossOut:
        if phase == "D":
            s_real, s_fake, _ = self.d_scores(nets, batch)  # [B], [B]
            total = losses.lsgan_d(s_real, s_fake)
            return LossOut(total, {"loss_D": total.detach(), **self.score_logs(s_real, s_fake)})
        total = losses.lsgan_g(self.g_scores(nets, batch))
        return LossOut(total, {"loss_G": total.detach()})
