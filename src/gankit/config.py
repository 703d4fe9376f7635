"""Strict configuration: typed dataclasses, YAML presets and ``key=value`` overrides.

Following nanoGPT's rule that an override is strict: an unknown key or a value of the wrong type
is a ``UserError`` naming the key, never a silent default. The dataclass defaults *are* the
embedded default run: the non-saturating GAN (Goodfellow et al. 2014) on the 8-Gaussian ring.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

from .errors import UserError

PRESET_DIR = Path(__file__).parent / "configs"


@dataclass
class DataConfig:
    name: str = "ring"  # ring | grid | gauss1d | mnist | fashion-mnist | folder | ...
    root: str | None = None  # data root; None = $GANKIT_DATA, else ~/.cache/gankit/data
    path: str | None = None  # image folder for name=folder
    size: int = 28  # image side in pixels (folder: resize + center crop; mnist: resize)
    channels: int = 1  # 1 = grayscale, 3 = RGB (folder)
    download: bool = True  # fetch missing files when online (mnist, fashion-mnist)
    classes: bool = False  # hand labels to the networks (conditional models)


@dataclass
class ModelConfig:
    net: str = "mlp"  # mlp | dcgan
    z_dim: int = 8  # latent size
    width: int = 128  # hidden units (mlp) or base channels (dcgan)
    depth: int = 3  # hidden layers (mlp)
    dropout: float = 0.0  # dropout in D (the classic MNIST GAN uses 0.3)
    leak: float = 0.2  # LeakyReLU slope (G and D of the MLP, D of DCGAN)
    batchnorm: bool = True  # batch norm in G and D (dcgan); WGAN-GP critics turn it off
    cond: Literal["onehot", "embed"] = "onehot"  # how class labels enter G and D
    d_output: Literal["linear", "autoencoder"] = "linear"  # D head; EBGAN uses an autoencoder


@dataclass
class TrainConfig:
    variant: str = "gan"
    g_loss: Literal["nonsaturating", "minimax"] = "nonsaturating"
    steps: int = 3000  # G updates
    batch_size: int = 256
    n_critic: int = 1  # D updates per G update
    optimizer: Literal["adam", "rmsprop"] = "adam"
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    beta1: float = 0.5
    beta2: float = 0.999
    lr_decay: Literal["none", "linear"] = "linear"  # linear: to 0 at the last step
    label_smoothing: float = 0.0  # one-sided: the real target is 1 - label_smoothing
    ema: float = 0.0  # decay of the moving average of G's weights; 0 = off
    amp: bool = False  # bfloat16 autocast on CUDA
    clip: float = 0.01  # weight clipping bound (wgan)
    gp_weight: float = 10.0  # gradient penalty weight (wgan-gp)
    margin: float = 1.0  # energy margin m (ebgan)
    pt_weight: float = 0.0  # pull-away term weight (ebgan)


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
        if isinstance(value, bool):
            raise UserError(f"{key} must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise UserError(f"{key} must be an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise UserError(f"{key} must be a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise UserError(f"{key} must be a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise UserError(f"{key} must be a string, got {value!r}")
    raise TypeError(f"unsupported config type {tp!r} for {key}")


def _build(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    if not isinstance(values, dict):
        raise UserError(f"{prefix.rstrip('.') or 'the config'} must be a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise UserError(
            f"unknown config key {prefix}{unknown[0]}; valid keys here: {', '.join(sorted(names))}"
        )
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in values:
            continue
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            kwargs[f.name] = _build(tp, values[f.name], f"{prefix}{f.name}.")
        else:
            kwargs[f.name] = _coerce(values[f.name], tp, prefix + f.name)
    return cls(**kwargs)


def from_dict(values: dict[str, Any]) -> Config:
    cfg = _build(Config, values)
    validate(cfg)
    return cfg


def _merge(base: dict[str, Any], upd: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in upd.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def presets() -> dict[str, Path]:
    """The shipped presets, name -> YAML file."""
    return {p.stem: p for p in sorted(PRESET_DIR.glob("*.yaml"))}


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as e:
        raise UserError(f"cannot read config file {path}: {e.strerror}") from None
    try:
        values = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise UserError(f"config file {path} is not valid YAML ({e.__class__.__name__})") from None
    if not isinstance(values, dict):
        raise UserError(f"config file {path} must hold a mapping of keys to values")
    return values


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["train.steps=100", "seed=3"]`` -> nested dict; values parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"override {item!r} must look like key=value, e.g. train.steps=500")
        key, raw = item.split("=", 1)
        if not key:
            raise UserError(f"override {item!r} has no key; write key=value, e.g. seed=1")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise UserError(f"override {item!r} conflicts with another override of {p}")
        node[parts[-1]] = value
    return out


def load(source: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """A preset name, a YAML path or None (the embedded default), then ``key=value`` overrides.

    A preset or file that omits a key keeps the embedded default for it; a preset's ``name``
    defaults to the preset's own name, so runs of different presets don't share a folder.
    """
    values: dict[str, Any] = {}
    if source is not None:
        src = str(source)
        known = presets()
        if src in known:
            values = {"name": src, **_read_yaml(known[src])}
        elif src.endswith((".yaml", ".yml")) or Path(src).exists():
            if not Path(src).is_file():
                raise UserError(
                    f"config file {src} does not exist; pass a preset name or a YAML path"
                )
            values = {"name": Path(src).stem, **_read_yaml(Path(src))}
        else:
            raise UserError(
                f"unknown preset {src!r}; choose one of: {', '.join(known)} (or a .yaml path)"
            )
    values = _merge(values, parse_overrides(overrides or []))
    return from_dict(values)


def validate(cfg: Config) -> None:
    """Value checks that a type alone cannot express."""
    positive = {
        "train.steps": cfg.train.steps,
        "train.batch_size": cfg.train.batch_size,
        "train.n_critic": cfg.train.n_critic,
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
    if cfg.eval.every < 0:
        raise UserError(f"eval.every must be 0 (off) or positive, got {cfg.eval.every}")
    if cfg.eval.every and not cfg.eval.metrics.strip():
        raise UserError("eval.every is set but eval.metrics is empty; e.g. eval.metrics=cfid")
    if cfg.eval.metrics.strip():
        from .evaluation import parse_metrics

        parse_metrics(cfg.eval.metrics)
    if cfg.eval.n < 2:
        raise UserError(f"eval.n must be at least 2, got {cfg.eval.n}")
    if cfg.threads < 0:
        raise UserError(f"threads must be 0 (auto) or positive, got {cfg.threads}")
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
    if not 0 <= cfg.train.ema < 1:
        raise UserError(f"train.ema must be in [0, 1) (0 turns it off), got {cfg.train.ema}")
    if cfg.data.channels not in (1, 3):
        raise UserError(f"data.channels must be 1 or 3, got {cfg.data.channels}")
    if not cfg.name or "/" in cfg.name or cfg.name in (".", ".."):
        raise UserError(f"name must be a plain folder name, got {cfg.name!r}")
    dev = cfg.device
    if not (
        dev in ("auto", "cpu", "cuda", "mps") or (dev.startswith("cuda:") and dev[5:].isdigit())
    ):
        raise UserError(f"device must be auto, cpu, cuda, cuda:N or mps, got {dev!r}")
