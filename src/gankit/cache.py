"""gankit's cache folder: trained evaluation classifiers, reference statistics, weights.

``$GANKIT_CACHE``, else ``$XDG_CACHE_HOME/gankit``, else ``~/.cache/gankit``. Data sets have
their own root (``gankit.data.data_root``), which defaults to ``<cache>/data``.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """``<cache>/<parts...>`` (not created)."""
    if os.environ.get("GANKIT_CACHE"):
        root = Path(os.environ["GANKIT_CACHE"]).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = Path(xdg).expanduser() / "gankit"
    return root.joinpath(*parts)
