"""The ``gankit`` command: parse, build a config, call the library. No logic the API lacks.

Every expected failure prints one line, ``gankit: error: ...``, and exits with status 2 for a user
mistake (``UserError``) or 1 for a run that failed (e.g. diverged); never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

from . import __version__, cli_args, cli_control, cli_style
from .cli_args import Parser, count, int_at_least, positive_int, seed
from .errors import GankitError, UserError

DEFAULT_RUN_TIME = "about 30 s"  # gankit train with no arguments (the README says the same)


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a GAN (no arguments: the embedded default, a GAN on the 8-Gaussian ring)",
        description="Train a GAN. With no arguments: the non-saturating GAN on the 8-Gaussian "
        f"ring, {DEFAULT_RUN_TIME} on 2 CPU cores. Override any config key with key=value, "
        "e.g. train.steps=500 model.width=64, before, between or after the flags.",
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.add_argument("--config", "-c", help="preset name (see gankit presets) or YAML file")
    p.add_argument(
        "--resume",
        metavar="RUN",
        help="continue a run folder exactly from its newest intact checkpoint, or from the "
        "checkpoint file given",
    )
    p.add_argument("--data-dir", help="data root (default: $GANKIT_DATA or ~/.cache/gankit/data)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    p.add_argument("--quiet", action="store_true", help="plain log lines instead of a progress bar")
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard logs")


def _add_sample(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="draw samples from a trained generator into a PNG",
        description="Draw samples from a run folder, checkpoint or export.",
    )
    p.add_argument("source", metavar="RUN_OR_CHECKPOINT")
    p.add_argument(
        "--n", type=positive_int, help="number of samples (default 64; --psi-strip: 8 rows)"
    )
    p.add_argument("--out", default="samples.png", help="output PNG (default samples.png)")
    p.add_argument("--seed", type=seed, default=0, help="seed of the latent codes (default 0)")
    p.add_argument("--class", dest="klass", type=count, help="class to sample (conditional models)")
    p.add_argument("--device", default="cpu", help="device to sample on (default cpu)")
    p.add_argument(
        "--truncation",
        type=cli_args.positive,
        metavar="T",
        help="truncation trick: draw z from a normal truncated to |z_i| <= T (e.g. 1.0)",
    )
    p.add_argument(
        "--psi",
        type=cli_args.number(0, 1),
        help="truncation trick: pull z towards the mean latent, mean + psi * (z - mean), psi in "
        "[0, 1]; a net with a mapping network (stylegan) pulls w towards w_avg instead",
    )
    p.add_argument(
        "--psi-strip",
        type=int_at_least(2),
        nargs="?",
        const=9,
        metavar="STEPS",
        help="a truncation strip: one row per sample, psi from 1 to 0 in STEPS columns "
        "(default 9), in W for a mapping network, else in Z",
    )
    p.add_argument(
        "--per-class",
        type=positive_int,
        metavar="R",
        help="conditional models: a grid with one column per class and R rows (ignores --n)",
    )


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a generator as safetensors + config",
        description="Export a run's generator (EMA weights when kept) as "
        "safetensors with its config, loadable by gankit.load_generator.",
    )
    p.add_argument("source", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("--out", required=True, help="output file, e.g. G.safetensors")


def _add_explore(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explore",
        help="a local web page to watch a run and steer its trained generator",
        description="Serve a local web page for a run folder: its curves (live while it trains), "
        "samples, config and warnings, and for a trained model the sample grid, truncation, "
        "interpolation, editing, style mixing, translation or the 2-D picture.",
    )
    p.add_argument("run", metavar="RUN", help="a run folder (runs/<name>)")
    p.add_argument("--port", type=int_at_least(0), default=8000, help="port (default 8000; 0: any)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this machine only; others get a warning)",
    )
    p.add_argument("--device", default="cpu", help="device the models run on (default cpu)")
    p.add_argument("--data-dir", help="data root of a translation run's test images")


def cmd_explore(args: argparse.Namespace) -> int:
    from .api_explore import explore

    explore(args.run, args.host, args.port, args.device, args.data_dir)
    return 0


def _add_classifier(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "classifier",
        help="train the evaluation classifier of MNIST, Fashion-MNIST, USPS or CIFAR-10",
        description="The small CNN behind class coverage, conditional accuracy, classifier FID, "
        "the Stacked MNIST mode count and translation's class preservation, cached in "
        "<gankit cache>/classifiers/ ($GANKIT_CACHE, default ~/.cache/gankit).",
    )
    csub = p.add_subparsers(dest="action", metavar="ACTION")
    csub.required = True
    t = csub.add_parser(
        "train",
        help="train and cache it (about a minute on a CPU; cifar10 about 15 CPU minutes)",
        description="Train the classifier of a data set and cache it; a cached one is kept "
        "unless --force.",
    )
    t.add_argument(
        "--data", required=True, metavar="{mnist,fashion-mnist,usps,cifar10}", help="data set"
    )
    t.add_argument("--data-dir", help="data root (default: $GANKIT_DATA or ~/.cache/gankit/data)")
    t.add_argument(
        "--epochs",
        type=positive_int,
        help="passes over the data (default: mnist 3, fashion 4, usps 20, cifar10 8)",
    )
    t.add_argument("--device", default="cpu", help="device to train on (default cpu)")
    t.add_argument("--force", action="store_true", help="train again even if one is cached")


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="score a trained generator: FID, KID, IS, precision/recall, classifier metrics",
        description="Evaluate a run folder, checkpoint or export by the standard protocols "
        "(FID/KID/PR/IS: 10,000 samples against 10,000 test images; Stacked MNIST modes: "
        "26,000; 2-D modes: 2,500). Metrics: fid, kid, pr, is (Inception, via torch-fidelity); "
        "cfid, coverage, cacc (gankit's MNIST/Fashion/CIFAR-10 classifier); modes; energy; "
        "memorisation (do samples copy the training images?). Results "
        "are printed and written as JSON (a run: <run>/eval/step_N.json) with their protocol.",
    )
    p.add_argument("source", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("--metrics", default="fid", help="comma-separated (default fid)")
    p.add_argument(
        "--n", type=int_at_least(2), help="samples per metric (default: each protocol's count)"
    )
    p.add_argument("--ref", default="test", choices=["test", "train"], help="reference split")
    p.add_argument("--seed", type=seed, default=0, help="seed of the generated samples")
    p.add_argument("--device", default="cpu", help="device (default cpu)")
    p.add_argument(
        "--batch-size", type=positive_int, default=200, help="images per forward pass (200)"
    )
    p.add_argument(
        "--inception-weights",
        help="FID Inception weights file (default: $GANKIT_INCEPTION_WEIGHTS, the cache, "
        "or torch-fidelity's download when online)",
    )
    p.add_argument("--data-dir", help="data root (default: $GANKIT_DATA or ~/.cache/gankit/data)")
    p.add_argument(
        "--out",
        help="JSON file for the results (default: <run>/eval/step_N.json); results already in "
        "it for the same step are kept and merged",
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        torch = version("torch")
    except PackageNotFoundError:
        torch = "not installed"
    return f"gankit {__version__} (torch {torch}, Python {sys.version.split()[0]})"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="gankit", description="Train, evaluate and explore GANs.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_train(sub)
    _add_sample(sub)
    cli_control.add_parsers(sub)
    _add_export(sub)
    _add_eval(sub)
    _add_classifier(sub)
    _add_explore(sub)
    sub.add_parser(
        "presets",
        help="list the shipped config presets",
        description="List the shipped config presets.",
    )
    return parser


def cmd_train(args: argparse.Namespace) -> int:
    from . import config

    overrides = list(args.overrides)
    if args.data_dir:
        overrides.append(f"data.root={args.data_dir}")
    if args.device:
        overrides.append(f"device={args.device}")
    if args.quiet:
        overrides.append("log.quiet=true")
    if args.tensorboard:
        overrides.append("log.tensorboard=true")
    if args.resume:
        if args.config:
            raise UserError("--resume takes the run's own config; drop --config")
        from .training.trainer import resume

        run = resume(args.resume, overrides)
    else:
        cfg = config.load(args.config, overrides)  # config errors answer before torch loads
        from .training.trainer import train

        run = train(cfg)
    if not _main_rank():
        return 0  # under torchrun rank 0 reports for all
    s = run.summary
    line = f"{s['steps']} steps in {s['seconds']:.1f} s"
    if s.get("img_per_s"):
        line += f" ({s['img_per_s']:.0f} images/s)"
    if s.get("time_limit"):
        line += f", stopped by train.minutes={run.config.train.minutes:g}"
    print(line)
    if "modes_captured" in s:
        print(
            f"modes captured: {s['modes_captured']} of {s['n_modes']}, high-quality samples: "
            f"{100 * s['high_quality']:.1f}%, reverse KL: {s['reverse_kl']:.3f} "
            f"({s['n_samples']} samples)"
        )
    elif "fake_mean" in s:
        print(
            f"generated mean {s['fake_mean']} std {s['fake_std']}; "
            f"data mean {s['real_mean']} std {s['real_std']}"
        )
    for w in s.get("warnings", []):
        print(f"warning: {w}")
    print(f"report: {run.dir / 'report.html'}")
    return 130 if run.interrupted else 0


def cmd_sample(args: argparse.Namespace) -> int:
    from .files import check_output_file

    out = check_output_file(args.out, "--out", (".png",))  # before minutes of work
    from . import report
    from .api import load_generator

    if args.psi_strip is not None and (args.psi is not None or args.per_class is not None):
        raise UserError("--psi-strip sweeps psi itself, one row per sample; drop --psi/--per-class")
    args.n = args.n or (8 if args.psi_strip is not None else 64)
    gen = load_generator(args.source, device=args.device)
    n = args.per_class * gen.num_classes if args.per_class and gen.num_classes else args.n
    if args.psi_strip is not None:
        cli_control.check_picture(gen, n * args.psi_strip, f"--n {n} and --psi-strip")
        return cli_style.sample_strip(args, gen, out)
    cli_control.check_picture(
        gen, n, f"--per-class {args.per_class}" if args.per_class else f"--n {n}"
    )
    if args.truncation is not None or args.psi is not None or args.per_class is not None:
        return cli_style.sample_controlled(args, gen, out)
    x = gen.sample(args.n, seed=args.seed, labels=args.klass)
    if gen.kind == "image":
        report.save_grid(x, out)
    else:
        report.plot_points(x[:0], x, out, title=f"{args.n} samples")
    print(f"wrote {out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .files import check_output_file

    check_output_file(args.out, "--out", (".safetensors",))
    from .api import export

    print(f"wrote {export(args.source, args.out)}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .config import parse_metrics

    names = parse_metrics(args.metrics)  # a typo answers before torch loads
    if args.out is not None:
        from .files import check_output_file

        check_output_file(args.out, "--out", (".json",))
    from .api import evaluate

    res = evaluate(
        args.source,
        names,
        n=args.n,
        ref=args.ref,
        seed=args.seed,
        device=args.device,
        batch_size=args.batch_size,
        inception_weights=args.inception_weights,
        data_root=args.data_dir,
        out=args.out,
    )
    for key, value in res.items():
        if isinstance(value, float):
            print(f"{key}: {value:.6g}")
        elif isinstance(value, int) and key != "step":
            print(f"{key}: {value}")
    counts: dict[str, dict] = {}  # metrics that share one protocol (fid, kid, ...) print once
    for metric, p in res["protocols"].items():
        keys = ("n_fake", "n_real", "n_train", "n_per_class", "reference", "real_key")
        c = {k: v for k, v in p.items() if k in keys}
        same = next((m for m, d in counts.items() if d == c), None)
        counts[f"{same},{metric}" if same else metric] = counts.pop(same) if same else c
    print(f"protocol: {json.dumps(counts)}")
    if res.get("kept"):
        print(f"kept the earlier results of {', '.join(res['kept'])} for this step")
    if "written" in res:
        print(f"wrote {res['written']}")
    return 0


def cmd_classifier(args: argparse.Namespace) -> int:
    from .devices import check_name

    check_name(args.device, "--device")
    from .metrics import classifier as clf

    data = clf.check_data(args.data)
    info = None if args.force else clf.cached_info(data)
    if info is not None:
        acc, path = 100 * info["test_accuracy"], clf.classifier_path(data)
        print(f"{data} classifier already cached (test accuracy {acc:.2f}%): {path}")
        print("pass --force to train it again")
        return 0
    from .devices import resolve

    device = resolve(args.device, "--device")
    model, info = clf.train_classifier(data, args.data_dir, epochs=args.epochs, device=device)
    path = clf.save_classifier(model, data, info)
    print(
        f"{data} classifier: test accuracy {100 * info['test_accuracy']:.2f}% after "
        f"{info['epochs']} epochs ({info['seconds']:.0f} s)"
    )
    print(f"saved {path}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    import yaml

    from .config import presets

    for name, path in presets().items():
        first = (yaml.safe_load(path.read_text()) or {}).get("description", "")
        print(f"{name:20s} {first}")
    return 0


COMMANDS = {
    "train": cmd_train,
    "sample": cmd_sample,
    "interpolate": cli_control.cmd_interpolate,
    "edit": cli_control.cmd_edit,
    "arithmetic": cli_control.cmd_arithmetic,
    "mix": cli_style.cmd_mix,
    "variation": cli_style.cmd_variation,
    "translate": cli_control.cmd_translate,
    "export": cmd_export,
    "eval": cmd_eval,
    "classifier": cmd_classifier,
    "explore": cmd_explore,
    "presets": cmd_presets,
}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """Parse; ``train`` takes its ``key=value`` overrides anywhere among its flags."""
    args, extra = build_parser().parse_known_args(argv)
    flags = [e for e in extra if e.startswith("-")]
    if flags or (extra and args.command != "train"):
        hint = (
            " (config keys are key=value, e.g. train.steps=500)" if args.command == "train" else ""
        )
        raise UserError(
            f"unrecognized arguments: {' '.join(flags or extra)}{hint} "
            f"(see gankit {args.command} --help)"
        )
    if args.command == "train":
        args.overrides = [*args.overrides, *extra]  # in the order they were typed
    return args


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"gankit: warning: {message}", file=sys.stderr)


def _out_of_memory(e: BaseException) -> bool:
    text = str(e)
    return (
        isinstance(e, MemoryError)
        or type(e).__name__ == "OutOfMemoryError"
        or (
            isinstance(e, RuntimeError)
            and ("can't allocate memory" in text or "out of memory" in text)
        )
    )


def main(argv: list[str] | None = None) -> int:
    shown, warnings.showwarning = warnings.showwarning, _show_warning  # one line each, too
    try:
        rc = _main(argv)
    finally:
        warnings.showwarning = shown
    if rc == 0 and "torch.distributed" in sys.modules:  # else no group was ever joined
        from .training.distributed import leave_group

        leave_group()
    return rc


def _main_rank() -> bool:
    """False on torchrun's ranks but 0: they train, rank 0 speaks."""
    return os.environ.get("RANK", "0") in ("", "0")


def _say(msg: str) -> None:
    """An error line on stderr; under torchrun only rank 0 says it (every rank hits it)."""
    if _main_rank():
        print(msg, file=sys.stderr)


def _main(argv: list[str] | None) -> int:
    try:
        args = _parse(argv)
        return COMMANDS[args.command](args)
    except UserError as e:
        _say(f"gankit: error: {e}")
        return 2
    except GankitError as e:
        _say(f"gankit: error: {e}")
        return 1
    except KeyboardInterrupt:
        print("gankit: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # the system refused a read or write that the checks could not foresee
        if isinstance(e, BrokenPipeError):
            raise
        where = f": {e.filename}" if e.filename else ""
        print(f"gankit: error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as e:
        if not _out_of_memory(e):
            raise
        print(
            "gankit: error: out of memory; ask for fewer samples (--n) or a smaller batch "
            "(train.batch_size, --batch-size)",
            file=sys.stderr,
        )
        return 2
    except BrokenPipeError:  # e.g. gankit presets | head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
