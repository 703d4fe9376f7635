"""Image folder speed: decoded images/s of the CIFAR-10 JPEG folder per cache mode and worker
count, beside the images/s that training cifar10-dcgan consumes.

    python benchmarks/folder_speed.py [--limit 5000] [--workers 0,1,2] [--batch 64]
        [--train-steps 40] [--device auto] [--data-dir DIR]

The folder is the 50,000-image train split of ../shared/datasets/cifar10-jpg, unpacked once by
gankit's cifar10 loader into its cache (``--data-dir``, else ``$GANKIT_DATA``, else ../shared).
``--limit N`` times the first N images in sorted order (every class; 0 = all 50,000) through a
temporary folder of links to them, so a run takes a few minutes on a busy CPU. The disk caches it
builds are removed at the end.

Rows (each images/s is N divided by the wall time of the phase):
- ``memory, build``: decode the folder into memory at start (``data.cache=memory``).
- ``disk, build``: decode it into the uint8 disk cache (first run; removed at the end).
- ``disk, serve`` / ``none, serve``: a sampler's batches (``--batch``) read from the disk cache
  or decoded from the files by the DataLoader workers, after the first batch (worker start-up
  is the ``first batch s`` column).
- ``train``: the trainer's own img/s (real images D sees per second, median of its logging
  windows after the first) for ``--train-steps`` steps of cifar10-dcgan, data in memory.
A mode keeps up with training when its serve rate exceeds the train rate. Everything shares the
machine with whatever else runs on it: the numbers are only as quiet as the machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

import gankit
from _common import data_root, logged_rate, run_main, table, timing_overrides
from gankit.config import DataConfig
from gankit.data import build_source, cifar10
from gankit.data.folder import cache_folder
from gankit.data.images import list_images


def cifar_folder(root: str | None) -> Path:
    """The unpacked CIFAR-10 train folder (class subfolders of JPEGs), unpacked on first use."""
    base = Path(root) if root else gankit.data.data_root(None)
    path = cifar10.tarball(base, "train")
    cifar10.check_sha256(path, cifar10.SHA256["train"])
    return cifar10.unpacked(path, "train", cifar10.SHA256["train"])


def subset(folder: Path, limit: int, into: Path) -> Path:
    """A folder of links to the first ``limit`` images of ``folder`` (same class layout); the
    folder itself for 0 or more than it holds."""
    files = list_images(folder)
    if not limit or limit >= len(files):
        return folder
    for f in files[:limit]:
        link = into / f.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(f)
    return into


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def serve(source, n: int, batch: int) -> tuple[float, float]:
    """(first-batch seconds, images/s of the batches after it) of a sampler of ``source``."""
    sampler = source.sampler(batch, seed=0)
    first, _ = timed(sampler.next)
    steps = max(n // batch, 2)
    wall, _ = timed(lambda: [sampler.next() for _ in range(steps)])
    sampler.close()
    return first, steps * batch / wall


def train_rate(steps: int, device: str, root: str | None) -> dict:
    with tempfile.TemporaryDirectory() as out:
        run = gankit.train("cifar10-dcgan", timing_overrides(out, steps, device, root, windows=4))
        rate = logged_rate(run.dir)
    return {"rate": rate, "device": str(run.summary["device"])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=5000, help="images to time; 0 = all 50,000")
    ap.add_argument("--workers", default="0,1,2", help="comma-separated DataLoader worker counts")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--train-steps", type=int, default=40, help="0 skips the training row")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    root = args.data_dir or data_root()
    workers = [int(w) for w in args.workers.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = subset(cifar_folder(root), args.limit, Path(tmp) / "cifar10")
        n = len(list_images(folder))

        def cfg(cache: str, w: int) -> DataConfig:
            return DataConfig(
                name="folder", path=str(folder), size=32, channels=3, cache=cache, workers=w
            )

        try:
            for w in workers:
                wall, _ = timed(lambda w=w: build_source(cfg("memory", w)))
                rows.append(
                    {"mode": "memory", "phase": "build", "workers": w, "s": wall, "rate": n / wall}
                )
                shutil.rmtree(cache_folder(folder), ignore_errors=True)
                wall, disk = timed(lambda w=w: build_source(cfg("disk", w)))
                rows.append(
                    {"mode": "disk", "phase": "build", "workers": w, "s": wall, "rate": n / wall}
                )
                for mode, source in (("disk", disk), ("none", build_source(cfg("none", w)))):
                    first, rate = serve(source, n, args.batch)
                    rows.append(
                        {"mode": mode, "phase": "serve", "workers": w, "first": first, "rate": rate}
                    )
                print(f"workers={w} done", file=sys.stderr, flush=True)
        finally:
            shutil.rmtree(cache_folder(folder), ignore_errors=True)
    if args.train_steps:
        t = train_rate(args.train_steps, args.device, root)
        rows.append(
            {"mode": "train", "phase": f"cifar10-dcgan on {t['device']}", "rate": t["rate"]}
        )
    for r in rows:
        r["images/s"] = f"{r['rate']:.0f}"
        r["s"] = f"{r['s']:.1f}" if "s" in r else ""
        r["first batch s"] = f"{r['first']:.2f}" if "first" in r else ""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"CIFAR-10 JPEG folder, {n} images, batch {args.batch}, {cores} cores, "
          f"torch threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(table(rows, ["mode", "phase", "workers", "images/s", "s", "first batch s"]))
    return 0


if __name__ == "__main__":
    run_main(main)
