"""The one training loop, for every variant.

Alternating phases (Goodfellow et al. 2014, Algorithm 1): each step runs the variant's phases in
order, e.g. ``n_critic`` D updates on fresh real batches, then ``g_steps`` G updates (one by
default). The trainer owns backward, optimizer steps, mixed precision, the EMA of G (updated once
a step), gradient norms, the NaN guard, checkpoints, exact resume, logging and pictures. It never
names a variant.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .. import config as config_mod
from .. import data, nets, variants
from ..config import Config
from ..devices import resolve as resolve_device
from ..errors import GankitError, UserError
from ..files import check_output_dir
from ..memory import check as check_memory
from ..nets import augment as augment_mod
from ..registry import VARIANTS
from ..variants import Batch, LossOut, Phase, Variant
from . import checkpoint, distributed, speed
from .diagnostics import Diagnostics
from .ema import EMA
from .logger import Logger
from .outputs import N_POINTS, RunOutputs
from .process import NoLogger, check_tensorboard, cpu_threads, sigint_flag, to_device
from .state import KEEP_CHECKPOINTS, CheckpointState  # noqa: F401  (KEEP_CHECKPOINTS: public)
from .stats import Window, grad_norm


class TrainingDiverged(GankitError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class Run:
    """What ``gankit.train`` returns: the run folder, its config and final figures."""

    dir: Path
    config: Config
    summary: dict[str, Any]
    generator: nn.Module  # the sampling net (the EMA copy when train.ema > 0), in eval mode
    interrupted: bool = False

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None, labels: Tensor | None = None) -> Tensor:
        from ..generator import sample_from

        return sample_from(self.generator, n, seed=seed, labels=labels)

    def _repr_html_(self) -> str:  # a notebook shows the samples, losses and key figures
        from ..report.notebook import run_html

        return run_html(self)


class Trainer(CheckpointState, RunOutputs):
    """One run. ``run_dir`` None: a fresh folder ``<out>/<name>`` (``-2``, ... when that one holds
    checkpoints or is being trained); ``resume``: continue ``run_dir`` from ``from_checkpoint``,
    else its newest intact checkpoint, else (killed before its first one) from step 0.

    Every check that can fail runs before the folder is touched; the folder is then locked until
    ``fit`` returns, so a second process can never interleave its rows with this one's."""

    def __init__(
        self,
        cfg: Config,
        run_dir: Path | None = None,
        resume: bool = False,
        from_checkpoint: Path | None = None,
    ):
        self.cfg = cfg
        self.notes: list[str] = []  # said through the logger when fit starts
        self.dist, self.device = distributed.setup(resolve_device(cfg.device))
        if self.dist.main:
            check_output_dir(run_dir if run_dir is not None else cfg.run_dir, "out/name")
        world, batch_size = self.dist.world, cfg.train.batch_size
        if cfg.log.tensorboard:
            check_tensorboard()
        torch.manual_seed(cfg.seed)
        self.source = data.build_source(cfg.data)
        data.check_fits(self.source, batch_size * world, cfg.log.n_samples)
        numel = math.prod(self.source.shape) + cfg.model.z_dim
        check_memory(
            4 * numel * (3 * cfg.train.batch_size + max(cfg.log.n_samples, N_POINTS)),
            f"train.batch_size={cfg.train.batch_size} with log.n_samples={cfg.log.n_samples}",
            "lower train.batch_size or log.n_samples",
        )
        self.variant: Variant = VARIANTS.get(cfg.train.variant)(cfg)
        self.variant.check_data(self.source)
        self.num_classes = self.source.num_classes if cfg.data.classes else 0
        if cfg.data.classes and self.num_classes == 0:
            raise UserError(f"data set {cfg.data.name} has no class labels; set data.classes=false")
        # the saved config holds the variant's options with their defaults resolved
        # ... and the net family's (model.options)
        model = dataclasses.replace(cfg.model, options=nets.resolve_options(cfg.model))
        self.cfg = cfg = dataclasses.replace(
            cfg, variant=dataclasses.asdict(self.variant.opts), model=model
        )
        self.phases: list[Phase] = self.variant.phases()
        self.nets = self.variant.build_nets(self.source.shape, self.num_classes)
        if cfg.train.pac > 1 and all(getattr(n, "pac", 1) == 1 for n in self.nets.values()):
            raise UserError(  # a variant whose own nets ignore nets.build_discriminator's packing
                f"train.variant={cfg.train.variant} builds discriminators that do not pack "
                "samples; set train.pac=1"
            )
        # train.augment: each D sees every input through one augmentation (nets/augment.py)
        self.augment = augment_mod.attach(
            self.nets, cfg.train, self.source.shape, cfg.data.name, self.variant.signed_scores
        )
        if cfg.train.sync_bn:
            distributed.convert_sync_bn(self.nets, self.dist, self.device)
        self.nets = {k: v.to(self.device) for k, v in self.nets.items()}
        if cfg.train.channels_last:
            speed.to_channels_last(self.nets)
        self.opts = {
            k: self.variant.make_optimizer(k, self.nets[k].parameters()) for k in self.nets
        }
        self.sched = {
            k: torch.optim.lr_scheduler.LambdaLR(o, self._lr_factor) for k, o in self.opts.items()
        }
        gname = self.variant.sampler_player
        ema, warmup = cfg.train.ema, cfg.train.ema_warmup
        self.ema = EMA(self.nets[gname], ema, warmup) if ema > 0 else None
        # every rank draws the global batch order and latents; distributed.Shard keeps its slice
        self.sampler = self.source.sampler(batch_size * world, cfg.seed)
        if self.dist.enabled:
            self.sampler = distributed.Shard(self.sampler, self.dist, batch_size)
        if self.device.type == "cuda":
            speed.data_on_device(self.sampler, self.device)
        self.noise = torch.Generator().manual_seed(cfg.seed + 1)  # CPU: same z on any device
        self.step = 0
        self.elapsed = 0.0
        self.timed_out = False  # train.minutes ended the run before train.steps
        self.diagnostics = Diagnostics(cfg, self.source, self.variant.probabilities)
        self._stop = threading.Event()
        n_fixed = N_POINTS if self.source.kind == "toy" else cfg.log.n_samples
        # one fixed set (z, or test images) for every sample grid: a timeline shows it evolve
        self._fixed = self.variant.fixed_inputs(
            self.source, n_fixed, self.num_classes, cfg.seed + 12345
        )
        self._last_batch: Batch | None = None
        self.last_eval: dict[str, Any] | None = None
        self._check_eval()
        if self.dist.rank > 0:  # dropout, noise inputs, mixing: each rank its own draws
            torch.manual_seed(cfg.seed + 1_000_003 * self.dist.rank)
        ck = self._claim(run_dir, resume, from_checkpoint)  # rank 0 alone touches the folder
        if ck is not None:
            self._load_state(ck)
        held = [*self.nets.values(), *([self.ema.net] if self.ema is not None else [])]
        self._scheduled = [m for n in held for m in n.modules() if hasattr(m, "set_progress")]
        self._set_progress()  # nets on a schedule (progressive growing) start where the step is
        if cfg.train.compile:  # after the EMA copy, which samples eagerly
            speed.compile_players(self.nets)
        self.players = distributed.wrap(self.nets, self.dist, self.device)
        self.guard = speed.Guard(self.device)

    # ------------------------------------------------------------------ set-up helpers
    def _lr_factor(self, step: int) -> float:
        """Constant until ``lr_decay_start`` of the steps, then linear to 0 at the last step."""
        if self.cfg.train.lr_decay != "linear":
            return 1.0
        start = self.cfg.train.lr_decay_start * self.cfg.train.steps
        return max(0.0, min(1.0, 1.0 - (step - start) / (self.cfg.train.steps - start)))

    def _caption(self, step: int) -> str:
        """What a net on a schedule was doing at ``step``, from its ``describe_progress(images)``
        hook (progressive growing: the resolution); "" when no net has one."""
        images = step * self.cfg.train.batch_size * self.dist.world
        for m in self._scheduled:
            if hasattr(m, "describe_progress"):
                return m.describe_progress(images)
        return ""

    def _set_progress(self) -> None:
        """Tell every module with a ``set_progress(step, images)`` hook (a net whose structure
        follows a schedule, e.g. progressive growing) where training is: a pure function of the
        step, so a resumed run continues exactly. ``images``: G's, ``step * global batch``."""
        images = self.step * self.cfg.train.batch_size * self.dist.world
        for m in self._scheduled:
            m.set_progress(self.step, images)

    @property
    def sampling_net(self) -> nn.Module:
        return self.ema.net if self.ema is not None else self.nets[self.variant.sampler_player]

    def _threads(self) -> int | None:
        """Small toy nets run fastest on one thread: their matrices are too small to split, and
        on a busy machine two spinning threads were measured up to 35x slower than one."""
        if self.device.type != "cpu":
            return None
        if self.cfg.threads:
            return self.cfg.threads
        return 1 if self.source.kind == "toy" else None

    # ------------------------------------------------------------------ the loop
    def _batch(self, step: int) -> Batch:
        x, y = self.sampler.next()  # a batch, or a tuple of one batch per domain
        b = (x[0] if isinstance(x, tuple) else x).shape[0]
        z = torch.randn(b * self.dist.world, self.cfg.model.z_dim, generator=self.noise)
        z = distributed.shard_latents(z, self.dist, b)  # [B, z_dim]: this rank's rows
        x, z = to_device(x, self.device), z.to(self.device, non_blocking=True)
        if self.cfg.train.channels_last:
            x = speed.channels_last(x)
        y = to_device(y, self.device) if self.num_classes else None
        return Batch(real=x, labels=y, z=z, step=step)

    def _run_phase(self, phase: Phase, window: Window, log_now: bool) -> None:
        for name, net in self.nets.items():  # frozen players build no graph for their weights
            net.requires_grad_(name in phase.updates)
        # the players this phase updates through DDP (when distributed), the others unwrapped
        view = {n: self.players[n] if n in phase.updates else net for n, net in self.nets.items()}
        amp = self.cfg.train.amp and self.device.type in ("cuda", "cpu")
        for i in range(phase.repeat):
            reuse = i == 0 and not phase.new_batch and self._last_batch is not None
            batch = self._last_batch if reuse else self._batch(self.step)
            self._last_batch = batch
            try:
                out = self._loss_backward(phase, view, batch, amp)
            except RuntimeError as e:
                err = speed.double_backward_error(e, phase.name) if self.cfg.train.compile else None
                if err is None:
                    raise
                raise err from None
            if self.augment is not None:
                self.augment.observe(out.logs)  # ada: D's signs on reals, no device sync
            if log_now:
                for name in phase.updates:
                    out.logs[f"grad_norm_{name}"] = grad_norm(self.nets[name].parameters())
            bad = self.guard.watch(phase.name, out.total, self.step)  # None when deferred
            if not self.guard.defer and distributed.any_true(bad is not None, self.dist):
                self._diverged(bad)
            for name in phase.updates:
                self.opts[name].step()
            self.variant.after_step(phase.name, self.nets)
            window.add(out.logs)

    def _loss_backward(self, phase: Phase, view: dict, batch: Batch, amp: bool) -> LossOut:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=amp):
            out = self.variant.loss(phase.name, view, batch)
        out = self.variant.regularize(phase, self.nets, out)  # shared weight penalties, float32
        total = out.total
        if self.dist.enabled:  # every parameter gets a gradient: DDP's all-reduce completes
            total = total + distributed.touch(self.nets[n] for n in phase.updates)
        for name in phase.updates:
            self.opts[name].zero_grad(set_to_none=True)
        total.backward()
        return out

    def _check_guard(self) -> None:
        """Read the deferred NaN flags (a GPU's, at logging and checkpoint steps); every rank
        stops when one saw a bad loss."""
        if not self.guard.defer:
            return
        bad = self.guard.check()
        if distributed.any_true(bad is not None, self.dist):
            self._diverged(bad)

    def _diverged(self, bad: tuple[str, float, int] | None) -> None:
        """Stop: a loss of this rank (``bad``: phase, value, step) or of another became NaN."""
        if bad is None:
            msg = f"a loss on another process became non-finite by step {self.step}"
        else:
            phase, value, step = bad
            seen = "" if step == self.step else f" (seen at step {self.step})"
            msg = f"the {phase} loss became {value} at step {step}{seen}"
        raise TrainingDiverged(
            f"{msg}; {self._survivor()}: lower the learning rates or try train.variant=wgan-gp"
        )

    def _survivor(self) -> str:
        """Which checkpoint a stopped run leaves, in words."""
        found = checkpoint.checkpoints(self.dir)
        if found:
            return f"the last good checkpoint is {found[-1]}"
        return (
            f"no checkpoint was written yet (log.checkpoint_every={self.cfg.log.checkpoint_every}),"
            f" so a new start reuses {self.dir}"
        )

    def fit(self) -> Run:
        try:
            return self._fit()
        except KeyboardInterrupt:
            if self.dist.main:
                print(
                    f"gankit: interrupted at step {self.step}; {self._survivor()}", file=sys.stderr
                )
            raise
        except RuntimeError as e:
            if not (self.dist.enabled and distributed.is_comm_error(e)):
                raise
            raise GankitError(
                f"another process of this run stopped at step {self.step} "
                f"({' '.join(str(e).split())[:80]}); {self._survivor()}; resume it with "
                f"torchrun --nproc_per_node={self.dist.world} -m gankit train --resume {self.dir}"
            ) from None
        finally:
            if hasattr(self.sampler, "close"):  # stop a folder's decoding workers
                self.sampler.close()
            self.lock.release()

    def _fit(self) -> Run:
        cfg, d = self.cfg, self.dist
        if d.main:
            self._prepare_dir()
        logger = Logger(self.dir, cfg, self.step, cfg.train.steps) if d.main else NoLogger()
        if d.enabled:
            self.notes.insert(
                0,
                f"{d.world} processes ({d.backend}): train.batch_size={cfg.train.batch_size} per "
                f"process, global batch {cfg.train.batch_size * d.world}",
            )
        for note in self.notes:
            logger.note(note)
        window = Window()
        t0 = time.perf_counter() - self.elapsed
        t_log, img_log = time.perf_counter(), 0
        interrupted = False
        self._all_threads = torch.get_num_threads()
        with sigint_flag(self._stop, d.enabled), cpu_threads(self._threads()), logger:
            if self._time_up(t0):  # a run resumed without more time takes no step
                self.timed_out = True
                logger.note(f"train.minutes={cfg.train.minutes:g} already spent; no step taken")
            while self.step < cfg.train.steps and not self.timed_out:
                if distributed.any_true(self._stop.is_set(), d):  # every rank stops together
                    interrupted = True
                    break
                log_now = (self.step + 1) % cfg.log.every == 0 or self.step + 1 == cfg.train.steps
                for phase in self.phases:
                    if self.step % phase.every == 0:
                        self._run_phase(phase, window, log_now)
                self._last_batch = None  # the next step's first phase draws a fresh batch
                distributed.sync_buffers(self.nets.values(), d)
                for s in self.sched.values():
                    s.step()
                if self.ema is not None:
                    self.ema.update(self.nets[self.variant.sampler_player], self.step)
                self.step += 1
                self._set_progress()
                if self.augment is not None:  # ada: p follows D's overfitting
                    mean = functools.partial(distributed.mean_values, d=d)
                    self.augment.update(self.step, mean, d.world)
                timed_out = self._time_up(t0)
                last = self.step == cfg.train.steps or timed_out
                img_log += cfg.train.batch_size * d.world * max(p.repeat for p in self.phases)
                if log_now or self.step % cfg.log.checkpoint_every == 0 or last:
                    self._check_guard()  # before a row is logged or a checkpoint written
                if log_now:
                    now = time.perf_counter()
                    row = {"step": self.step, **distributed.mean_values(window.means(), d)}
                    row["img_per_s"] = img_log / max(now - t_log, 1e-9)
                    row["lr_G"] = self.sched[self.variant.players[0]].get_last_lr()[0]
                    row["seconds"] = now - t0
                    if self.augment is not None:
                        row.update(self.augment.row())
                    t_log, img_log = now, 0
                    if d.main:
                        for msg in self.diagnostics.observe(row):
                            logger.warn(msg)
                    logger.row(row)
                # rank 0 alone draws and writes samples
                if d.main and (self.step % cfg.log.sample_every == 0 or last):
                    fake = self._generate()
                    self._save_samples(fake)
                    for msg in self.diagnostics.check_samples(self.step, fake):
                        logger.warn(msg)
                if cfg.eval.every and (self.step % cfg.eval.every == 0 or last):
                    self._evaluate(logger)  # every rank: each extracts its share of the samples
                if self.step % cfg.log.checkpoint_every == 0 or last:
                    self.elapsed = time.perf_counter() - t0
                    self._save()
                if timed_out:
                    self.timed_out = True
                    logger.note(
                        f"time limit of train.minutes={cfg.train.minutes:g} reached at step "
                        f"{self.step}; checkpoint saved (resume with a larger train.minutes, or "
                        "train.minutes=0 to train on to train.steps)"
                    )  # the loop's condition ends the run here
            if interrupted:
                self.elapsed = time.perf_counter() - t0
                self._check_guard()
                self._save()
                how = f"torchrun --nproc_per_node={d.world} -m " if d.enabled else ""
                logger.note(
                    f"interrupted: checkpoint at step {self.step} saved; resume with "
                    f"{how}gankit train --resume {self.dir}"
                )
            self.elapsed = time.perf_counter() - t0
            summary = distributed.broadcast(self._finish(interrupted) if d.main else None, d)
            logger.done(summary)
        return Run(self.dir, cfg, summary, self.sampling_net, interrupted)

    def _time_up(self, t0: float) -> bool:
        """Whether ``train.minutes`` of training (over resumes) are spent, agreed by every rank."""
        if not self.cfg.train.minutes:
            return False
        spent = time.perf_counter() - t0 >= 60.0 * self.cfg.train.minutes
        return distributed.any_true(spent, self.dist)


