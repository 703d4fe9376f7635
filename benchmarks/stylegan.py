"""Evidence for the StyleGAN2 generator: W is less entangled than Z, and its quality against DCGAN.

    python benchmarks/stylegan.py [--data mnist cifar10] [--out runs/stylegan]
                                  [--ppl-n 10000] [--edit-n 64] [--fid-n 500] [--skip-fid]
                                  [--no-baseline] [--steps N] [--probe-steps 30] [--threads N]
                                  [--minutes M]

Per data set (``mnist``: ``mnist-stylegan`` against ``mnist-dcgan``; ``cifar10``:
``cifar10-stylegan`` against ``cifar10-dcgan``), resumably: a finished training is skipped, an
interrupted one continues from its newest checkpoint, and every measurement is cached in
``<out>/results-<data>.json`` under its settings, so the script can be run again after a session
ends.

1. Train the StyleGAN preset for its full steps into ``<out>/<data>-stylegan``.
2. MNIST only: perceptual path length in Z and in W on the StyleGAN (``gankit eval --metrics
   ppl``, ``--ppl-n`` path samples, the MNIST classifier's features); classifier-guided editing
   towards each digit in W and in Z on the same 64 samples: success (gankit's classifier),
   agreement of a held-out classifier (seed 1) and entanglement.
3. The figures of the StyleGAN: style mixing, the truncation strip and stochastic variation.
4. Equal CPU time for the baseline (skipped with ``--no-baseline``): both presets are timed for
   ``--probe-steps`` steps back to back in this process (so the machine's load is the same for
   both), and the DCGAN trains for ``stylegan steps x (StyleGAN s/step) / (DCGAN s/step)`` steps
   into ``<out>/<data>-dcgan``. With ``--minutes M`` instead, equal time is a budget: both presets
   train side by side in two processes, one thread each, for ``train.minutes=M`` each (into
   ``<out>/<preset>-<M>min``), so a load spike slows both alike; steps 1 to 3 then use this
   StyleGAN.
5. FID with the standard Inception weights of both models against the test split and the floor
   (train against test images) at the same n, each at its model's image size; on this CPU
   Inception runs at a few images/s, so ``--fid-n`` is small and said so in the table.

Writes ``<out>/stylegan-<data>.md`` (the tables), ``results-<data>.json`` and the PNGs in
``<out>/figures/<data>``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from _common import data_root, pick_weights, run_main, table

PRESETS = {
    "mnist": ("mnist-stylegan", "mnist-dcgan"),
    "cifar10": ("cifar10-stylegan", "cifar10-dcgan"),
}


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", nargs="+", default=["mnist", "cifar10"], choices=sorted(PRESETS))
    p.add_argument("--out", default="runs/stylegan")
    p.add_argument("--ppl-n", type=int, default=10_000, help="path samples per space")
    p.add_argument("--edit-n", type=int, default=64, help="samples edited per digit and space")
    p.add_argument("--fid-n", type=int, default=500, help="generated and real images per FID")
    p.add_argument("--skip-fid", action="store_true", help="no Inception FID (slow on a CPU)")
    p.add_argument("--no-baseline", action="store_true", help="StyleGAN measurements only")
    p.add_argument("--probe-steps", type=int, default=30, help="steps timed per preset")
    p.add_argument("--steps", type=int, help="StyleGAN steps (default: the preset's)")
    p.add_argument(
        "--baseline-steps",
        type=int,
        help="DCGAN steps, instead of the probe's equal-time count (for when the probe ran on a "
        "loaded machine)",
    )
    p.add_argument(
        "--minutes",
        type=float,
        help="equal time by budget instead of the probe: train the StyleGAN and the DCGAN side by "
        "side, one thread each, each for this many minutes of training (train.minutes)",
    )
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--weights", help="FID Inception weights (default: found or shared)")
    return p.parse_args(argv)


class Results:
    """``<out>/results.json``: one entry per measurement, reused while its settings match."""

    def __init__(self, path: Path):
        self.path = path
        self.data = json.loads(path.read_text()) if path.is_file() else {}

    def get(self, key: str, settings: dict):
        entry = self.data.get(key)
        return entry["value"] if entry and entry.get("settings") == settings else None

    def put(self, key: str, settings: dict, value) -> None:
        self.data[key] = {"settings": settings, "value": value}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2) + "\n")
        tmp.replace(self.path)


def _overrides(root: str | None, threads: int) -> list[str]:
    over = ["log.quiet=true", "data.download=false"]
    over += [f"data.root={root}"] if root else []
    over += [f"threads={threads}"] if threads else []
    return over


def _train(preset: str, out: Path, steps: int, over: list[str]) -> Path:
    """Train ``preset`` for ``steps`` into ``out/preset``: skipped when done, else resumed."""
    import gankit
    from gankit.training import checkpoint

    run = out / preset
    summary = run / "summary.json"
    if summary.is_file():
        s = json.loads(summary.read_text())
        if s.get("steps") == steps and not s.get("interrupted"):
            return run
    if (run / "config.yaml").is_file() and checkpoint.checkpoints(run):
        print(f"{preset}: resuming {run} to {steps} steps", flush=True)
        gankit.resume(run, [f"train.steps={steps}", *[o for o in over if o.startswith("threads")]])
        return run
    print(f"{preset}: training {run} for {steps} steps", flush=True)
    gankit.train(preset, [f"out={out}", f"name={preset}", f"train.steps={steps}", *over])
    return run


def _summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def _done(run: Path, steps: int | None = None) -> bool:
    """Whether ``run`` finished: its ``steps``, or (``None``) the end of its time budget."""
    summary = run / "summary.json"
    if not summary.is_file():
        return False
    s = json.loads(summary.read_text())
    if s.get("interrupted"):
        return False
    return s.get("time_limit", False) if steps is None else s.get("steps") == steps


def _side_by_side(presets: tuple[str, str], out: Path, minutes: float, over: list[str]):
    """Both presets trained at once, one thread each, for ``minutes`` of training time each, so
    a busy machine slows both alike. Each run resumes from its checkpoint when interrupted (then
    alone, if the other already finished: the log says so). Returns the two run folders."""
    runs, procs = [], []
    for preset in presets:
        run = out / f"{preset}-{minutes:g}min"
        runs.append(run)
        if _done(run):
            continue
        base = [sys.executable, "-m", "gankit", "train"]
        if (run / "config.yaml").is_file():  # resumed: from its newest checkpoint, or step 0
            cmd = [*base, "--resume", str(run), "threads=1", "log.quiet=true"]
        else:
            cmd = [*base, "-c", preset, f"out={out}", f"name={run.name}", "train.steps=1000000",
                   f"train.minutes={minutes}", *[o for o in over if not o.startswith("threads")],
                   "threads=1"]  # fmt: skip
        print(f"{preset}: {' '.join(cmd[2:])}", flush=True)
        procs.append((preset, subprocess.Popen(cmd, stdout=subprocess.DEVNULL)))
    if len(procs) == 1:
        print(f"warning: {procs[0][0]} resumes alone; the other run had finished", flush=True)
    for preset, proc in procs:
        if proc.wait() != 0:
            raise SystemExit(f"{preset} stopped with exit code {proc.returncode}")
    return runs


def _probe(presets: tuple[str, str], steps: int, over: list[str], tmp: Path) -> dict[str, float]:
    """Seconds per step of each preset, timed back to back (steps after the first 5)."""
    import gankit

    rate = {}
    for preset in presets:
        runs = []
        for n in (5, 5 + steps):
            run = gankit.train(
                preset, [f"out={tmp}", f"name={preset}-{n}", f"train.steps={n}", *over,
                         f"log.every={n}", f"log.sample_every={n}", f"log.checkpoint_every={n}"]
            )  # fmt: skip
            runs.append(run.summary["seconds"])
        rate[preset] = (runs[1] - runs[0]) / steps
    return rate


def _edits(run: Path, root: str | None, n: int) -> list[dict]:
    import gankit
    from gankit.control import edit
    from gankit.metrics.classifier import load_classifier, predict, train_classifier

    gen = gankit.load_generator(run)
    clf = load_classifier("mnist", root, train_if_missing=True, quiet=True)
    check, _ = train_classifier("mnist", root, seed=1, quiet=True)
    rows = []
    for target in range(10):
        for space in ("w", "z"):
            t0 = time.perf_counter()
            res = edit(gen, clf, target, n=n, seed=0, mode="optimize", space=space)
            s = res.summary()
            agree = (predict(check, res.images_after).argmax(1) == target).float().mean()
            rows.append(
                {
                    "digit": target,
                    "space": space.upper(),
                    "already %": round(100 * s["already_target"], 1),
                    "success %": round(100 * s["success_rate"], 1),
                    "held-out %": round(100 * float(agree), 1),
                    "entanglement": round(s["entanglement_mean"], 3),
                    "distance": round(s["distance_mean"], 3),
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            )
            print(rows[-1], flush=True)
    return rows


def _fid(run: Path, n: int, root: str | None, weights: str | None) -> float:
    """FID of the run's newest checkpoint, reusing a result ``gankit eval`` stored for it."""
    import gankit
    from gankit.training import checkpoint
    from gankit.training.rundir import step_of

    step = step_of(checkpoint.checkpoints(run)[-1])
    stored = run / "eval" / f"step_{step:07d}.json"
    if stored.is_file():
        res = json.loads(stored.read_text())
        if "fid" in res and res["protocols"]["fid"].get("n_fake") == n:
            return float(res["fid"])
    res = gankit.evaluate(run, "fid", n=n, data_root=root, inception_weights=weights)
    return float(res["fid"])


