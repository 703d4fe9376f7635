"""The ``gankit`` commands that steer a trained generator: ``interpolate`` and ``edit`` (both in
Z or W), ``arithmetic``; and ``translate``, which runs a translation run (CycleGAN) on a folder of
images or a data set. The truncation and per-class grids of ``sample`` and control in W (``mix``,
``variation``, ``sample --psi-strip``) are in ``cli_style.py``. Registered by ``cli.py``; the
library behind them is ``gankit.control``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import cli_style
from .cli_args import count, int_at_least, positive, positive_int, probability, seed
from .cli_args import non_negative as non_negative_number
from .errors import UserError


def add_parsers(sub: argparse._SubParsersAction) -> None:
    _add_interpolate(sub)
    _add_edit(sub)
    _add_arithmetic(sub)
    cli_style.add_parsers(sub)
    _add_translate(sub)


def _add_interpolate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "interpolate",
        help="walk the latent space between two samples into a PNG grid and an animated GIF",
        description="Interpolate between two latent codes: sample ids of `gankit sample RUN "
        "--seed S --n N` (the default), or seeds (--by seed: the first code each seed draws). "
        "Writes OUT (.png, one row) and OUT with .gif.",
    )
    p.add_argument("source", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("--from", dest="start", type=seed, required=True, help="first sample id or seed")
    p.add_argument("--to", dest="end", type=seed, required=True, help="last sample id or seed")
    p.add_argument(
        "--steps", type=int_at_least(2), default=10, help="codes on the path, ends included (10)"
    )
    p.add_argument(
        "--mode", choices=["slerp", "lerp"], help="default slerp in Z, lerp in W (W: lerp only)"
    )
    p.add_argument(
        "--space",
        default="z",
        choices=["z", "w"],
        help="walk z, or w of a mapping network (StyleGAN) (default z)",
    )
    p.add_argument("--by", default="sample", choices=["sample", "seed"], help="what ids mean")
    p.add_argument("--seed", type=seed, default=0, help="seed of the sample grid (default 0)")
    p.add_argument(
        "--n", type=positive_int, default=64, help="size of the sample grid (default 64)"
    )
    p.add_argument("--class", dest="klass", type=count, help="class (conditional models)")
    p.add_argument("--out", default="interpolation.png", help="output PNG (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="device (default cpu)")


def _add_edit(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "edit",
        help="classifier-guided editing: move latent codes until G(z) shows a target class",
        description="Edit the samples of `gankit sample RUN --seed S --n N` towards a class of "
        "gankit's classifier of the run's data set (MNIST, Fashion-MNIST, CIFAR-10), by "
        "per-sample gradient ascent (optimize) or along one direction fit from classifier "
        "labels (direction). Writes OUT/before.png, "
        "OUT/after.png and OUT/edit.json (success, distance moved, entanglement).",
    )
    p.add_argument("source", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("--target", type=count, required=True, help="class to reach (0..9)")
    p.add_argument("--n", type=positive_int, default=64, help="samples to edit (default 64)")
    p.add_argument("--mode", default="optimize", choices=["optimize", "direction"])
    p.add_argument(
        "--space",
        default="z",
        choices=["z", "w"],
        help="move z, or the per-sample w of a mapping network (StyleGAN), all layers alike; "
        "W's prior is the Gaussian with the mean and spread of 2000 draws' w (default z)",
    )
    p.add_argument("--seed", type=seed, default=0, help="seed of the samples (default 0)")
    p.add_argument("--steps", type=count, default=200, help="optimize: most steps (default 200)")
    p.add_argument("--lr", type=positive, default=0.05, help="optimize: Adam step (default 0.05)")
    p.add_argument(
        "--prior-weight",
        type=non_negative_number,
        default=0.01,
        help="optimize: weight of ||z||^2/2, in W ||w - mean||^2/(2 spread^2) (0.01)",
    )
    p.add_argument(
        "--max-distance",
        type=positive,
        help="farthest move (default 0.8 sqrt(z_dim): 8 for z_dim 100; in W 0.8 spread "
        "sqrt(w_dim))",
    )
    p.add_argument(
        "--restarts",
        type=count,
        default=8,
        help="optimize: more tries for a sample that fails, from random starts (default 8)",
    )
    p.add_argument(
        "--shifts",
        type=count,
        default=4,
        help="optimize: also score copies shifted by up to 2 px, against edits that fool only "
        "the exact pixels (default 4; 0 = off)",
    )
    p.add_argument(
        "--stop-prob", type=probability, default=0.9, help="stop once p(target) >= this (0.9)"
    )
    p.add_argument(
        "--fit-n", type=int_at_least(2), default=2000, help="direction: samples to fit it (2000)"
    )
    p.add_argument(
        "--classifier",
        metavar="{mnist,fashion-mnist,cifar10,usps}",
        help="classifier (default: the run's data set)",
    )
    p.add_argument("--out", default="edit", help="output folder (default: edit)")
    p.add_argument("--device", default="cpu", help="device (default cpu)")


def _add_arithmetic(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "arithmetic",
        help="latent arithmetic: apply the attribute vector mean(a) - mean(b) to c (a - b + c)",
        description="Latent arithmetic (Radford et al. 2016). Each concept is a list of sample "
        "ids of `gankit sample RUN --seed S --n N`, e.g. 3,17,40, or class=K: the --per-class "
        "samples gankit's classifier labels K most confidently among --pool draws (seed S + 1). "
        "Writes OUT, a grid with rows a, b, c (each concept's mean code last) and, under every c "
        "sample, that sample plus mean(a) - mean(b); the last column of that row is "
        "mean(a) - mean(b) + mean(c).",
    )
    p.add_argument("source", metavar="RUN_OR_CHECKPOINT")
    for name in ("a", "b", "c"):
        p.add_argument(f"--{name}", required=True, metavar="IDS|class=K", help=f"concept {name}")
    p.add_argument("--seed", type=seed, default=0, help="seed of the sample grid (default 0)")
    p.add_argument(
        "--n", type=positive_int, default=64, help="size of the sample grid (default 64)"
    )
    p.add_argument(
        "--per-class", type=positive_int, default=8, help="class=K: samples per concept (8)"
    )
    p.add_argument(
        "--pool", type=positive_int, default=2000, help="class=K: draws to pick from (2000)"
    )
    p.add_argument("--class", dest="klass", type=count, help="class (conditional models)")
    p.add_argument(
        "--classifier",
        metavar="{mnist,fashion-mnist,cifar10,usps}",
        help="default: the run's data set",
    )
    p.add_argument("--out", default="arithmetic.png", help="output PNG (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="device (default cpu)")


def _add_translate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "translate",
        help="translate images with a translation run (CycleGAN) into PNGs and a grid",
        description="Translate every PNG/JPEG under a folder, or the first --n images of a data "
        "set split, with one direction of a translation run (run folder, checkpoint or export). "
        "Images are resized and center-cropped to the run's size and channels. Writes "
        "OUT/<name>.png for each image and OUT/grid.png: sources above their translations.",
    )
    p.add_argument("source", metavar="RUN_OR_CHECKPOINT")
    p.add_argument(
        "--direction", default="AtoB", metavar="{AtoB,BtoA}", help="direction (default AtoB)"
    )
    p.add_argument(
        "--input",
        required=True,
        metavar="DIR_OR_DATASET",
        help="a folder of PNG/JPEG images, or an image data set name (usps, mnist, ...)",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--n",
        type=positive_int,
        help="translate at most N images (default: a data set's first 100, a folder's all)",
    )
    p.add_argument(
        "--split", default="test", choices=["test", "train"], help="data set split (default test)"
    )
    p.add_argument("--data-dir", help="data root of --input DATASET (default: the run's)")
    p.add_argument("--device", default="cpu", help="device (default cpu)")


def check_picture(gen, n: int, what: str) -> None:
    """``n`` samples and their picture fit in memory, or one sentence naming ``what``."""
    import math

    from .memory import check as check_memory
    from .report import picture_bytes

    samples = 8.0 * n * (gen.z_dim + math.prod(gen.shape))
    check_memory(samples + picture_bytes(n, gen.shape), what, "ask for fewer samples")


def _image_generator(args: argparse.Namespace, command: str):
    """``(generator, out path)`` for a command that draws images into the PNG ``--out``."""
    from .api import load_generator
    from .files import check_output_file

    out = check_output_file(args.out, "--out", (".png",))
    gen = load_generator(args.source, device=args.device)
    if gen.kind != "image":
        raise UserError(f"{command} draws images; this generator makes toy data (use sample)")
    return gen, out


def cmd_interpolate(args: argparse.Namespace) -> int:
    from . import report
    from .control import latent, spaces
    from .files import check_output_file

    check_output_file(args.out, "--out", (".png",))  # what was typed first, then its GIF
    check_output_file(Path(args.out).with_suffix(".gif"), "--out (its .gif)", (".gif",))
    gen, out = _image_generator(args, "interpolate")
    if args.space == "w":
        spaces.check_mapping(gen.net, "--space w")
    if args.by == "sample":
        if not (0 <= args.start < args.n and 0 <= args.end < args.n):
            raise UserError(
                f"sample ids must be in 0..{args.n - 1} (--n {args.n}), got {args.start} and "
                f"{args.end}"
            )
        z, y = latent.sample_latents(gen.z_dim, args.n, args.seed, gen.num_classes)
        a, b, first_label = z[args.start], z[args.end], None if y is None else int(y[args.start])
    else:
        a, y = latent.sample_latents(gen.z_dim, 1, args.start, gen.num_classes)
        b = latent.sample_latents(gen.z_dim, 1, args.end)[0][0]
        a, first_label = a[0], None if y is None else int(y[0])
    check_picture(gen, args.steps, f"--steps {args.steps}")
    label = args.klass if args.klass is not None else first_label
    x = spaces.interpolation_images(gen.net, a, b, args.steps, args.mode, args.space, label)
    report.save_grid(x, out, nrow=len(x))
    gif = latent.save_gif(x, out.with_suffix(".gif"))
    print(f"wrote {out} and {gif}")
    return 0


def cmd_edit(args: argparse.Namespace) -> int:
    from .files import check_output_dir

    out = check_output_dir(args.out, "--out")
    from . import report
    from .api import load_generator
    from .control import editing
    from .control.spaces import check_mapping

    gen = load_generator(args.source, device=args.device)
    if args.space == "w":
        check_mapping(gen.net, "--space w")
    data, clf = _classifier(gen, args.classifier, args.device, "edit")
    if not 0 <= args.target < clf.num_classes:
        raise UserError(f"--target must be in 0..{clf.num_classes - 1}, got {args.target}")
    opts: dict = {"max_distance": args.max_distance, "stop_prob": args.stop_prob}
    if args.mode == "optimize":
        opts.update(
            steps=args.steps,
            lr=args.lr,
            prior_weight=args.prior_weight,
            restarts=args.restarts,
            shifts=args.shifts,
        )
    res = editing.edit(
        gen,
        clf,
        args.target,
        n=args.n,
        seed=args.seed,
        mode=args.mode,
        space=args.space,
        fit_n=args.fit_n,
        **opts,
    )
    report.save_grid(res.images_before, out / "before.png")
    report.save_grid(res.images_after, out / "after.png")
    s = res.summary()
    record = {
        **s,
        "source": str(args.source),
        "classifier": data,
        "seed": args.seed,
        "options": {**opts, "fit_n": args.fit_n} if args.mode == "direction" else opts,
        "per_sample": {
            "success": res.success.tolist(),
            "distance": [round(v, 5) for v in res.distance.tolist()],
            "entanglement": [round(v, 5) for v in res.entanglement.tolist()],
            "steps": res.steps.tolist(),
            "tries": None if res.tries is None else res.tries.tolist(),
        },
    }
    (out / "edit.json").write_text(json.dumps(record, indent=1) + "\n")
    where = "" if args.space == "z" else " in W"
    print(
        f"{args.mode}{where} towards {args.target}: success {100 * s['success_rate']:.1f}% of "
        f"{s['n']} "
        f"(already {100 * s['already_target']:.1f}%), distance moved {s['distance_mean']:.3f}, "
        f"entanglement {s['entanglement_mean']:.3f}"
    )
    print(f"wrote {out / 'before.png'}, {out / 'after.png'} and {out / 'edit.json'}")
    return 0


def _classifier(gen, name: str | None, device: str, command: str):
    """``(data set, classifier)`` that steers ``gen``'s images, or a one-line error."""
    from .evaluation import steering_classifier
    from .metrics.classifier import load_classifier

    data = steering_classifier(gen, name, command)
    return data, load_classifier(data, device=device)  # it resizes other sides to its own


