"""One entry point for every evaluation metric: ``gankit.evaluate`` and ``gankit eval``.

It draws samples from a generator, picks the reference images of the run's data set, dispatches to
the metric modules in ``gankit.metrics`` and returns (and, for a run, writes) the numbers together
with the protocol that produced each of them (PROTOCOLS.md):

- ``fid``, ``kid``, ``pr``, ``is``: Inception-v3 metrics through torch-fidelity (Heusel et al.
  2017; Binkowski et al. 2018; Kynkaanniemi et al. 2019; Salimans et al. 2016),
  ``metrics/fidelity.py``; default n = 10,000 against the test split.
- ``cfid``, ``coverage``, ``cacc``: gankit's MNIST / Fashion-MNIST classifier
  (``metrics/classifier.py``): the Frechet distance of its features (a fast monitor, not comparable
  with FID), class coverage (entropy of the predicted-class histogram), conditional accuracy
  (1,000 samples per class).
- ``modes``: Stacked MNIST mode count and KL (26,000 samples, Metz et al. 2017) for
  ``stacked-mnist``; the VEEGAN/PacGAN mode coverage (2,500 samples) for ``ring`` and ``grid``.
- ``energy``: the energy distance to the data (2-D and 1-D data).
- ``memorisation``: does G copy its training images? For n samples (default 1,000), the median
  ratio of the pixel L2 distance to the nearest training image (the run's ``data.limit`` subset)
  over that to the nearest of as many test images, and the share nearer a training image
  (``metrics/memorisation.py``); about 1 and 50 % for a G that does not copy.
- ``ppl``: perceptual path length in Z and, for a net with a mapping network (StyleGAN), in W
  (Karras et al. 2019), ``metrics/ppl.py``; default n = 10,000 path samples. Features: the
  classifier's penultimate layer for 1-channel images of a data set that has one, else Inception
  pool3. A net without a mapping network gets ppl_z only.

The trainer calls ``evaluate_generator`` every ``eval.every`` steps. Sampling uses its own seeded
generator and the reference subset is chosen by a fixed seed, so evaluating never disturbs a run's
random state (exact resume holds with periodic metrics on).

Under torchrun the trainer passes every rank a ``Split`` (``metrics/split.py``) and every rank
takes part: for ``fid``, ``kid``, ``pr``, ``is``, ``cfid`` and ``coverage`` each draws the
latents (and labels) of all n samples from the seeded stream, generates only its contiguous share
of them, runs the feature network (Inception, the digit classifier) on that share, and the
features or class predictions are gathered in rank order, so rank 0 computes the very statistic
of the same n samples that one process would (equal to float32 round-off). ``cfid``'s reference
images are split the same way; Inception's come from rank 0's cache, and on a miss each rank
extracts its share. ``cacc``, Stacked MNIST ``modes``, ``ppl`` and the 1-D and 2-D metrics do
not split (per-class batches, per-path pairs, cheap points): rank 0 runs them alone after the
shared part while the other ranks go on, and also every metric when ``eval.n`` is smaller than
the number of processes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .config import METRIC_NAMES, parse_metrics
from .errors import UserError

if TYPE_CHECKING:  # torch loads on first use, so config checks stay instant
    from torch import Tensor

    from .config import Config
    from .metrics.split import Split

INCEPTION = ("fid", "kid", "pr", "is")
CLASSIFIER = ("cfid", "coverage", "cacc")
IMAGE_ONLY = (*INCEPTION, *CLASSIFIER, "ppl", "memorisation")
SPLIT = (*INCEPTION, "cfid", "coverage")  # what the ranks of a distributed evaluation share
ALL = METRIC_NAMES
DEFAULT_N = {
    "inception": 10_000,
    "cfid": 10_000,
    "coverage": 10_000,
    "energy": 2_500,
    "ppl": 10_000,  # path samples (the paper: 50,000)
    "memorisation": 1_000,
}
STACKED_N = 26_000  # PROTOCOLS.md, Stacked MNIST
MODES2D_N = 2_500  # PROTOCOLS.md, 2-D mixtures
CACC_PER_CLASS = 1_000  # PROTOCOLS.md, conditional generation
CLASSIFIER_FOR = {
    "mnist": "mnist",
    "fashion-mnist": "fashion-mnist",
    "stacked-mnist": "mnist",
    "cifar10": "cifar10",  # RGB: runs with data.channels=3 only
}
REF_SEED = 2024  # fixed choice of the reference subset when n < the split's size


def steering_classifier(gen, name: str | None, command: str) -> str:
    """The classifier (``--classifier``, else the run's data set's) that steers ``gen``'s images
    in ``command`` (editing, class concepts): one that reads their channels, or a one-line
    ``UserError``. Other square sides are resized to the classifier's."""
    from .metrics.classifier import NETS, RECIPES, check_data

    data = name or CLASSIFIER_FOR.get(gen.config.data.name)
    if gen.kind != "image" or data is None:
        raise UserError(
            f"no classifier for a generator of {gen.config.data.name} data; {command} needs an "
            "MNIST, Fashion-MNIST or CIFAR-10 image generator (or pass --classifier)"
        )
    data = check_data(data)
    want = NETS[RECIPES[data].net].image_shape  # (C, S, S)
    c, h, w = gen.shape
    if c != want[0] or h != w:
        raise UserError(
            f"{command} steers with the {data} classifier (square {want[0]}-channel images); "
            f"this generator makes {'x'.join(map(str, gen.shape))} {gen.config.data.name} "
            "images; pass --classifier with one that reads them (mnist, fashion-mnist: 1 "
            "channel; cifar10: 3)"
        )
    return data


