"""WGAN with gradient penalty (Gulrajani et al. 2017).

The Wasserstein critic loss of Arjovsky et al. 2017 plus ``variant.gp_weight`` *
E[(||grad D(x_hat)|| - 1)^2] on random interpolates x_hat of real and generated samples, a soft
1-Lipschitz constraint that replaces weight clipping. The penalty is per sample, so the critic
must not use batch norm (presets set ``model.batchnorm: false``; the MLP has none). The paper
uses Adam with beta1 0, beta2 0.9 and ``n_critic`` = 5. D's outputs are critic values, logged
raw; the interpolation weights come from the global torch RNG, which checkpoints save and restore.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .. import losses
from ..errors import UserError
from ..registry import VARIANTS
from .base import Batch, LossOut, Variant


@dataclass
class WGANGPOptions:
    gp_weight: float = 10.0  # lambda of the gradient penalty (the paper's 10)

    def __post_init__(self) -> None:
        if not self.gp_weight >= 0:
            raise UserError(f"variant.gp_weight must be 0 (off) or positive, got {self.gp_weight}")


@VARIANTS.register("wgan-gp")
class WGANGP(Variant):
    probabilities = False  # critic values, not logits
    Options = WGANGPOptions

    def loss(self, phase: str, nets: dict[str, nn.Module], batch: Batch) -> LossOut:
        if phase == "D":
            s_real, s_fake, fake = self.d_scores(nets, batch)  # [B], [B], [B, *shape]
            D, y = nets["D"], batch.labels
            w_loss = losses.wasserstein_d(s_real, s_fake)
            gp = losses.gradient_penalty(lambda x: D(x, y), batch.real, fake)
            total = w_loss + self.opts.gp_weight * gp
            logs = {"loss_D": total.detach(), "gp": gp.detach(), "wasserstein": -w_loss.detach()}
            return LossOut(total, {**logs, **self.score_logs(s_real, s_fake)})
        total = losses.wasserstein_g(self.g_scores(nets, batch))
        return LossOut(total, {"loss_G": total.detach()})
