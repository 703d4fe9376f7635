"""Loading, sampling, translating and exporting trained generators.

``load_generator`` takes a run folder (its newest checkpoint), a checkpoint ``.pt`` or an exported
``.safetensors`` file and returns a ``Generator`` ready to sample; ``load_translator`` does the
same for one direction of a translation run (CycleGAN, Zhu et al. 2017) and returns a
``Translator``. Exports hold the generator's weights (the EMA copy when the run kept one), or
every translator of a translation run (keys ``<player>.<name>``), and the config as safetensors
metadata: no pickle.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .control.translate import Translator

EXPORT_FORMAT = "gankit-generator-1"  # one G of a G/D game
TRANSLATOR_FORMAT = "gankit-translator-1"  # every translator of a translation run


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


@dataclass
class _Stored:
    """What a checkpoint or an export holds: the exported players' weights, read, not built."""

    path: Path
    what: str  # "gankit checkpoint" or "gankit export", for messages
    cfg: Config
    meta: dict[str, Any]  # shape, num_classes, kind, sampler_player
    states: dict[str, dict[str, Tensor]]  # player -> state dict, for each ``variant.exported``
    step: int | None  # None for exports

    @property
    def translators(self) -> dict[str, str]:
        return VARIANTS.get(self.cfg.train.variant).translators

    def build(self, *players: str) -> dict[str, nn.Module]:
        """The nets of ``players`` with their stored weights, in eval mode."""
        with _damaged(self.path, self.what):
            variant = VARIANTS.get(self.cfg.train.variant)(self.cfg)
            nets = variant.build_nets(tuple(self.meta["shape"]), int(self.meta["num_classes"]))
            for p in players:
                nets[p].load_state_dict(self.states[p])
            return {p: nets[p].eval() for p in players}


def _exported(cfg: Config) -> tuple[str, ...]:
    return VARIANTS.get(cfg.train.variant)(cfg).exported


def _read_checkpoint(path: Path, ck: dict[str, Any] | None = None) -> _Stored:
    ck = ck if ck is not None else checkpoint.load(path)
    with _damaged(path, "gankit checkpoint"):
        cfg = config_mod.from_dict(variants.upgrade_stored(ck["config"]))
        meta = ck["meta"]
        states = {p: ck["nets"][p] for p in _exported(cfg)}
        if ck.get("ema") is not None:  # the moving average of the sampler samples
            states[meta["sampler_player"]] = ck["ema"]
        return _Stored(path, "gankit checkpoint", cfg, meta, states, int(ck["step"]))


def _read_export(path: Path) -> _Stored:
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            md = f.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise UserError(f"{path} is not a readable safetensors file ({e})") from None
    if md.get("format") not in (EXPORT_FORMAT, TRANSLATOR_FORMAT):
        raise UserError(f"{path} is not a gankit generator export (no {EXPORT_FORMAT!r} metadata)")
    if "sha256" in md and tensors_sha256(state) != md["sha256"]:
        raise UserError(
            f"{path} is damaged: its weights do not match the checksum it was exported with; "
            "export it again from the run (gankit export)"
        )
    with _damaged(path, "gankit export"):
        cfg = config_mod.from_dict(variants.upgrade_stored(json.loads(md["config"])))
        meta = json.loads(md["meta"])
        if md["format"] == EXPORT_FORMAT:
            states = {meta["sampler_player"]: state}
        else:  # "<player>.<name>" keys, one group per translator
            states = {p: {} for p in meta["players"]}
            for key, t in state.items():
                player, name = key.split(".", 1)
                states[player][name] = t
        return _Stored(path, "gankit export", cfg, meta, states, None)


def _read(path: str | Path) -> _Stored:
    """A run folder (its newest intact checkpoint), a checkpoint ``.pt`` or an export, read."""
    p = Path(path)
    if p.is_dir():
        p, ck, notes = checkpoint.load_latest(p)
        if notes:
            warnings.warn("; ".join(notes), stacklevel=3)
        return _read_checkpoint(p, ck)
    if not p.exists():
        raise UserError(f"{p} does not exist; pass a run folder, a checkpoint .pt or an export")
    return _read_export(p) if p.suffix == ".safetensors" else _read_checkpoint(p)


def tensors_sha256(state: dict[str, Tensor]) -> str:
    """sha256 of a state dict: every tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{list(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _generator(stored: _Stored, path: str | Path) -> Generator:
    if stored.translators:
        raise UserError(
            f"{path} is a translation run ({stored.cfg.train.variant}), not a G(z) to sample; "
            "use gankit translate or gankit.load_translator"
        )
    with _damaged(stored.path, stored.what):
        net = stored.build(stored.meta["sampler_player"])[stored.meta["sampler_player"]]
        shape, k = tuple(stored.meta["shape"]), int(stored.meta["num_classes"])
        return Generator(net, stored.cfg, shape, k, stored.meta["kind"], stored.step)


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> Generator:
    """A run folder (its newest intact checkpoint), a checkpoint ``.pt`` or an exported
    ``.safetensors`` -> ``Generator`` on ``device``."""
    dev = resolve_device(device)
    return _generator(_read(path), path).to(dev)


def load_translator(
    path: str | Path, direction: str = "AtoB", device: str | torch.device = "cpu"
) -> Translator:
    """One direction (``AtoB``, ``BtoA``) of a translation run: a run folder (its newest intact
    checkpoint), a checkpoint ``.pt`` or an exported ``.safetensors`` -> ``Translator``."""
    from .control.translate import Translator

    dev = resolve_device(device)
    stored = _read(path)
    directions = stored.translators
    if not directions:
        raise UserError(
            f"{path} is a {stored.cfg.train.variant} run that samples G(z), not a translator; "
            "use gankit sample"
        )
    if direction not in directions:
        raise UserError(f"{path} has directions {', '.join(directions)}; got {direction!r}")
    player = directions[direction]
    with _damaged(stored.path, stored.what):
        net = stored.build(player)[player]
        shape = tuple(int(s) for s in stored.meta["shape"])
        return Translator(net, direction, shape, stored.cfg, stored.step).to(dev)


def export(path: str | Path, out: str | Path) -> Path:
    """Write the generator of a run, checkpoint or export (every translator of a translation
    run, keys ``<player>.<name>``) as safetensors + config metadata."""
    from safetensors.torch import save_file

    out = check_output_file(out, "the export file", (".safetensors",))
    stored = _read(path)
    players = _exported(stored.cfg) if stored.translators else ()
    if players:  # every translator, keys "<player>.<name>"
        nets = stored.build(*players)
        state = {f"{p}.{k}": v for p, net in nets.items() for k, v in net.state_dict().items()}
    else:
        state = _generator(stored, path).net.state_dict()
    state = {k: v.contiguous() for k, v in state.items()}
    with _damaged(stored.path, stored.what):
        meta = {k: stored.meta[k] for k in ("shape", "num_classes", "kind", "sampler_player")}
    metadata = {
        "format": TRANSLATOR_FORMAT if players else EXPORT_FORMAT,
        "meta": json.dumps({**meta, "players": list(players)} if players else meta),
        "config": json.dumps(stored.cfg.to_dict()),
        "sha256": tensors_sha256(state),
    }
    with atomic_path(out) as tmp:
        save_file(state, str(tmp), metadata=metadata)
    return out


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
    from .evaluation import Options, evaluate_generator
    from .metrics.results import merge_results, read_result

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
