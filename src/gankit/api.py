"""Loading, sampling and exporting trained generators.

``load_generator`` takes a run folder (its newest checkpoint), a checkpoint ``.pt`` or an exported
``.safetensors`` file and returns a ``Generator`` ready to sample. Exports hold the generator's
weights (the EMA copy when the run kept one) and its config as safetensors metadata: no pickle.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from . import config as config_mod
from . import variants  # registers the variants to rebuild nets
from .config import Config
from .devices import resolve as resolve_device
from .errors import UserError
from .files import atomic_path, check_output_file
from .memory import check as check_memory
from .registry import VARIANTS
from .training import checkpoint

EXPORT_FORMAT = "gankit-generator-1"


@torch.no_grad()
def sample_from(
    net: nn.Module,
    n: int,
    seed: int | None = None,
    labels: Tensor | int | None = None,
    batch: int = 1024,
) -> Tensor:
    """n samples [n, *shape] on the CPU; labels: one class for all, or [n] classes."""
    if n <= 0:
        raise UserError(f"the number of samples must be positive, got {n}")
    device = next(net.parameters()).device
    check_memory(4.0 * n * (net.z_dim + 2), f"{n} latent codes", "ask for fewer samples")
    if seed is None:  # fresh entropy without reseeding torch's global generator
        seed = int.from_bytes(os.urandom(8), "little") >> 1
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, net.z_dim, generator=g)  # [n, z_dim]
    y = _labels(net, n, labels, g)
    was_training = net.training
    net.eval()
    out = []
    for i in range(0, n, batch):
        yi = y[i : i + batch].to(device) if y is not None else None
        out.append(net(z[i : i + batch].to(device), yi).float().cpu())
        if i == 0:  # now the size of one sample is known: the n samples and their concatenation
            per = out[0][0].numel() * 4
            check_memory(2.0 * per * n, f"{n} samples", "ask for fewer samples")
    net.train(was_training)
    return torch.cat(out)  # [n, *shape]


def _labels(net: nn.Module, n: int, labels: Tensor | int | None, g: torch.Generator):
    k = getattr(net, "num_classes", 0)
    if labels is None:
        return torch.randint(k, (n,), generator=g) if k else None  # [n]
    if not k:
        raise UserError("this generator is unconditional; sample it without a class")
    if isinstance(labels, int):
        labels = torch.full((n,), labels, dtype=torch.long)  # [n]
    labels = torch.as_tensor(labels, dtype=torch.long)
    if labels.shape != (n,):
        raise UserError(f"labels must have shape [{n}], got {list(labels.shape)}")
    if labels.min() < 0 or labels.max() >= k:
        raise UserError(f"class must be in 0..{k - 1}, got {labels.min()}..{labels.max()}")
    return labels


@dataclass
class Generator:
    """A trained generator and what it was trained with."""

    net: nn.Module
    config: Config
    shape: tuple[int, ...]
    num_classes: int
    kind: str  # "toy" or "image"
    step: int | None = None  # G updates it was trained for (checkpoints; None for exports)

    @property
    def z_dim(self) -> int:
        return self.net.z_dim

    def sample(self, n: int, seed: int | None = None, labels: Tensor | int | None = None) -> Tensor:
        return sample_from(self.net, n, seed=seed, labels=labels)

    def to(self, device: str | torch.device) -> Generator:
        self.net.to(device)
        return self


def _build(cfg: Config, meta: dict[str, Any]) -> nn.Module:
    variant = VARIANTS.get(cfg.train.variant)(cfg)
    nets = variant.build_nets(tuple(meta["shape"]), int(meta["num_classes"]))
    return nets[meta["sampler_player"]]


@contextlib.contextmanager
def _damaged(path: Path, what: str):
    """A file with gankit's marker but broken contents is one sentence, not a KeyError."""
    try:
        yield
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError) as e:
        reason = " ".join(str(e).split())[:100] or type(e).__name__
        raise UserError(
            f"{path} is a damaged {what} ({type(e).__name__}: {reason}); use another one"
        ) from None


def _from_checkpoint(path: Path, ck: dict[str, Any] | None = None) -> Generator:
    ck = ck if ck is not None else checkpoint.load(path)
    with _damaged(path, "gankit checkpoint"):
        cfg = config_mod.from_dict(variants.upgrade_stored(ck["config"]))
        meta = ck["meta"]
        net = _build(cfg, meta)
        net.load_state_dict(
            ck["ema"] if ck.get("ema") is not None else ck["nets"][meta["sampler_player"]]
        )
        shape, k = tuple(meta["shape"]), int(meta["num_classes"])
        return Generator(net.eval(), cfg, shape, k, meta["kind"], int(ck["step"]))


def _from_export(path: Path) -> Generator:
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            md = f.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise UserError(f"{path} is not a readable safetensors file ({e})") from None
    if md.get("format") != EXPORT_FORMAT:
        raise UserError(f"{path} is not a gankit generator export (no {EXPORT_FORMAT!r} metadata)")
    if "sha256" in md and tensors_sha256(state) != md["sha256"]:
        raise UserError(
            f"{path} is damaged: its weights do not match the checksum it was exported with; "
            "export it again from the run (gankit export)"
        )
    with _damaged(path, "gankit export"):
        cfg = config_mod.from_dict(variants.upgrade_stored(json.loads(md["config"])))
        meta = json.loads(md["meta"])
        net = _build(cfg, meta)
        net.load_state_dict(state)
        shape, k = tuple(meta["shape"]), int(meta["num_classes"])
        return Generator(net.eval(), cfg, shape, k, meta["kind"])


def tensors_sha256(state: dict[str, Tensor]) -> str:
    """sha256 of a state dict: every tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{list(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> Generator:
    """A run folder (its newest intact checkpoint), a checkpoint ``.pt`` or an exported
    ``.safetensors`` -> ``Generator`` on ``device``."""
    dev = resolve_device(device)
    p = Path(path)
    if p.is_dir():
        p, ck, notes = checkpoint.load_latest(p)
        if notes:
            warnings.warn("; ".join(notes), stacklevel=2)
        gen = _from_checkpoint(p, ck)
    elif not p.exists():
        raise UserError(f"{p} does not exist; pass a run folder, a checkpoint .pt or an export")
    else:
        gen = _from_export(p) if p.suffix == ".safetensors" else _from_checkpoint(p)
    return gen.to(dev)


def export(path: str | Path, out: str | Path) -> Path:
    """Write the generator of a run or checkpoint as safetensors + config metadata."""
    from safetensors.torch import save_file

    out = check_output_file(out, "the export file", (".safetensors",))
    gen = load_generator(path)
    meta = {
        "shape": list(gen.shape),
        "num_classes": gen.num_classes,
        "kind": gen.kind,
        "sampler_player": _sampler_player(gen.config),
    }
    state = {k: v.contiguous() for k, v in gen.net.state_dict().items()}
    metadata = {
        "format": EXPORT_FORMAT,
        "meta": json.dumps(meta),
        "config": json.dumps(gen.config.to_dict()),
        "sha256": tensors_sha256(state),
    }
    with atomic_path(out) as tmp:
        save_file(state, str(tmp), metadata=metadata)
    return out


def _sampler_player(cfg: Config) -> str:
    return VARIANTS.get(cfg.train.variant).sampler_player
