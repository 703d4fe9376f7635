"""Training speed of the image presets on this device, beside a plain PyTorch loop.

    python benchmarks/train_speed.py [--presets mnist-dcgan ...] [--steps 30] [--device auto]
                                     [--compile] [--world 2] [--out runs/train_speed]

For each preset, in one process and one after the other (ratios, not absolute figures, are what
a shared machine measures well; ``--repeats R`` alternates plain and trainer R times and reports
the median of the R pairwise ratios with their range, so that a load spike hits one pair, not
the verdict):

- **trainer**: ``gankit.train`` at the preset's batch; images/s as the trainer logs it (real
  images D sees per second, batch x n_critic per step), the first logging window dropped;
- **plain**: a hand-written loop over the same nets, optimizers, data stream and the variant's
  own losses (``variant.loss``): backward, step, EMA and nothing else; the overhead floor;
- **compiled** (``--compile``, default on a GPU): the trainer with ``train.compile=true``
  (refused for variants that differentiate twice: WGAN-GP, StyleGAN's R1);
- FLOPs of one step counted with ``torch.utils.flop_counter`` (lazy phases weighed by their
  interval), against the device's measured float32 matmul rate;
- peak memory: CUDA's allocator peak, or the process's peak resident memory on the CPU.

``--world N`` also times ``torchrun --nproc_per_node=N`` (one thread per process on the CPU)
against one process with one thread and with N threads, at the same global batch.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import gankit
from _common import data_root, logged_rate, run_main, table, timing_overrides
from gankit import config
from gankit.devices import resolve
from gankit.training.ema import EMA
from gankit.training.trainer import Trainer
from gankit.variants import Batch

PRESETS = [
    "mnist-gan",
    "mnist-dcgan",
    "mnist-cgan",
    "mnist-wgan-gp",
    "mnist-stylegan",
    "cifar10-dcgan",
    "cifar10-stylegan",
]


def overrides(out: str, steps: int, device: str, extra: list[str]) -> list[str]:
    return [*timing_overrides(out, steps, device, data_root()), *extra]


def trainer_speed(preset: str, over: list[str]) -> float:
    return logged_rate(gankit.train(preset, over).dir)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def plain_loop(t: Trainer, steps: int, count: bool = True) -> tuple[float, float, list[str]]:
    """(images/s, FLOPs per step, phases whose FLOPs could not be counted) of a hand-written
    loop over the trainer's nets and data (FLOPs only when ``count``)."""
    v, nets, opts, dev = t.variant, t.nets, t.opts, t.device
    tc = t.cfg.train
    ema = EMA(nets[v.sampler_player], tc.ema, tc.ema_warmup) if tc.ema > 0 else None
    z_dim, classes = t.cfg.model.z_dim, t.num_classes
    sampler = t.source.sampler(t.cfg.train.batch_size, t.cfg.seed)

    def batch(step: int) -> Batch:
        x, y = sampler.next()
        z = torch.randn(x.shape[0] if not isinstance(x, tuple) else x[0].shape[0], z_dim)
        x = x.to(dev) if not isinstance(x, tuple) else tuple(a.to(dev) for a in x)
        return Batch(real=x, labels=y.to(dev) if classes else None, z=z.to(dev), step=step)

    def run_phase(phase, step: int) -> None:
        for name, net in nets.items():
            net.requires_grad_(name in phase.updates)
        last = None
        for i in range(phase.repeat):
            b = last if (i == 0 and not phase.new_batch and last is not None) else batch(step)
            out = v.loss(phase.name, nets, b)
            for name in phase.updates:
                opts[name].zero_grad(set_to_none=True)
            out.total.backward()
            for name in phase.updates:
                opts[name].step()
            v.after_step(phase.name, nets)

    def step(s: int) -> None:
        for phase in v.phases():
            if s % phase.every == 0:
                run_phase(phase, s)
        if ema is not None:
            ema.update(nets[v.sampler_player], s)

    flops, uncounted = 0.0, []
    for phase in v.phases() if count else ():  # one of each phase, weighed by its interval
        try:
            with FlopCounterMode(display=False) as fc:
                run_phase(phase, 0)
            flops += fc.get_total_flops() / phase.every
        except RuntimeError:  # the counter's hooks cannot follow autograd.grad (R1, path length)
            uncounted.append(phase.name)
    for s in range(3):  # warm-up
        step(s)
    sync(dev)
    t0 = time.perf_counter()
    for s in range(3, 3 + steps):
        step(s)
    sync(dev)
    wall = time.perf_counter() - t0
    images = t.cfg.train.batch_size * max(p.repeat for p in v.phases()) * steps
    return images / wall, flops, uncounted


def allreduce_mb(t: Trainer) -> float:
    """MB of float32 gradients one process all-reduces per step under torchrun: the updated
    players' parameters in each phase, weighed by repeats and intervals (a ring all-reduce sends
    and receives about twice this per process)."""
    total = 0
    for phase in t.variant.phases():
        n = sum(p.numel() for name in phase.updates for p in t.nets[name].parameters())
        total += 4 * n * phase.repeat / phase.every
    return total / 2**20


