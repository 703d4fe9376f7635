"""Name -> constructor registries for networks, variants, data sets and metrics.

Registering the same name twice is an error: a silent overwrite would make the winner depend on
import order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import UserError


class Registry:
    """A named table of constructors filled by the ``register`` decorator."""

    def __init__(self, kind: str):
        self.kind = kind  # what the entries are, for error messages ("network", "variant", ...)
        self._entries: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def deco(obj: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._entries:
                raise RuntimeError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return deco

    def get(self, name: str) -> Callable[..., Any]:
        if name not in self._entries:
            raise UserError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            )
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries


NETS = Registry("network")
VARIANTS = Registry("variant")
DATASETS = Registry("data set")
METRICS = Registry("metric")
