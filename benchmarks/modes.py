"""Mode coverage of every variant on the 2-D mixtures (VEEGAN / PacGAN protocol), with remedies.

    python benchmarks/modes.py [--data ring grid] [--variants gan wgan wgan-gp lsgan ebgan]
                               [--remedies pac2,sn,mbstd,unroll5] [--extra "train.pac=2" ...]
                               [--no-plain] [--steps N] [--grid-steps N] [--seeds 5] [--jobs 2]
                               [--out runs/modes] [key=value ...]

Each (data set, variant, remedy, seed) trains the variant's ring preset (``ring-<variant>``, or
``ring`` for ``gan``) with ``data.name`` set to the data set for ``--steps`` G updates (default:
the preset's; the grid gets ``--grid-steps``, default twice that), then scores 2,500 samples:
modes captured, share of high-quality samples (within 3 std of the nearest mode), reverse KL of
the mode histogram to uniform. A remedy row adds overrides to a variant: ``--remedies`` names
them (``pacM`` = train.pac=M, ``sn`` = model.spectral_norm=true, ``mbstd`` or ``mbstdG`` =
model.mbstd=4 or G, ``unrollK`` = variant.unroll=K, ``veegan`` = the 2-D nets of VEEGAN and
PacGAN with a 2-d latent, see nets/mlp.py; ``veegan+pac2`` combines), ``--extra`` gives
key=value items of one row (repeatable); each applies to every ``--variants`` that accepts it
(``unroll`` is the gan's alone, ebgan does not pack). Writes ``<out>/modes.md`` (mean and
standard deviation over seeds, training and CPU seconds per run) and one figure per data set,
``<out>/<data>.png``, with every row's first-seed scatter side by side.

Resumable: each run trains into ``<out>/<data>-<variant>[+<remedy>]-<steps>-s<seed>``; a finished
run is skipped, an interrupted one continues from its newest checkpoint (``gankit.resume``), and
every run's scores are cached in ``<out>/results.json`` under the settings that produced them.
Ctrl-C asks the running trainings to save a checkpoint and stop; run the same command again to
continue. Positional key=value overrides apply to every run (log.checkpoint_every=200 checkpoints
more often; log.*, device and threads change nothing that is measured).
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import re
import signal
import statistics
import sys
import textwrap
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from _common import (
    Results,
    cpu_seconds,
    experiment_keys,
    run_main,
    table,
    train_or_resume,
    write_atomic,
)

VARIANTS = ["gan", "wgan", "wgan-gp", "lsgan", "ebgan"]
LONGER = {"grid": 2}  # the grid's 25 modes get twice the ring's steps by default
REMEDY = {  # --remedies name -> override; the number is the name's digits
    "pac": ("train.pac={}", None),
    "unroll": ("variant.unroll={}", None),
    "mbstd": ("model.mbstd={}", "4"),
    "sn": ("model.spectral_norm=true", ""),
    # not a remedy but the nets of VEEGAN and PacGAN's 2-D experiments, with a 2-d latent
    "veegan": (
        "model.leak=0 model.width=200 model.depth=3 model.options.g_width=400 "
        "model.options.g_depth=4 model.options.g_batchnorm=true model.options.d_maxout=5 "
        "model.z_dim=2",
        "",
    ),
}


def _preset(variant: str) -> str:
    from gankit.config import presets

    name = "ring" if variant == "gan" else f"ring-{variant}"
    if name not in presets():
        raise SystemExit(f"no preset {name}; add src/gankit/configs/{name}.yaml")
    return name


def remedy_overrides(name: str) -> list[str]:
    """``pac2+sn`` -> ["train.pac=2", "model.spectral_norm=true"]."""
    over = []
    for part in name.split("+"):
        m = re.fullmatch(r"([a-z]+)(\d*)", part)
        if not m or m.group(1) not in REMEDY:
            raise SystemExit(f"unknown remedy {part!r}; use pacM, sn, mbstd[G], unrollK, veegan")
        fmt, default = REMEDY[m.group(1)]
        num = m.group(2) or default
        if num is None or (default == "" and m.group(2)):
            raise SystemExit(f"remedy {part!r}: write pac2, unroll5, mbstd or mbstd4, sn, veegan")
        over.extend(fmt.format(num).split())
    return over


MAX_SLUG = 200  # a file name holds at most 255 bytes; the run adds data, steps, seed, ".lock"


def _slug(label: str) -> str:
    """``label`` as a file-name part: safe characters, and a long one cut with a hash of the
    whole kept, so two long rows never share a run folder."""
    slug = re.sub(r"[^A-Za-z0-9.,=_+-]", "_", label.replace(" ", ","))
    if len(slug) <= MAX_SLUG:
        return slug
    return f"{slug[: MAX_SLUG - 13]}~{hashlib.sha256(slug.encode()).hexdigest()[:12]}"


def _rows(args) -> list[dict]:
    """The table's rows: each variant plain, then with each remedy and each --extra."""
    remedies = [(r, remedy_overrides(r)) for x in args.remedies for r in x.split(",") if r]
    remedies += [(" ".join(e.split()), e.split()) for e in args.extra]
    rows = []
    for variant in args.variants:
        for label, over in [*([] if args.no_plain else [("", [])]), *remedies]:
            rows.append({"variant": variant, "remedy": label, "slug": _slug(label), "extra": over})
    return rows


