"""Evidence for classifier-guided editing and the truncation trade-off on an MNIST GAN.

    python benchmarks/editing.py [--run RUN | --preset mnist-gan --steps N] [--n 64]
                                 [--edit-steps 200] [--lr 0.05] [--restarts 8] [--shifts 4]
                                 [--prior-weight 0.01] [--max-distance D] [--fit-n 2000]
                                 [--check-seed 1] [--out runs/editing]

With ``--run`` it uses a trained unconditional image run; otherwise it trains ``--preset`` for
``--steps`` G updates into ``<out>/<preset>`` first. For every digit 0..9 and both modes
(optimize, direction) it edits the ``--n`` samples of ``Generator.sample(n, seed=0)`` towards the
digit and records the success rate (gankit's MNIST classifier now says the digit), the distance
moved in z, entanglement (total variation of the classifier's distribution over the other
classes) and seconds, and how often a second classifier, trained with another seed and never
used by the edits (``--check-seed``), also labels the edited image the digit: an edit that only
found the first classifier's blind spot passes one and fails the other. Realism: the
discriminator's mean raw score and the classifier-feature FID (against ``--n-ref`` test images)
of all edited images pooled versus the unedited ones.
Truncation: for psi in 1..0.2 and truncated-normal thresholds, fidelity (mean classifier
confidence, D's score) against diversity (class entropy, mean pairwise pixel distance).

Writes ``<out>/editing.md`` (tables with every setting), ``editing.json``, ``editing.png`` (the
first 8 samples, then a row of their optimize-mode edits per digit, for the README) and
``truncation.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from _common import data_root, discriminator, run_main, table


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", help="a trained unconditional MNIST run (skips training)")
    p.add_argument("--preset", default="mnist-gan")
    p.add_argument("--steps", type=int, help="G updates when training (default: the preset's)")
    p.add_argument("--n", type=int, default=64, help="samples edited per digit and mode")
    p.add_argument("--edit-steps", type=int, default=200, help="optimize mode: most steps")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--restarts", type=int, default=8, help="optimize mode: more tries on failure")
    p.add_argument("--shifts", type=int, default=4, help="optimize mode: shifted copies scored")
    p.add_argument("--prior-weight", type=float, default=0.01)
    p.add_argument("--max-distance", type=float, help="default 0.8 sqrt(z_dim)")
    p.add_argument("--stop-prob", type=float, default=0.9)
    p.add_argument("--fit-n", type=int, default=2000, help="direction mode: samples to fit on")
    p.add_argument("--n-ref", type=int, default=2000, help="test images for classifier FID")
    p.add_argument(
        "--check-seed",
        type=int,
        default=1,
        help="seed of a second, held-out classifier that checks the edits (-1: none)",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="runs/editing")
    return p.parse_args(argv)


def _d_score(d, x) -> float:
    import torch

    with torch.no_grad():
        return torch.cat([d(x[i : i + 500]) for i in range(0, len(x), 500)]).mean().item()


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _agree(logits, target: int) -> float:
    """Fraction of images a classifier labels ``target``."""
    return (logits.argmax(1) == target).float().mean().item()


def _diversity(x) -> float:
    """Mean pairwise Euclidean distance between images (pixels in [-1, 1])."""
    import torch

    flat = x.flatten(1)[:500]  # [n, P]
    return torch.pdist(flat).mean().item()


def _truncation(gen, clf, d, n: int, seed: int) -> list[dict]:
    from gankit.control import generate, sample_latents, truncate_to_mean, truncated_normal
    from gankit.metrics.classifier import class_coverage, predict

    rows = []
    z = sample_latents(gen.z_dim, n, seed)[0]
    settings = [("psi", p) for p in (1.0, 0.8, 0.6, 0.4, 0.2)]
    settings += [("threshold", t) for t in (2.0, 1.0, 0.5)]
    for kind, v in settings:
        zz = truncate_to_mean(z, v) if kind == "psi" else truncated_normal(n, gen.z_dim, v, seed)
        x = generate(gen.net, zz)
        logits = predict(clf, x)
        rows.append(
            {
                "setting": f"{kind}={v}",
                "confidence": round(logits.softmax(1).max(1).values.mean().item(), 4),
                "D score": round(_d_score(d, x), 3),
                "class entropy": round(class_coverage(logits)["class_entropy"], 4),
                "pixel diversity": round(_diversity(x), 3),
            }
        )
    return rows


def _plot_truncation(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.6))
    for kind, marker in (("psi", "o-"), ("threshold", "s--")):
        sel = [r for r in rows if r["setting"].startswith(kind)]
        for a, key in zip(ax, ("class entropy", "pixel diversity"), strict=True):
            a.plot([r[key] for r in sel], [r["confidence"] for r in sel], marker, label=kind)
            for r in sel:
                a.annotate(r["setting"].split("=")[1], (r[key], r["confidence"]), fontsize=7)
            a.set_xlabel(f"diversity: {key}")
            a.set_ylabel("fidelity: mean classifier confidence")
    ax[0].legend()
    fig.suptitle("Truncation trick: fidelity against diversity")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    import torch

    torch.set_num_threads(args.threads)
    import gankit
    from gankit.config import DataConfig
    from gankit.control import edit
    from gankit.data import build_source
    from gankit.metrics.classifier import (
        classifier_fid,
        load_classifier,
        predict,
        train_classifier,
    )

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = data_root()
    if args.run:
        run = Path(args.run)
    else:
        over = [f"out={out}", f"name={args.preset}", "log.quiet=true"]
        over += [f"data.root={root}"] if root else []
        over += [f"train.steps={args.steps}"] if args.steps else []
        run = gankit.train(args.preset, over).dir
    gen = gankit.load_generator(run)
    if gen.num_classes or gen.kind != "image":
        print("editing.py wants an unconditional image generator", file=sys.stderr)
        return 2
    clf = load_classifier("mnist", root, train_if_missing=True, quiet=True)
    check = None  # a classifier the edits never saw: does it agree they reached the target?
    if args.check_seed >= 0:
        check, check_info = train_classifier("mnist", root, seed=args.check_seed, quiet=True)
        print(f"held-out classifier (seed {args.check_seed}): test accuracy "
              f"{100 * check_info['test_accuracy']:.2f}%", flush=True)  # fmt: skip
    d = discriminator(run)
    src = build_source(DataConfig(name="mnist", root=root, download=root is None), "test")
    real, _ = src.sample(args.n_ref, torch.Generator().manual_seed(2024))  # [n_ref, 1, 28, 28]

    common = {"max_distance": args.max_distance, "stop_prob": args.stop_prob}
    opts = {
        "optimize": {**common, "steps": args.edit_steps, "lr": args.lr,
                     "prior_weight": args.prior_weight, "restarts": args.restarts,
                     "shifts": args.shifts},
        "direction": common,
    }  # fmt: skip
    rows, pooled, edited = [], {"optimize": [], "direction": []}, []
    before = None
    for target in range(10):
        for mode in ("optimize", "direction"):
            t0 = time.perf_counter()
            kw = {"fit_n": args.fit_n} if mode == "direction" else {}
            try:
                res = edit(gen, clf, target, n=args.n, seed=0, mode=mode, **kw, **opts[mode])
            except gankit.UserError as e:  # e.g. G never draws this digit: nothing to fit
                rows.append({"target": target, "mode": mode, "success %": 0.0, "note": str(e)})
                print(rows[-1], flush=True)
                continue
            s = res.summary()
            before = res.images_before
            pooled[mode].append(res.images_after)
            if mode == "optimize":
                edited.append(res.images_after[:8])
            rows.append(
                {
                    "target": target,
                    "mode": mode,
                    "already %": round(100 * s["already_target"], 1),
                    "success %": round(100 * s["success_rate"], 1),
                    "held-out %": ""
                    if check is None
                    else round(100 * _agree(predict(check, res.images_after), target), 1),
                    "distance": round(s["distance_mean"], 3),
                    "entanglement": round(s["entanglement_mean"], 3),
                    "steps": round(s["steps_mean"], 1),
                    "tries": round(s["tries_mean"], 2) if s["tries_mean"] else "",
                    "D score after": round(_d_score(d, res.images_after), 3),
                    "seconds": round(time.perf_counter() - t0, 1),
                    "note": "",
                }
            )
            print(rows[-1], flush=True)
    realism = []
    for mode, xs in [("unedited", [before]), *pooled.items()]:
        x = torch.cat(xs)
        realism.append(
            {
                "images": mode if mode == "unedited" else f"edited ({mode}, all digits)",
                "D score": round(_d_score(d, x), 3),
                "classifier FID": round(classifier_fid(x, real, clf)["classifier_fid"], 2),
            }
        )
    trunc = _truncation(gen, clf, d, 2000, seed=0)
    _plot_truncation(trunc, out / "truncation.png")
    if edited:  # the first 8 samples, then each digit's edits of them
        labels = ["samples"] + [f"edited to {k}" for k in range(len(edited))]
        title = f"optimize mode: {args.restarts} restarts, {args.shifts} shifted copies"
        gankit.report.plot_rows([before[:8], *edited], labels, out / "editing.png", title)

    summary = {
        m: {
            "success_mean": sum(r["success %"] for r in rows if r["mode"] == m) / 10,
            "success_min": min(r["success %"] for r in rows if r["mode"] == m),
            "held_out_mean": _mean(
                [r.get("held-out %") for r in rows if r["mode"] == m and r.get("held-out %") != ""]
            ),
            "entanglement_mean": _mean([r.get("entanglement") for r in rows if r["mode"] == m]),
            "failed_fits": sum(bool(r["note"]) for r in rows if r["mode"] == m),
        }
        for m in ("optimize", "direction")
    }
    cols = list(max(rows, key=len))
    md = (
        f"# Classifier-guided editing: {run}\n\n{args.n} samples per digit (seed 0), step "
        f"{gen.step}, options {json.dumps(opts)}; direction fit on {args.fit_n} samples.\n\n"
        + table(rows, cols)
        + f"\nSummary: {json.dumps(summary)}\n\n## Realism ({args.n_ref} test images)\n\n"
        + table(realism, list(realism[0]))
        + "\n## Truncation (2,000 samples)\n\n"
        + table(trunc, list(trunc[0]))
    )
    (out / "editing.md").write_text(md)
    record = {"run": str(run), "rows": rows, "realism": realism, "truncation": trunc}
    (out / "editing.json").write_text(json.dumps({**record, "summary": summary}, indent=1))
    print(md)
    print(f"wrote {out / 'editing.md'}, editing.png and truncation.png")
    return 0 if math.isfinite(summary["optimize"]["success_mean"]) else 1


if __name__ == "__main__":
    run_main(main)
