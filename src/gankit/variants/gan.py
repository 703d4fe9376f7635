"""The original GAN (Goodfellow et al. 2014) with both generator losses.

D minimises binary cross-entropy on real (target 1, or 1 - label_smoothing) and generated
(target 0) samples. G minimises either the minimax ``log(1 - D(G(z)))``, which saturates when D
wins, or the non-saturating ``-log D(G(z))`` that the paper recommends in practice.
"""

from __future__ import annotations

from torch import nn

from .. import losses
from ..registry import VARIANTS
from .base import Batch, LossOut, Variant


@VARIANTS.register("gan")
class GAN(Variant):
    def loss(self, phase: str, nets: dict[str, nn.Module], batch: Batch) -> LossOut:
        if phase == "D":
            s_real, s_fake, _ = self.d_scores(nets, batch)  # [B], [B]
            total = losses.bce_d(s_real, s_fake, 1.0 - self.tcfg.label_smoothing)
            return LossOut(total, {"loss_D": total.detach(), **self.score_logs(s_real, s_fake)})
        s_fake = self.g_scores(nets, batch)  # [B]
        if self.tcfg.g_loss == "minimax":
            total = losses.g_minimax(s_fake)
        else:
            total = losses.g_nonsaturating(s_fake)
        return LossOut(total, {"loss_G": total.detach()})
