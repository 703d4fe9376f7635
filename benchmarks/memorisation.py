"""Does a run copy its training images? For n samples of each run, the L2 pixel distance to the
nearest training image (the run's own subset under ``data.limit``) against the distance to the
nearest of as many test images (a fixed draw). A G that copies its training set scores a median
ratio well below 1; one that generalises scores about 1.

    python benchmarks/memorisation.py runs/augment/cifar10-dcgan-1000-none-10000-s0 ...
"""

from __future__ import annotations

import argparse

import torch

import gankit
from _common import run_main
from gankit.config import load
from gankit.data import build_source


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="run folders (their config.yaml names the data)")
    ap.add_argument("--n", type=int, default=1000, help="samples per run")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    print("| run | train images | median NN distance: train | test | ratio | nearer train |")
    print("|---|---|---|---|---|---|")
    for run in args.runs:
        cfg = load(f"{run}/config.yaml")
        source = build_source(cfg.data, "train")  # the run's data.limit subset
        train = source.sample(len(source))[0].flatten(1)  # [N, D], every training image
        test = build_source(cfg.data, "test").sample(len(train))[0].flatten(1)  # [N, D]
        fake = gankit.load_generator(run).sample(args.n, seed=args.seed).flatten(1)  # [n, D]
        d_train = torch.cdist(fake, train).min(1).values  # [n]
        d_test = torch.cdist(fake, test).min(1).values  # [n]
        print(
            f"| {run} | {len(train)} | {d_train.median():.2f} | {d_test.median():.2f} | "
            f"{(d_train / d_test).median():.3f} | {(d_train < d_test).float().mean():.1%} |"
        )


if __name__ == "__main__":
    run_main(main)
