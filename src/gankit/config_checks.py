"""The value checks of a config that a type alone cannot express (``validate``), and the helpers
they share with the nets and data sets: the augmentation policy and a pair's domains.

Split from ``config.py`` to keep each file readable; ``config`` re-exports every public name here,
so ``gankit.config.validate`` and the rest still work.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .errors import UserError

if TYPE_CHECKING:
    from .config import Config, DataConfig


def validate(cfg: Config) -> None:
    """Value checks that a type alone cannot express."""
    from .config import SEED_MAX, parse_metrics

    positive = {
        "train.steps": cfg.train.steps,
        "train.batch_size": cfg.train.batch_size,
        "train.n_critic": cfg.train.n_critic,
        "train.g_steps": cfg.train.g_steps,
        "model.z_dim": cfg.model.z_dim,
        "model.width": cfg.model.width,
        "data.size": cfg.data.size,
        "log.every": cfg.log.every,
        "log.sample_every": cfg.log.sample_every,
        "log.checkpoint_every": cfg.log.checkpoint_every,
        "log.n_samples": cfg.log.n_samples,
    }
    for key, v in positive.items():
        if v <= 0:
            raise UserError(f"{key} must be positive, got {v}")
    for key, v in {"train.lr_g": cfg.train.lr_g, "train.lr_d": cfg.train.lr_d}.items():
        if not v > 0:
            raise UserError(f"{key} must be positive, got {v}")
    if not (math.isfinite(cfg.train.minutes) and cfg.train.minutes >= 0):
        raise UserError(
            f"train.minutes must be 0 (no time limit) or positive, got {cfg.train.minutes}"
        )
    if cfg.eval.every < 0:
        raise UserError(f"eval.every must be 0 (off) or positive, got {cfg.eval.every}")
    if cfg.eval.every and not cfg.eval.metrics.strip():
        raise UserError("eval.every is set but eval.metrics is empty; e.g. eval.metrics=cfid")
    if cfg.eval.metrics.strip():
        parse_metrics(cfg.eval.metrics)
    if cfg.eval.n < 2:
        raise UserError(f"eval.n must be at least 2, got {cfg.eval.n}")
    if not 0 <= cfg.seed <= SEED_MAX:
        raise UserError(f"seed must be in 0..{SEED_MAX}, got {cfg.seed}")
    if cfg.threads < 0:
        raise UserError(f"threads must be 0 (auto) or positive, got {cfg.threads}")
    _validate_remedies(cfg)
    _validate_augment(cfg)
    if cfg.model.depth < 1:
        raise UserError(f"model.depth must be at least 1, got {cfg.model.depth}")
    if not 0 <= cfg.model.dropout < 1:
        raise UserError(f"model.dropout must be in [0, 1), got {cfg.model.dropout}")
    if not 0 <= cfg.train.label_smoothing < 0.5:
        raise UserError(
            f"train.label_smoothing must be in [0, 0.5), got {cfg.train.label_smoothing}; "
            "0.1 makes the real target 0.9"
        )
    for key, v in {"train.beta1": cfg.train.beta1, "train.beta2": cfg.train.beta2}.items():
        if not 0 <= v < 1:
            raise UserError(f"{key} must be in [0, 1), got {v}")
    if not cfg.train.ortho_reg >= 0:
        raise UserError(
            f"train.ortho_reg must be 0 (off) or positive (BigGAN: 1e-4), got {cfg.train.ortho_reg}"
        )
    if not 0 <= cfg.train.ema < 1:
        raise UserError(f"train.ema must be in [0, 1) (0 turns it off), got {cfg.train.ema}")
    if not 0 <= cfg.model.leak < 1:
        raise UserError(f"model.leak must be in [0, 1) (0 is a plain ReLU), got {cfg.model.leak}")
    if not 0 <= cfg.train.lr_decay_start < 1:
        raise UserError(
            f"train.lr_decay_start must be in [0, 1), got {cfg.train.lr_decay_start}; 0.5 keeps "
            "the learning rate constant for the first half, then decays it linearly to 0"
        )
    _validate_domains(cfg.data)
    _validate_folder_keys(cfg.data, "data.")
    if cfg.data.channels not in (1, 3):
        raise UserError(f"data.channels must be 1 or 3, got {cfg.data.channels}")
    if not cfg.name or "/" in cfg.name or cfg.name in (".", ".."):
        raise UserError(f"name must be a plain folder name, got {cfg.name!r}")
    paths = {
        "name": cfg.name,
        "out": cfg.out,
        "data.root": cfg.data.root,
        "data.path": cfg.data.path,
        "eval.inception_weights": cfg.eval.inception_weights,
    }
    for key, v in paths.items():
        if v is not None and "\0" in v:
            raise UserError(f"{key} holds a NUL character, which no path can; got {v!r}")
    dev = cfg.device
    n = dev[5:]
    if not (
        dev in ("auto", "cpu", "cuda", "mps")
        or (dev.startswith("cuda:") and n.isascii() and n.isdigit())
    ):
        raise UserError(f"device must be auto, cpu, cuda, cuda:N or mps, got {dev!r}")


# train.augment_policy's choices
AUGMENT_KINDS = ("flip", "geometric", "color", "translation", "cutout")


def augment_policy(text: str) -> tuple[str, ...]:
    """``"color,translation,cutout"`` -> the kinds, checked; a UserError names a bad one."""
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    choose = f"choose from {','.join(AUGMENT_KINDS)}"
    if not kinds:
        raise UserError(f"train.augment_policy is empty; {choose}")
    for k in kinds:
        if k not in AUGMENT_KINDS:
            raise UserError(f"train.augment_policy has an unknown kind {k!r}; {choose}")
    if len(set(kinds)) < len(kinds):
        raise UserError(f"train.augment_policy names a kind twice ({text}); name each once")
    return kinds


def _validate_augment(cfg: Config) -> None:
    """train.augment's keys (nets/augment.py), and data.limit."""
    t = cfg.train
    augment_policy(t.augment_policy)
    if t.augment_p is not None and not 0 <= t.augment_p <= 1:
        raise UserError(f"train.augment_p must be in [0, 1] (or null), got {t.augment_p}")
    if not 0 < t.ada_target < 1:
        raise UserError(
            f"train.ada_target must be in (0, 1) (Karras et al.: 0.6), got {t.ada_target}"
        )
    if t.ada_interval < 1:
        raise UserError(f"train.ada_interval must be at least 1 step, got {t.ada_interval}")
    if not t.ada_kimg > 0:
        raise UserError(f"train.ada_kimg must be a positive number, got {t.ada_kimg}")
    if cfg.data.limit < 0:
        raise UserError(
            f"data.limit must be 0 (all images) or a number of images, got {cfg.data.limit}"
        )


