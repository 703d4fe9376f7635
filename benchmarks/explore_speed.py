"""How live the explorer feels: seconds per request of the sample grid (64) and an interpolation
strip (10), end to end through the web app (sampling, PNG encoding, JSON), on the CPU.

    python benchmarks/explore_speed.py [--run runs/<name> ...] [--repeats 7]

The MNIST presets' generators are built at their preset sizes with random weights (the time does
not depend on what they learned); ``--run`` adds trained runs. Prints the median of the repeats.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from _common import run_main
from gankit import config
from gankit.explore import Loaders, Session
from gankit.explore.app import create_app
from gankit.generator import Generator
from gankit.nets import build_generator

PRESETS = ["mnist-gan", "mnist-dcgan", "mnist-cgan"]  # StyleGAN: pass a trained run (--run);
# a randomly initialised one is slowed by denormal floats, which a trained one does not make


def preset_session(name: str, folder: Path) -> Session:
    cfg = config.load(name, ["data.download=false"])
    k = 10 if cfg.data.classes else 0
    shape = (1, cfg.data.size, cfg.data.size)
    net = build_generator(cfg.model, shape, k).eval()
    gen = Generator(net, cfg, shape, k, "image", 0)
    s = Session(folder, Loaders(generator=lambda: gen), "image")
    s._gen = gen  # no checkpoint in the folder: the one it has stays
    return s


def timed(client, url: str, repeats: int) -> float:
    client.get(url)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        resp = client.get(url)
        times.append(time.perf_counter() - t0)
        assert resp.status_code == 200, resp.get_json()
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", action="append", default=[], help="a trained run folder to add")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    print(f"torch threads: {torch.get_num_threads()}")
    print(f"{'generator':28s} {'grid of 64 (s)':>15s} {'strip of 10 (s)':>16s}")
    with tempfile.TemporaryDirectory() as d:
        sessions = [(name, preset_session(name, Path(d))) for name in PRESETS]
        if args.run:
            from gankit.api_explore import session

            sessions += [(Path(r).name + " (trained)", session(r)) for r in args.run]
        for name, s in sessions:
            client = create_app(s).test_client()
            grid = timed(client, "/api/grid?seed=0&n=64&psi=0.7", args.repeats)
            q = "a_index=1&b_index=2&a_n=64&b_n=64&steps=10"
            strip = timed(client, f"/api/interpolate?{q}", args.repeats)
            print(f"{name:28s} {grid:15.3f} {strip:16.3f}")


if __name__ == "__main__":
    run_main(main)
