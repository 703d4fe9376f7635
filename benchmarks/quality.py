"""Sample quality of the image presets: train each, then evaluate it by the standard protocols.

    python benchmarks/quality.py [--presets mnist-gan mnist-dcgan ...] [--steps N]
                                 [--metrics fid,kid,pr,cfid,coverage] [--n 10000]
                                 [--device auto] [--weights FILE] [--out runs/quality]
                                 [--skip-train] [key=value ...]

Each preset trains for ``--steps`` G updates (default: the preset's own length) into
``<out>/<preset>``, then ``gankit.evaluate`` scores it: FID, KID and precision/recall on Inception
features (n generated against n test images; the protocol is 10,000 each), and with gankit's
classifier the classifier-feature FID, class coverage (entropy of the predicted-class histogram,
log 10 = 2.303 is perfect) and, for conditional presets, the conditional accuracy. Writes
``<out>/quality.md`` with the training budget and the sample counts beside every number. On a
2-core CPU Inception runs at a few images per second: use the GPU, or a smaller ``--n``, and say so.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _common import data_root, pick_weights, table

PRESETS = ["mnist-gan", "mnist-dcgan", "mnist-wgan-gp", "mnist-cgan"]
COLUMNS = {  # result key -> column title
    "fid": "FID",
    "kid": "KID x 1000",
    "precision": "precision",
    "recall": "recall",
    "cfid": "classifier FID",
    "class_entropy": "class entropy (max 2.303)",
    "conditional_accuracy": "conditional accuracy",
}


def _fmt(key: str, value) -> str:
    if value is None:
        return ""
    if key == "kid":
        return f"{1000 * value:.2f}"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=PRESETS)
    ap.add_argument("--steps", type=int, help="G updates per preset (default: the preset's)")
    ap.add_argument("--metrics", default="fid,kid,pr,cfid,coverage")
    ap.add_argument("--n", type=int, default=10_000, help="samples per metric (protocol: 10000)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--weights", help="FID weights (default: gankit's own, else ../shared)")
    ap.add_argument("--out", default="runs/quality")
    ap.add_argument("--skip-train", action="store_true", help="evaluate existing runs in --out")
    ap.add_argument("overrides", nargs="*", help="key=value applied to every training run")
    args = ap.parse_args()

    import torch

    import gankit

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    weights = pick_weights(args.weights)
    root = data_root()
    out = Path(args.out)
    rows = []
    for preset in args.presets:
        run_dir = out / preset
        cfg = gankit.load_config(preset)
        steps = args.steps or cfg.train.steps
        t0 = time.perf_counter()
        if not args.skip_train:
            over = [f"out={out}", f"name={preset}", f"device={device}", f"train.steps={steps}"]
            over += ["log.quiet=true"] + ([f"data.root={root}"] if root else []) + args.overrides
            if run_dir.exists():
                raise SystemExit(f"{run_dir} exists; remove it or pass --skip-train")
            gankit.train(preset, over)
        train_s = time.perf_counter() - t0
        metrics = args.metrics
        if cfg.data.classes and "cacc" not in metrics:
            metrics += ",cacc"
        t1 = time.perf_counter()
        res = gankit.evaluate(
            run_dir,
            metrics,
            n=args.n,
            device=device,
            inception_weights=weights,
            data_root=root,
        )
        row = {
            "preset": preset,
            "steps": res.get("step", steps),
            "train s": f"{train_s:.0f}" if not args.skip_train else "",
            "eval s": f"{time.perf_counter() - t1:.0f}",
            "n": args.n,
        }
        for key, title in COLUMNS.items():
            row[title] = _fmt(key, res.get(key))
        rows.append(row)
        print(json.dumps({k: v for k, v in res.items() if k != "protocols"}), flush=True)
    cols = ["preset", "steps", "train s", "n", *COLUMNS.values(), "eval s"]
    text = (
        f"Device: {device}. n generated vs n test images per metric (the protocol is 10,000); "
        f"Inception weights: {weights}.\n\n" + table(rows, cols)
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "quality.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
