"""Does a run copy its training images? gankit's ``memorisation`` metric for each run, as one
table: for n samples, the L2 pixel distance to the nearest training image (the run's own subset
under ``data.limit``) against the distance to the nearest of as many test images. A G that copies
its training set scores a median ratio well below 1; one that generalises scores about 1.

    python benchmarks/memorisation.py runs/augment/cifar10-dcgan-1000-none-10000-s0 ...

(Each run's result is also written to its eval/step_N.json, as by ``gankit eval RUN --metrics
memorisation``.)
"""

from __future__ import annotations

import argparse

import gankit
from _common import run_main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="run folders (their config.yaml names the data)")
    ap.add_argument("--n", type=int, default=1000, help="samples per run")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    print("| run | train images | median NN distance: train | test | ratio | nearer train |")
    print("|---|---|---|---|---|---|")
    for run in args.runs:
        r = gankit.evaluate(run, ["memorisation"], n=args.n, seed=args.seed)
        print(
            f"| {run} | {r['protocols']['memorisation']['n_train']} | {r['nn_dist_train']:.2f} | "
            f"{r['nn_dist_test']:.2f} | {r['memorisation_ratio']:.3f} | {r['nearer_train']:.1%} |"
        )


if __name__ == "__main__":
    run_main(main)
