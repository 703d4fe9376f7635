"""Does a run copy its training images? For n samples of each run, the L2 pixel distance to the
nearest training image (the run's own subset under ``data.limit``) against the distance to the
nearest of as many test images. A G that copies its training set scores a median ratio well
below 1; one that generalises scores about 1.

    python benchmarks/memorisation.py runs/augment/cifar10-dcgan-1000-none-10000-s0 ...
"""

from __future__ import annotations

import argparse

import torch
from torch import Tensor

import gankit
from gankit.config import load
from gankit.data import build_source


def images(source, limit: int | None = None) -> Tensor:
    """The first ``limit`` images of a source as float ``[N, C*H*W]`` in [-1, 1]."""
    n = len(source) if limit is None else min(limit, len(source))
    if hasattr(source, "images"):  # held in memory (uint8 or float)
        x = source.images[:n]
        x = x.float() / 127.5 - 1 if x.dtype == torch.uint8 else x.float()
    else:  # a folder: decode in chunks
        parts = [source.dataset[list(range(i, min(i + 256, n)))][0] for i in range(0, n, 256)]
        x = torch.cat(parts)
    return x.flatten(1)  # [N, D]


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
        train = images(build_source(cfg.data, "train"))  # [N, D]
        test = images(build_source(cfg.data, "test"), len(train))  # [N, D], as many
        fake = gankit.load_generator(run).sample(args.n, seed=args.seed).flatten(1)  # [n, D]
        d_train = torch.cdist(fake, train).min(1).values  # [n]
        d_test = torch.cdist(fake, test).min(1).values  # [n]
        print(
            f"| {run} | {len(train)} | {d_train.median():.2f} | {d_test.median():.2f} | "
            f"{(d_train / d_test).median():.3f} | {(d_train < d_test).float().mean():.1%} |"
        )


if __name__ == "__main__":
    main()
