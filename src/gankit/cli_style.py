"""The ``gankit`` commands of truncation and control in W (Karras et al. 2019, StyleGAN):
``mix`` (the style-mixing grid, figure 3), ``variation`` (stochastic variation, figure 4), and
``gankit sample``'s truncation (``--truncation``, ``--psi``: in W for a mapping network), its
truncation strip (``--psi-strip``, figure 8) and per-class grid. Registered by ``cli_control.py``;
the library behind them is ``gankit.control.style``."""

from __future__ import annotations

import argparse
from pathlib import Path

from .cli_args import count, int_at_least, positive_int, seed
from .errors import UserError


def add_parsers(sub: argparse._SubParsersAction) -> None:
    _add_mix(sub)
    _add_variation(sub)


def _add_mix(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "mix",
        help="style mixing (StyleGAN): a grid of images that take some layers' styles from "
        "another sample",
        description="The style-mixing grid of Karras et al. 2019, figure 3, for a generator "
        "with a mapping network. The top row holds K sources B, the left column one source A "
        "per row (sources: the first K, then the next R draws of --seed). Each other cell "
        "takes every style of its row's A except the row's layer group (coarse, middle or "
        "fine), which it copies from its column's B; --crossover I copies ws 0..I-1 from B and "
        "keeps ws I.. from A, in K rows. Writes OUT, a PNG with labelled rows.",
    )
    p.add_argument("source", metavar="RUN_OR_CHECKPOINT")
    p.add_argument(
        "--rows",
        metavar="GROUPS",
        help="comma-separated layer group of each row, from coarse, middle, fine "
        "(default coarse,middle,fine; repeats allowed)",
    )
    p.add_argument(
        "--n-sources", type=positive_int, default=5, help="sources B, the columns (default 5)"
    )
    p.add_argument("--seed", type=seed, default=0, help="seed of the sources (default 0)")
    p.add_argument(
        "--crossover",
        type=int,
        metavar="I",
        help="instead of groups: ws 0..I-1 from B, I.. from A (I in 1..num_ws-1)",
    )
    p.add_argument("--class", dest="klass", type=count, help="class (conditional models)")
    p.add_argument("--out", default="mix.png", help="output PNG (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="device (default cpu)")


def _add_variation(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "variation",
        help="stochastic variation (StyleGAN): one w, the per-pixel noise drawn again; std map",
        description="Stochastic variation (Karras et al. 2019, figure 4) of a generator with "
        "a mapping network: for each sample of `gankit sample RUN --seed S --n N`, its image "
        "with the fixed noise maps, K images of the same w with the noise drawn again (seeded "
        "by --noise-seed), and the per-pixel standard deviation over --draws draws (white = "
        "the figure's largest). Writes OUT, one row per sample.",
    )
    p.add_argument("source", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("--n", type=positive_int, default=4, help="samples, one per row (default 4)")
    p.add_argument("--seed", type=seed, default=0, help="seed of the samples (default 0)")
    p.add_argument("--k", type=positive_int, default=4, help="noise draws shown (default 4)")
    p.add_argument(
        "--draws", type=int_at_least(2), default=64, help="noise draws of the std map (64)"
    )
    p.add_argument("--noise-seed", type=seed, default=0, help="seed of the noise (default 0)")
    p.add_argument("--class", dest="klass", type=count, help="class (conditional models)")
    p.add_argument("--out", default="variation.png", help="output PNG (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="device (default cpu)")


def _style_generator(args: argparse.Namespace, command: str):
    """``(generator, out)`` for a command that needs images and a mapping network."""
    from .cli_control import _image_generator
    from .control.spaces import check_mapping

    gen, out = _image_generator(args, command)
    check_mapping(gen.net, command)
    return gen, out


def cmd_mix(args: argparse.Namespace) -> int:
    from . import report
    from .cli_control import check_picture
    from .control import style

    gen, out = _style_generator(args, "mix")
    rows = None if args.rows is None else [r.strip() for r in args.rows.split(",")]
    n_rows = args.n_sources if args.crossover is not None else len(rows or style.GROUPS)
    check_picture(gen, (n_rows + 1) * (args.n_sources + 1), f"--n-sources {args.n_sources}")
    grid = style.mixing_figure(
        gen.net, rows, args.n_sources, args.seed, args.crossover, label=args.klass
    )
    report.plot_rows(
        list(grid.images),
        grid.names,
        out,
        title="cells: A (left) with the row's styles from B (top)",
    )
    print(f"wrote {out}: {len(grid.rows)} rows of {args.n_sources} mixes")
    return 0


def cmd_variation(args: argparse.Namespace) -> int:
    from . import report
    from .cli_control import check_picture
    from .control import latent, style

    gen, out = _style_generator(args, "variation")
    if args.k > args.draws:
        raise UserError(f"--k {args.k} shows more draws than --draws {args.draws}; lower --k")
    check_picture(gen, args.n * (args.k + 2), f"--n {args.n} and --k {args.k}")
    z, drawn = latent.sample_latents(gen.z_dim, args.n, args.seed, gen.num_classes)
    y = latent.check_labels(gen.net, args.n, drawn if args.klass is None else args.klass)
    v = style.noise_variation(gen.net, z, y, args.k, args.draws, args.noise_seed)
    top = v.std.max().item()
    report.plot_rows(
        list(v.figure()),
        [f"sample {i}" for i in range(args.n)],
        out,
        title=f"fixed noise | {args.k} draws | std of {args.draws} (white {top:.3g})",
    )
    print(f"wrote {out}; the largest per-pixel std is {top:.4g} (image range [-1, 1])")
    return 0


def sample_strip(args: argparse.Namespace, gen, out) -> int:
    """``gankit sample --psi-strip STEPS``: rows of samples truncated by psi from 1 to 0."""
    from . import report
    from .control import style
    from .control.spaces import has_mapping

    if gen.kind != "image":
        raise UserError("--psi-strip draws images; this generator makes toy data (drop it)")
    z, y = sample_codes(args, gen, args.n, args.klass)
    x, psis = style.truncation_strip(gen.net, z, y, args.psi_strip)  # [n, steps, *shape]
    space = "W" if has_mapping(gen.net) else "Z"
    step = float(psis[0] - psis[1])
    report.plot_rows(
        list(x),
        [f"sample {i}" for i in range(args.n)],
        out,
        title=f"truncation in {space}: psi 1 to 0, step {step:.3g}",
    )
    print(f"wrote {out}: {args.n} rows, psi from 1 to 0 in {args.psi_strip} steps")
    return 0


def sample_codes(args: argparse.Namespace, gen, n: int, labels):
    """``(z [n, z_dim], labels [n] or None)`` of ``gankit sample``: ``--seed``'s draws, from a
    truncated normal with ``--truncation``; ``labels`` (None: the drawn classes) checked."""
    from .control import latent

    if args.truncation is not None:
        z = latent.truncated_normal(n, gen.z_dim, args.truncation, seed=args.seed)
        drawn = latent.sample_latents(gen.z_dim, n, args.seed, gen.num_classes)[1]
    else:
        z, drawn = latent.sample_latents(gen.z_dim, n, args.seed, gen.num_classes)
    return z, latent.check_labels(gen.net, n, drawn if labels is None else labels)


def sample_controlled(args: argparse.Namespace, gen, out: Path) -> int:
    """``gankit sample`` with truncation (``--psi``: in W for a net with a mapping network, in Z
    otherwise) or a rows-by-class grid."""
    import torch

    from . import report
    from .control import latent, style

    n, labels, nrow = args.n, args.klass, None
    if args.per_class is not None:
        if not gen.num_classes:
            raise UserError(
                "--per-class needs a conditional model (trained with data.classes=true)"
            )
        if args.klass is not None or args.per_class < 1:
            raise UserError(f"--per-class takes R >= 1 rows and no --class, got {args.per_class}")
        n, nrow = args.per_class * gen.num_classes, gen.num_classes
        labels = torch.arange(gen.num_classes).repeat(args.per_class)  # [R * K]
    z, y = sample_codes(args, gen, n, labels)
    if args.psi is not None:
        x = style.truncated_images(gen.net, z, y, args.psi)
    else:
        x = latent.generate(gen.net, z, y)
    if gen.kind != "image":
        report.plot_points(x[:0], x, out, title=f"{n} samples")
    else:
        report.save_grid(x, out, nrow=nrow)
    print(f"wrote {out}")
    return 0
