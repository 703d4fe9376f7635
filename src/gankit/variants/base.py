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

from .. import losses
from ..config import Config, build_options
from ..errors import UserError
from ..nets import build_discriminator, build_generator
from ..nets.augment import SIGN_KEY


def adam(params, **kwargs) -> torch.optim.Adam:
    """Adam, fused into one kernel per step when every parameter is on CUDA (torch's default,
    the per-tensor loop, elsewhere)."""
    params = list(params)
    fused = bool(params) and all(p.is_cuda for p in params)
    return torch.optim.Adam(params, fused=True if fused else None, **kwargs)


@dataclass(frozen=True)
class Phase:
    name: str  # used as the log prefix and passed back to loss()
    updates: tuple[str, ...]  # players whose optimizers step in this phase (stepped together)
    repeat: int = 1  # times per step, each on a fresh real batch (n_critic for D)
    # False: reuse the previous phase's Batch object, scratch included (CycleGAN's D phase judges
    # the fakes its G phase made from the same images); the first phase of a step always draws
    new_batch: bool = True
    # run only on steps that are multiples of ``every`` (lazy regularization, Karras et al. 2020:
    # R1 every 16 steps, path length every 4); the variant weighs such a loss by ``every``
    every: int = 1


@dataclass
class Batch:
    """What one phase iteration sees; tensors are on the training device.

    ``real`` and ``labels`` are what the source yields, moved to the device as they are: one
    batch ``[B, *shape]`` (and ``[B]`` labels), or a tuple of one batch per domain for a pair."""

    real: Tensor | tuple[Tensor, ...]  # [B, *shape] data, or (x_a, x_b) for two domains
    labels: Tensor | tuple[Tensor | None, ...] | None  # [B] classes; None if unconditional
    z: Tensor  # [B, z_dim] latent codes from the trainer's seeded generator
    step: int  # training steps done so far (G updates, unless train.g_steps > 1)
    # what one phase leaves for a later phase that reuses this batch (Phase.new_batch=False);
    # the variant's own, never checkpointed: a step's phases run between two checkpoints
    scratch: dict[str, Tensor] = field(default_factory=dict)


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

    # direction name -> the player that translates it (CycleGAN: AtoB -> G_AB); none for G(z)
    translators: dict[str, str] = {}

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.tcfg = cfg.train
        name = f"variant {cfg.train.variant}"
        self.opts = build_options(self.Options, cfg.variant, "variant.", name)

    @property
    def signed_scores(self) -> bool:
        """Whether D's score is positive for "real" and negative for "generated", as logits
        are: ``train.augment=ada`` reads its sign (a hinge variant may say so too)."""
        return self.probabilities

    @property
    def exported(self) -> tuple[str, ...]:
        """The players an export holds: the sampler, or every translator."""
        return tuple(self.translators.values()) or (self.sampler_player,)

    def check_data(self, source) -> None:
        """Refuse, with a ``UserError``, data this game cannot play on (before any step)."""
        if source.kind == "pair":
            raise UserError(
                f"train.variant={self.tcfg.variant} plays on one data set, but data.name=pair "
                "gives two domains; use a translation variant (train.variant=cyclegan)"
            )

    def fixed_inputs(self, source, n: int, num_classes: int, seed: int):
        """What every sample grid shows, drawn once on the CPU, so a timeline shows one set
        evolve: ``n`` fixed z (and labels ``0, 1, ...`` for a conditional G)."""
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.cfg.model.z_dim, generator=g)  # [n, z_dim]
        y = torch.arange(n) % num_classes if num_classes else None  # [n]
        return z, y

    def preview(self, nets: dict[str, nn.Module], fixed) -> Tensor:
        """The sample grid's images ``[n, *shape]`` from ``fixed`` (on the device), nets in eval
        mode under no_grad; the G/D game: G(z, y) in chunks."""
        z, y = fixed
        G = nets[self.sampler_player]
        out = [
            G(z[i : i + 1024], y[i : i + 1024] if y is not None else None)
            for i in range(0, z.shape[0], 1024)
        ]
        return torch.cat(out)  # [n, *shape]

    def preview_nrow(self, n: int) -> int | None:
        """Images per row of the sample grid of ``n`` images (None: about sqrt(n))."""
        return None

    def state_dict(self) -> dict:
        """Training state to checkpoint (tensors, numbers, strings, lists); none by default."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned."""

    def phases(self) -> list[Phase]:
        return [Phase("D", ("D",), self.tcfg.n_critic), Phase("G", ("G",), self.tcfg.g_steps)]

    def build_nets(self, shape: tuple[int, ...], num_classes: int) -> dict[str, nn.Module]:
        G = build_generator(self.cfg.model, shape, num_classes)
        self._check_ortho({"G": G})  # before the run folder is touched
        return {"G": G, "D": build_discriminator(self.cfg.model, shape, num_classes, self.tcfg.pac)}

    def lr(self, player: str) -> float:
        return self.tcfg.lr_g if player.startswith("G") else self.tcfg.lr_d

    def make_optimizer(self, player: str, params) -> torch.optim.Optimizer:
        if self.tcfg.optimizer == "rmsprop":
            return torch.optim.RMSprop(params, lr=self.lr(player))
        return adam(params, lr=self.lr(player), betas=(self.tcfg.beta1, self.tcfg.beta2))

    def loss(self, phase: str, nets: dict[str, nn.Module], batch: Batch) -> LossOut:
        raise NotImplementedError

    def regularize(self, phase: Phase, nets: dict[str, nn.Module], out: LossOut) -> LossOut:
        """``out`` with the weight penalties that every variant shares, which the trainer adds
        to each phase's loss in float32: ``train.ortho_reg`` times BigGAN's orthogonal penalty
        (Brock et al. 2019, ``losses.orthogonal``) of each generator the phase updates (a player
        named ``G...``), in the phases that run every step (not in lazy regularisation phases)."""
        beta = self.tcfg.ortho_reg
        gens = [p for p in phase.updates if p.startswith("G")] if phase.every == 1 else []
        if not beta or not gens:
            return out
        self._check_ortho({p: nets[p] for p in gens})
        penalty = sum(losses.orthogonal_penalty(nets[p]) for p in gens)
        logs = {**out.logs, f"ortho_{phase.name}": penalty.detach()}
        return LossOut(out.total + beta * penalty, logs)

    def _check_ortho(self, gens: dict[str, nn.Module]) -> None:
        """Refuse ``train.ortho_reg`` for a generator that has no layer the penalty covers."""
        if not self.tcfg.ortho_reg:
            return
        for name, net in gens.items():
            if not losses.orthogonal.layer_weights(net):
                raise UserError(
                    f"train.ortho_reg regularises linear and convolution layers, and {name} of "
                    f"model.net={self.cfg.model.net} has none (its layers are its own); set "
                    "train.ortho_reg=0"
                )

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
            if self.tcfg.augment == "ada":  # what ADA's p follows (nets/augment.py)
                logs[SIGN_KEY] = real.detach().float().sign().mean()
        return logs
