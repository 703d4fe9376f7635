"""Loading, sampling and exporting trained generators.

``load_generator`` takes a run folder (its newest checkpoint), a checkpoint ``.pt`` or an exported
``.safetensors`` file and returns a ``Generator`` ready to sample. Exports hold the generator's
weights (the EMA copy when the run kept one) and its config as safetensors metadata: no pickle.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from . import config as config_mod
from . import variants  # registers the variants to rebuild nets
from .config import Config, parse_metrics
from .devices import resolve as resolve_device
from .errors import UserError
from .files import atomic_path, check_output_file
from .generator import Generator, sample_from  # noqa: F401  (re-exported: gankit.api.sample_from)
from .registry import VARIANTS
from .training import checkpoint

EXPORT_FORMAT = "gankit-generator-1"


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


def evaluate(
    source: str | Path,
    metrics: str | Iterable[str] = ("fid",),
    *,
    n: int | None = None,
    ref: str = "test",
    seed: int = 0,
    device: str = "cpu",
    batch_size: int = 200,
    inception_weights: str | None = None,
    data_root: str | None = None,
    out: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate a run folder, checkpoint or export; see the module docstring for the metrics.

    The result (values, protocols, source, step) is written as JSON to ``out``, or, for a run
    folder, to ``<run>/eval/step_<N>.json`` (``N`` the step of its newest checkpoint). When that
    file already holds results of the same generator and step, they are kept: the metrics
    computed now replace their own earlier values, the others stay (``result["kept"]`` names
    them), so a second call with other metrics never loses an hour-long FID.
    """
    from .evaluation import Options, evaluate_generator, merge_results, read_result

    opts = Options(n, ref, seed, device, batch_size, inception_weights, data_root)
    names = parse_metrics(metrics)  # bad input answers before torch loads
    if out is not None:
        out = check_output_file(out, "out", (".json",))
    t0 = time.perf_counter()
    generator = load_generator(source, device=device)
    result = evaluate_generator(generator, names, opts)
    result["source"] = str(source)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["step"] = generator.step
    path = Path(source)
    if out is None and path.is_dir():
        out = path / "eval" / f"step_{generator.step:07d}.json"
    if out is not None:
        out = Path(out)
        record = merge_results(read_result(out), result, names, out)
        with atomic_path(out) as tmp:
            tmp.write_text(json.dumps(record, indent=2) + "\n")
        result["kept"] = [m for m in record["protocols"] if m not in names]
        result["written"] = str(out)
    return result
