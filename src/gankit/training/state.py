"""What a checkpoint holds and how a run comes back from one, exactly: nets, optimizers,
schedules, the EMA, every random stream, variant and augmentation state, each rank's own part
under torchrun; claiming the run folder and choosing the checkpoint to resume. A part of
``Trainer`` (a mixin), kept apart so that the loop reads on one screen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .. import report
from ..errors import UserError
from ..files import remove_stale_temporaries
from . import checkpoint, distributed
from .process import NoLock
from .rundir import claim_dir, lock_dir, step_of

KEEP_CHECKPOINTS = 3


class CheckpointState:
    # ------------------------------------------------------------------ the run folder
    def _claim(self, run_dir: Path | None, resume: bool, ckpt: Path | None) -> dict | None:
        """Rank 0 claims (or locks) the run folder and reads the checkpoint to resume; every
        rank gets the folder, the checkpoint and rank 0's notes, or rank 0's error."""
        reply: tuple = ("ok", None, None, [])
        if self.dist.main:
            try:
                self.dir, self.lock = (
                    claim_dir(self.cfg.run_dir) if run_dir is None else lock_dir(run_dir)
                )
            except UserError as e:
                distributed.broadcast(("error", str(e)), self.dist)
                raise
            try:
                removed = remove_stale_temporaries([self.dir, self.dir / "checkpoints"])
                if removed:
                    self.notes.append(f"removed {len(removed)} temporary file(s) of a killed write")
                ck = self._resume(ckpt) if resume else None
            except BaseException as e:
                self.lock.release()
                distributed.broadcast(("error", str(e)), self.dist)
                raise
            reply = ("ok", str(self.dir), ck, self.notes)
        reply = distributed.broadcast(reply, self.dist)
        if reply[0] == "error":
            raise UserError(reply[1])  # rank 0 says it; the CLI prints only rank 0's errors
        if not self.dist.main:
            self.dir, self.lock = Path(reply[1]), NoLock()
        return reply[2]

    def _resume(self, path: Path | None) -> dict[str, Any] | None:
        """The checkpoint to continue from (None: none written yet, start at step 0)."""
        if path is None and not checkpoint.checkpoints(self.dir):
            self.notes.append(
                f"{self.dir} has no checkpoint (stopped before its first one): starting it "
                "again from step 0"
            )
            return None
        chosen = path is not None  # a checkpoint file named by the user, maybe not the newest
        if chosen:
            ck = checkpoint.load(path)
        else:
            path, ck, skipped = checkpoint.load_latest(self.dir)
            self.notes.extend(skipped)
        if self.cfg.train.steps < int(ck["step"]):
            raise UserError(
                f"{path} is at step {ck['step']}, beyond train.steps={self.cfg.train.steps}; "
                f"resume with train.steps={ck['step']} or more"
            )
        if chosen:
            newer = [p for p in checkpoint.checkpoints(self.dir) if step_of(p) > int(ck["step"])]
            if newer:
                aside = self.dir / "checkpoints" / "superseded"
                aside.mkdir(exist_ok=True)
                for p in newer:
                    p.replace(aside / p.name)
                self.notes.append(
                    f"resuming from step {ck['step']}: the {len(newer)} newer checkpoint(s) moved "
                    f"to {aside}"
                )
        return ck

    # ------------------------------------------------------------------ checkpoints
    def _prepare_dir(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for step, frame in report.find_samples(self.dir / "samples"):  # an abandoned future
            if step > self.step:
                frame.unlink()
        (self.dir / "config.yaml").write_text(self.cfg.to_yaml())

    def state(self) -> dict[str, Any]:
        return {
            "format": checkpoint.FORMAT,
            "step": self.step,
            "elapsed": self.elapsed,
            "config": self.cfg.to_dict(),
            "meta": {
                "shape": list(self.source.shape),
                "num_classes": self.num_classes,
                "kind": self.source.kind,
                "sampler_player": self.variant.sampler_player,
            },
            "nets": {k: v.state_dict() for k, v in self.nets.items()},
            "opts": {k: v.state_dict() for k, v in self.opts.items()},
            "sched": {k: v.state_dict() for k, v in self.sched.items()},
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rng": {
                **self._own_random(),
                "noise": self.noise.get_state(),
                "data": self.sampler.state_dict(),
            },
            "diagnostics": self.diagnostics.state_dict(),
            "variant": self.variant.state_dict(),
            "augment": self.augment.state_dict() if self.augment is not None else {},
        }

    def _own_random(self) -> dict[str, Any]:
        """This process's random state: the global generators (the shared streams, noise and
        data, are the same on every rank)."""
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def _save(self) -> None:
        own = {"rng": self._own_random(), "variant": self.variant.state_dict()}
        if self.augment is not None:  # ada's sums of signs are each rank's own
            own["augment"] = self.augment.state_dict()
        ranks = distributed.gather(own, self.dist)  # every rank's part, on rank 0
        if not self.dist.main:
            return
        state = self.state()
        if self.dist.enabled:
            state["ranks"] = ranks
        checkpoint.save_atomic(state, checkpoint.step_path(self.dir, self.step))
        checkpoint.prune(self.dir, KEEP_CHECKPOINTS)

    def _load_state(self, ck: dict[str, Any]) -> None:
        try:
            self._restore(ck)
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as e:
            reason = " ".join(str(e).split())[:100] or type(e).__name__
            raise UserError(
                f"a checkpoint of {self.dir} does not fit this run ({type(e).__name__}: "
                f"{reason}); resume from another checkpoint file"
            ) from None

    def _restore(self, ck: dict[str, Any]) -> None:
        for k, net in self.nets.items():
            net.load_state_dict(ck["nets"][k])
        for k, opt in self.opts.items():
            opt.load_state_dict(ck["opts"][k])
        for k, s in self.sched.items():
            s.load_state_dict(ck["sched"][k])
        if self.ema is not None and ck["ema"] is not None:
            self.ema.load_state_dict(ck["ema"])
        own = self._rank_part(ck)
        if own is not None:
            torch.set_rng_state(own["rng"]["torch"])
            if own["rng"]["cuda"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(own["rng"]["cuda"])
            self.variant.load_state_dict(own["variant"])
        else:  # a rank the checkpoint's run did not have: fresh draws, rank 0's variant state
            torch.manual_seed(self.cfg.seed + 1_000_003 * self.dist.rank + int(ck["step"]))
            self.variant.load_state_dict(ck.get("variant", {}))
        if self.augment is not None:
            self.augment.load_state_dict((own or ck).get("augment"), self.device)
        self.noise.set_state(ck["rng"]["noise"])
        self.sampler.load_state_dict(ck["rng"]["data"])
        self.diagnostics.load_state_dict(ck.get("diagnostics", {}))
        self.step, self.elapsed = int(ck["step"]), float(ck["elapsed"])

    def _rank_part(self, ck: dict[str, Any]) -> dict[str, Any] | None:
        """This rank's random state and variant state in ``ck`` (None: it has none), and a note
        when the checkpoint was written by another number of processes."""
        ranks = ck.get("ranks") or [
            {"rng": ck["rng"], "variant": ck.get("variant", {}), "augment": ck.get("augment")}
        ]
        world, batch = self.dist.world, self.cfg.train.batch_size
        if len(ranks) != world:
            self.notes.append(
                f"the checkpoint was written by {len(ranks)} process(es) (global batch "
                f"{batch * len(ranks)}) and this run has {world} (global batch {batch * world}): "
                "the data order and latents continue where they stopped, in batches of the new "
                "size with the same learning rates, so the run is no longer an exact "
                f"continuation; resume with {len(ranks)} process(es) for that"
            )
        return ranks[self.dist.rank] if self.dist.rank < len(ranks) else None
