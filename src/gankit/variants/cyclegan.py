"""CycleGAN: unpaired image-to-image translation (Zhu et al. 2017).

Four players: G_AB translates domain A to B and G_BA back; D_A and D_B judge each domain. The G
phase steps both generators together on

    adv(D_B(G_AB(a))) + adv(D_A(G_BA(b)))
    + lambda_cycle * (|G_BA(G_AB(a)) - a|_1 + |G_AB(G_BA(b)) - b|_1)
    + lambda_cycle * lambda_identity * (|G_BA(a) - a|_1 + |G_AB(b) - b|_1),

with the least-squares adversarial loss MSE(D(fake), 1) of the paper (Mao et al. 2017; BCE as an
option). The D phase steps both discriminators on the same images (``Phase.new_batch=False``): each
D sees real images of its domain and the G phase's fakes through an image pool of 50 past fakes
(Shrivastava et al. 2017), and its loss is halved to slow D against G. The paper's optimiser is
Adam(2e-4, 0.5, 0.999) with a constant rate for half the training, then a linear decay to 0 (the
presets' ``train.lr_decay_start=0.5``). CyCADA's digit runs (Hoffman et al. 2018) drop the
identity loss (``variant.lambda_identity=0``), as the digit preset does.

The networks are this variant's own (the ResNet generator and the PatchGAN discriminator, sized by
``variant.ngf`` ... ``variant.n_layers``); ``model.*`` sizes z -> x nets and is not used. The
pools are the variant's checkpointed state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import losses
from ..errors import UserError
from ..nets.patchgan import PatchDiscriminator
from ..nets.resnet import ResnetGenerator
from ..registry import VARIANTS
from .base import Batch, LossOut, Phase, Variant
from .image_pool import ImagePool


@dataclass
class CycleGANOptions:
    lambda_cycle: float = 10.0  # weight of each direction's L1 cycle loss (the paper's 10)
    lambda_identity: float = 0.5  # identity loss weight, as a fraction of lambda_cycle; 0 = off
    gan_loss: Literal["lsgan", "bce"] = "lsgan"  # least squares (the paper) or BCE on logits
    pool_size: int = 50  # past fakes each D also sees; 0 = only the newest
    ngf: int = 32  # generator channels after the stem (the paper's 256-px nets use 64)
    n_blocks: int = 6  # residual blocks (the paper: 6 at 128 px, 9 at 256 px)
    n_down: int = 2  # stride-2 down/up convolutions of the generator
    ndf: int = 64  # discriminator channels of the first conv
    n_layers: int = 3  # PatchGAN stride-2 convs: 3 = 70x70 patches, 2 suits 28-32 px digits
    preview: int = 8  # test images per domain in each sample grid (its columns)

    def __post_init__(self) -> None:
        for key in ("lambda_cycle", "lambda_identity"):
            value = getattr(self, key)
            if not value >= 0:
                raise UserError(f"variant.{key} must be 0 (off) or positive, got {value}")
        if self.pool_size < 0:
            raise UserError(f"variant.pool_size must be 0 (off) or positive, got {self.pool_size}")
        for key in ("ngf", "n_blocks", "n_down", "ndf", "n_layers", "preview"):
            if getattr(self, key) < 1:
                raise UserError(f"variant.{key} must be positive, got {getattr(self, key)}")


@VARIANTS.register("cyclegan")
class CycleGAN(Variant):
    players = ("G_AB", "G_BA", "D_A", "D_B")
    sampler_player = "G_AB"
    translators = {"AtoB": "G_AB", "BtoA": "G_BA"}
    probabilities = False  # patch scores, logged raw
    Options = CycleGANOptions

    def __init__(self, cfg):
        super().__init__(cfg)
        refused = {
            "train.ema": (cfg.train.ema > 0, "0"),
            "train.n_critic": (cfg.train.n_critic != 1, "1 (each D steps once per step)"),
            "train.g_steps": (cfg.train.g_steps != 1, "1 (the two G step once per step)"),
            "train.label_smoothing": (cfg.train.label_smoothing > 0, "0"),
            "data.classes": (cfg.data.classes, "false (translation is unconditional)"),
            "model.spectral_norm": (cfg.model.spectral_norm, "false (its PatchGAN D is its own)"),
            "model.spectral_norm_g": (cfg.model.spectral_norm_g, "false (its ResNet G is its own)"),
            "model.mbstd": (cfg.model.mbstd > 0, "0 (its PatchGAN D is its own)"),
        }
        for key, (bad, fix) in refused.items():
            if bad:
                raise UserError(f"train.variant=cyclegan does not use {key}; set {key}={fix}")
        seed = cfg.seed
        self.pools = {
            "A": ImagePool(self.opts.pool_size, seed + 101),
            "B": ImagePool(self.opts.pool_size, seed + 202),
        }

    def check_data(self, source) -> None:
        if source.kind != "pair":
            raise UserError(
                f"train.variant=cyclegan translates between two domains, but data.name="
                f"{self.cfg.data.name} is one data set; set data.name=pair with data.a.name and "
                "data.b.name (or data.path, a folder with trainA/ and trainB/)"
            )

    def phases(self) -> list[Phase]:
        return [Phase("G", ("G_AB", "G_BA")), Phase("D", ("D_A", "D_B"), new_batch=False)]

    def build_nets(self, shape: tuple[int, ...], num_classes: int) -> dict[str, nn.Module]:
        c, h, w = shape
        o = self.opts
        nets: dict[str, nn.Module] = {
            "G_AB": ResnetGenerator(c, c, o.ngf, o.n_blocks, o.n_down),
            "G_BA": ResnetGenerator(c, c, o.ngf, o.n_blocks, o.n_down),
            "D_A": PatchDiscriminator(c, o.ndf, o.n_layers),
            "D_B": PatchDiscriminator(c, o.ndf, o.n_layers),
        }
        for name, net in nets.items():
            try:
                net.check_size(h, w)
            except UserError as e:
                keys = "variant.n_down" if name.startswith("G") else "variant.n_layers"
                raise UserError(f"{e} (set data.size or {keys})") from None
        return nets

    # ---------------------------------------------------------------- losses
    def _adv_g(self, scores: Tensor) -> Tensor:
        """G's adversarial term: its fakes should score as real."""
        if self.opts.gan_loss == "bce":
            return losses.g_nonsaturating(scores)
        return F.mse_loss(scores, torch.ones_like(scores))

    def _adv_d(self, real: Tensor, fake: Tensor) -> Tensor:
        """One D's loss, halved (the paper's slower D)."""
        if self.opts.gan_loss == "bce":
            return 0.5 * losses.bce_d(real, fake)
        ones, zeros = torch.ones_like(real), torch.zeros_like(fake)
        return 0.5 * (F.mse_loss(real, ones) + F.mse_loss(fake, zeros))

    def loss(self, phase: str, nets: dict[str, nn.Module], batch: Batch) -> LossOut:
        x_a, x_b = batch.real  # [B, C, H, W] each, unpaired
        if phase == "G":
            return self._g_loss(nets, x_a, x_b, batch.scratch)
        fakes = batch.scratch  # the G phase's fakes of these images (the D phase reuses its batch)
        fake_a = self.pools["A"].query(fakes["fake_A"])  # [B, C, H, W], detached
        fake_b = self.pools["B"].query(fakes["fake_B"])  # [B, C, H, W], detached
        s_real_a, s_fake_a = nets["D_A"](x_a), nets["D_A"](fake_a)  # [B, H', W'] each
        s_real_b, s_fake_b = nets["D_B"](x_b), nets["D_B"](fake_b)  # [B, H', W'] each
        loss_a, loss_b = self._adv_d(s_real_a, s_fake_a), self._adv_d(s_real_b, s_fake_b)
        total = loss_a + loss_b
        logs = {
            "loss_D": total.detach(),
            "loss_D_A": loss_a.detach(),
            "loss_D_B": loss_b.detach(),
            "D_A(a)": s_real_a.detach().float().mean(),
            "D_A(G_BA(b))": s_fake_a.detach().float().mean(),
            "D_B(b)": s_real_b.detach().float().mean(),
            "D_B(G_AB(a))": s_fake_b.detach().float().mean(),
        }
        return LossOut(total, logs)

    def _g_loss(self, nets, x_a: Tensor, x_b: Tensor, scratch: dict[str, Tensor]) -> LossOut:
        G_AB, G_BA = nets["G_AB"], nets["G_BA"]
        o = self.opts
        fake_b, fake_a = G_AB(x_a), G_BA(x_b)  # [B, C, H, W] each
        adv_ab, adv_ba = self._adv_g(nets["D_B"](fake_b)), self._adv_g(nets["D_A"](fake_a))
        cyc_a = losses.cycle_loss(x_a, G_BA(fake_b))  # a -> b -> a
        cyc_b = losses.cycle_loss(x_b, G_AB(fake_a))  # b -> a -> b
        total = adv_ab + adv_ba + o.lambda_cycle * (cyc_a + cyc_b)
        logs = {
            "adv_AB": adv_ab.detach(),
            "adv_BA": adv_ba.detach(),
            "cycle_A": cyc_a.detach(),
            "cycle_B": cyc_b.detach(),
        }
        if o.lambda_identity > 0:
            idt_a = losses.identity_loss(x_a, G_BA(x_a))  # G_BA leaves A's images alone
            idt_b = losses.identity_loss(x_b, G_AB(x_b))
            total = total + o.lambda_cycle * o.lambda_identity * (idt_a + idt_b)
            logs.update({"identity_A": idt_a.detach(), "identity_B": idt_b.detach()})
        logs["loss_G"] = total.detach()
        scratch["fake_A"], scratch["fake_B"] = fake_a.detach(), fake_b.detach()
        return LossOut(total, logs)

    # ---------------------------------------------------------------- state and pictures
    def state_dict(self) -> dict:
        return {"pool_A": self.pools["A"].state_dict(), "pool_B": self.pools["B"].state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.pools["A"].load_state_dict(state["pool_A"])
        self.pools["B"].load_state_dict(state["pool_B"])

    def fixed_inputs(self, source, n: int, num_classes: int, seed: int):
        """The first test images of each domain (the same every run and resume)."""
        from ..data import build_source

        test = build_source(self.cfg.data, "test")
        k = min(n, self.opts.preview)
        (x_a, x_b), _ = test.sample(k, torch.Generator().manual_seed(seed))  # [k, C, H, W] each
        return x_a, x_b

    def preview(self, nets: dict[str, nn.Module], fixed) -> Tensor:
        """Six rows: a, G_AB(a), G_BA(G_AB(a)), then b, G_BA(b), G_AB(G_BA(b))."""
        x_a, x_b = fixed
        ab, ba = nets["G_AB"](x_a), nets["G_BA"](x_b)
        rows = [x_a, ab, nets["G_BA"](ab), x_b, ba, nets["G_AB"](ba)]
        return torch.cat([r.float() for r in rows])  # [6k, C, H, W]

    def preview_nrow(self, n: int) -> int | None:
        return n // 6