def _concept(spec: str, name: str, args, gen, z_grid, clf):
    """The codes ``[M, z_dim]`` of one concept: sample ids of the grid, or class=K."""
    spec = spec.strip()
    if not spec.strip(", "):
        raise UserError(f"--{name} is empty; give sample ids like 3,17,40, or class=K")
    if spec.startswith("class="):
        try:
            k = int(spec[len("class=") :])
        except ValueError:
            raise UserError(f"--{name} {spec}: want class=K with an integer K") from None
        from .control import editing

        if not 0 <= k < clf.num_classes:
            raise UserError(f"--{name} {spec}: the class must be in 0..{clf.num_classes - 1}")
        if args.per_class > args.pool:
            raise UserError(
                f"--per-class {args.per_class} is more than --pool {args.pool}; raise --pool or "
                "lower --per-class"
            )
        try:
            return editing.class_codes(
                gen.net, clf, k, n=args.per_class, pool=args.pool, seed=args.seed + 1
            )
        except editing.TooFewInClass as e:
            raise UserError(
                f"--{name} {spec}: only {e.found} of the --pool {args.pool} draws are labelled "
                f"{k}, --per-class {args.per_class} wanted; raise --pool or lower --per-class"
            ) from None
    try:
        ids = [int(t) for t in spec.split(",") if t.strip()]
    except ValueError:
        raise UserError(
            f"--{name} {spec!r}: want comma-separated sample ids like 3,17,40, or class=K"
        ) from None
    bad = [i for i in ids if not 0 <= i < len(z_grid)]
    if not ids or bad:
        raise UserError(
            f"--{name} {spec!r}: sample ids must be in 0..{len(z_grid) - 1} (--n {len(z_grid)})"
        )
    return z_grid[ids]