@dataclasses.dataclass
class Options:
    n: int | None = None  # samples per metric; None = each metric's protocol count
    ref: str = "test"  # reference split
    seed: int = 0  # seed of the generated samples
    device: str = "cpu"
    batch_size: int = 200
    inception_weights: str | None = None
    data_root: str | None = None

    def __post_init__(self) -> None:
        from .devices import check_name

        if self.n is not None and self.n < 2:
            raise UserError(f"--n must be at least 2, got {self.n}")
        if self.batch_size < 1:
            raise UserError(f"the batch size must be at least 1, got {self.batch_size}")
        if self.ref not in ("test", "train"):
            raise UserError(f"the reference split must be test or train, got {self.ref!r}")
        check_name(self.device)


def _check_kind(cfg: Config, kind: str, names: list[str]) -> None:
    if kind == "pair":
        raise UserError(
            f"{', '.join(names)} measure samples of a G(z), but this run translates between two "
            "domains; measure it with benchmarks/translation.py (class preservation) and set "
            "eval.every=0"
        )
    image_only = [n for n in names if n in IMAGE_ONLY]
    if kind != "image" and image_only:
        verb = "needs" if len(image_only) == 1 else "need"
        raise UserError(
            f"{', '.join(image_only)} {verb} an image generator, but this one makes "
            f"{cfg.data.name} points; use --metrics modes,energy"
        )
    if kind != "image":
        return
    if "energy" in names:
        raise UserError("energy is for 1-D and 2-D data; for images use fid, kid or cfid")
    if "memorisation" in names and cfg.data.name == "folder":
        raise UserError(
            "memorisation compares the training images with held-out test images, and a folder "
            "has no test split; train on a data.limit subset of mnist, fashion-mnist or cifar10 "
            "to measure it, or drop memorisation"
        )
    if "modes" in names and cfg.data.name != "stacked-mnist":
        raise UserError(
            f"modes on images is the Stacked MNIST protocol, but this generator was trained on "
            f"{cfg.data.name}; use coverage for class coverage"
        )
    if "cacc" in names and not cfg.data.classes:
        raise UserError(
            "cacc (conditional accuracy) needs a class-conditional generator and this one is "
            "unconditional; use coverage for it, or train with data.classes=true"
        )
    per_image = [n for n in names if n in CLASSIFIER]
    if per_image and cfg.data.name == "stacked-mnist":
        raise UserError(
            f"{', '.join(per_image)} classify whole 1-channel images, but Stacked MNIST images "
            "hold three digits; use modes (a digit per channel) or fid"
        )
    wants_classifier = [n for n in names if n in CLASSIFIER or n == "modes"]
    if wants_classifier and cfg.data.name not in CLASSIFIER_FOR:
        raise UserError(
            f"{', '.join(wants_classifier)} need gankit's classifier, which exists for "
            f"{', '.join(CLASSIFIER_FOR)}, not {cfg.data.name}; use fid or kid"
        )
    if per_image and cfg.data.name == "cifar10" and cfg.data.channels != 3:
        raise UserError(
            f"{', '.join(per_image)} use the CIFAR-10 classifier, which reads RGB images, but this "
            f"run has data.channels={cfg.data.channels}; train with data.channels=3 or use fid"
        )


