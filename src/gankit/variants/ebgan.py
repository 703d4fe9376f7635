"""Energy-based GAN (Zhao, Mathieu and LeCun 2017).

D is an autoencoder whose energy is the reconstruction error, E(x) = mean((Dec(Enc(x)) - x)^2).
D minimises E(x) + max(0, m - E(G(z))): low energy on data, at least the margin m on generated
samples. G minimises E(G(z)), plus ``variant.pt_weight`` times the pull-away term on the
encoder's codes of a generated batch (EBGAN-PT), which pushes the codes apart against mode
collapse. The options: ``variant.margin``, ``variant.pt_weight``.

The autoencoder head is chosen here (``model.d_output`` is set to ``autoencoder`` whatever the
config says), and, as for every D, its forward returns the *negated* energy (higher = more
real). Logged: the energies ``energy_real`` / ``energy_fake`` and the raw scores D(x) / D(G(z)).
The margin sets the scale of the game. An untrained autoencoder gives the ring's points an energy
of about 0.5 (their mean square); ring-ebgan uses m = 0.1 (0.05 to 0.2 all learn in 1,000 steps,
1.0 is too large and loses modes).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from torch import nn

from .. import losses
from ..errors import UserError
from ..nets import build_discriminator, build_generator
from ..registry import VARIANTS
from .base import Batch, LossOut, Variant


@dataclass
class EBGANOptions:
    margin: float = 1.0  # m: D pushes the energy of generated samples up to at least this
    pt_weight: float = 0.0  # weight of the pull-away term in G's loss (EBGAN-PT); 0 = off

    def __post_init__(self) -> None:
        if not self.margin > 0:
            raise UserError(f"variant.margin must be positive, got {self.margin}")
        if not self.pt_weight >= 0:
            raise UserError(f"variant.pt_weight must be 0 (off) or positive, got {self.pt_weight}")


@VARIANTS.register("ebgan")
class EBGAN(Variant):
    probabilities = False  # D returns minus an energy
    Options = EBGANOptions

    def build_nets(self, shape: tuple[int, ...], num_classes: int) -> dict[str, nn.Module]:
        if num_classes:  # model.d_output would not help: EBGAN always takes the autoencoder
            raise UserError(
                "ebgan's autoencoder D is unconditional; set data.classes=false, or train a "
                "conditional model with another variant (e.g. train.variant=gan)"
            )
        d_cfg = dataclasses.replace(self.cfg.model, d_output="autoencoder")
        return {
            "G": build_generator(self.cfg.model, shape, num_classes),
            "D": build_discriminator(d_cfg, shape, num_classes, self.tcfg.pac),  # refuses pac
        }

    def loss(self, phase: str, nets: dict[str, nn.Module], batch: Batch) -> LossOut:
        if phase == "D":
            s_real, s_fake, _ = self.d_scores(nets, batch)  # [B], [B]: minus the energies
            e_real, e_fake = -s_real, -s_fake  # [B], [B]
            total = losses.ebgan_d(e_real, e_fake, self.opts.margin)
            logs = {
                "loss_D": total.detach(),
                "energy_real": e_real.detach().mean(),
                "energy_fake": e_fake.detach().mean(),
            }
            return LossOut(total, {**logs, **self.score_logs(s_real, s_fake)})
        G, D = nets["G"], nets["D"]
        fake = G(batch.z)  # [B, *shape]; the pull-away term needs it, so no g_scores
        total = losses.ebgan_g(-D(fake))
        logs = {}
        if self.opts.pt_weight > 0:
            pt = losses.pull_away(D.encode(fake))  # codes [B, code_dim] -> scalar
            total = total + self.opts.pt_weight * pt
            logs["pull_away"] = pt.detach()
        return LossOut(total, {"loss_G": total.detach(), **logs})
