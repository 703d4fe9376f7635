"""Atomic checkpoints that load without unpickling code.

A checkpoint is a plain dict of tensors, numbers, strings and lists, written to a temporary file
in the same folder and renamed over the target, so a crash or Ctrl-C mid-write leaves the last
good one. It loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from ..errors import UserError
from ..files import atomic_path

FORMAT = "gankit-checkpoint-1"
REQUIRED = ("step", "elapsed", "config", "meta", "nets", "opts", "sched", "rng")
_STEP_RE = re.compile(r"step_(\d+)\.pt$")


def save_atomic(obj: dict[str, Any], path: Path) -> Path:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())  # on disk before the rename makes it the checkpoint
    return Path(path)


def load(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; pass a run folder or a .pt file")
    try:
        with warnings.catch_warnings():  # torch warns about foreign files before refusing them
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file: say which, not where torch failed
        raise UserError(
            f"{path} is not a readable gankit checkpoint ({type(e).__name__}); "
            "use another checkpoint from the run's checkpoints/ folder"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{path} is not a gankit checkpoint (no {FORMAT!r} marker)")
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise UserError(f"{path} is a damaged gankit checkpoint (no {missing[0]!r}); use another")
    return ckpt


def step_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step_{step:07d}.pt"


def checkpoints(run_dir: Path) -> list[Path]:
    """The run's checkpoints, oldest first."""
    folder = Path(run_dir) / "checkpoints"
    found = [
        (int(m.group(1)), p) for p in folder.glob("step_*.pt") if (m := _STEP_RE.search(p.name))
    ]
    return [p for _, p in sorted(found)]


def latest(run_dir: Path) -> Path:
    found = checkpoints(run_dir)
    if not found:
        raise UserError(f"{run_dir} has no checkpoints; train it first (gankit train)")
    return found[-1]


def load_latest(run_dir: Path) -> tuple[Path, dict[str, Any], list[str]]:
    """The newest checkpoint of a run that loads: ``(path, checkpoint, notes)``; ``notes`` says
    which newer ones were unreadable and skipped (a crash, a full disk, a flipped bit)."""
    found = checkpoints(run_dir)
    if not found:
        raise UserError(f"{run_dir} has no checkpoints; train it first (gankit train)")
    notes = []
    for path in reversed(found):
        try:
            ckpt = load(path)
        except UserError as e:
            notes.append(f"skipped the unreadable checkpoint {path} ({e})")
            continue
        if notes:
            notes.append(f"using {path.name}, the newest intact checkpoint")
        return path, ckpt, notes
    raise UserError(
        f"none of the {len(found)} checkpoints in {Path(run_dir) / 'checkpoints'} is readable; "
        "the run cannot be resumed or sampled (train it again)"
    )


def prune(run_dir: Path, keep: int) -> None:
    """Keep the newest ``keep`` checkpoints."""
    for p in checkpoints(run_dir)[:-keep]:
        p.unlink(missing_ok=True)