def check(cfg: Config, kind: str, metrics: str | Iterable[str]) -> None:
    """Raise ``UserError`` now if ``metrics`` cannot run for this config (trainer pre-flight)."""
    names = parse_metrics(metrics)
    _check_kind(cfg, kind, names)
    if kind == "image" and any(n in CLASSIFIER or n == "modes" for n in names):
        from .metrics.classifier import load_classifier

        load_classifier(CLASSIFIER_FOR[cfg.data.name], cfg.data.root)
    if kind == "image" and "ppl" in names and _ppl_classifier(cfg):  # ppl's feature network
        from .metrics.classifier import load_classifier

        load_classifier(_ppl_classifier(cfg), cfg.data.root)
    elif kind == "image" and "ppl" in names:
        from .metrics.inception import resolve_weights

        resolve_weights(cfg.eval.inception_weights)
    if kind == "image" and any(n in INCEPTION for n in names):
        from .metrics.inception import resolve_weights

        resolve_weights(cfg.eval.inception_weights, need_is="is" in names)
    if kind == "image" and any(n in ("fid", "kid", "pr", "cfid") for n in names):
        from .data import build_source

        ref = build_source(dataclasses.replace(cfg.data, classes=False), "test")
        if len(ref) < cfg.eval.n:
            raise UserError(
                f"eval.n={cfg.eval.n} is more than the {len(ref)} reference images of "
                f"{cfg.data.name}; lower eval.n to at most {len(ref)}"
            )


def _reference(cfg: Config, opts: Options, n: int) -> tuple[Tensor, str]:
    """``n`` reference samples of the run's data set and split, and a key naming them."""
    import torch

    from .data import build_source

    data = dataclasses.replace(cfg.data, root=opts.data_root or cfg.data.root, classes=False)
    data = dataclasses.replace(data, limit=0)  # a run on a subset is judged against all images
    source = build_source(data, opts.ref)
    x, _ = source.sample(n, torch.Generator().manual_seed(REF_SEED))  # [n, ...]
    if source.kind != "image":  # toy data: sampled on the fly
        return x, f"{cfg.data.name}-sampled-{n}-seed{REF_SEED}"
    shape = "x".join(map(str, x.shape[1:]))
    subset = "all" if n == len(source) else f"seed{REF_SEED}"
    return x, f"{cfg.data.name}-{opts.ref}-{n}-{shape}-{subset}"


def _count(name: str, opts: Options) -> int:
    if opts.n is not None:  # checked by Options
        return opts.n
    return DEFAULT_N["inception" if name in INCEPTION else name]


