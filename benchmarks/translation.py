"""Class preservation of CycleGAN between USPS and MNIST (the CyCADA protocol, PROTOCOLS.md).

    python benchmarks/translation.py [--seeds 3] [--steps N] [--out runs/translation]
                                     [--preset usps-mnist-cyclegan] [key=value ...]

Trains ``--preset`` (A = USPS, B = MNIST, 28 px, grayscale, no flips) once per seed into
``<out>/s<seed>``, resumably: a finished run is skipped, an interrupted one continues from its
newest checkpoint, so the script can be run again after a session ends. Then, per seed and
direction, with a classifier trained only on the *target* domain (gankit's MNIST classifier for
USPS -> MNIST, its USPS classifier for MNIST -> USPS, both trained here if not cached):

- class preservation: the target classifier's accuracy on the whole translated *test* split of the
  source domain, against the source labels;
- source only: the same classifier on the untranslated source test images;
- the cycle error: mean |G_BA(G_AB(a)) - a| (images in [-1, 1]) on the source test split;
- which digits flip: the confusion of true against predicted class, summed over seeds.

Writes ``<out>/translation.md`` (tables), ``translation.json`` and ``translation.png`` (source,
translation and reconstruction rows for both directions, seed 0). Each seed's figures are kept
in ``<out>/s<seed>/translation.json`` for the step it was measured at, and reused.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from _common import data_root, run_main, table

DIRECTIONS = {  # direction -> (source data set, target data set)
    "AtoB": ("usps", "mnist"),
    "BtoA": ("mnist", "usps"),
}
BACK = {"AtoB": "BtoA", "BtoA": "AtoB"}


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, help="G updates (default: the preset's)")
    p.add_argument("--preset", default="usps-mnist-cyclegan")
    p.add_argument("--out", default="runs/translation")
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--jobs", type=int, default=1, help="seeds trained at once (CPU: each on one thread)"
    )
    p.add_argument("overrides", nargs="*", help="config overrides for training, key=value")
    return p.parse_args(argv)


def _train(args, seed: int, root: str | None, extra: tuple[str, ...] = ()) -> Path:
    """Train (or resume, or skip) one seed; returns its run folder."""
    import gankit
    from gankit.training import checkpoint

    run = Path(args.out) / f"s{seed}"
    steps = args.steps or gankit.load_config(args.preset).train.steps
    summary = run / "summary.json"
    if summary.is_file() and json.loads(summary.read_text()).get("steps") == steps:
        if not json.loads(summary.read_text()).get("interrupted"):
            return run
    over = [f"train.steps={steps}", "log.quiet=true", f"device={args.device}", *extra]
    if (run / "config.yaml").is_file() and checkpoint.checkpoints(run):
        print(f"seed {seed}: resuming {run}", flush=True)
        gankit.resume(run, over)
        return run
    base = [f"out={args.out}", f"name=s{seed}", f"seed={seed}", "data.download=false"]
    if root:
        base.append(f"data.root={root}")
    print(f"seed {seed}: training {run} for {steps} steps", flush=True)
    gankit.train(args.preset, base + over + list(args.overrides))
    return run


def _train_one_thread(job) -> Path:
    args, seed, root = job
    import torch

    torch.set_num_threads(1)
    return _train(args, seed, root, ["threads=1"])


def _test_split(name: str, root: str | None):
    import torch

    from gankit.config import DataConfig
    from gankit.data import build_source

    src = build_source(DataConfig(name=name, root=root, size=28, download=False), "test")
    return src.batch(torch.arange(len(src)))  # [N, 1, 28, 28], [N]


def _measure(run: Path, root: str | None, classifiers: dict, device: str) -> dict:
    """Per-direction figures of one run at its newest checkpoint (cached in the run folder)."""
    import torch

    import gankit
    from gankit.metrics.classifier import predict

    out: dict = {}
    translators = {d: gankit.load_translator(run, d, device=device) for d in DIRECTIONS}
    step = translators["AtoB"].step
    cache = run / "translation.json"
    if cache.is_file():
        cached = json.loads(cache.read_text())
        if cached.get("step") == step:
            return cached
    t0 = time.perf_counter()
    for d, (src, dst) in DIRECTIONS.items():
        x, y = _test_split(src, root)
        fake = translators[d](x)  # [N, 1, 28, 28]
        rec = translators[BACK[d]](fake)
        clf = classifiers[dst]
        pred = predict(clf, fake).argmax(1)  # [N]
        base = predict(clf, x).argmax(1)
        confusion = torch.zeros(10, 10, dtype=torch.long)
        confusion.index_put_((y, pred), torch.ones_like(y), accumulate=True)
        out[d] = {
            "source": src,
            "target": dst,
            "n": len(y),
            "accuracy": float((pred == y).double().mean()),
            "source_only": float((base == y).double().mean()),
            "cycle_l1": float((rec - x).abs().mean()),
            "confusion": confusion.tolist(),
        }
    out["step"] = step
    out["seconds_measure"] = round(time.perf_counter() - t0, 1)
    summary = json.loads((run / "summary.json").read_text())
    out["train_seconds"] = summary["seconds"]
    out["steps"] = summary["steps"]
    cache.write_text(json.dumps(out, indent=2) + "\n")
    return out


def _flips(confusion: list[list[int]], top: int = 5) -> str:
    pairs = [
        (confusion[i][j], i, j) for i in range(10) for j in range(10) if i != j and confusion[i][j]
    ]
    pairs.sort(reverse=True)
    return ", ".join(f"{i}->{j} ({c})" for c, i, j in pairs[:top]) or "none"


def _figure(run: Path, root: str | None, path: Path, device: str) -> None:
    import torch

    import gankit
    from gankit.report import plot_rows

    rows, labels = [], []
    for d, (src, dst) in DIRECTIONS.items():
        x, _ = _test_split(src, root)
        x = x[torch.arange(0, 160, 10)]  # 16 test images, spread over the split
        fwd = gankit.load_translator(run, d, device=device)
        back = gankit.load_translator(run, BACK[d], device=device)
        fake = fwd(x)
        rows += [x, fake, back(fake)]
        labels += [f"{src} test", f"to {dst}", f"back to {src}"]
    plot_rows(rows, labels, path, title=f"CycleGAN USPS <-> MNIST ({run.name})")


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    import torch

    from gankit.metrics.classifier import load_classifier

    root = data_root()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    classifiers = {
        name: load_classifier(name, root, train_if_missing=True, quiet=True)
        for name in ("mnist", "usps")
    }
    clf_acc = {name: c.info["test_accuracy"] for name, c in classifiers.items()}
    if args.jobs > 1:  # train in parallel, one thread each; measure below, one by one
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.jobs) as pool:
            list(pool.map(_train_one_thread, [(args, s, root) for s in range(args.seeds)]))
    results = {}
    for seed in range(args.seeds):
        run = _train(args, seed, root)
        results[seed] = _measure(run, root, classifiers, args.device)
        r = results[seed]
        print(
            f"seed {seed} step {r['step']}: USPS->MNIST {100 * r['AtoB']['accuracy']:.1f}% "
            f"MNIST->USPS {100 * r['BtoA']['accuracy']:.1f}%",
            flush=True,
        )
    _figure(out / "s0", root, out / "translation.png", args.device)
    rows = []
    for d, (src, dst) in DIRECTIONS.items():
        acc = [100 * results[s][d]["accuracy"] for s in results]
        cyc = [results[s][d]["cycle_l1"] for s in results]
        conf = torch.tensor([results[s][d]["confusion"] for s in results]).sum(0).tolist()
        sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
        rows.append(
            {
                "direction": f"{src.upper()} -> {dst.upper()}",
                "classifier": f"{dst} (test {100 * clf_acc[dst]:.2f}%)",
                "source only": f"{100 * results[0][d]['source_only']:.1f}%",
                "translated (mean ± sd)": f"{statistics.mean(acc):.1f} ± {sd:.1f}%",
                "per seed": ", ".join(f"{a:.1f}" for a in acc),
                "cycle L1": f"{statistics.mean(cyc):.3f}",
                "most frequent flips (true->predicted, all seeds)": _flips(conf),
            }
        )
    secs = [results[s]["train_seconds"] / results[s]["steps"] * 1000 for s in results]
    steps = results[0]["steps"]
    md = (
        f"# CycleGAN USPS <-> MNIST, {len(results)} seeds x {steps} steps ({args.preset})\n\n"
        + table(rows, list(rows[0]))
        + "\nCPU seconds per 1,000 steps (training, this machine): "
        + ", ".join(f"{s:.0f}" for s in secs)
        + "\n"
    )
    (out / "translation.md").write_text(md)
    (out / "translation.json").write_text(
        json.dumps({"classifiers": clf_acc, "seeds": results}, indent=2) + "\n"
    )
    print(md)
    return 0


if __name__ == "__main__":
    run_main(main)
