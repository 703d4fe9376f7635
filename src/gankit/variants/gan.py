"""The original GAN (Goodfellow et al. 2014) with both generator losses, and the unrolled GAN
(Metz et al. 2017) as an option.

D minimises binary cross-entropy on real (target 1, or 1 - label_smoothing) and generated
(target 0) samples. G minimises either the minimax ``log(1 - D(G(z)))``, which saturates when D
wins, or the non-saturating ``-log D(G(z))`` that the paper recommends in practice.

``variant.unroll=k`` (Metz, Poole, Pfau and Sohl-Dickstein 2017, "Unrolled generative adversarial
networks"): G's loss is computed against D after k steps of D's own loss, and G's gradient flows
through those steps (``losses.unrolled``). The unroll steps are plain SGD of size
``variant.unroll_lr`` (default: the base ``train.lr_d``, which ``train.lr_decay`` does not
shrink here), not the paper's Adam: a fresh Adam's first steps
are ``lr * sign(grad)``, which pass no gradient back to G, and the real Adam's state belongs to the
trainer. They run functionally on copies of D's weights inside G's loss; D's own update (the D
phase) is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from .. import losses
from ..errors import UserError
from ..registry import VARIANTS
from .base import Batch, LossOut, Variant


@dataclass
class GANOptions:
    unroll: int = 0  # k: G plays against D unrolled k SGD steps of D's loss (Metz et al. 2017)
    unroll_lr: float | None = None  # the unroll's SGD step size; None = train.lr_d

    def __post_init__(self) -> None:
        if self.unroll < 0:
            raise UserError(
                f"variant.unroll must be 0 (off) or a number of steps, got {self.unroll}"
            )
        if self.unroll_lr is not None and not self.unroll_lr > 0:
            raise UserError(
                f"variant.unroll_lr must be positive (or null: train.lr_d), got {self.unroll_lr}"
            )


@VARIANTS.register("gan")
class GAN(Variant):
    Options = GANOptions

    def _d_loss(self, s_real: Tensor, s_fake: Tensor) -> Tensor:
        return losses.bce_d(s_real, s_fake, 1.0 - self.tcfg.label_smoothing)

    def loss(self, phase: str, nets: dict[str, nn.Module], batch: Batch) -> LossOut:
        if phase == "D":
            s_real, s_fake, _ = self.d_scores(nets, batch)  # [B], [B]
            total = self._d_loss(s_real, s_fake)
            return LossOut(total, {"loss_D": total.detach(), **self.score_logs(s_real, s_fake)})
        unroll = getattr(self.opts, "unroll", 0)  # a subclass may declare other options
        if unroll:
            y = batch.labels
            fake = nets["G"](batch.z, y)  # [B, *shape]
            lr = self.opts.unroll_lr or self.lr("D")
            args = (nets["D"], self._d_loss, batch.real, fake, y, unroll, lr)
            s_fake = losses.unrolled_scores(*args)  # [B]: D_k(G(z))
        else:
            s_fake = self.g_scores(nets, batch)  # [B]
        if self.tcfg.g_loss == "minimax":
            total = losses.g_minimax(s_fake)
        else:
            total = losses.g_nonsaturating(s_fake)
        return LossOut(total, {"loss_G": total.detach()})