def _floor(run: Path, n: int, root: str | None, weights: str | None) -> float:
    """FID of n train images against the n test images ``gankit eval`` compares a model with
    (same selection, so its cached features are reused), at the run's data settings."""
    import dataclasses

    import torch

    import gankit
    from gankit.data import build_source
    from gankit.evaluation import REF_SEED
    from gankit.metrics.fidelity import compute_metrics
    from gankit.metrics.inception import load_extractor

    cfg = gankit.load_config(run / "config.yaml")
    data = dataclasses.replace(cfg.data, root=root or cfg.data.root, classes=False)
    train, test = build_source(data, "train"), build_source(data, "test")
    fake = train.sample(n, torch.Generator().manual_seed(0))[0]
    real = test.sample(n, torch.Generator().manual_seed(REF_SEED))[0]
    shape = "x".join(map(str, real.shape[1:]))
    subset = "all" if n == len(test) else f"seed{REF_SEED}"
    key = f"{cfg.data.name}-test-{n}-{shape}-{subset}"
    res = compute_metrics(fake, real, load_extractor(weights), metrics=["fid"], real_key=key)
    return float(res["fid"])


def _figures(run: Path, figures: Path) -> list[str]:
    figures.mkdir(parents=True, exist_ok=True)
    made = []
    for cmd, name in (
        (["mix", str(run), "--seed", "0"], "mixing.png"),
        (["sample", str(run), "--psi-strip", "--seed", "0"], "truncation.png"),
        (["variation", str(run), "--noise-seed", "0"], "variation.png"),
    ):
        out = figures / name
        done = subprocess.run(
            [sys.executable, "-m", "gankit", *cmd, "--out", str(out)],
            capture_output=True,
            text=True,
        )
        print(" ".join(cmd), "->", out if done.returncode == 0 else done.stderr.strip(), flush=True)
        if done.returncode == 0:
            made.append(str(out))
    return made


