"""What the training loop needs from its process: threads, signals, the device transfer of
nested batches, and the stand-ins ranks other than 0 use for the run folder's lock and logger."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any

import torch
from torch import Tensor

from ..errors import UserError


class NoLock:
    """The run folder's lock on ranks other than 0 (which never write the folder)."""

    def release(self) -> None:
        pass


class NoLogger:
    """The logger of ranks other than 0: says nothing, writes nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None


def to_device(obj: Any, device: torch.device) -> Any:
    """Tensors, and tuples or lists of them (None kept), moved to ``device``."""
    if isinstance(obj, Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, (tuple, list)):
        return type(obj)(to_device(o, device) for o in obj)
    return obj


def check_tensorboard() -> None:
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        raise UserError(
            "log.tensorboard needs the tensorboard package: pip install tensorboard"
        ) from None


@contextlib.contextmanager
def cpu_threads(n: int | None):
    """Use n intra-op threads inside the block and restore the caller's setting after it."""
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@contextlib.contextmanager
def sigint_flag(flag: threading.Event, torchrun: bool = False):
    """First Ctrl-C asks the loop to checkpoint and stop at the end of the step; a second one
    interrupts at once (the last checkpoint on disk stays intact: writes are atomic).

    Under torchrun (``torchrun``) SIGINT and SIGTERM only ask: torchrun passes a Ctrl-C on to
    its workers, so each sees it twice, and it kills them itself if they take too long."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if flag.is_set() and not torchrun:
            raise KeyboardInterrupt
        flag.set()

    signals = (signal.SIGINT, signal.SIGTERM) if torchrun else (signal.SIGINT,)
    old = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
