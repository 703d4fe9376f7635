"""Strict configuration: typed dataclasses, YAML presets and ``key=value`` overrides.

Following nanoGPT's rule that an override is strict: an unknown key or a value of the wrong type
is a ``UserError`` naming the key, never a silent default. The dataclass defaults *are* the
embedded default run: the non-saturating GAN (Goodfellow et al. 2014) on the 8-Gaussian ring.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

from .errors import UserError
from .overrides import _merge, normalize_overrides, parse_overrides  # noqa: F401  (public here too)
from .yamlfile import (  # noqa: F401  (DuplicateKeyError, StrictLoader: public here too)
    DuplicateKeyError,
    StrictLoader,
    _folder_message,
    _read_yaml,
    _yaml_load,
)

PRESET_DIR = Path(__file__).parent / "configs"


@dataclass
class DataConfig:
    name: str = "ring"  # ring | grid | gauss1d | mnist | fashion-mnist | folder | ...
    root: str | None = None  # data root; None = $GANKIT_DATA, else ~/.cache/gankit/data
    path: str | None = None  # image folder for name=folder
    size: int = 28  # image side in pixels (folder: cut to a square by crop; mnist: resize)
    channels: int = 1  # 1 = grayscale, 3 = RGB (folder)
    download: bool = True  # fetch missing files when online (mnist, fashion-mnist)
    classes: bool = False  # hand labels to the networks (conditional models)
    # name=folder only (data/folder.py): where the decoded images live, who decodes them, and
    # what becomes of non-square and unreadable images
    cache: Literal["auto", "memory", "disk", "none"] = "auto"  # auto: memory within memory_gb,
    # else a uint8 cache on disk (gankit's cache folder) if it fits, else none (decode each batch)
    memory_gb: float = 4.0  # cache=auto's memory budget: GiB of decoded uint8 images
    workers: int | None = None  # DataLoader decoding processes; 0 = the main process, None = auto
    crop: Literal["center", "pad", "resize"] = "center"  # center: short side, middle square;
    # pad: pad to a square with black, then resize; resize: squash to a square
    skip_bad: bool = False  # leave unreadable files out (listed in source.skipped), not fail
    limit: int = 0  # train on N images only: the first N of a fixed seeded permutation of the
    # train split (data/subset.py; the same N images in every run); 0 = all. Metrics still
    # compare with the whole split
    # name=pair: the two unpaired domains, each a data set of its own (data.a.name=usps
    # data.b.name=mnist), sharing this section's size, channels, root and download; or leave them
    # empty and set data.path to a CycleGAN folder (trainA/, trainB/, testA/, testB/)
    a: dict[str, Any] = field(default_factory=dict)
    b: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    net: str = "mlp"  # mlp | dcgan | stylegan
    z_dim: int = 8  # latent size
    width: int = 128  # hidden units (mlp) or base channels (dcgan)
    depth: int = 3  # hidden layers (mlp)
    dropout: float = 0.0  # dropout in D (the classic MNIST GAN uses 0.3)
    leak: float = 0.2  # LeakyReLU slope (G and D of the MLP, D of DCGAN)
    batchnorm: bool = True  # batch norm in G and D (dcgan); WGAN-GP critics turn it off
    cond: Literal["onehot", "embed"] = "onehot"  # how class labels enter G and D
    d_output: Literal["linear", "autoencoder"] = "linear"  # D head; EBGAN uses an autoencoder
    # remedies for mode collapse in D (mlp and dcgan; nets/style_layers.py, nets/spectral.py)
    mbstd: int = 0  # minibatch std-dev group size (Karras et al. 2018; their 4); 0 = off
    spectral_norm: bool = False  # spectral normalisation of D's layers (Miyato et al. 2018)
    spectral_norm_g: bool = False  # ... and of G's layers (Zhang et al. 2019; BigGAN)
    # the options of model.net, declared and checked in that family's own file (e.g.
    # model.options.w_dim=128 for stylegan); a run's config.yaml holds them, defaults resolved
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig:
    variant: str = "gan"
    g_loss: Literal["nonsaturating", "minimax"] = "nonsaturating"
    steps: int = 3000  # training steps: n_critic D updates, then g_steps G updates
    minutes: float = 0.0  # stop (with a checkpoint) after this much training time, counted over
    # resumes; 0 = no limit. train.steps stays the ceiling. For budgets and equal-time comparisons
    batch_size: int = 256
    n_critic: int = 1  # D updates per step
    g_steps: int = 1  # G updates per step, after the D updates, each on fresh latents; 2 is
    # DCGAN-tensorflow's habit, which PacGAN's Stacked MNIST runs keep
    pac: int = 1  # PacGAN (Lin et al. 2018): D scores packs of pac samples (nets/packing.py);
    # 1 = off. train.batch_size counts samples, so D sees batch_size / pac packs
    optimizer: Literal["adam", "rmsprop"] = "adam"
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    beta1: float = 0.5
    beta2: float = 0.999
    lr_decay: Literal["none", "linear"] = "linear"  # linear: to 0 at the last step
    lr_decay_start: float = 0.0  # fraction of train.steps at constant lr before a linear decay
    label_smoothing: float = 0.0  # one-sided: the real target is 1 - label_smoothing
    ortho_reg: float = 0.0  # beta of BigGAN's orthogonal regularisation of G (Brock et al. 2019;
    # the paper's 1e-4), added to G's loss by every variant (losses/orthogonal.py); 0 = off
    ema: float = 0.0  # decay of the moving average of G's weights; 0 = off
    ema_warmup: bool = False  # the decay ramps as min(ema, (1 + step) / (10 + step)), so the
    # average forgets G's initial weights within the first hundred steps (training/ema.py);
    # nothing to ramp when train.ema=0
    amp: bool = False  # bfloat16 autocast (CUDA, or a CPU with bf16 instructions)
    sync_bn: bool = False  # synchronised batch norm across torchrun processes (CUDA only)
    compile: bool = False  # torch.compile each player (not with a gradient penalty or R1)
    channels_last: bool = False  # image nets and batches in channels-last memory layout
    # differentiable augmentation of every image D sees, real and generated (nets/augment.py)
    augment: Literal["none", "diffaug", "ada"] = "none"  # diffaug: DiffAugment (Zhao et al.
    # 2020) with probability augment_p; ada: p adapted to D's overfitting (Karras et al. 2020)
    augment_policy: str = "color,translation,cutout"  # the kinds, applied in this order
    augment_p: float | None = None  # probability of each kind per sample; None = 1 for diffaug,
    # 0 for ada (its starting value)
    ada_target: float = 0.6  # ada: p rises while E[sign(D(real))] is above this (theirs: 0.6)
    ada_interval: int = 4  # ada: steps between updates of p
    ada_kimg: float = 100.0  # ada: thousands of real images for p to move from 0 to 1
    # (Karras et al.: 500, over runs of 25 million images)


@dataclass
class LogConfig:
    every: int = 50  # steps between rows of metrics.jsonl and progress-bar updates
    sample_every: int = 500  # steps between sample grids from the fixed z
    checkpoint_every: int = 1000  # steps between checkpoints (one is always written at the end)
    n_samples: int = 64  # images in a sample grid (2-D data: points in a scatter use 2,500)
    tensorboard: bool = False  # also write TensorBoard event files
    quiet: bool = False  # no progress bar; plain log lines instead


@dataclass
class EvalConfig:
    every: int = 0  # steps between evaluations while training; 0 = off
    metrics: str = ""  # comma-separated, as for gankit eval: e.g. "cfid,coverage" or "fid,kid"
    n: int = 2000  # samples per metric while training, per class for cacc (a monitor; gankit
    # eval uses each protocol's count)
    inception_weights: str | None = None  # FID weights file (else $GANKIT_INCEPTION_WEIGHTS)


@dataclass
class Config:
    name: str = "ring"  # run folder: <out>/<name>
    description: str = "non-saturating GAN on the 8-Gaussian ring (the embedded default)"
    out: str = "runs"
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    threads: int = 0  # CPU intra-op threads; 0 = auto (1 for toy data, torch's default otherwise)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    # the options of train.variant, declared and checked in that variant's own file (e.g.
    # variant.gp_weight=10 for wgan-gp); a run's config.yaml holds them all, defaults resolved
    variant: dict[str, Any] = field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        return Path(self.out) / self.name

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# ---------------------------------------------------------------------------------------------
# building a Config from dicts, YAML files, presets and overrides


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    return getattr(tp, "__name__", str(tp))


SEED_MAX = 2**32 - 1  # seeds are offset by small constants (seed + 12345); the same for every flag
_INT64 = (-(2**63), 2**63 - 1)  # every int key is one torch can take (seeds, counts, sizes)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check (and gently convert: int -> float, str from the command line) one value."""
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        if isinstance(value, str) and value.lower() in ("none", "null") and type(None) in options:
            return None
        for opt in options:
            if opt is type(None):
                continue
            try:
                return _coerce(value, opt, key)
            except UserError:
                pass
        raise UserError(
            f"{key} must be {' or '.join(_type_name(o) for o in options)}, got {value!r}"
        )
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise UserError(f"{key} must be one of {', '.join(map(str, allowed))}, got {value!r}")
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise UserError(f"{key} must be true or false, got {value!r}")
    if tp is int:
        out = None
        if isinstance(value, int) and not isinstance(value, bool):
            out = value
        elif isinstance(value, str):
            try:
                out = int(value)
            except ValueError:
                pass
        if out is None:
            raise UserError(f"{key} must be an integer, got {value!r}")
        if not _INT64[0] <= out <= _INT64[1]:
            raise UserError(f"{key} must be an integer between -2**63 and 2**63 - 1, got {out}")
        return out
    if tp is float:
        out = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                out = float(value)
            except OverflowError:  # an int too large for a float
                out = math.inf
        elif isinstance(value, str):
            try:
                out = float(value)
            except ValueError:
                pass
        if out is None:
            raise UserError(f"{key} must be a number, got {value!r}")
        if not math.isfinite(out):
            raise UserError(f"{key} must be a finite number, got {value!r}")
        return out
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise UserError(f"{key} must be a string, got {value!r}")
    raise TypeError(f"unsupported config type {tp!r} for {key}")


