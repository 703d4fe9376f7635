"""StyleGAN2's training (Karras et al. 2020, "Analyzing and improving the image quality of
StyleGAN"; the loss object of StyleGAN2-ADA, Karras et al. 2020).

- Non-saturating logistic loss: D minimises ``softplus(D(G(z))) + softplus(-D(x))``, G
  minimises ``softplus(-D(G(z)))``.
- R1 on reals (Mescheder et al. 2018), ``gamma / 2 * ||grad_x D(x)||^2``, as a lazy regulariser:
  its own phase every ``r1_every`` steps on the D phase's batch, weighted by ``r1_every``.
- Path-length regularisation (optional, ``pl_weight``; 0 = off): every ``pl_every`` steps on half
  a batch, ``pl_weight * pl_every * (||J_w^T y|| - a)^2`` where ``a``, the running mean of the
  lengths (decay 0.01), is checkpointed variant state.
- Lazy regularisation's optimizer correction: with a regulariser every k steps a player's Adam
  uses ``lr * c`` and ``beta ** c``, ``c = k / (k + 1)``, so that its total step matches the
  non-lazy one (Karras et al. 2020, appendix B).
- Style mixing regularisation: with probability ``mixing`` a batch takes the styles of a second
  z from a random crossover index on.
- ``w_avg`` follows the batches' mean w in the D phase; the EMA of G (``train.ema``) copies the
  buffers, so the averaged G truncates towards the same centre.

Random draws (the noise maps, the second z, crossover, the path-length directions) come from
torch's global generators, which checkpoints save and restore: resume is exact on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .. import losses
from ..errors import UserError
from ..registry import VARIANTS
from .base import Batch, LossOut, Phase, Variant, adam


@dataclass
class StyleGANOptions:
    r1_gamma: float = 1.0  # weight of R1 (gamma); 0 = off
    r1_every: int = 16  # steps between R1 phases (lazy regularisation)
    pl_weight: float = 2.0  # weight of the path-length penalty; 0 = off
    pl_every: int = 4  # steps between path-length phases
    pl_batch_shrink: int = 2  # the path-length phase uses batch_size // pl_batch_shrink samples
    pl_decay: float = 0.01  # update rate of the running mean path length
    mixing: float = 0.9  # probability of style mixing per batch

    def __post_init__(self) -> None:
        for key in ("r1_gamma", "pl_weight"):
            if not getattr(self, key) >= 0:
                v = getattr(self, key)
                raise UserError(f"variant.{key} must be 0 (off) or positive, got {v}")
        for key in ("r1_every", "pl_every", "pl_batch_shrink"):
            if getattr(self, key) < 1:
                raise UserError(f"variant.{key} must be at least 1, got {getattr(self, key)}")
        for key in ("pl_decay", "mixing"):
            if not 0 <= getattr(self, key) <= 1:
                raise UserError(f"variant.{key} must be in [0, 1], got {getattr(self, key)}")


def lazy_adam_settings(lr: float, betas: tuple[float, float], every: int) -> tuple[float, tuple]:
    """The lr and betas of a player regularised every ``every`` steps: ``lr c``, ``beta ** c``
    with ``c = every / (every + 1)`` (``every`` 0: no lazy regulariser, unchanged)."""
    if every <= 0:
        return lr, betas
    c = every / (every + 1)
    return lr * c, (betas[0] ** c, betas[1] ** c)


@VARIANTS.register("stylegan")
class StyleGAN(Variant):
    Options = StyleGANOptions

    def __init__(self, cfg):
        super().__init__(cfg)
        refused = {
            "model.net": (cfg.model.net != "stylegan", "stylegan (the style-based G and its D)"),
            "train.n_critic": (cfg.train.n_critic != 1, "1 (R1 keeps D in check)"),
            "train.g_steps": (cfg.train.g_steps != 1, "1 (its lazy regularisers count G steps)"),
            "train.label_smoothing": (cfg.train.label_smoothing > 0, "0"),
            "train.g_loss": (cfg.train.g_loss != "nonsaturating", "nonsaturating"),
            "train.optimizer": (cfg.train.optimizer != "adam", "adam"),
        }
        for key, (bad, fix) in refused.items():
            if bad:
                raise UserError(
                    f"train.variant=stylegan does not use {key}={_value(cfg, key)}; set {key}={fix}"
                )
        self.pl_mean = torch.zeros([])

    # ---------------------------------------------------------------- schedule and optimizers
    def phases(self) -> list[Phase]:
        o = self.opts
        out = [Phase("D", ("D",))]
        if o.r1_gamma > 0:
            out.append(Phase("Dreg", ("D",), new_batch=False, every=o.r1_every))
        out.append(Phase("G", ("G",)))
        if o.pl_weight > 0:
            out.append(Phase("Greg", ("G",), new_batch=False, every=o.pl_every))
        return out

    def make_optimizer(self, player: str, params) -> torch.optim.Optimizer:
        o = self.opts
        if player == "G":
            every = o.pl_every if o.pl_weight > 0 else 0
        else:
            every = o.r1_every if o.r1_gamma > 0 else 0
        betas = (self.tcfg.beta1, self.tcfg.beta2)
        lr, betas = lazy_adam_settings(self.lr(player), betas, every)
        return adam(params, lr=lr, betas=betas, eps=1e-8)

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict:
        return {"pl_mean": self.pl_mean.detach().float().cpu()}

    def load_state_dict(self, state: dict) -> None:
        if "pl_mean" in state:
            self.pl_mean = state["pl_mean"].clone()

    # ---------------------------------------------------------------- losses
    def styles(self, G: nn.Module, z: Tensor, y: Tensor | None, update: bool = False) -> Tensor:
        """``ws [B, num_ws, w_dim]`` of ``z``, mixed with a second z's from a random crossover
        index with probability ``mixing`` (draws on the CPU: no device sync)."""
        ws = G.mapping(z, y, update_w_avg=update)[:, None].repeat(1, G.num_ws, 1)
        if self.opts.mixing > 0 and torch.rand([]).item() < self.opts.mixing:
            cut = int(torch.randint(1, G.num_ws, []))
            w2 = G.mapping(torch.randn_like(z), y)  # [B, w_dim]
            ws = torch.cat([ws[:, :cut], w2[:, None].expand(-1, G.num_ws - cut, -1)], dim=1)
        return ws  # [B, num_ws, w_dim]

    def loss(self, phase: str, nets: dict[str, nn.Module], batch: Batch) -> LossOut:
        G, D, y = nets["G"], nets["D"], batch.labels
        if phase == "D":
            with torch.no_grad():
                fake = G.synthesis(self.styles(G, batch.z, y, update=True), "random")
            s_real, s_fake = D(batch.real, y), D(fake, y)  # [B], [B]
            total = losses.bce_d(s_real, s_fake)
            return LossOut(total, {"loss_D": total.detach(), **self.score_logs(s_real, s_fake)})
        if phase == "Dreg":
            r1 = losses.r1_penalty(lambda x: D(x, y), batch.real).mean()
            total = r1 * (self.opts.r1_gamma / 2 * self.opts.r1_every)
            return LossOut(total, {"r1": r1.detach()})
        if phase == "G":
            fake = G.synthesis(self.styles(G, batch.z, y), "random")  # [B, *shape]
            s_fake = D(fake, y)
            total = losses.g_nonsaturating(s_fake)
            return LossOut(total, {"loss_G": total.detach()})
        if phase == "Greg":
            n = max(1, batch.z.shape[0] // self.opts.pl_batch_shrink)
            yn = y[:n] if y is not None else None
            ws = self.styles(G, batch.z[:n], yn)  # [n, num_ws, w_dim]
            lengths = losses.path_lengths(G.synthesis(ws, "random"), ws)  # [n]
            mean = self.pl_mean.to(lengths.device).lerp(lengths.mean().detach(), self.opts.pl_decay)
            self.pl_mean = mean.detach()
            penalty = (lengths - mean).square().mean()
            total = penalty * (self.opts.pl_weight * self.opts.pl_every)
            logs = {"pl_length": lengths.mean().detach(), "pl_penalty": penalty.detach()}
            return LossOut(total, logs)
        raise ValueError(f"unknown phase {phase!r}")


def _value(cfg, key: str):
    section, name = key.split(".")
    return getattr(getattr(cfg, section), name)
