"""Training speed: images/s of DCGAN on MNIST (batch 64) on the current device.

    python benchmarks/train_speed.py [--steps 200] [--device auto] [--net dcgan] [key=value ...]

"images/s" counts the real images D sees per second of the training loop (batch x n_critic per
G step), measured by the trainer itself over logging windows; the first window (warm-up) is
dropped and the median of the rest is reported.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import torch

import gankit
from _common import data_root, table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--preset", default="mnist-dcgan")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    every = max(args.steps // 5, 1)
    with tempfile.TemporaryDirectory() as out:
        over = [
            f"out={out}",
            f"device={args.device}",
            f"train.steps={args.steps}",
            "train.batch_size=64",
            f"log.every={every}",
            "log.quiet=true",
            f"log.sample_every={args.steps}",
            f"log.checkpoint_every={args.steps}",
        ]
        root = data_root()
        if root:
            over.append(f"data.root={root}")
        t0 = time.perf_counter()
        run = gankit.train(args.preset, over + args.overrides)
        wall = time.perf_counter() - t0
        rows = gankit.report.read_metrics(run.dir / "metrics.jsonl")
    speeds = [r["img_per_s"] for r in rows[1:]] or [rows[0]["img_per_s"]]
    dev = str(run.summary["device"])
    name = (
        torch.cuda.get_device_name()
        if dev.startswith("cuda")
        else f"cpu x{torch.get_num_threads()}"
    )
    print(
        table(
            [
                {
                    "preset": args.preset,
                    "device": f"{dev} ({name})",
                    "batch": 64,
                    "steps": args.steps,
                    "images/s (median)": f"{statistics.median(speeds):.0f}",
                    "min..max": f"{min(speeds):.0f}..{max(speeds):.0f}",
                    "wall s (incl. start-up)": f"{wall:.1f}",
                }
            ],
            [
                "preset",
                "device",
                "batch",
                "steps",
                "images/s (median)",
                "min..max",
                "wall s (incl. start-up)",
            ],
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
