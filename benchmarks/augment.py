"""Augmentation for small data sets: FID of one preset trained on subsets of CIFAR-10 with
``train.augment`` none, diffaug (Zhao et al. 2020) and ada (Karras et al. 2020).

    python benchmarks/augment.py [--limits 1000 5000] [--modes none diffaug ada]
                                 [--preset cifar10-dcgan] [--steps N] [--n 10000]
                                 [--seeds 0] [--no-floor] [--device auto] [--weights FILE]
                                 [--out runs/augment] [key=value ...]

Each (limit, mode, seed) trains ``--preset`` (default cifar10-dcgan, the JPEG CIFAR-10) on the
first ``limit`` training images of gankit's fixed permutation (``data.limit``; the 1,000 lie
inside the 5,000) for ``--steps`` G updates (default: the preset's), every mode at the same
steps, into ``<out>/<preset>-<limit>-<mode>-<steps>-s<seed>``; then FID of ``--n`` generated
images against ``--n`` images of the *whole* test split (standard Inception weights; the
protocol is 10,000 each). Beside them the floor: FID of ``--n`` images of the whole train split
against the same test images. Writes ``<out>/augment.md``: per limit and mode the FID (mean and
standard deviation over seeds), the final p, training seconds and images seen per real image;
and ``<out>/augment-<limit>-<steps>.png``: a row per mode of 12 samples of the first seed's run,
the same 12 draws of z in every row.

Resumable: a finished run is skipped, an interrupted one continues from its newest checkpoint
(``gankit.resume``), and every FID is cached in ``<out>/results.json`` under the settings that
produced it (run, step, n, weights). Ctrl-C saves a checkpoint; run the same command again to
continue. Positional key=value overrides apply to every run (e.g. ``train.ada_kimg=50``;
``log.checkpoint_every=250`` loses less to a killed session).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from _common import (
    Results,
    bench_setup,
    experiment_keys,
    fid_floor,
    run_main,
    table,
    train_or_resume,
    write_atomic,
)

MODES = ["none", "diffaug", "ada"]
LIMITS = [1000, 5000]


def _fid(run: Path, step: int, results: Results, args, weights, root) -> tuple[float, str]:
    """FID of the run's newest checkpoint: cached, else computed and cached."""
    import gankit

    settings = {"run": run.name, "step": step, "n": args.n, "weights": weights}
    res = results.get(f"{run.name}/fid", settings)
    if res is None:
        print(f"{run.name}: FID with n={args.n}", flush=True)
        res = gankit.evaluate(
            run, ["fid"], n=args.n, device=args.device, inception_weights=weights, data_root=root
        )
        res = {"fid": res["fid"], "protocol": res["protocols"]["fid"]}
        results.put(f"{run.name}/fid", settings, res)
    else:
        print(f"{run.name}: FID with n={args.n} from {results.path}", flush=True)
    proto = res["protocol"]
    return float(res["fid"]), f"{proto.get('n_fake', args.n)} vs {proto.get('n_real', args.n)}"


def _floor(run: Path, results: Results, args, weights, root) -> float:
    settings = {"n": args.n, "weights": weights}
    value = results.get("floor", settings)
    if value is None:
        print(f"floor: FID of {args.n} train vs {args.n} test images", flush=True)
        value, _ = fid_floor(run, args.n, root, weights, args.device)
        results.put("floor", settings, value)
    return float(value)


def _figure(path: Path, runs: list[tuple[str, Path]], title: str) -> None:
    """A row of 12 samples (z drawn with seed 0) per (label, run): the modes side by side."""
    import gankit
    from gankit.report.plots import plot_rows

    rows = [gankit.load_generator(run).sample(12, seed=0) for _, run in runs]
    plot_rows(rows, [label for label, _ in runs], path, title)
    print(f"wrote {path}", flush=True)