def _refusal(preset: str, over: list[str]) -> str | None:
    """Why gankit refuses this run (a variant without the option, a D that cannot pack), or
    None; checked here so a refused row costs no training."""
    import gankit
    import gankit.variants  # noqa: F401  (registers the variants)
    from gankit.data import build_source
    from gankit.errors import UserError
    from gankit.registry import VARIANTS

    try:
        cfg = gankit.load_config(preset, over)
        variant = VARIANTS.get(cfg.train.variant)(cfg)
        source = build_source(cfg.data)
        variant.check_data(source)
        nets = variant.build_nets(source.shape, source.num_classes if cfg.data.classes else 0)
        if cfg.train.pac > 1 and all(getattr(n, "pac", 1) == 1 for n in nets.values()):
            return f"train.variant={cfg.train.variant} builds discriminators that do not pack"
    except UserError as e:
        return str(e)
    return None


def _jobs(args, out: Path) -> list[dict]:
    import gankit
    from gankit.errors import UserError

    jobs, refused = [], []
    for data in args.data:
        for row in _rows(args):
            preset = _preset(row["variant"])
            steps = args.steps or gankit.load_config(preset).train.steps
            if data in LONGER:  # more modes, same learning rates: a longer run
                steps = args.grid_steps if args.grid_steps else steps * LONGER[data]
            label = row["variant"] + (f"+{row['slug']}" if row["remedy"] else "")
            base = [f"data.name={data}", *row["extra"], *args.overrides]
            why = _refusal(preset, [*base, f"train.steps={steps}"])
            if why:
                refused.append((f"{data} {label}", why))
                continue
            for seed in range(args.seeds):
                over = [f"seed={seed}", *base]
                name = f"{data}-{label}-{steps}-s{seed}"
                settings = {"preset": preset, "steps": steps, "overrides": experiment_keys(over)}
                jobs.append(
                    {**row, "data": data, "seed": seed, "preset": preset, "steps": steps,
                     "over": over, "out": str(out), "name": name, "settings": settings}
                )  # fmt: skip
    if not jobs and refused:  # nothing runs: one line, not the same reason once per row
        reasons = {why for _, why in refused}
        raise UserError(
            refused[0][1]
            if len(reasons) == 1
            else f"every run was refused; {refused[0][0]}: "
            f"{refused[0][1]} (and {len(refused) - 1} more)"
        )
    for what, why in refused:  # a row that does not apply (a D that cannot pack): the rest run
        print(f"skipped {what}: {why}", flush=True)
    return jobs


# --------------------------------------------------------------------------------- worker side
_PARENT = 0  # the main process's id
_STOP = False  # a Ctrl-C came: start no further run
_IN_JOB = False


def _on_sigint(signum, frame):
    global _STOP
    _STOP = True
    if os.getppid() != _PARENT:  # orphaned (the main process was killed): go
        os._exit(1)
    if _IN_JOB:  # outside the trainer's own handler (which checkpoints and stops)
        raise KeyboardInterrupt


