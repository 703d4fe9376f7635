"""Run folders: which one a run writes, and a lock while it does.

A fresh run takes ``<out>/<name>``, or ``<name>-2``, ... when that one holds checkpoints or another
process is training it; a folder left by a run stopped before its first checkpoint is reused.
The lock is an OS file lock (``filelock``) on ``<run>/.lock``: the kernel drops it when the
process dies, so a killed run never leaves a stale lock.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from . import checkpoint


class RunLock:
    """An exclusive lock on a run folder while one process writes it (``<run>/.lock``, an OS file
    lock through ``filelock``: the kernel drops it when the process dies, so a killed run never
    leaves a stale lock)."""

    def __init__(self, run_dir: Path):
        from filelock import FileLock

        self.dir = run_dir
        self._lock = FileLock(str(run_dir / ".lock"))

    def acquire(self) -> bool:
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            return False
        return True

    def release(self) -> None:
        self._lock.release()


def step_of(path: Path) -> int:
    """The step in a ``step_NNNNNNN.pt`` name."""
    return int(path.stem.split("_")[-1])


def lock_dir(run_dir: Path) -> tuple[Path, RunLock]:
    lock = RunLock(Path(run_dir))
    if not lock.acquire():
        raise UserError(
            f"{run_dir} is being trained by another gankit process; wait for it to finish or "
            "stop it (Ctrl-C) before resuming"
        )
    return Path(run_dir), lock


def claim_dir(base: Path) -> tuple[Path, RunLock]:
    """``runs/name``, or ``runs/name-2``, ... when that one holds checkpoints or another process
    is training it: results are never overwritten. A folder left by a run stopped before its
    first checkpoint is reused."""
    for i in range(1, 10_000):
        cand = base if i == 1 else base.parent / f"{base.name}-{i}"
        if checkpoint.checkpoints(cand):
            continue
        cand.mkdir(parents=True, exist_ok=True)
        lock = RunLock(cand)
        if lock.acquire():
            if not checkpoint.checkpoints(cand):  # nobody wrote one while we took the lock
                return cand, lock
            lock.release()
    raise UserError(f"no free run folder named {base.name}-N in {base.parent}; choose a new name")