def _entanglement(run_sg: Path, step: int, results: Results, root, args) -> list[str]:
    """PPL in Z and W, and editing in W and Z, on the MNIST StyleGAN (cached)."""
    import gankit

    md = []
    key = {"n": args.ppl_n, "step": step}
    ppl = results.get("mnist/ppl", key)
    if ppl is None:
        t0 = time.perf_counter()
        res = gankit.evaluate(run_sg, "ppl", n=args.ppl_n, data_root=root)
        ppl = {k: res[k] for k in ("ppl_z", "ppl_w")}
        ppl["seconds"] = round(time.perf_counter() - t0, 1)
        ppl["features"] = res["protocols"]["ppl"]["features"]
        results.put("mnist/ppl", key, ppl)
    md.append(
        f"Perceptual path length ({args.ppl_n} paths per space, {ppl['seconds']:.0f} s; "
        f"features: {ppl['features']}): **Z {ppl['ppl_z']:.1f}, W {ppl['ppl_w']:.1f}** "
        f"(W/Z = {ppl['ppl_w'] / ppl['ppl_z']:.2f}; the paper: 665 vs 233).\n"
    )
    key = {"n": args.edit_n, "step": step}
    rows = results.get("mnist/edits", key)
    if rows is None:
        rows = _edits(run_sg, root, args.edit_n)
        results.put("mnist/edits", key, rows)
    cols = ["digit", "space", "already %", "success %", "held-out %", "entanglement",
            "distance", "seconds"]  # fmt: skip
    md.append("Classifier-guided editing (optimize mode), per digit:\n")
    md.append(table(rows, cols))
    for space in ("W", "Z"):
        sel = [r for r in rows if r["space"] == space]
        md.append(
            f"- {space}: success {sum(r['success %'] for r in sel) / len(sel):.1f}%, "
            f"held-out {sum(r['held-out %'] for r in sel) / len(sel):.1f}%, "
            f"entanglement {sum(r['entanglement'] for r in sel) / len(sel):.3f}\n"
        )
    return md