def matmul_rate(device: torch.device) -> float:
    """Measured float32 FLOP/s of a 2048^3 matmul: this device's achievable peak."""
    n = 2048
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(2):
        a @ b
    sync(device)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 2.0:
        a @ b
        reps += 1
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def world_rows(preset: str, steps: int, world: int, out: str) -> list[dict]:
    """torchrun with N processes x 1 thread against 1 process x 1 and x N threads."""
    base = config.load(preset)
    batch = base.train.batch_size
    rows = []
    runs = [
        ("1 process x 1 thread", 1, 1, batch),
        (f"1 process x {world} threads", 1, world, batch),
        (f"{world} processes x 1 thread", world, 1, batch // world),
    ]
    for label, procs, threads, per in runs:
        name = f"{preset}-w{procs}t{threads}"
        over = overrides(out, steps, "cpu", [f"threads={threads}", f"train.batch_size={per}"])
        over.append(f"name={name}")
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        cmd = [*launcher, f"--nproc_per_node={procs}"] if procs > 1 else [sys.executable]
        subprocess.run(
            [*cmd, "-m", "gankit", "train", "-c", preset, *over], check=True, capture_output=True
        )
        speed = logged_rate(Path(out) / name)
        rows.append(
            {"preset": preset, "setting": label, "global batch": per * procs, "images/s": speed}
        )
    one = rows[0]["images/s"]
    for r in rows:
        r["vs 1 thread"] = f"{r['images/s'] / one:.2f}x"
        r["images/s"] = f"{r['images/s']:.0f}"
    return rows


def median(xs: list[float]) -> float:
    s = sorted(xs)
    return (s[(len(s) - 1) // 2] + s[len(s) // 2]) / 2


def preset_row(
    preset: str, steps: int, device: torch.device, compiled: bool, rate: float, repeats: int = 1
) -> dict:
    """One preset's figures (run in a process of its own, so that peak memory is its own).
    ``repeats`` pairs of (plain, trainer), interleaved: the ratio is the median of the pairs'."""
    with tempfile.TemporaryDirectory() as tmp:
        over = overrides(tmp, steps, str(device), [f"name={preset}"])
        t = Trainer(config.load(preset, [*over, f"out={tmp}/plain"]))
        _, flops, uncounted = plain_loop(t, 1)
        plains, trainers = [], []
        for r in range(repeats):
            plains.append(plain_loop(t, steps, count=False)[0])
            trainers.append(trainer_speed(preset, [*over, f"name={preset}-r{r}"]))
        reduce_mb = allreduce_mb(t)
        t.lock.release()
        del t
        ratios = [a / b for a, b in zip(trainers, plains, strict=True)]
        trainer, plain = median(trainers), median(plains)
        cfg = config.load(preset)
        batch = cfg.train.batch_size
        step_s = batch * max(1, cfg.train.n_critic) / trainer
        row = {
            "preset": preset,
            "batch": batch,
            "trainer img/s": f"{trainer:.0f}",
            "plain img/s": f"{plain:.0f}",
            "trainer / plain": f"{median(ratios):.3f}"
            + (f" ({min(ratios):.3f}-{max(ratios):.3f}, {repeats} pairs)" if repeats > 1 else ""),
            "step ms": f"{1000 * step_s:.1f}",
            "GFLOP/step": f"{flops / 1e9:.2f}"
            + (f" (no {'/'.join(uncounted)})" if uncounted else ""),
            "of matmul peak": f"{flops / step_s / rate:.1%}",
            "peak MB": f"{peak_memory_mb(device):.0f}",
            "grad MB/step": f"{reduce_mb:.2f}",
        }
        if compiled:
            try:
                c = trainer_speed(preset, [*over, "train.compile=true", f"name={preset}-c"])
                row["compiled img/s"] = f"{c:.0f}"
                row["compiled / plain"] = f"{c / plain:.3f}"
            except gankit.UserError as e:
                row["compiled img/s"] = "refused" if "differentiates twice" in str(e) else "?"
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=PRESETS)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=1, help="interleaved plain/trainer pairs")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--compile", action="store_true", help="also the compiled trainer")
    ap.add_argument("--world", type=int, default=0, help="also torchrun with N CPU processes")
    ap.add_argument("--out", default="runs/train_speed")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: one preset, JSON on stdout
    ap.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    device = resolve(args.device)
    compiled = args.compile or device.type == "cuda"
    if args.one:
        row = preset_row(args.one, args.steps, device, compiled, args.rate, args.repeats)
        print("ROW " + json.dumps(row), flush=True)
        return 0
    rate = matmul_rate(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"device {device} ({name}, {torch.get_num_threads()} threads): float32 matmul "
        f"{rate / 1e9:.0f} GFLOP/s measured",
        flush=True,
    )
    rows = []
    for preset in args.presets:
        cmd = [sys.executable, __file__, "--one", preset, "--steps", str(args.steps)]
        cmd += ["--repeats", str(args.repeats)]
        cmd += ["--device", args.device, "--rate", str(rate)] + (["--compile"] if compiled else [])
        res = subprocess.run(cmd, capture_output=True, text=True)
        line = [ln for ln in res.stdout.splitlines() if ln.startswith("ROW ")]
        if res.returncode or not line:
            print(f"{preset}: failed\n{res.stderr[-2000:]}", flush=True)
            continue
        rows.append(json.loads(line[-1][4:]))
        print(json.dumps(rows[-1]), flush=True)
    if rows:
        cols = list(dict.fromkeys(k for r in rows for k in r))
        print(table(rows, cols))
    wrows = []
    if args.world > 1:
        with tempfile.TemporaryDirectory() as tmp:
            for preset in args.presets:
                wrows.extend(world_rows(preset, args.steps, args.world, tmp))
        print(table(wrows, list(wrows[0])))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    result = {"device": f"{device} ({name})", "matmul_flops": rate, "presets": rows, "world": wrows}
    (Path(args.out) / f"train-speed-{device.type}.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    run_main(main)