def _validate_remedies(cfg: Config) -> None:
    """train.pac and model.mbstd: ranges, and what packing cannot do."""
    pac, batch = cfg.train.pac, cfg.train.batch_size
    if pac < 1:
        raise UserError(f"train.pac must be at least 1 (1 = no packing), got {pac}")
    if batch % pac:
        raise UserError(
            f"train.batch_size={batch} must be divisible by train.pac={pac}: D scores packs of "
            "train.pac samples"
        )
    if pac > 1 and cfg.data.classes:
        raise UserError(
            "train.pac packs unlabelled samples (a pack would hold several classes); set "
            "data.classes=false or train.pac=1"
        )
    if cfg.model.mbstd < 0 or cfg.model.mbstd == 1:
        raise UserError(
            f"model.mbstd must be 0 (off) or a group size of at least 2, got {cfg.model.mbstd}"
        )


DOMAIN_SHARED = ("size", "channels", "root", "download")  # set once, in data.*, for both domains


def _validate_domains(data: DataConfig) -> None:
    """data.a / data.b belong to data.name=pair, which needs both or a CycleGAN folder."""
    if data.name != "pair":
        if data.a or data.b:
            key = "data.a" if data.a else "data.b"
            raise UserError(
                f"{key} is a domain of data.name=pair, but data.name={data.name}; set "
                "data.name=pair or drop the domains"
            )
        return
    if data.path and (data.a or data.b):
        raise UserError(
            "data.name=pair takes either data.path (a CycleGAN folder) or data.a and data.b, "
            "not both; drop one"
        )
    # neither domains nor a folder (the folder preset before data.path is set): the data set
    # itself says so when it is built, so that every preset still loads
    for label in ("a", "b"):
        domain = getattr(data, label)
        for key in DOMAIN_SHARED:
            if key in domain:
                raise UserError(
                    f"data.{label}.{key} cannot be set per domain: both domains share data.{key}"
                )
        for key in ("a", "b", "classes", "path"):
            if key == "path" and domain.get("name") == "folder":
                continue
            if key in domain:
                raise UserError(
                    f"data.{label}.{key} has no meaning for a domain; drop it (a domain is one "
                    "data set, unlabelled for translation; data.path is for name=folder)"
                )
        # unknown keys and wrong types answer before anything loads
        _validate_folder_keys(domain_config(data, label), f"data.{label}.")


FOLDER_KEYS = ("cache", "memory_gb", "workers", "crop", "skip_bad")  # data.name=folder only


def _validate_folder_keys(data: DataConfig, prefix: str) -> None:
    """The keys of image folders: sane values, and set only where a folder reads them."""
    if data.workers is not None and data.workers < 0:
        raise UserError(
            f"{prefix}workers must be 0 (decode in the main process), a number of worker "
            f"processes or null (one per core but one), got {data.workers}"
        )
    if not data.memory_gb > 0:
        raise UserError(f"{prefix}memory_gb must be a positive number of GiB, got {data.memory_gb}")
    if data.name == "folder":
        return
    from .config import DataConfig

    defaults = DataConfig()
    for key in FOLDER_KEYS:
        if getattr(data, key) != getattr(defaults, key):
            where = (
                "set it per domain (data.a.name=folder data.a.{key}=...)"
                if data.name == "pair"
                else "drop it"
            )
            raise UserError(
                f"{prefix}{key} is a key of image folders (data.name=folder), not of "
                f"{data.name}; {where.format(key=key)}"
            )


def domain_config(data: DataConfig, label: str) -> DataConfig:
    """Domain ``label`` ("a" or "b") of a pair as a DataConfig of its own, with the pair's shared
    size, channels, root and download."""
    from .config import DataConfig, build_options

    shared = {k: getattr(data, k) for k in DOMAIN_SHARED}
    values = {**getattr(data, label), **shared}
    return build_options(DataConfig, values, f"data.{label}.", f"domain data.{label}")
