"""gankit: train, evaluate and explore Generative Adversarial Networks with PyTorch.

>>> import gankit
>>> run = gankit.train("ring", ["train.steps=500"])       # or a Config, or a YAML path
>>> x = gankit.load_generator(run.dir).sample(64)

Names are imported on first use (PEP 562), so ``gankit --help`` and config errors answer without
loading torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import GankitError, UserError

__version__ = "0.1.0"

_LAZY = {
    "Config": "config",
    "DataConfig": "config",
    "LogConfig": "config",
    "ModelConfig": "config",
    "TrainConfig": "config",
    "load_config": ("config", "load"),
    "EvalConfig": "config",
    "evaluate": "api",
    "Generator": "api",
    "export": "api",
    "load_generator": "api",
    "load_translator": "api",
    "Translator": "control.translate",
    "Run": "training.trainer",
    "Trainer": "training.trainer",
    "TrainingDiverged": "training.trainer",
    "resume": "training.trainer",
    "train": "training.trainer",
    "losses": None,
    "report": None,
    "data": None,
    "nets": None,
    "variants": None,
    "metrics": None,
    "theory": None,
}

__all__ = ["GankitError", "UserError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'gankit' has no attribute {name!r}")
    target = _LAZY[name]
    if target is None:  # a subpackage
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        module, attr = (target, name) if isinstance(target, str) else target
        value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # for type checkers and IDEs
    from . import data, losses, metrics, nets, report, theory, variants  # noqa: F401
    from .api import Generator, evaluate, export, load_generator, load_translator  # noqa: F401
    from .config import (  # noqa: F401
        Config,
        DataConfig,
        EvalConfig,
        LogConfig,
        ModelConfig,
        TrainConfig,
    )
    from .config import load as load_config  # noqa: F401
    from .control.translate import Translator  # noqa: F401
    from .training.trainer import Run, Trainer, TrainingDiverged, resume, train  # noqa: F401