def _baseline(data, run_sg, steps, results, over, root, weights, args) -> list[str]:
    """The DCGAN at equal CPU time and the FID table (cached)."""
    import gankit

    sg, dc = PRESETS[data]
    if args.minutes:
        run_sg, run_dc = _side_by_side((sg, dc), Path(args.out), args.minutes, over)
        s_sg, s_dc = _summary(run_sg), _summary(run_dc)
        md = [
            f"Equal time by budget: {sg} and {dc} trained side by side, one thread each, for "
            f"train.minutes={args.minutes:g}: {s_sg['steps']} StyleGAN steps "
            f"({s_sg['seconds']:.0f} s) and {s_dc['steps']} DCGAN steps ({s_dc['seconds']:.0f} s)."
            "\n"
        ]
        return md + _fid_table(data, run_sg, run_dc, results, root, weights, args)
    settings = {"presets": [sg, dc], "probe_steps": args.probe_steps}
    rate = results.get(f"{data}/probe", settings)
    if rate is None:
        rate = _probe((sg, dc), args.probe_steps, over, Path(args.out) / "probe")
        results.put(f"{data}/probe", settings, rate)
    dc_steps = args.baseline_steps or round(steps * rate[sg] / rate[dc])
    if not args.baseline_steps and not 0.2 < rate[sg] / rate[dc] < 5:
        print(
            f"warning: the probe's ratio {rate[sg] / rate[dc]:.1f} is implausible (a load spike "
            f"during one preset's probe?); delete {args.out}/results-{data}.json's probe entry "
            "and rerun on a quiet machine, or pass --baseline-steps",
            flush=True,
        )
    run_dc = _train(dc, Path(args.out), dc_steps, over)
    s_sg, s_dc = _summary(run_sg), _summary(run_dc)
    md = [
        f"Equal CPU time: {sg} {rate[sg]:.3f} s/step and {dc} {rate[dc]:.3f} s/step timed back "
        f"to back ({args.probe_steps} steps each), so {steps} StyleGAN steps = {dc_steps} DCGAN "
        f"steps. Logged training time (a shared machine): {s_sg['seconds']:.0f} s and "
        f"{s_dc['seconds']:.0f} s.\n"
    ]
    if data == "mnist":  # the classifier's view at the protocol's n: cheap, and sharper than FID
        key = {"n": 10_000, "steps": [s_sg["steps"], s_dc["steps"]]}
        cls = results.get("mnist/classifier", key)
        if cls is None:
            cls = {}
            for name, run in ((sg, run_sg), (dc, run_dc)):
                res = gankit.evaluate(run, "cfid,coverage", n=10_000, data_root=root)
                cls[name] = {k: res[k] for k in ("cfid", "class_entropy")}
            results.put("mnist/classifier", key, cls)
        rows = [{"model": k, **{c: round(x, 3) for c, x in v.items()}} for k, v in cls.items()]
        md.append("Classifier FID and class entropy (max 2.303), 10,000 samples:\n")
        md.append(table(rows, ["model", "cfid", "class_entropy"]))
    return md + _fid_table(data, run_sg, run_dc, results, root, weights, args)