class _Draws:
    """The generated samples (seed ``opts.seed``) and reference samples of one evaluation, drawn
    once per count and shared by every metric that asks for that many. Under a ``split`` the
    generated ones are this rank's share of the n (the reference ones are all n, on every rank)."""

    def __init__(self, generator, opts: Options, split: Split | None = None):
        self.generator, self.opts, self.split = generator, opts, split
        self._fake: dict[int, Tensor] = {}
        self._real: dict[int, tuple[Tensor, str]] = {}

    def _check(self, n: int) -> None:
        import math

        from .memory import check as check_memory

        per = 4 * (math.prod(self.generator.shape) + self.generator.z_dim)
        check_memory(3.0 * per * n, f"n={n} samples", "ask for fewer (--n)")

    def fake(self, n: int) -> Tensor:
        if n not in self._fake:
            if self.split is None:
                self._check(n)
                self._fake[n] = self.generator.sample(n, seed=self.opts.seed)
            else:  # the same n latents on every rank; each generates only its rows
                start, stop = self.split.bounds(n)
                self._check(stop - start)
                self._fake[n] = self.generator.sample(n, seed=self.opts.seed, rows=(start, stop))
        return self._fake[n]

    def real(self, n: int) -> tuple[Tensor, str]:
        if n not in self._real:
            self._check(n)
            self._real[n] = _reference(self.generator.config, self.opts, n)
        return self._real[n]


def evaluate_generator(
    generator,
    names: Iterable[str],
    opts: Options | None = None,
    split: Split | None = None,  # this process's place in a distributed evaluation; None: alone
) -> dict | None:
    """Evaluate a ``gankit.Generator`` (see ``gankit.api``) on ``names``; see the module doc.

    Returns ``{metric values..., "protocols": {group: protocol dict}}``. Values are floats (counts
    are ints); each group's protocol names its sample counts, reference, seed and versions.

    With ``split`` every rank calls it with the same generator weights, names and options; rank 0
    returns the result (the protocols of split metrics add ``processes``), the others None.
    """
    opts = opts or Options()
    names = parse_metrics(names)
    cfg: Config = generator.config
    _check_kind(cfg, generator.kind, names)
    if split is not None and not _shares(generator, names, opts, split):
        if not split.main:
            return None
        split = None  # rank 0 alone
    out: dict[str, Any] = {}
    protocols: dict[str, Any] = {}
    draws = _Draws(generator, opts, split)
    if generator.kind != "image":
        _toy_metrics(draws, names, opts, out, protocols)
    else:
        inception = [n for n in names if n in INCEPTION]
        if inception:
            _inception(draws, inception, opts, out, protocols, split)
        if any(n in CLASSIFIER or n == "modes" for n in names):
            _classifier_metrics(draws, names, opts, out, protocols, split)
        if split is not None and not split.main:
            return None  # its shares are in rank 0's numbers; the rest is rank 0's alone
        if "ppl" in names:
            _ppl(generator, opts, out, protocols)
        if "memorisation" in names:
            _memorisation(draws, opts, out, protocols)
    out["protocols"] = protocols
    return out


def _shares(generator, names: list[str], opts: Options, split: Split) -> bool:
    """Whether the ranks of ``split`` share this evaluation: image metrics that split, and at
    least one sample per rank (points are cheap: rank 0 measures them alone)."""
    few = opts.n is not None and opts.n < split.world
    return generator.kind == "image" and any(n in SPLIT for n in names) and not few


def _toy_metrics(draws: _Draws, names, opts, out, protocols) -> None:
    from .metrics.distances import energy_distance
    from .metrics.modes import mode_coverage

    generator, cfg = draws.generator, draws.generator.config
    if "modes" in names:
        from .data import build_source

        source = build_source(dataclasses.replace(cfg.data, classes=False))
        modes = getattr(source, "modes", None)
        if modes is None or generator.shape != (2,):
            raise UserError(f"modes needs a 2-D mixture (ring or grid), not {cfg.data.name}")
        n = opts.n or MODES2D_N
        cov = mode_coverage(draws.fake(n), modes, source.std)
        for k in ("modes_captured", "n_modes", "high_quality", "reverse_kl"):
            out[k] = cov[k]
        protocols["modes"] = {"protocol": cov["protocol"], "n_fake": n, "seed": opts.seed}
    if "energy" in names:
        n = _count("energy", opts)
        real, key = draws.real(n)
        out["energy_distance"] = energy_distance(draws.fake(n), real)
        protocols["energy"] = {"n_fake": n, "n_real": n, "reference": key, "seed": opts.seed}


