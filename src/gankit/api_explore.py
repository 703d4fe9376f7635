"""The explorer's view of a run folder: what ``gankit explore RUN`` serves.

This is the API layer's half of the explorer: it loads by path (the newest generator or the
translators of the run, a 2-D run's G and D at a saved step, the MNIST/Fashion-MNIST classifier
that edits need, the test images of a translation run's domains) and hands those loaders to
``gankit.explore.Session``, which never loads by path itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .errors import UserError
from .explore import Loaders, Session, serve
from .training import checkpoint


def _kind(run: Path) -> str:
    """image, toy or translation from the newest checkpoint; none before the first one."""
    from .api import _read

    if not checkpoint.checkpoints(run):
        return "none"
    stored = _read(run)
    return "translation" if stored.translators else str(stored.meta["kind"])


def _toy_step(device: str):
    from . import api
    from .registry import VARIANTS

    def load(path: Path):
        ck = checkpoint.load(path)
        stored = api._read_checkpoint(path, ck)
        if "D" not in ck["nets"] or int(stored.meta["num_classes"]):
            raise UserError("this run has no unconditional D to draw a heat map of")
        variant = VARIANTS.get(stored.cfg.train.variant)(stored.cfg)
        g = stored.meta["sampler_player"]
        with api._damaged(path, "gankit checkpoint"):
            nets = variant.build_nets(tuple(stored.meta["shape"]), 0)
            nets[g].load_state_dict(stored.states[g])
            nets["D"].load_state_dict(ck["nets"]["D"])
        G, D = nets[g].to(device).eval(), nets["D"].to(device).eval()
        score = getattr(D, "score_points", D)  # a packed D scores a pack of copies of a point
        prob = variant.probabilities

        def field(pts: torch.Tensor) -> torch.Tensor:
            s = score(pts.to(device)).float().cpu()  # [M]
            return torch.sigmoid(s) if prob else s

        return G, field, "D(x)" if prob else "critic D(x)"

    return load


def _classifier(run: Path, device: str):
    from .evaluation import steering_classifier
    from .metrics.classifier import load_classifier

    def load():
        from .api import load_generator

        gen = load_generator(run)
        return load_classifier(steering_classifier(gen, None, "editing"), device=device)

    return load


def session(run: str | Path, device: str = "cpu", data_root: str | None = None) -> Session:
    """The explorer's ``Session`` of the run folder ``run``."""
    from .api import _read, load_generator, load_translator

    run = Path(run)
    if not run.is_dir():
        raise UserError(f"{run} is not a folder; pass a run folder (runs/<name>)")
    if not any((run / f).exists() for f in ("config.yaml", "metrics.jsonl", "checkpoints")):
        raise UserError(f"{run} holds no gankit run (no config.yaml, metrics.jsonl, checkpoints)")
    kind = _kind(run)
    loaders = Loaders()
    if kind == "none":  # no checkpoint yet: the page asks again until the first one
        loaders.recheck = lambda: session(run, device, data_root)
    if kind in ("image", "toy"):
        loaders.generator = lambda: load_generator(run, device)
    if kind == "image":
        loaders.classifier = _classifier(run, device)
    if kind == "toy":
        stored = _read(run)
        cfg = stored.cfg
        if tuple(stored.meta["shape"]) == (2,):
            loaders.toy_step = _toy_step(device)
            loaders.real_points = lambda n: _real_points(cfg, n)
    if kind == "translation":
        stored = _read(run)
        loaders.translators = lambda: {
            d: load_translator(run, d, device) for d in stored.translators
        }
        loaders.test_images = _test_images(stored.cfg, data_root)
    return Session(run, loaders, kind)


def _real_points(cfg, n: int) -> torch.Tensor:
    from . import data

    source = data.build_source(cfg.data)
    return source.sample(n, torch.Generator().manual_seed(cfg.seed + 7))[0]  # [n, 2]


def _test_images(cfg, data_root: str | None):
    cache: dict[str, Any] = {}

    def load(domain: str, n: int) -> torch.Tensor:
        from . import data

        if "pair" not in cache:
            dc = cfg.data if data_root is None else _with_root(cfg.data, data_root)
            cache["pair"] = data.build_source(dc, "test")
        source = cache["pair"].domains[0 if domain == "A" else 1]
        n = min(n, len(source))
        return source.batch(torch.arange(n))[0]  # [n, C, H, W]

    return load


def _with_root(dc, root: str):
    import dataclasses

    return dataclasses.replace(dc, root=root, download=False)


def explore(
    run: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    device: str = "cpu",
    data_root: str | None = None,
) -> None:
    """Serve the explorer of ``run`` until Ctrl-C (``gankit explore``)."""
    serve(session(run, device, data_root), host, port)
