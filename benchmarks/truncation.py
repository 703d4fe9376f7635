"""The truncation trade-off of class-conditional models, side by side (BigGAN, Brock et al. 2019).

    python benchmarks/truncation.py RUN [RUN ...] [--thresholds 2 1 0.5 0.25] [--per-class 100]
                                    [--seed 0] [--out runs/truncation]

For each run (a class-conditional run folder or checkpoint) and each setting (no truncation, then
z drawn from a normal truncated to ``|z_i| <= t`` by resampling, BigGAN's trick), ``--per-class``
samples of every class, asked for by label, are read by gankit's classifier of the run's data
set (``gankit classifier train --data ...`` once):

- **fidelity**: conditional accuracy (the classifier's top class is the class asked for) and the
  classifier's mean probability of the class asked for;
- **diversity**: within-class pixel diversity (mean pairwise L2 distance between samples of one
  class, averaged over the classes) and the classifier-feature FID of all the samples against as
  many test images (``cfid``; it rises as diversity is lost).

Writes ``<out>/truncation.md`` (the table), ``<out>/tradeoff.png`` (fidelity against each
diversity measure, one line per run) and ``<out>/truncation-<name>.png`` per run: a row per
setting (``none``, then ``t=2`` for ``|z_i| <= 2`` ...), two samples of each class in turn, the
same seed in every row (truncation resamples only the entries of z beyond the threshold, so the
rows share the rest).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _common import run_main, table, write_atomic


def _settings(thresholds: list[float]) -> list[tuple[str, float | None]]:
    return [("none", None), *((f"t={t:g}", t) for t in thresholds)]


def _latents(gen, n: int, threshold: float | None, seed: int):
    from gankit.control import sample_latents, truncated_normal

    if threshold is None:
        return sample_latents(gen.z_dim, n, seed)[0]  # [n, z_dim]
    return truncated_normal(n, gen.z_dim, threshold, seed)  # [n, z_dim]


def _diversity(x, labels, k: int) -> float:
    """Mean pairwise pixel L2 distance within each class, averaged over the k classes."""
    import torch

    flat = x.flatten(1)  # [N, P]
    return torch.stack([torch.pdist(flat[labels == c]).mean() for c in range(k)]).mean().item()


def _measure(gen, clf, real, args) -> tuple[list[dict], dict]:
    import torch

    from gankit.control import generate
    from gankit.metrics.classifier import classifier_fid, predict

    k = gen.net.num_classes
    labels = torch.arange(k).repeat_interleave(args.per_class)  # [k * per_class]
    rows, strips = [], {}
    for text, t in _settings(args.thresholds):
        z = _latents(gen, len(labels), t, args.seed)  # [N, z_dim]
        x = generate(gen.net, z, labels)  # [N, C, H, W]
        probs = predict(clf, x).softmax(1)  # [N, k]
        rows.append({
            "setting": text,
            "conditional accuracy": round((probs.argmax(1) == labels).float().mean().item(), 3),
            "p(class asked)": round(probs[torch.arange(len(labels)), labels].mean().item(), 3),
            "within-class diversity": round(_diversity(x, labels, k), 2),
            "classifier FID": round(classifier_fid(x, real, clf)["classifier_fid"], 2),
        })  # fmt: skip
        first = torch.arange(k) * args.per_class  # [k]: each class's first sample
        strips[text] = x[torch.stack([first, first + 1], 1).flatten()]  # [2k, C, H, W]
    return rows, strips


def _plot_tradeoff(results: dict[str, list[dict]], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8), layout="constrained")
    axes = fig.subplots(1, 2)
    for name, rows in results.items():
        for ax, key in zip(axes, ("within-class diversity", "classifier FID"), strict=True):
            xs, ys = [r[key] for r in rows], [r["conditional accuracy"] for r in rows]
            ax.plot(xs, ys, "o-", label=name)
            for r, x, y in zip(rows, xs, ys, strict=True):
                ax.annotate(r["setting"].replace("t=", ""), (x, y), fontsize=7)
            ax.set_xlabel(key + (" (lower: more like the test set)" if "FID" in key else ""))
            ax.set_ylabel("conditional accuracy")
    axes[0].legend(fontsize=8)
    fig.suptitle("Truncation: fidelity against diversity (labels: threshold t, |z_i| <= t)")
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="class-conditional run folders or checkpoints")
    ap.add_argument("--thresholds", type=float, nargs="+", default=[2.0, 1.0, 0.5, 0.25])
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", help="data root (default: the runs' own)")
    ap.add_argument("--out", default="runs/truncation")
    args = ap.parse_args()

    import gankit
    from _common import data_root
    from gankit.errors import UserError
    from gankit.evaluation import CLASSIFIER_FOR, Options, _reference
    from gankit.files import check_output_dir
    from gankit.metrics.classifier import load_classifier
    from gankit.report.plots import plot_rows

    out = check_output_dir(args.out, "--out")
    root = args.data_dir or data_root()
    results, records = {}, {}
    for source in args.runs:
        gen = gankit.load_generator(source)
        cfg = gen.config
        if not getattr(gen.net, "num_classes", 0):
            raise UserError(f"{source} is not class-conditional; truncation.py compares those")
        clf = load_classifier(CLASSIFIER_FOR[cfg.data.name], root or cfg.data.root)
        n = gen.net.num_classes * args.per_class
        opts = Options(n=n, data_root=root)
        real, key = _reference(cfg, opts, n)  # [n, C, H, W] test images
        label = Path(source).name if Path(source).is_dir() else cfg.name
        name = f"{label} (step {gen.step})"
        print(f"{name}: {len(args.thresholds) + 1} settings x {n} samples", flush=True)
        rows, strips = _measure(gen, clf, real, args)
        results[name], records[name] = rows, {"source": str(source), "reference": key}
        title = f"{name}: two samples per class, class 0 to {gen.net.num_classes - 1}"
        plot_rows(list(strips.values()), list(strips), out / f"truncation-{label}.png", title)
    _plot_tradeoff(results, out / "tradeoff.png")
    text = "".join(
        f"## {name}\n\n{args.per_class} samples per class, seed {args.seed}; classifier FID "
        f"against {records[name]['reference']}.\n\n" + table(rows, list(rows[0])) + "\n"
        for name, rows in results.items()
    )
    write_atomic(out / "truncation.md", text)
    write_atomic(out / "truncation.json", json.dumps({"results": results, **records}, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    run_main(main)