MOVED = {  # keys that moved to their variant's own options: their new place
    "train.clip": "variant.clip",
    "train.gp_weight": "variant.gp_weight",
    "train.margin": "variant.margin",
    "train.pt_weight": "variant.pt_weight",
}


def _refuse_unknown(cls: type, values: dict[str, Any], prefix: str) -> None:
    """The one check for unknown keys at one level (shared by ``_build`` and ``check_keys``)."""
    if not isinstance(values, dict):
        raise UserError(f"{prefix.rstrip('.') or 'the config'} must be a mapping, got {values!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted((k for k in values if k not in names), key=str)
    moved = [f"{prefix}{k}" for k in unknown if f"{prefix}{k}" in MOVED]
    if moved:
        raise UserError(
            f"{moved[0]} is now {MOVED[moved[0]]}, an option of its variant; write "
            f"{MOVED[moved[0]]}=... instead"
        )
    if unknown:
        raise UserError(
            f"unknown config key {prefix}{unknown[0]}; valid keys here: {', '.join(sorted(names))}"
        )


def _build(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    _refuse_unknown(cls, values, prefix)
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in values:
            continue
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            kwargs[f.name] = _build(tp, values[f.name], f"{prefix}{f.name}.")
        elif get_origin(tp) is dict:  # a section whose keys a lower file declares (variant)
            value = values[f.name]
            if value is None:
                value = {}
            if not isinstance(value, dict):
                raise UserError(f"{prefix}{f.name} must be a mapping of options, got {value!r}")
            kwargs[f.name] = dict(value)
        else:
            kwargs[f.name] = _coerce(values[f.name], tp, prefix + f.name)
    return cls(**kwargs)


def _set_keys(cls: type, values: dict[str, Any], prefix: str) -> list[str]:
    _refuse_unknown(cls, values, prefix)
    hints = typing.get_type_hints(cls)
    keys = []
    for k, v in values.items():
        if dataclasses.is_dataclass(hints[k]) and isinstance(v, dict):
            keys += _set_keys(hints[k], v, f"{prefix}{k}.")
        elif get_origin(hints[k]) is dict and isinstance(v, dict):
            keys += [f"{prefix}{k}.{option}" for option in v]
        else:
            keys.append(prefix + k)
    return keys


def build_options(cls: type, values: dict[str, Any] | None, prefix: str, owner: str) -> Any:
    """A component's own options (a dataclass declared in its file, e.g. a variant's) from the
    raw mapping of its config section, as strictly as the rest of the config: unknown keys and
    wrong types name ``prefix + key``; ``owner`` names the component in the message."""
    values = dict(values or {})
    if not dataclasses.fields(cls) and values:
        raise UserError(f"{owner} has no options; drop {prefix}{sorted(values, key=str)[0]}")
    try:
        return _build(cls, values, prefix)
    except UserError as e:
        if str(e).startswith("unknown config key"):
            names = ", ".join(f.name for f in dataclasses.fields(cls))
            key = str(e).split(";")[0].removeprefix("unknown config key ")
            raise UserError(f"{owner} has no option {key}; its options: {names}") from None
        raise


def read_file(path: str | Path) -> dict[str, Any]:
    """The mapping of a YAML config file (UTF-8, no duplicate keys), not yet a Config."""
    return _read_yaml(Path(path))


# the metrics gankit.evaluation computes: eval.metrics and gankit eval --metrics take these names
METRIC_NAMES = (
    "fid",
    "kid",
    "pr",
    "is",
    "cfid",
    "coverage",
    "cacc",
    "modes",
    "energy",
    "ppl",
    "memorisation",
)


def parse_metrics(spec: str | Iterable[str]) -> list[str]:
    """``"fid,kid"`` or ``["fid", "kid"]`` -> checked, de-duplicated names in the given order."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [n.strip().lower() for n in names if n.strip()]
    if not names:
        raise UserError(f"no metrics given; choose from {', '.join(METRIC_NAMES)}")
    for name in names:
        if name not in METRIC_NAMES:
            raise UserError(f"unknown metric {name!r}; choose from {', '.join(METRIC_NAMES)}")
    return list(dict.fromkeys(names))


def from_dict(values: dict[str, Any]) -> Config:
    cfg = _build(Config, values)
    validate(cfg)
    return cfg


def presets() -> dict[str, Path]:
    """The shipped presets, name -> YAML file."""
    return {p.stem: p for p in sorted(PRESET_DIR.glob("*.yaml"))}


def check_keys(overrides: Any) -> list[str]:
    """Refuse an unknown key in ``overrides`` (any form ``normalize_overrides`` takes) with the
    usual ``unknown config key ...`` error; return the dotted keys they set, in order.

    Only the keys are checked, not the values: ``resume`` calls it to report a mistyped key
    before it says which keys may not change.
    """
    return _set_keys(Config, normalize_overrides(overrides), "")


def with_overrides(cfg: Config, overrides: Any) -> Config:
    """A new, validated Config: ``cfg`` with ``overrides`` (any form ``normalize_overrides``
    takes) applied; ``cfg`` itself is left unchanged."""
    if not isinstance(cfg, Config):
        raise UserError(f"with_overrides takes a Config, got {type(cfg).__name__}; use load()")
    return from_dict(_merge(cfg.to_dict(), normalize_overrides(overrides)))


# ---------------------------------------------------------------------------------------------
# load


def _source_values(source: Any) -> dict[str, Any]:
    if source is None:
        return {}
    if isinstance(source, Config):
        return source.to_dict()
    if isinstance(source, Mapping):
        return dict(source)
    if not isinstance(source, (str, os.PathLike)):
        raise UserError(
            "the config source must be a preset name, a YAML path, a dict, a Config or None, "
            f"got {type(source).__name__}"
        )
    src = os.fspath(source)
    if not isinstance(src, str):
        raise UserError(f"the config path must be text, got {type(src).__name__}")
    if not src:
        raise UserError("the config source is empty; pass a preset name or a YAML path")
    known = presets()
    if src in known:
        return {"name": src, **_read_yaml(known[src])}
    path = Path(src)
    if path.is_dir():
        raise UserError(_folder_message(src))
    if src.endswith((".yaml", ".yml")) or path.exists():
        if not path.exists():
            raise UserError(f"config file {src} does not exist; pass a preset name or a YAML path")
        if not path.is_file():
            raise UserError(
                f"config file {src} is not a regular file; pass a preset name or a YAML path"
            )
        return {"name": path.stem, **_read_yaml(path)}
    raise UserError(f"unknown preset {src!r}; choose one of: {', '.join(known)} (or a .yaml path)")


def load(source: Any = None, overrides: Any = None) -> Config:
    """A config from ``source``, then ``overrides`` on top; always validated.

    ``source`` is a preset name, a YAML path, a dict holding a whole config (checked as strictly
    as a YAML file: nested mappings, no dotted keys), a ``Config``, or None (the embedded
    default). A preset or file that omits a key keeps the embedded default for it; a preset's
    ``name`` defaults to the preset's own name and a file's to its stem, so runs of different
    presets don't share a folder. A dict without ``name`` keeps the embedded default name, as
    ``load(None, ...)`` does. ``overrides`` is any form ``normalize_overrides`` takes: a list of
    ``key=value`` strings, one string of whitespace-separated ``key=value`` items, or a dict.
    """
    values = _source_values(source)
    return from_dict(_merge(values, normalize_overrides(overrides)))


# the value checks live in their own file; imported last, since they import this module lazily
from .config_checks import (  # noqa: E402, F401  (public here too)
    AUGMENT_KINDS,
    DOMAIN_SHARED,
    FOLDER_KEYS,
    augment_policy,
    domain_config,
    validate,
)
