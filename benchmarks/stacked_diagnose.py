"""Where a Stacked MNIST run's KL comes from: the sampler, or G itself, and whether D sees it.

    python benchmarks/stacked_diagnose.py runs/stacked/stacked-mnist-dcgan-10000

Three checks on the newest checkpoint of a run trained on ``stacked-mnist``, each on the same
latents (``--n`` of them, the protocol's 26,000 by default):

1. the protocol's modes and KL with G's batch norm as gankit samples it (stored running
   statistics), with the statistics of each training-sized batch, and with running statistics
   recomputed over 200 batches: if these differ, the sampler, not G, makes part of the KL;
2. D's mean score of the samples whose digit in a channel is k, beside how often G draws k: at
   D's optimum a logit is log(p_data / p_G), so a digit G draws twice as often as the data
   should score log 2 lower;
3. discriminator rejection sampling (Azadi et al. 2019) on twice as many samples: keep each with
   probability exp(logit - M) for M at D's q-quantile, and score the first ``--n`` kept.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import torch

import gankit
from _common import discriminator, run_main
from gankit.errors import UserError
from gankit.metrics.classifier import load_classifier
from gankit.metrics.stacked_mnist import modes_summary, stack_modes


def summary(modes: torch.Tensor) -> str:
    s = modes_summary(modes)
    ch = ", ".join(f"{c:.3f}" for c in s["channel_kl"])
    return f"{s['modes']} modes, KL {s['kl']:.3f} (channels {ch})"


@torch.no_grad()
def draw(net, z: torch.Tensor, batch: int, clf, d=None):
    """Modes (and D's raw scores) of G(z), ``batch`` latents at a time through ``net``."""
    modes, scores = [], []
    for i in range(0, len(z), batch):
        x = net(z[i : i + batch])
        modes.append(stack_modes(x, clf))
        if d is not None:
            scores.append(d(x).reshape(-1).float())
    return torch.cat(modes), (torch.cat(scores) if d is not None else None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a run folder trained on stacked-mnist")
    ap.add_argument("--n", type=int, default=26_000, help="samples per score (the protocol's)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    gen = gankit.load_generator(args.run)
    if gen.config.data.name != "stacked-mnist" or gen.num_classes:
        raise UserError(f"{args.run} is not an unconditional stacked-mnist run; pass one")
    if args.n < 1000:
        raise UserError(f"--n must be at least 1,000, got {args.n}")
    clf, G, bs = load_classifier("mnist"), gen.net, gen.config.train.batch_size
    z = torch.randn(2 * args.n, gen.z_dim, generator=torch.Generator().manual_seed(args.seed))
    n = args.n

    print(f"{args.run} at step {gen.step}, {n} samples each")
    modes, _ = draw(G.eval(), z[:n], 2000, clf)
    print(f"1. stored running statistics: {summary(modes)}")
    modes, _ = draw(copy.deepcopy(G).train(), z[:n], bs, clf)
    print(f"   statistics of each batch of {bs}: {summary(modes)}")
    recal = copy.deepcopy(G)
    for m in recal.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average
    g = torch.Generator().manual_seed(args.seed + 1)
    with torch.no_grad():
        for _ in range(200):
            recal.train()(torch.randn(bs, gen.z_dim, generator=g))
    modes, _ = draw(recal.eval(), z[:n], 2000, clf)
    print(f"   running statistics recomputed over 200 batches: {summary(modes)}")

    modes, score = draw(G.eval(), z, 2000, clf, discriminator(args.run))
    print("2. per channel: digit, G's share %, D's mean score")
    for c, digits in enumerate([modes // 100, modes // 10 % 10, modes % 10]):
        cells = [
            f"{k}: {100 * (digits == k).float().mean():.1f} % {score[digits == k].mean():+.2f}"
            for k in range(10)
        ]
        print(f"   channel {c}: " + "; ".join(cells))
    print("3. rejection by D's score")
    g = torch.Generator().manual_seed(args.seed + 2)
    for q in (0.5, 0.8, 0.95, 0.99):
        accept = torch.exp(score - score.quantile(q)).clamp(max=1)  # [2n]
        keep = torch.rand(len(score), generator=g) < accept
        kept = modes[keep][:n]
        print(f"   M at q {q}: {keep.float().mean():.1%} kept, {len(kept)} scored: {summary(kept)}")
    return 0


if __name__ == "__main__":
    run_main(main)
