"""WGAN with gradient penalty (Gulrajani et al. 2017).

The Wasserstein critic loss of Arjovsky et al. 2017 plus ``gp_weight`` * E[(||grad D(x_hat)|| -
1)^2] on random interpolates x_hat of real and generated samples, a soft 1-Lipschitz constraint
that replaces weight clipping. The penalty is per sample, so the critic must not use batch norm
(presets set ``model.batchnorm: false``; the MLP has none). The paper uses Adam with beta1 0,
beta2 0.9 and ``n_critic`` = 5. D's outputs are critic values, logged raw; the interpolation
weights come from the global torch RNG, which checkpoints save and restore.
"""

from __future__ import annotations

from torch import nn

from .. import losses
from ..registry import VARIANTS
from .base import Batch, LossOut, Variant


@VARIANTS.register("wgan-gp")
class WGANGP(Variant):
    probabilities = False  # critic values, not logits

    def loss(self, phase: str, nets: dict[str, nn.Module], batch: Batch) -> LossOut:
        if phase == "D":
            s_real, s_fake, fake = self.d_scores(nets, batch)  # [B], [B], [B, *shape]
            D, y = nets["D"], batch.labels
            w_loss = losses.wasserstein_d(s_real, s_fake)
            gp = losses.gradient_penalty(lambda x: D(x, y), batch.real, fake)
            total = w_loss + self.tcfg.gp_weight * gp
            logs = {"loss_D": total.detach(), "gp": gp.detach(), "wasserstein": -w_loss.detach()}
            return LossOut(total, {**logs, **self.score_logs(s_real, s_fake)})
        total = losses.wasserstein_g(self.g_scores(nets, batch))
        return LossOut(total, {"loss_G": total.detach()})