def _worker_init(parent: int) -> None:
    """Own process group, so a terminal's Ctrl-C reaches the main process alone (it forwards
    exactly one SIGINT here: the trainer checkpoints and stops); and a SIGINT when the main
    process dies (Linux), so a killed main process leaves no worker training."""
    global _PARENT
    _PARENT = parent
    os.setpgrp()
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: an orphaned worker finishes its current run
    if os.getppid() != parent:
        os._exit(1)
    import gankit.report  # noqa: F401  (imported before any run's CPU clock starts, so the
    import gankit.training.trainer  # noqa: F401  first run of a process pays no more than others)


def _one(job: dict) -> dict:
    """Train (or resume, or skip) one run and read its scores from its summary."""
    global _IN_JOB, _STOP
    if _STOP:
        return {"interrupted": True}
    _IN_JOB = True
    try:
        run, s, how = train_or_resume(
            job["preset"], Path(job["out"]), job["name"], job["steps"], job["over"],
            note=lambda msg: print(msg, flush=True),
        )  # fmt: skip
    except KeyboardInterrupt:
        return {"interrupted": True}
    except SystemExit as e:  # a refusal, in words
        return {"error": str(e)}
    except Exception as e:  # one run's failure is reported, the others go on
        return {"error": f"{type(e).__name__}: {e}"}
    finally:
        _IN_JOB = False
        if os.getppid() != _PARENT:
            os._exit(1)
    if s.get("interrupted"):
        _STOP = True
        return {"interrupted": True, "step": s["steps"]}
    cpu, complete = cpu_seconds(run, job["steps"])
    return {
        "how": how,
        "modes": s["modes_captured"],
        "n_modes": s["n_modes"],
        "hq": s["high_quality"],
        "kl": s["reverse_kl"],
        "n_samples": s.get("n_samples"),
        "train_s": s["seconds"],
        "cpu_s": cpu,
        "cpu_complete": complete,
        "steps": s["steps"],
        "scatter": str(run / "scatter.png"),
    }


# ----------------------------------------------------------------------------------- main side
def _signal_workers() -> None:
    for p in multiprocessing.active_children():
        try:
            os.kill(p.pid, signal.SIGINT)
        except ProcessLookupError:
            pass


def _run(todo: list[dict], jobs: int, results: Results, done: dict) -> tuple[int, bool]:
    """Run ``todo`` in ``jobs`` processes; each finished run goes to ``results`` and ``done``.
    Returns (failed runs, interrupted)."""
    failed, count = 0, 0

    def collect(fut, job) -> None:
        nonlocal failed, count
        res = fut.result()
        if "error" in res:
            failed += 1
            print(f"{job['name']}: FAILED: {res['error']}", flush=True)
        elif not res.get("interrupted"):
            results.put(job["name"], job["settings"], res)
            done[job["name"]] = res
            count += 1
            print(
                f"{job['name']}: {res['how']}, {res['modes']}/{res['n_modes']} modes, "
                f"{res['hq']:.0%} high quality ({count}/{len(todo)})",
                flush=True,
            )

    pool = ProcessPoolExecutor(  # spawned: this process has run torch, forking it may hang
        jobs, multiprocessing.get_context("spawn"), _worker_init, (os.getpid(),)
    )
    futures = {}
    try:
        futures = {pool.submit(_one, job): job for job in todo}
        for fut in as_completed(futures):
            collect(fut, futures.pop(fut))
    except KeyboardInterrupt:
        print(
            "\ninterrupted: the trainings under way save a checkpoint and stop (Ctrl-C again: "
            "stop at once, from the last checkpoint); run the same command to continue",
            file=sys.stderr,
            flush=True,
        )
        _signal_workers()
        while True:
            try:
                pool.shutdown(wait=True, cancel_futures=True)
                break
            except KeyboardInterrupt:
                _signal_workers()
        for fut, job in futures.items():
            if fut.done() and not fut.cancelled():
                collect(fut, job)
        return failed, True
    pool.shutdown()
    return failed, False


def _mean_sd(values: list[float], fmt: str) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{format(statistics.mean(values), fmt)} ± {format(sd, fmt)}"


