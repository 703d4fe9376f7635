"""Wasserstein GAN with weight clipping (Arjovsky, Chintala and Bottou 2017).

The critic D maximises E[D(x)] - E[D(G(z))], an estimate of the Wasserstein-1 distance when D is
1-Lipschitz; the paper keeps it (K-)Lipschitz by clamping every critic weight to ``[-c, c]``
after each update (``variant.clip``, 0.01). G minimises -E[D(G(z))]. The paper trains with RMSprop,
lr 5e-5 and ``n_critic`` = 5. D's outputs are unbounded critic values, logged raw.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import losses
from ..errors import UserError
from ..registry import VARIANTS
from .base import Batch, LossOut, Variant


@dataclass
class WGANOptions:
    clip: float = 0.01  # every critic weight is clamped to [-clip, clip] after each D update

    def __post_init__(self) -> None:
        if not self.clip > 0:
            raise UserError(f"variant.clip must be positive, got {self.clip}")


@VARIANTS.register("wgan")
class WGAN(Variant):
    probabilities = False  # critic values, not logits
    Options = WGANOptions

    def loss(self, phase: str, nets: dict[str, nn.Module], batch: Batch) -> LossOut:
        if phase == "D":
            s_real, s_fake, _ = self.d_scores(nets, batch)  # [B], [B]
            total = losses.wasserstein_d(s_real, s_fake)
            return LossOut(total, {"loss_D": total.detach(), **self.score_logs(s_real, s_fake)})
        total = losses.wasserstein_g(self.g_scores(nets, batch))
        return LossOut(total, {"loss_G": total.detach()})

    @torch.no_grad()
    def after_step(self, phase: str, nets: dict[str, nn.Module]) -> None:
        if phase == "D":
            c, params = self.opts.clip, list(nets["D"].parameters())
            torch._foreach_clamp_min_(params, -c)  # one kernel per step, not one per tensor
            torch._foreach_clamp_max_(params, c)