def cmd_arithmetic(args: argparse.Namespace) -> int:
    import torch

    from . import report
    from .control import latent

    gen, out = _image_generator(args, "arithmetic")
    latent.check_labels(gen.net, 1, args.klass)  # a conditional G needs --class
    specs = {k: getattr(args, k).strip() for k in ("a", "b", "c")}
    clf = None  # the classifier, when a concept names a class
    named = [f"--{k} {v}" for k, v in specs.items() if v.startswith("class=")]
    if named and gen.num_classes:
        raise UserError(
            f"{named[0]}: class= concepts need an unconditional generator; a conditional one "
            "takes sample ids and --class"
        )
    if named:
        clf = _classifier(gen, args.classifier, args.device, "class= concepts")[1]
    z_grid, _ = latent.sample_latents(gen.z_dim, args.n, args.seed)
    za, zb, zc = (_concept(v, k, args, gen, z_grid, clf) for k, v in specs.items())
    x = latent.arithmetic_grid(gen.net, za, zb, zc, args.klass)  # [4, W, *shape]
    names = [f"a: {args.a}", f"b: {args.b}", f"c: {args.c}", "c + a - b"]
    report.plot_rows(list(x), names, out, title="latent arithmetic; last column: the means")
    print(f"wrote {out}: rows a, b, c and c + mean(a) - mean(b); means in the last column")
    if clf is not None:  # a classifier picked the concepts: say what it makes of the results
        from .metrics.classifier import predict

        row = torch.cat([x[3, : len(zc)], x[3, -1:]])  # the results without the blank cells
        said = predict(clf, row).argmax(1).tolist()
        print(f"classifier labels of c + a - b: {' '.join(map(str, said[:-1]))}; mean: {said[-1]}")
    return 0


