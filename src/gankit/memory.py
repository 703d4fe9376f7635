"""Sizes checked against the memory this machine has, before the allocation that would fail.

A request like ``--n 100000000`` must be one sentence, not an allocator traceback, and it must not
push the machine into swapping or the kernel's OOM killer (Linux over-commits: a huge
``torch.empty`` can succeed and kill the process only when it is touched). ``check`` compares
an estimate with the memory available now (``MemAvailable`` of ``/proc/meminfo``, else the
free physical pages); when neither can be read it checks nothing.
"""

from __future__ import annotations

import os

from .errors import UserError

GIB = 1024**3


def available() -> int | None:
    """Bytes of memory available to a new allocation now, or None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check(nbytes: float, what: str, fix: str) -> None:
    """Raise ``UserError`` when ``nbytes`` exceeds the memory available now.

    ``what`` names the request as the user typed it (``"--n 100000000"``); ``fix`` says what to
    lower (``"ask for fewer samples"``)."""
    free = available()
    if free is None or nbytes <= free:
        return
    raise UserError(
        f"{what}: about {nbytes / GIB:.1f} GiB of memory would be needed, more than the "
        f"{free / GIB:.1f} GiB free on this machine; {fix}"
    )
