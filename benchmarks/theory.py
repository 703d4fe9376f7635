"""Goodfellow et al. 2014, Prop. 1 and Thm. 1, made visible on the 1-D ``gauss1d`` data.

    python benchmarks/theory.py [--out runs/theory] [--steps 3000] [--seed 0]

For three fixed generators (far from the data, partly overlapping, nearly equal) it computes
JSD(p_data || p_g) and V(G, D*) = 2 JSD - 2 log 2 by integration on a grid, trains an MLP
discriminator with the BCE loss against the fixed p_g, and reports V(G, D_trained) and the largest
|sigmoid(D) - D*| where p_data + p_g > 0.05. One PNG per case, and all three stacked in
``cases.png``, go to --out.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from _common import run_main, table
from gankit import theory
from gankit.config import DataConfig
from gankit.data.toy import gauss1d

THRESHOLD = 0.05  # where p_data + p_g exceeds this, a trained D should match D*
CASES = {  # name -> (p_g, what a learner should see)
    "far": (theory.gaussian1d(6.0, 0.5), "p_g = N(6, 0.5²): far from the data"),
    "overlapping": (theory.gaussian1d(0.0, 1.5), "p_g = N(0, 1.5²): one wide mode over both"),
    "nearly equal": (
        theory.mixture1d([-1.8, 2.2], [0.55, 0.55]),
        "p_g = ½ N(-1.8, 0.55²) + ½ N(2.2, 0.55²): nearly p_data",
    ),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/theory"))
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)  # a 64-unit MLP gains nothing from threads, and shared cores lose
    p_data = gauss1d(DataConfig())
    p_data.name = "p_data"
    rows, panels = [], []
    for name, (p_g, caption) in CASES.items():
        lo, hi = theory.support(p_data, p_g)
        t0 = time.perf_counter()
        D = theory.train_discriminator(p_data, p_g, steps=args.steps, seed=args.seed)
        seconds = time.perf_counter() - t0
        j = theory.jsd(p_data, p_g, lo, hi)
        path = args.out / f"{name.replace(' ', '_')}.png"
        theory.plot_optimal_discriminator(p_data, p_g, path, D=D, title=f"{name}: {caption}")
        panels.append((f"{name}: {caption}", p_g, D))
        rows.append(
            {
                "case": name,
                "JSD": f"{j:.4f}",
                "2JSD-2log2": f"{2 * j - 2 * theory.LOG2:.4f}",
                "V(G, D_trained)": f"{theory.game_value(D, p_data, p_g, lo, hi):.4f}",
                f"max abs(D - D*), p_data+p_g > {THRESHOLD:g}": (
                    f"{theory.max_gap(D, p_data, p_g, lo, hi, THRESHOLD):.3f}"
                ),
                "train s": f"{seconds:.1f}",
            }
        )
        print(f"wrote {path}", flush=True)
    print(f"wrote {theory.plot_cases(p_data, panels, args.out / 'cases.png')}")
    print(f"\nlog = natural log (nats); log 2 = {theory.LOG2:.4f}; D trained {args.steps} steps\n")
    print(table(rows, list(rows[0])))
    return 0


if __name__ == "__main__":
    run_main(main)
