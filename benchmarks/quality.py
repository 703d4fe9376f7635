"""Sample quality of the image presets: train each, then evaluate it by the standard protocols.

    python benchmarks/quality.py [--presets mnist-gan mnist-dcgan ...] [--steps N]
                                 [--metrics fid,kid,pr,cfid,coverage] [--n 10000] [--cacc-n 1000]
                                 [--no-floor] [--device auto] [--weights FILE]
                                 [--out runs/quality] [--skip-train] [key=value ...]

Each preset trains for ``--steps`` G updates (default: the preset's own length) into
``<out>/<preset>-<steps>``, then ``gankit.evaluate`` scores it: FID, KID and precision/recall on
Inception features (n generated against n test images; the protocol is 10,000 each), and with
gankit's classifier the classifier-feature FID, class coverage (entropy of the predicted-class
histogram, log 10 = 2.303 is perfect) and, for conditional presets, the conditional accuracy
(``--cacc-n`` per class; the protocol's 1,000). Beside the models, the floor: FID of n train
images against the same n test images (PROTOCOLS.md), once per data set and image size. Writes
``<out>/quality.md`` with the training budget and the sample counts beside every number. On a
2-core CPU Inception runs at about 7 images/s with 2 threads and 3 with one (measured on a quiet
machine), so 10,000 samples take 25-50 minutes: use the GPU, or a smaller ``--n``, and say so.

Resumable: a finished training is skipped, an interrupted one continues from its newest checkpoint
(``gankit.resume``), and each group of metrics (Inception, classifier, conditional accuracy, the
floor) is cached in ``<out>/results.json`` under the settings that produced it (run, step, n,
weights), so a stopped session loses at most the group under way. Ctrl-C during training saves a
checkpoint; run the same command again to continue.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _common import (
    Results,
    bench_setup,
    experiment_keys,
    fid_floor,
    run_main,
    summary_of,
    table,
    train_or_resume,
    write_atomic,
)

PRESETS = [*(f"{d}-{v}" for d in ("mnist", "fashion") for v in ("gan", "dcgan", "wgan-gp", "cgan"))]
COLUMNS = {  # result key -> column title
    "fid": "FID",
    "kid": "KID x 1000",
    "precision": "precision",
    "recall": "recall",
    "is": "IS",
    "cfid": "classifier FID",
    "class_entropy": "class entropy (max 2.303)",
    "conditional_accuracy": "conditional accuracy",
    "stacked_modes": "Stacked MNIST modes (of 1000)",
    "stacked_kl": "Stacked MNIST KL",
}
INCEPTION = ("fid", "kid", "pr", "is")
CLASSIFIER = ("cfid", "coverage")


def _fmt(key: str, value) -> str:
    if value is None:
        return ""
    if key == "kid":
        return f"{1000 * value:.2f}"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _groups(metrics: list[str], conditional: bool, n: int, cacc_n: int) -> list[tuple]:
    """(name, metrics, n) of each evaluation, cached apart: Inception's metrics share one pass."""
    groups = [
        ("inception", [m for m in metrics if m in INCEPTION], n),
        ("classifier", [m for m in metrics if m in CLASSIFIER], n),
        ("cacc", ["cacc"] if conditional or "cacc" in metrics else [], cacc_n),
        ("other", [m for m in metrics if m not in (*INCEPTION, *CLASSIFIER, "cacc")], n),
    ]
    return [g for g in groups if g[1]]


def _n_text(res: dict, names: list[str]) -> str:
    """The sample counts of a group, from its protocol: "1000 vs 1000 test", "100 per class"."""
    proto = res.get("protocols", {}).get(names[0], {})
    if "n_per_class" in proto:
        return f"{proto['n_per_class']} per class"
    if "n_real" in proto:
        return f"{proto['n_fake']} vs {proto['n_real']} {res.get('ref', 'test')}"
    return str(proto.get("n_fake", ""))


def _evaluate(run: Path, step: int, results: Results, args, weights, root) -> dict:
    """Every metric group of ``run`` at ``step``: cached, else computed and cached."""
    import gankit

    cfg = gankit.load_config(run / "config.yaml")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    out = {"eval s": 0.0}
    for group, names, n in _groups(metrics, cfg.data.classes, args.n, args.cacc_n):
        settings = {"run": run.name, "step": step, "metrics": names, "n": n}
        if group in ("inception", "other"):  # the classifier metrics use no Inception weights
            settings["weights"] = weights
        res = results.get(f"{run.name}/{group}", settings)
        if res is not None:
            print(f"{run.name}: {','.join(names)} with n={n} from {results.path}", flush=True)
        else:
            print(f"{run.name}: evaluating {','.join(names)} with n={n}", flush=True)
            res = gankit.evaluate(
                run, names, n=n, device=args.device, inception_weights=weights, data_root=root
            )
            res.pop("written", None)
            results.put(f"{run.name}/{group}", settings, res)
        out.update({k: v for k, v in res.items() if k in COLUMNS})
        out[f"n {group}"] = _n_text(res, names)
        out["eval s"] += res.get("seconds") or 0.0
        print(json.dumps({k: res[k] for k in COLUMNS if k in res}), flush=True)
    return out


