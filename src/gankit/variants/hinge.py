"""The hinge-loss GAN (Lim and Ye 2017, "Geometric GAN"; Miyato et al. 2018; the loss of SAGAN,
Zhang et al. 2019, and BigGAN, Brock et al. 2019).

D minimises ``E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]``: a margin classifier that stops
pushing a sample once its raw score is past the margin. G minimises ``-E[D(G(z))]``. D's output is
a raw score, not a logit: no sigmoid, logged raw (about +1 real, -1 generated at D's optimum).

Conditioning is a net option, as for every variant: ``data.classes=true`` hands the labels to G
and D (the ``biggan`` family conditions G's batch norms on a shared class embedding and projects
the label in D, Miyato and Koyama 2018); the losses are the same.
"""

from __future__ import annotations

from torch import nn

from .. import losses
from ..registry import VARIANTS
from .base import Batch, LossOut, Variant


@VARIANTS.register("hinge")
class Hinge(Variant):
    probabilities = False  # raw margin scores, logged as they are

    @property
    def signed_scores(self) -> bool:
        """The raw margin is positive for "real" and negative for "generated" (about +-1 at D's
        optimum), so ``train.augment=ada`` may read its sign."""
        return True

    def loss(self, phase: str, nets: dict[str, nn.Module], batch: Batch) -> LossOut:
        if phase == "D":
            s_real, s_fake, _ = self.d_scores(nets, batch)  # [B], [B]
            total = losses.hinge_d(s_real, s_fake)
            return LossOut(total, {"loss_D": total.detach(), **self.score_logs(s_real, s_fake)})
        total = losses.hinge_g(self.g_scores(nets, batch))
        return LossOut(total, {"loss_G": total.detach()})
