"""The variant contract: what differs between GANs is the players' losses and who moves when.

A variant declares its players (the nets it trains), its phases (which players a phase updates
together and how many times per step), and returns a ``LossOut`` for each phase. It never calls
``backward()``, never touches an optimizer or a device: the trainer does (the loss-object design
of Karras et al. 2020, StyleGAN2-ADA).

Its own options are a small dataclass, ``Options``, declared in its file and read from the
config's ``variant`` section (``variant.gp_weight=10``) as strictly as every other key; an
``Options`` may check its values in ``__post_init__``. State that training changes and resume must
restore (image pools, running means) lives on the variant behind ``state_dict`` /
``load_state_dict``, which the trainer checkpoints with everything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..config import Config, build_options
from ..nets import build_discriminator, build_generator


@dataclass(frozen=True)
class Phase:
    name: str  # used as the log prefix and passed back to loss()
    updates: tuple[str, ...]  # players whose optimizers step in this phase
    repeat: int = 1  # times per step, each on a fresh real batch (n_critic for D)


@dataclass
class Batch:
    """What one phase iteration sees; tensors are on the training device."""

    real: Tensor  # [B, *shape] data
    labels: Tensor | None  # [B] class labels, or None for an unconditional model
    z: Tensor  # [B, z_dim] latent codes from the trainer's seeded generator
    step: int  # G updates done so far


@dataclass
class LossOut:
    total: Tensor  # scalar the trainer back-propagates
    logs: dict[str, Tensor] = field(default_factory=dict)  # detached scalars to log


@dataclass
class NoOptions:
    """The options of a variant that has none."""


class Variant:
    """Base class: a G/D game; subclasses implement ``loss``."""

    players: tuple[str, ...] = ("G", "D")
    sampler_player: str = "G"  # the net that ``sample`` and exports use
    probabilities: bool = True  # D's scores are logits: log sigmoid(D) as D(x) and D(G(z))
    Options: type = NoOptions  # the variant's own options (config section ``variant``)

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.tcfg = cfg.train
        name = f"variant {cfg.train.variant}"
        self.opts = build_options(self.Options, cfg.variant, "variant.", name)

    def state_dict(self) -> dict:
        """Training state to checkpoint (tensors, numbers, strings, lists); none by default."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned."""

    def phases(self) -> list[Phase]:
        return [Phase("D", ("D",), self.tcfg.n_critic), Phase("G", ("G",), 1)]

    def build_nets(self, shape: tuple[int, ...], num_classes: int) -> dict[str, nn.Module]:
        return {
            "G": build_generator(self.cfg.model, shape, num_classes),
            "D": build_discriminator(self.cfg.model, shape, num_classes),
        }

    def lr(self, player: str) -> float:
        return self.tcfg.lr_g if player.startswith("G") else self.tcfg.lr_d

    def make_optimizer(self, player: str, params) -> torch.optim.Optimizer:
        if self.tcfg.optimizer == "rmsprop":
            return torch.optim.RMSprop(params, lr=self.lr(player))
        return torch.optim.Adam(
            params, lr=self.lr(player), betas=(self.tcfg.beta1, self.tcfg.beta2)
        )

    def loss(self, phase: str, nets: dict[str, nn.Module], batch: Batch) -> LossOut:
        raise NotImplementedError

    @staticmethod
    def d_scores(nets: dict[str, nn.Module], batch: Batch) -> tuple[Tensor, Tensor, Tensor]:
        """D phase of a G/D game: (D(x), D(G(z)), G(z)) with G(z) detached (G is frozen)."""
        G, D, y = nets["G"], nets["D"], batch.labels
        fake = G(batch.z, y).detach()  # [B, *shape]
        return D(batch.real, y), D(fake, y), fake  # [B], [B], [B, *shape]

    @staticmethod
    def g_scores(nets: dict[str, nn.Module], batch: Batch) -> Tensor:
        """G phase of a G/D game: D(G(z)) ``[B]``, differentiable through G."""
        y = batch.labels
        return nets["D"](nets["G"](batch.z, y), y)

    def after_step(self, phase: str, nets: dict[str, nn.Module]) -> None:
        """Called after each optimizer step of ``phase`` (weight clipping lives here)."""

    def score_logs(self, real: Tensor | None, fake: Tensor) -> dict[str, Tensor]:
        """Mean D(x) and D(G(z)): probabilities for logit-scored variants, raw otherwise."""
        f = torch.sigmoid if self.probabilities else (lambda s: s)
        logs = {"D(G(z))": f(fake.detach().float()).mean()}
        if real is not None:
            logs["D(x)"] = f(real.detach().float()).mean()
        return logs