def _floor(run: Path, results: Results, args, weights, root) -> dict:
    """The FID floor at the run's data set and image size (cached; shared by its presets)."""
    import gankit

    data = gankit.load_config(run / "config.yaml").data
    key = f"floor/{data.name}-{data.size}px-{data.channels}ch"
    settings = {"n": args.n, "weights": weights}
    value = results.get(key, settings)
    if value is not None:
        print(f"{key}: FID floor with n={args.n} from {results.path}", flush=True)
    else:
        print(f"{key}: FID of {args.n} train vs {args.n} test images", flush=True)
        fid, protocol = fid_floor(run, args.n, root, weights, args.device)
        value = {"fid": fid, "n_fake": protocol["n_fake"], "n_real": protocol["n_real"]}
        results.put(key, settings, value)
    return {
        "preset": f"floor: {data.name} train vs test images, {data.size} px",
        "FID": _fmt("fid", value["fid"]),
        "n inception": f"{value['n_fake']} train vs {value['n_real']} test",
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=PRESETS)
    ap.add_argument("--steps", type=int, help="G updates per preset (default: the preset's)")
    ap.add_argument("--metrics", default="fid,kid,pr,cfid,coverage")
    ap.add_argument("--n", type=int, default=10_000, help="samples per metric (protocol: 10000)")
    ap.add_argument(
        "--cacc-n", type=int, default=1000, help="per class, conditional accuracy (protocol: 1000)"
    )
    ap.add_argument("--no-floor", action="store_true", help="no FID floor (train vs test) rows")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--weights", help="FID weights (default: gankit's own, else ../shared)")
    ap.add_argument("--out", default="runs/quality")
    ap.add_argument(
        "--skip-train", action="store_true", help="evaluate the runs in --out as they are"
    )
    ap.add_argument("overrides", nargs="*", help="key=value applied to every training run")
    args = ap.parse_args()

    import gankit
    from gankit.training import checkpoint
    from gankit.training.rundir import step_of

    weights, root, out, results, over = bench_setup(args)
    rows, floors = [], {}
    try:
        for preset in args.presets:
            steps = args.steps or gankit.load_config(preset).train.steps
            run = out / f"{preset}-{steps}"
            if args.skip_train:
                if not (run / "config.yaml").is_file():
                    raise SystemExit(f"{run} does not exist; train it first (drop --skip-train)")
                summary = summary_of(run) or {}
            else:
                run, summary, how = train_or_resume(preset, out, run.name, steps, over)
                if summary.get("interrupted"):
                    print(f"{run}: interrupted at step {summary['steps']}; run again to continue")
                    return 130
                print(f"{run}: {how} ({summary['steps']} steps, {summary['seconds']:.0f} s)")
            if not checkpoint.checkpoints(run):
                raise SystemExit(f"{run} has no checkpoint to evaluate")
            step = step_of(checkpoint.checkpoints(run)[-1])
            secs = summary.get("seconds")
            row = {"preset": preset, "steps": step, "train s": f"{secs:.0f}" if secs else ""}
            if experiment_keys(args.overrides):
                row["preset"] += " (" + " ".join(experiment_keys(args.overrides)) + ")"
            res = _evaluate(run, step, results, args, weights, root)
            row.update({title: _fmt(k, res.get(k)) for k, title in COLUMNS.items()})
            row.update({k: v for k, v in res.items() if k.startswith("n ")})
            row["eval s"] = f"{res['eval s']:.0f}"
            rows.append(row)
            if "fid" in [m.strip() for m in args.metrics.split(",")] and not args.no_floor:
                floor = _floor(run, results, args, weights, root)
                floors.setdefault(floor["preset"], floor)
    except KeyboardInterrupt:
        print("\ninterrupted; run the same command again to continue", file=sys.stderr)
        return 130
    rows += list(floors.values())
    cols = ["preset", "steps", "train s", "n inception", "FID", "KID x 1000", "precision",
            "recall", "IS", "n classifier", "classifier FID", "class entropy (max 2.303)", "n cacc",
            "conditional accuracy", "n other", "Stacked MNIST modes (of 1000)", "Stacked MNIST KL",
            "eval s"]  # fmt: skip
    cols = [c for c in cols if any(r.get(c) for r in rows)]
    text = (
        f"Device: {args.device}. n generated vs n test images per metric (the protocol is "
        f"10,000 each; FID is biased by n, so compare equal n only); the floor is FID of n "
        f"train vs the same n test images. Inception weights: {weights or 'gankit default'}.\n\n"
        + table(rows, cols)
    )
    write_atomic(out / "quality.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    run_main(main)