def _figure(rows: list[dict], data: str, path: Path) -> None:
    import matplotlib.image as mpimg
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [r for r in rows if r["data"] == data and Path(r["scatter"]).is_file()]
    if not rows:
        return
    first = [r for r in rows if r["seed"] == min(x["seed"] for x in rows)]
    labels = [
        "\n".join(textwrap.wrap(r["variant"] + (f" + {r['remedy']}" if r["remedy"] else ""), 48))
        for r in first
    ]  # --extra rows name many overrides: wrapped, and the figure grows to hold them
    lines = max(label.count("\n") for label in labels)
    fig = Figure(figsize=(4 * len(first), 4.3 + 0.16 * lines), dpi=100)
    FigureCanvasAgg(fig)
    for i, (r, label) in enumerate(zip(first, labels, strict=True)):
        ax = fig.add_subplot(1, len(first), i + 1)
        ax.imshow(mpimg.imread(r["scatter"]))
        ax.set_title(f"{label}\n{r['modes']}/{r['n_modes']} modes, {r['hq']:.0%} hq", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)


def _summary(jobs: list[dict], done: dict) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for job in jobs:
        if job["name"] in done:
            key = (job["data"], job["variant"], job["remedy"], job["steps"])
            groups.setdefault(key, []).append({**job, **done[job["name"]]})
    rows = []
    for (data, variant, remedy, steps), rs in groups.items():
        cpu = [r["cpu_s"] for r in rs if r.get("cpu_s") is not None]
        approx = "~" if any(not r.get("cpu_complete") for r in rs) else ""
        rows.append(
            {
                "data": data,
                "variant": variant,
                "remedy": remedy,
                "steps": steps,
                "seeds": len(rs),
                "modes captured": _mean_sd([r["modes"] for r in rs], ".1f")
                + f" / {rs[0]['n_modes']}",
                "high quality %": _mean_sd([100 * r["hq"] for r in rs], ".1f"),
                "reverse KL": _mean_sd([r["kl"] for r in rs], ".3f"),
                "train s per run": f"{statistics.mean(r['train_s'] for r in rs):.0f}",
                "CPU s per run": f"{approx}{statistics.mean(cpu):.0f}" if cpu else "",
            }
        )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", default=["ring", "grid"])
    ap.add_argument("--variants", nargs="+", default=VARIANTS)
    ap.add_argument(
        "--remedies",
        action="append",
        default=[],
        help="comma-separated remedy rows for every variant: pacM, sn, mbstd[G], unrollK, "
        "joined by + to combine (e.g. pac2,sn,mbstd,unroll5,pac2+sn)",
    )
    ap.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar='"KEY=VALUE ..."',
        help="one more row for every variant with these overrides (repeatable)",
    )
    ap.add_argument(
        "--no-plain", action="store_true", help="only the remedy and --extra rows, no plain variant"
    )
    ap.add_argument("--steps", type=int, help="G updates per run (default: the preset's)")
    ap.add_argument("--grid-steps", type=int, help="on the grid (default: twice --steps)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2, help="runs in parallel (one CPU thread each)")
    ap.add_argument("--out", default="runs/modes")
    ap.add_argument("overrides", nargs="*", help="key=value applied to every run")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = _jobs(args, out)
    results = Results(out / "results.json")
    done = {}
    for job in jobs:
        value = results.get(job["name"], job["settings"])
        if value is not None:
            done[job["name"]] = value
    todo = [job for job in jobs if job["name"] not in done]
    print(
        f"{len(jobs)} runs: {len(done)} already measured ({results.path}), "
        f"{len(todo)} to train, resume or read",
        flush=True,
    )
    failed, interrupted = _run(todo, args.jobs, results, done) if todo else (0, False)
    if interrupted:
        print(f"{len(done)} of {len(jobs)} runs measured; run the same command to continue")
        return 130
    rows = _summary(jobs, done)
    for d in args.data:
        _figure([{**j, **done[j["name"]]} for j in jobs if j["name"] in done], d, out / f"{d}.png")
    cols = ["data", "variant", "remedy", "steps", "seeds", "modes captured", "high quality %",
            "reverse KL", "train s per run", "CPU s per run"]  # fmt: skip
    text = (
        "Protocol: VEEGAN/PacGAN mode coverage, 2,500 samples, high quality = within 3 std of "
        "the nearest mode; mean ± standard deviation over seeds. Train s: the trainer's own "
        "clock, summed over resumes; CPU s: the process's CPU time (~: part estimated, a session "
        "was killed).\n\n" + table(rows, cols)
    )
    write_atomic(out / "modes.md", text)
    print(text)
    print(f"figures: {', '.join(str(out / f'{d}.png') for d in args.data)}")
    if failed:
        print(f"{failed} runs failed (above); they are not in the table", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    run_main(main)