DEFAULT_TRANSLATE_N = 100  # images of a data set that ``gankit translate`` takes by default


def _check_translation_memory(n: int, shape: tuple[int, int, int], what) -> None:
    """``n`` images, their float copies and their translations fit in memory."""
    import math

    from .memory import check as check_memory

    check_memory(9.0 * n * math.prod(shape), f"--input {what} ({n} images)", "pass a smaller --n")


def _folder_inputs(folder: Path, n: int | None, shape: tuple[int, int, int]):
    """``(images [N, C, H, W] in [-1, 1], names)`` of the PNG/JPEGs under ``folder``."""
    import torch

    from .control.translate import check_names
    from .data.images import list_images, load_image, to_float

    files = list_images(folder)[:n]
    if not files:
        raise UserError(
            f"--input {folder} holds no PNG or JPEG images; point it at a folder of images"
        )
    names = [f.relative_to(folder).with_suffix("").as_posix().replace("/", "_") for f in files]
    check_names(names)  # before reading a single image
    _check_translation_memory(len(files), shape, folder)
    c, h, _ = shape
    return to_float(torch.stack([load_image(f, h, c) for f in files])), names  # [N, C, H, W]


def _dataset_inputs(args: argparse.Namespace, tr):
    """``(images [N, C, H, W] in [-1, 1], names)``: the first images of a data set's split."""
    import torch

    from .config import DataConfig
    from .data import build_source

    c, h, _ = tr.shape
    root = args.data_dir or tr.config.data.root
    cfg = DataConfig(name=args.input, root=root, size=h, channels=c, download=False)
    source = build_source(cfg, args.split)
    if getattr(source, "kind", None) != "image":
        raise UserError(
            f"--input {args.input} is a {source.kind} data set, not images; give a folder of "
            "images or an image data set (usps, mnist, fashion-mnist)"
        )
    n = min(args.n or DEFAULT_TRANSLATE_N, len(source))
    _check_translation_memory(n, tr.shape, args.input)
    x, y = source.batch(torch.arange(n))  # [n, C, H, W], [n] or None
    word = "digit" if args.input in ("mnist", "usps") else "class"
    names = [f"{i:05d}" if y is None else f"{i:05d}_{word}{int(y[i])}" for i in range(n)]
    return x, names


def cmd_translate(args: argparse.Namespace) -> int:
    from .files import check_output_dir

    out = check_output_dir(args.out, "--out")
    from . import data  # noqa: F401  (registers the data sets)
    from .registry import DATASETS

    if not args.input.strip():
        raise UserError("--input is empty; give a folder of images or a data set name")
    folder = Path(args.input).expanduser()
    named = args.input in DATASETS and args.input not in ("folder", "pair")  # those need a path
    if not folder.is_dir() and (folder.exists() or not named):
        raise UserError(
            f"--input {args.input} is neither a folder nor a data set name; give a folder of "
            "PNG/JPEG images or an image data set (usps, mnist, fashion-mnist)"
        )
    from .api import load_translator
    from .control.translate import write_translations

    tr = load_translator(args.source, args.direction, device=args.device)
    if folder.is_dir():
        x, names = _folder_inputs(folder, args.n, tr.shape)
    else:
        x, names = _dataset_inputs(args, tr)
    res = write_translations(tr, x, names, out)
    print(f"translated {res['n']} images {tr.direction} into {res['out']}; grid: {res['grid']}")
    return 0