def _inception(draws: _Draws, names, opts, out, protocols, split: Split | None) -> None:
    from .metrics import fidelity

    n = _count("fid", opts)
    real, key = draws.real(n)  # all n on every rank: the cache key hashes them
    res = fidelity.inception_metrics(
        draws.fake(n),  # this rank's share under a split
        real,
        metrics=set(names),
        real_key=key,
        weights=opts.inception_weights,
        device=opts.device,
        batch_size=opts.batch_size,
        seed=opts.seed,
        split=split,
    )
    if res is None:  # a rank other than 0: its share is in rank 0's result
        return
    record = {**res.pop("protocol"), "seconds": res.pop("seconds", None)}
    for name in names:  # one record per metric, so a later evaluation can replace one of them
        protocols[name] = record
    out.update(res)


def _classifier_metrics(draws: _Draws, names, opts, out, protocols, split: Split | None) -> None:
    """cfid and coverage (split among the ranks of ``split``), then cacc and Stacked MNIST modes
    (rank 0 alone: the other ranks return before them)."""
    from .metrics import classifier as clf_mod

    generator, cfg = draws.generator, draws.generator.config
    data = CLASSIFIER_FOR[cfg.data.name]
    clf = clf_mod.load_classifier(data, opts.data_root or cfg.data.root, device=opts.device)
    base = {"classifier": data, "seed": opts.seed}
    if cfg.data.name != "stacked-mnist":  # Stacked MNIST: one digit per channel, at 28 px
        base["classifier_input"] = clf_mod.input_protocol(generator.shape, clf.image_shape)
    shared = base if split is None else {**base, "processes": split.world}  # for split metrics
    if "cfid" in names:
        n = _count("cfid", opts)
        real, key = draws.real(n)
        real = real if split is None else split.rows(real)  # [n_r, ...]: this rank's share
        res = clf_mod.classifier_fid(draws.fake(n), real, clf, split=split)
        if res is not None:  # None: a rank other than 0
            out["cfid"] = res["classifier_fid"]
            protocols["cfid"] = {**shared, "n_fake": n, "n_real": n, "reference": key}
    if "coverage" in names:
        n = _count("coverage", opts)
        logits = clf_mod.predict(clf, draws.fake(n))  # [n, K]; this rank's [n_r, K] when split
        if split is not None:
            logits = split.gather(logits)  # [n, K], the ranks' shares in rank order
        if split is None or split.main:
            cov = clf_mod.class_coverage(logits)
            out["class_entropy"] = cov["class_entropy"]
            out["class_entropy_max"] = cov["class_entropy_max"]
            out["class_histogram"] = cov["class_histogram"]
            protocols["coverage"] = {**shared, "n_fake": n}
    if split is not None and not split.main:
        return  # what follows does not split: rank 0 alone
    if "cacc" in names:
        per_class = opts.n or CACC_PER_CLASS
        acc = clf_mod.conditional_accuracy(generator, clf, n_per_class=per_class, seed=opts.seed)
        out["conditional_accuracy"] = acc["conditional_accuracy"]
        out["conditional_accuracy_per_class"] = acc["per_class_accuracy"]
        protocols["cacc"] = {**base, "n_per_class": per_class}
    if "modes" in names:
        from .metrics.stacked_mnist import generator_modes

        n = opts.n or STACKED_N
        res = generator_modes(generator, clf, n=n, seed=opts.seed)
        out["stacked_modes"] = res["modes"]
        out["stacked_kl"] = res["kl"]
        out["stacked_channel_kl"] = res["channel_kl"]
        protocols["modes"] = {**base, "protocol": "Stacked MNIST (Metz et al. 2017)", "n_fake": n}


