"""The ``gankit`` command: parse, build a config, call the library. No logic the API lacks.

Every expected failure prints one line, ``gankit: error: ...``, and exits with status 2 for a user
mistake (``UserError``) or 1 for a run that failed (e.g. diverged); never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import GankitError, UserError


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a GAN (no arguments: the embedded default, a GAN on the 8-Gaussian ring)",
        description="Train a GAN. With no arguments: the non-saturating GAN on the 8-Gaussian "
        "ring, about a minute on 2 CPU cores. Override any config key with key=value, "
        "e.g. train.steps=500 model.width=64.",
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.add_argument("--config", "-c", help="preset name (see gankit presets) or YAML file")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this folder exactly")
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
    p.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--out", default="samples.png", help="output PNG (default samples.png)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent codes (default 0)")
    p.add_argument("--class", dest="klass", type=int, help="class to sample (conditional models)")
    p.add_argument("--device", default="cpu", help="device to sample on (default cpu)")


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a generator as safetensors + config",
        description="Export a run's generator (EMA weights when kept) as "
        "safetensors with its config, loadable by gankit.load_generator.",
    )
    p.add_argument("source", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("--out", required=True, help="output file, e.g. G.safetensors")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gankit", description="Train, evaluate and explore GANs.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_train(sub)
    _add_sample(sub)
    _add_export(sub)
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
    s = run.summary
    line = f"{s['steps']} steps in {s['seconds']:.1f} s"
    if s.get("img_per_s"):
        line += f" ({s['img_per_s']:.0f} images/s)"
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
    from . import report
    from .api import load_generator

    gen = load_generator(args.source, device=args.device)
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise UserError(f"--out must be a .png file, got {out.name}")
    x = gen.sample(args.n, seed=args.seed, labels=args.klass)
    if gen.kind == "image":
        report.save_grid(x, out)
    else:
        report.plot_points(x[:0], x, out, title=f"{args.n} samples")
    print(f"wrote {out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .api import export

    print(f"wrote {export(args.source, args.out)}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    import yaml

    from .config import presets

    for name, path in presets().items():
        first = (yaml.safe_load(path.read_text()) or {}).get("description", "")
        print(f"{name:16s} {first}")
    return 0


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "export": cmd_export, "presets": cmd_presets}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UserError as e:
        print(f"gankit: error: {e}", file=sys.stderr)
        return 2
    except GankitError as e:
        print(f"gankit: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("gankit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. gankit presets | head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