def _mean_sd(values: list[float]) -> str:
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} +- {statistics.stdev(values):.1f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limits", type=int, nargs="+", default=LIMITS, help="training images")
    ap.add_argument("--modes", nargs="+", default=MODES, choices=MODES)
    ap.add_argument("--preset", default="cifar10-dcgan")
    ap.add_argument("--steps", type=int, help="G updates per run (default: the preset's)")
    ap.add_argument("--n", type=int, default=10_000, help="FID samples (protocol: 10000)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--no-floor", action="store_true", help="no FID floor (train vs test) row")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--weights", help="FID weights (default: gankit's own, else ../shared)")
    ap.add_argument("--out", default="runs/augment")
    ap.add_argument("overrides", nargs="*", help="key=value applied to every training run")
    args = ap.parse_args()

    import gankit
    from gankit.training import checkpoint
    from gankit.training.rundir import step_of

    weights, root, out, results, base = bench_setup(args)
    steps = args.steps or gankit.load_config(args.preset).train.steps
    batch = gankit.load_config(args.preset, args.overrides).train.batch_size
    rows, last_run = [], None
    try:
        for limit in args.limits:
            shown = []  # (label, run) of each mode's first seed, for the figure
            for mode in args.modes:
                fids, ps, secs, n_text = [], [], [], ""
                for seed in args.seeds:
                    name = f"{args.preset}-{limit}-{mode}-{steps}-s{seed}"
                    over = [*base, f"data.limit={limit}", f"train.augment={mode}", f"seed={seed}"]
                    run, summary, how = train_or_resume(args.preset, out, name, steps, over)
                    if summary.get("interrupted"):
                        print(f"{run}: interrupted at step {summary['steps']}; run again")
                        return 130
                    print(f"{run}: {how} ({summary['steps']} steps, {summary['seconds']:.0f} s)")
                    step = step_of(checkpoint.checkpoints(run)[-1])
                    fid, n_text = _fid(run, step, results, args, weights, root)
                    fids.append(fid)
                    ps.append(summary.get("augment", {}).get("p"))
                    secs.append(summary.get("seconds") or 0.0)
                    last_run = run
                    if seed == args.seeds[0]:
                        shown.append((mode + (f" (p {ps[-1]:.2f})" if mode == "ada" else ""), run))
                p = [x for x in ps if x is not None]
                rows.append({
                    "training images": limit,
                    "augment": mode,
                    "steps": steps,
                    "passes over the data": f"{steps * batch / limit:.0f}",
                    "final p": f"{statistics.mean(p):.2f}" if p else "",
                    "train s": f"{statistics.mean(secs):.0f}",
                    "n (gen vs test)": n_text,
                    "seeds": len(args.seeds),
                    "FID": _mean_sd(fids),
                })  # fmt: skip
            title = f"{args.preset} on {limit} images, {steps} steps, seed {args.seeds[0]}"
            _figure(out / f"augment-{limit}-{steps}.png", shown, title)
        if last_run is not None and not args.no_floor:
            floor = _floor(last_run, results, args, weights, root)
            rows.append({"training images": "floor: train vs test images", "FID": f"{floor:.1f}",
                         "n (gen vs test)": f"{args.n} vs {args.n}"})  # fmt: skip
    except KeyboardInterrupt:
        print("\ninterrupted; run the same command again to continue", file=sys.stderr)
        return 130
    cols = ["training images", "augment", "steps", "passes over the data", "final p", "train s",
            "seeds", "n (gen vs test)", "FID"]  # fmt: skip
    extra = " ".join(experiment_keys(args.overrides))
    text = (
        f"Preset {args.preset}{' (' + extra + ')' if extra else ''}, device {args.device}. FID "
        f"of n generated images against n images of the whole CIFAR-10 test split (JPEG "
        f"re-encoding: not comparable with published numbers); the protocol is n = 10,000. "
        f"Inception weights: {weights or 'gankit default'}.\n\n" + table(rows, cols)
    )
    write_atomic(out / "augment.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    run_main(main)