def _fid_table(data, run_sg, run_dc, results, root, weights, args) -> list[str]:
    """FID of both models and the floor at each image size, n = ``--fid-n`` (cached)."""
    import gankit

    if args.skip_fid:
        return []
    sg, dc = PRESETS[data]
    s_sg, s_dc = _summary(run_sg), _summary(run_dc)
    md = []
    key = {"n": args.fid_n, "steps": [s_sg["steps"], s_dc["steps"]]}
    fid = results.get(f"{data}/fid", key)
    if fid is None:
        fid, floors = {}, {}
        for name, run in ((sg, run_sg), (dc, run_dc)):
            fid[name] = _fid(run, args.fid_n, root, weights)
            size = gankit.load_config(run / "config.yaml").data.size
            if size not in floors:  # the floor at each image size the models make
                floors[size] = _floor(run, args.fid_n, root, weights)
                fid[f"floor: train vs test images at {size} px"] = floors[size]
            print(name, fid, flush=True)
        results.put(f"{data}/fid", key, fid)
    md.append(f"FID, standard Inception weights, n = {args.fid_n} against the test split:\n")
    rows = [{"model": k, "FID": round(v, 2)} for k, v in fid.items()]
    md.append(table(rows, ["model", "FID"]))
    return md


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    import gankit

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root, weights = data_root(), pick_weights(args.weights)
    over = _overrides(root, args.threads)
    for data in args.data:  # one results file per data set: two can run at once
        results = Results(out / f"results-{data}.json")
        sg, dc = PRESETS[data]
        steps = args.steps or gankit.load_config(sg).train.steps
        if args.minutes:  # the pair trains first: the StyleGAN measured is the budget's
            run_sg = _side_by_side((sg, dc), out, args.minutes, over)[0]
        else:
            run_sg = _train(sg, out, steps, over)
        s_sg = _summary(run_sg)
        md = [f"# StyleGAN2 benchmark: {data}\n"]
        md.append(
            f"{sg}: {s_sg['steps']} steps in {s_sg['seconds']:.0f} s on a shared machine "
            f"({s_sg.get('img_per_s')} images/s logged).\n"
        )
        if data == "mnist":
            md += _entanglement(run_sg, s_sg["steps"], results, root, args)
        figs = _figures(run_sg, out / "figures" / data)
        md.append("Figures: " + ", ".join(figs) + "\n")
        if not args.no_baseline:
            md += _baseline(data, run_sg, steps, results, over, root, weights, args)
        (out / f"stylegan-{data}.md").write_text("\n".join(md))
        print("\n".join(md))
    return 0


if __name__ == "__main__":
    run_main(main)
