"""The argument parser of every ``gankit`` command and the checked types of its flags.

A bad flag answers like every other user mistake: one line, ``gankit: error: ...``, naming the
flag as typed and pointing at ``--help``, exit status 2; never argparse's usage block.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from .config import SEED_MAX
from .errors import UserError


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are a ``UserError`` (subparsers inherit it), so
    ``gankit.cli.main`` prints them as one line and returns 2 like every other mistake."""

    def error(self, message: str):  # type: ignore[override]
        raise UserError(f"{message} (see {self.prog} --help)")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"want an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"want a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"want a finite number, got {text!r}")
    return value


def int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = _int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    parse.__name__ = f"int >= {low}"
    return parse


positive_int = int_at_least(1)
count = int_at_least(0)


def seed(text: str) -> int:
    value = _int(text)
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be in 0..{SEED_MAX}, got {value}")
    return value


def number(low: float | None = None, high: float | None = None, low_open: bool = False):
    """A finite float in [low, high] (``low_open``: (low, high])."""

    def parse(text: str) -> float:
        value = _float(text)
        below = low is not None and (value <= low if low_open else value < low)
        if below or (high is not None and value > high):
            lo = "-inf" if low is None else f"{low:g}"
            hi = "inf" if high is None else f"{high:g}"
            left, right = "(" if low_open or low is None else "[", ")" if high is None else "]"
            interval = f"{left}{lo}, {hi}{right}"
            raise argparse.ArgumentTypeError(f"must be in {interval}, got {text}")
        return value

    return parse


positive = number(0, None, low_open=True)
non_negative = number(0)
probability = number(0, 1, low_open=True)
