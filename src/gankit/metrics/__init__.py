"""Metrics: one file each, registered by name; they never import training code.

``fidelity`` and ``inception`` (torch-fidelity, slow to import) load on first use.
"""

from . import classifier, modes, ppl, stacked_mnist  # noqa: F401  (register their metrics)