def _memorisation(draws: _Draws, opts: Options, out, protocols) -> None:
    """Nearest training image against nearest test image (rank 0 alone under a split): the
    run's training images (its subset) and as many test images, or a fixed draw of each of the
    smaller split's size when the training split is larger."""
    import torch

    from .data import build_source
    from .metrics.memorisation import memorisation

    cfg = draws.generator.config
    data = dataclasses.replace(cfg.data, root=opts.data_root or cfg.data.root, classes=False)
    train = build_source(data, "train")  # cut to data.limit, as the run saw it
    test = build_source(dataclasses.replace(data, limit=0), "test")
    m = min(len(train), len(test))
    draws._check(2 * m)
    x_train, _ = train.sample(m, torch.Generator().manual_seed(REF_SEED))  # [m, C, H, W]
    x_test, _ = test.sample(m, torch.Generator().manual_seed(REF_SEED))  # [m, C, H, W]
    n = _count("memorisation", opts)
    out.update(memorisation(draws.fake(n), x_train, x_test))
    protocols["memorisation"] = {
        "n_fake": n,
        "n_train": m,
        "n_test": m,
        "train": getattr(train, "origin", None) or f"the train split of {cfg.data.name}",
        "distance": "L2 in pixel space, images in [-1, 1]; median over samples",
        "seed": opts.seed,
    }


def _ppl_classifier(cfg: Config) -> str | None:
    """The classifier whose features PPL uses: 1-channel images of a data set that has one."""
    if cfg.data.name in ("stacked-mnist", "cifar10") or cfg.data.channels != 1:
        return None  # cifar10: its classifier reads RGB, so PPL keeps Inception's features
    return CLASSIFIER_FOR.get(cfg.data.name)


def _ppl(generator, opts: Options, out, protocols) -> None:
    from .metrics import ppl

    cfg = generator.config
    data = _ppl_classifier(cfg)
    if data is not None:
        from .metrics import classifier as clf_mod

        clf = clf_mod.load_classifier(data, opts.data_root or cfg.data.root, device=opts.device)
        features = ppl.classifier_features(clf, data, clf_mod.input_protocol(generator.shape))
    else:
        from .metrics.inception import load_extractor

        extractor = load_extractor(opts.inception_weights, device=opts.device)
        features = ppl.inception_features(extractor)
    n = _count("ppl", opts)
    res = ppl.compute(
        generator.net, features, n=n, seed=opts.seed, batch=max(1, opts.batch_size // 2)
    )
    out.update({k: res[k] for k in ("ppl_z", "ppl_w") if k in res})
    spaces = "Z and W" if "ppl_w" in res else "Z only (this net has no mapping network, so no W)"
    protocols["ppl"] = {
        "protocol": "perceptual path length, full (Karras et al. 2019), StyleGAN2-ADA's recipe",
        "spaces": spaces,
        "n": n,  # path samples per space, the same draws for Z and W
        "n_fake": 2 * n,  # images per space: two per path sample
        "eps": res["eps"],
        "sampling": "z0, z1 ~ N(0, I), t ~ U(0, 1); Z: slerp (norm lerped), W: lerp of "
        "mapping(z0), mapping(z1); one class per pair; const noise; no truncation",
        "distance": "squared L2 of the features / eps^2; values below the 1st and above the 99th "
        "percentile dropped; mean",
        "features": features.name,
        "note": "LPIPS is unavailable offline: compare Z with W, or models on the same features, "
        "never with published LPIPS values",
        "seed": opts.seed,
    }
