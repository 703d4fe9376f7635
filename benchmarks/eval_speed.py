"""FID evaluation speed on this device: the Inception network alone against gankit end to end.

    python benchmarks/eval_speed.py [--n 256] [--threads 0] [--device auto] [--run RUN]
                                    [--reps 2] [--weights FILE] [--data-dir DIR] [--json FILE]

In one process, one after the other (on a shared machine ratios measured in one run mean more
than absolute figures; the load average is printed beside them):

- **network alone**: the FID Inception-v3 (Heusel et al. 2017; Szegedy et al. 2016), its
  TorchScript module only, on random float32 input ``[32, 3, 299, 299]``: images/s at batch 32
  with ``--threads`` intra-op threads; no conversion, no resize, no copies;
- **network, gankit's CPU passes** (CPU only): the same net the way ``extract_features`` runs it
  on a CPU, passes of 4 images in channels-last layout, one pass per thread side by side;
- **end to end**: ``gankit.evaluation.evaluate_generator(G, ["fid"])``, what ``gankit eval RUN
  --metrics fid`` runs after loading: ``--n`` samples of G, uint8 conversion, resize to 299,
  Inception, and the float64 Frechet distance, against a reference whose features are already
  cached (a first call fills the cache and is not timed); images/s of the generated images;
- **10,000 samples projected**: the Frechet step (measured, nearly independent of n) plus 10,000
  times the time per generated image of the end-to-end run.

G is ``--run`` (a run folder, checkpoint or export), or by default a freshly initialised
mnist-dcgan generator (seed 0): sampling speed does not depend on training, and the FID value
of an untrained G is not the point here. The reference is ``--n`` MNIST test images; the FID
weights are the shared pool3 file when gankit finds no other (see ``_common.pick_weights``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

import gankit
from _common import data_root, pick_weights, run_main, table
from gankit import config
from gankit.data import build_source
from gankit.evaluation import Options, evaluate_generator
from gankit.generator import Generator
from gankit.metrics.inception import INPUT_SIZE, load_extractor

try:
    from gankit.metrics.fidelity import CPU_BATCH
except ImportError:  # a gankit from before the CPU passes (timing an older checkout)
    CPU_BATCH = None
from gankit.nets import build_generator

PROJECT_N = 10_000  # the protocol's sample count (PROTOCOLS.md)
NET_BATCH = 32


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def fresh_generator(root: str | None, device: str) -> Generator:
    cfg = config.load("mnist-dcgan", {"data.root": root} if root else None)
    shape = tuple(build_source(cfg.data, "test").shape)  # (1, 28, 28)
    torch.manual_seed(0)
    net = build_generator(cfg.model, shape).to(device)
    return Generator(net, cfg, shape, 0, "image")


def network_alone(ext, device: str, reps: int) -> float:
    """Median images/s of the TorchScript Inception alone at batch 32 (one warm-up pass)."""
    net = ext.module.net
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(NET_BATCH, 3, INPUT_SIZE, INPUT_SIZE, generator=g) * 2 - 1).to(device)
    rates = []
    with torch.inference_mode():
        for i in range(reps + 1):
            t = time.perf_counter()
            net(x)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            if i:  # the first pass profiles and optimises the TorchScript graph
                rates.append(NET_BATCH / (time.perf_counter() - t))
    return statistics.median(rates)


def network_passes(ext, threads: int, reps: int) -> float:
    """Median images/s of the net run as ``extract_features`` runs it on a CPU: passes of
    CPU_BATCH channels-last images, one per thread, each thread with one intra-op thread."""
    net, per = ext.module.net, CPU_BATCH
    g = torch.Generator().manual_seed(0)
    x = torch.rand(per, 3, INPUT_SIZE, INPUT_SIZE, generator=g) * 2 - 1
    x = x.contiguous(memory_format=torch.channels_last)  # [4, 3, 299, 299]
    n_passes = max(2 * threads, NET_BATCH // per)

    def one(_: int) -> None:
        with torch.inference_mode():
            net(x)

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    rates = []
    try:
        with ThreadPoolExecutor(threads, initializer=torch.set_num_threads, initargs=(1,)) as ex:
            for i in range(reps + 1):
                t = time.perf_counter()
                list(ex.map(one, range(threads if i == 0 else n_passes)))
                if i:  # the first round warms each thread up
                    rates.append(n_passes * per / (time.perf_counter() - t))
    finally:
        torch.set_num_threads(old)
    return statistics.median(rates)


def end_to_end(gen: Generator, opts: Options) -> dict:
    t = time.perf_counter()
    res = evaluate_generator(gen, ["fid"], opts)
    wall = time.perf_counter() - t
    p = res["protocols"]["fid"]
    assert p["reference_cache"] == "hit", p["reference_cache"]  # the timed call reads the cache
    return {"wall": wall, "seconds": p["seconds"], "fid": res["fid"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256, help="generated (and reference) images (256)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    ap.add_argument("--device", default="auto", help="auto (cuda if present), cpu or cuda[:N]")
    ap.add_argument("--run", help="run folder, checkpoint or export (default: a fresh DCGAN G)")
    ap.add_argument("--reps", type=int, default=2, help="timed end-to-end runs (median; 2)")
    ap.add_argument("--batch-size", type=int, default=200, help="gankit eval's --batch-size")
    ap.add_argument("--weights", help="Inception weights file (default: see the docstring)")
    ap.add_argument("--data-dir", help="data root (default $GANKIT_DATA, else ../shared)")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args()
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    root = args.data_dir or data_root()
    weights = pick_weights(args.weights)
    load_before = load_average()
    print(
        f"gankit {Path(gankit.__file__).parent}, torch {torch.__version__}, {device}, "
        f"{threads} threads, {os.cpu_count()} cores ({platform.processor() or platform.machine()})"
        f", load average {load_before}",
        flush=True,
    )
    ext = load_extractor(weights, device=device)
    if args.run:
        from gankit.api import load_generator

        gen = load_generator(args.run, device=device)
    else:
        gen = fresh_generator(root, device)
    opts = Options(
        n=args.n,
        device=device,
        batch_size=args.batch_size,
        inception_weights=weights,
        data_root=root,
    )
    t = time.perf_counter()
    first = evaluate_generator(gen, ["fid"], opts)  # fills the reference cache when it is empty
    cache = first["protocols"]["fid"]["reference_cache"]
    print(
        f"first evaluation: {time.perf_counter() - t:.1f} s (reference cache {cache})", flush=True
    )

    net_rate = network_alone(ext, device, max(args.reps, 1))
    print(f"network alone: {net_rate:.2f} images/s", flush=True)
    pass_rate = None
    if device == "cpu" and CPU_BATCH is not None:
        pass_rate = network_passes(ext, threads, max(args.reps, 1))
        print(f"network, gankit's CPU passes: {pass_rate:.2f} images/s", flush=True)
    runs = [end_to_end(gen, opts) for _ in range(max(args.reps, 1))]
    for r in runs:
        print(f"end to end: {args.n / r['wall']:.2f} images/s ({r['seconds']})", flush=True)
    wall = statistics.median(r["wall"] for r in runs)
    frechet = statistics.median(r["seconds"]["metrics"] for r in runs)
    per_image = max(wall - frechet, 0.0) / args.n
    projected = frechet + PROJECT_N * per_image
    e2e_rate = args.n / wall
    rows = [
        {
            "device": f"{device}, {threads} threads",
            "network alone img/s (batch 32)": f"{net_rate:.2f}",
            "network img/s, CPU passes": "-" if pass_rate is None else f"{pass_rate:.2f}",
            f"end to end img/s (n={args.n})": f"{e2e_rate:.2f}",
            "end to end / network alone": f"{e2e_rate / net_rate:.2f}",
            "Frechet s": f"{frechet:.1f}",
            f"projected {PROJECT_N:,} samples": f"{projected / 60:.1f} min",
            "FID": f"{runs[0]['fid']:.3f}",
        }
    ]
    print()
    print(table(rows, list(rows[0])))
    load_after = load_average()
    print(f"load average before {load_before}, after {load_after} (1, 5, 15 min)")
    if args.json:
        record = {
            "gankit": str(Path(gankit.__file__).parent),
            "device": device,
            "threads": threads,
            "n": args.n,
            "network_img_s": net_rate,
            "network_cpu_passes_img_s": pass_rate,
            "end_to_end_img_s": e2e_rate,
            "end_to_end_walls": [r["wall"] for r in runs],
            "seconds": [r["seconds"] for r in runs],
            "frechet_s": frechet,
            "projected_10k_s": projected,
            "fid": runs[0]["fid"],
            "load_average": [load_before, load_after],
        }
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    run_main(main)