def train(cfg: Config | str | dict | None = None, overrides: list[str] | str | None = None) -> Run:
    """Train from a Config, a preset name, a YAML path or a config dict (None = the embedded
    default), with overrides as ``config.load`` takes them (a list of ``key=value``, one string,
    or a dict)."""
    if isinstance(cfg, Config):
        cfg = config_mod.with_overrides(cfg, overrides) if overrides else cfg
    else:
        cfg = config_mod.load(cfg, overrides)
    return Trainer(cfg).fit()


# what a resumed run may change: nothing that changes the game, the data or their order
RESUMABLE_KEYS = (
    "train.steps",
    "train.minutes",
    "log.",
    "device",
    "threads",
    "data.cache",
    "data.workers",
    "data.memory_gb",
)


def resume(run: str | Path, overrides: list[str] | str | None = None) -> Run:
    """Continue a run exactly: a run folder (its newest intact checkpoint; step 0 when it has none
    yet) or one of its checkpoint files. ``train.steps=N`` extends it."""
    path = Path(run)
    ckpt = None
    if path.is_file() and path.suffix == ".pt":
        ckpt, path = path, path.parent.parent  # <run>/checkpoints/step_N.pt
    if not (path / "config.yaml").is_file():
        raise UserError(f"{run} is not a run folder (no config.yaml); pass runs/<name>")
    for key in config_mod.check_keys(overrides):  # a typo is reported as such, not as
        if not key.startswith(RESUMABLE_KEYS):  # "cannot change"
            raise UserError(
                f"cannot change {key} when resuming; only train.steps, train.minutes, log.*, "
                "device, threads and how a folder is held (data.cache, data.workers, "
                "data.memory_gb) may change"
            )
    stored = variants.upgrade_stored(config_mod.read_file(path / "config.yaml"))
    cfg = config_mod.load(stored, overrides)
    return Trainer(cfg, run_dir=path, resume=True, from_checkpoint=ckpt).fit()
