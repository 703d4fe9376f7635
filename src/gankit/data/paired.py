"""Two unpaired image domains for translation GANs: CycleGAN (Zhu et al. 2017) and the digit
protocol of CyCADA (Hoffman et al. 2018: MNIST and USPS, resized to one size, grayscale).

A ``PairSource`` holds one split of two image sources, domain A and domain B, which need not have
anything in common but their image shape: ``build_pair(cfg_a, cfg_b, split, size, channels)``
builds each domain from its own ``DataConfig`` (any registered image data set: ``usps`` and
``mnist``, two ``folder`` s, ...) with one shared ``size`` and ``channels``, so the two batches
always have the same shape ``[B, C, H, W]``. ``build_pair_folder(path, size, channels, split)``
reads the CycleGAN layout: one folder with ``trainA/``, ``trainB/``, ``testA/`` and ``testB/``.

Nothing is paired: ``PairSource.sampler(batch_size, seed)`` gives each domain its own seeded
sampler (its own ``torch.Generator`` and epoch permutation, seeds drawn from ``seed``), so the two
orders are independent. ``next()`` returns ``(x_a, x_b), (y_a, y_b)``: float32 ``[B, C, H, W]``
in [-1, 1] and int64 labels ``[B]`` (None for an unlabelled domain). ``state_dict()`` holds both
domains' states (tensors, ints and strs only: ``torch.load(weights_only=True)`` reads it) and
``load_state_dict`` resumes both bit for bit.

The pair registers as the data set ``pair`` (``data.name=pair``): ``data.a`` and ``data.b`` name
the two domains, or ``data.path`` a CycleGAN folder. It is not a ``Source`` (its batches are two
batches, its ``kind`` is ``"pair"``): only a variant that plays on two domains takes it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..config import DataConfig, domain_config
from ..errors import UserError
from ..registry import DATASETS
from . import SPLITS, Sampler, Source, build_source, check_batch_size, check_fits
from .images import list_images

NAME = "pair"
DOMAINS = ("A", "B")
_EVAL_SEED = 1_000_033  # the fixed draw of ``sample()`` without a generator


def domain_seeds(seed: int) -> tuple[int, int]:
    """The seeds of domain A's and domain B's samplers, drawn from ``seed`` (distinct, so two
    domains of equal size are not shuffled alike)."""
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randint(0, 2**62, (2,), generator=g).tolist()
    return a, (b if b != a else b + 1)


class PairSource:
    """One split of two unpaired image domains with the same image shape ``(C, H, W)``."""

    kind = "pair"

    def __init__(self, a: Source, b: Source, split: str = "train"):
        for label, source in zip(DOMAINS, (a, b), strict=True):
            if getattr(source, "kind", None) != "image":
                raise UserError(
                    f"domain {label} data set {source.name!r} is a {source.kind} data set, not "
                    "images; choose an image data set such as mnist, usps or folder"
                )
        if a.shape != b.shape:
            raise UserError(
                f"domain A images are {tuple(a.shape)} (C, H, W) but domain B images "
                f"{tuple(b.shape)}; build both with the same size and channels (build_pair's "
                "size= and channels=)"
            )
        self.a, self.b, self.split = a, b, split
        self.shape = tuple(a.shape)  # (C, H, W) of both domains
        self.names = (a.name, b.name)
        self.num_classes = (a.num_classes, b.num_classes)  # 0 = unlabelled
        self.name = NAME

    @property
    def domains(self) -> tuple[Source, Source]:
        return self.a, self.b

    @property
    def lengths(self) -> tuple[int, int]:
        return len(self.a), len(self.b)

    def sampler(self, batch_size: int, seed: int) -> PairSampler:
        check_batch_size(batch_size)
        return PairSampler(self, batch_size, seed)

    def sample(
        self, n: int, generator: torch.Generator | None = None
    ) -> tuple[tuple[Tensor, Tensor], tuple[Tensor | None, Tensor | None]]:
        """``n`` distinct images of each domain, ``(x_a, x_b), (y_a, y_b)``; A is drawn first
        from the one generator, so the orders differ. Without a generator the draw is fixed."""
        if generator is None:
            generator = torch.Generator().manual_seed(_EVAL_SEED)
        x_a, y_a = self.a.sample(n, generator)  # [n, C, H, W], [n]
        x_b, y_b = self.b.sample(n, generator)  # [n, C, H, W], [n]
        return (x_a, x_b), (y_a, y_b)

    def __repr__(self) -> str:
        return (
            f"PairSource(a={self.names[0]!r}, b={self.names[1]!r}, split={self.split!r}, "
            f"shape={self.shape}, lengths={self.lengths})"
        )


class PairSampler:
    """Two independent, seeded, endless batch streams, one per domain (``.a`` and ``.b``)."""

    def __init__(self, pair: PairSource, batch_size: int, seed: int):
        seed_a, seed_b = domain_seeds(seed)
        self.names = pair.names
        self.a: Sampler = pair.a.sampler(batch_size, seed_a)
        self.b: Sampler = pair.b.sampler(batch_size, seed_b)
        self.batch_size, self.rank, self.world = batch_size, 0, 1

    def set_shard(self, rank: int, world: int) -> None:
        """Each domain serves this process its part of each (global) batch; a domain sampler
        without ``set_shard`` is sliced after it decodes."""
        if self.batch_size % world:
            raise ValueError(f"a batch of {self.batch_size} does not split over {world} processes")
        self.rank, self.world = rank, world
        for s in (self.a, self.b):
            if hasattr(s, "set_shard"):
                s.set_shard(rank, world)

    def _draw(self, s: Sampler) -> tuple[Tensor, Tensor | None]:
        x, y = s.next()
        if self.world == 1 or hasattr(s, "set_shard"):
            return x, y
        b = self.batch_size // self.world
        part = slice(self.rank * b, (self.rank + 1) * b)
        return x[part], (y[part] if y is not None else None)

    def device_bytes(self) -> int:
        return sum(s.device_bytes() for s in (self.a, self.b) if hasattr(s, "device_bytes"))

    def to_device(self, device: torch.device) -> None:
        """Both domains' in-memory images on ``device`` (a streamed domain stays on disk)."""
        for s in (self.a, self.b):
            if hasattr(s, "to_device"):
                s.to_device(device)

    def close(self) -> None:
        for s in (self.a, self.b):
            if hasattr(s, "close"):
                s.close()

    def next(self) -> tuple[tuple[Tensor, Tensor], tuple[Tensor | None, Tensor | None]]:
        """``(x_a, x_b)`` float32 ``[B, C, H, W]`` in [-1, 1] and ``(y_a, y_b)`` int64 ``[B]``
        or None."""
        x_a, y_a = self._draw(self.a)  # [B, C, H, W], [B]
        x_b, y_b = self._draw(self.b)  # [B, C, H, W], [B]
        if x_a.shape != x_b.shape:  # PairSource checked the shapes: this is a bug
            raise RuntimeError(f"domain batches differ: {tuple(x_a.shape)} vs {tuple(x_b.shape)}")
        return (x_a, x_b), (y_a, y_b)

    def state_dict(self) -> dict[str, Any]:
        """Only tensors, ints and strs: safe for ``torch.load(weights_only=True)``."""
        return {
            "kind": "pair",
            "name_a": self.names[0],
            "name_b": self.names[1],
            "a": self.a.state_dict(),
            "b": self.b.state_dict(),
        }

    def load_state_dict(self, d: dict[str, Any]) -> None:
        if d.get("kind") != "pair" or not {"a", "b"} <= set(d):
            raise ValueError("not a pair sampler state (expected kind 'pair', a and b)")
        names = (d.get("name_a"), d.get("name_b"))
        if names != self.names:
            raise ValueError(f"sampler state is for domains {names}, this pair has {self.names}")
        self.a.load_state_dict(d["a"])
        self.b.load_state_dict(d["b"])

    def __iter__(self) -> PairSampler:
        return self

    def __next__(self) -> tuple[tuple[Tensor, Tensor], tuple[Tensor | None, Tensor | None]]:
        return self.next()


def check_pair_fits(pair: PairSource, batch_size: int, n_samples: int) -> None:
    """``check_fits`` for each domain: a ``UserError`` when either holds too few images."""
    for source in (pair.a, pair.b):
        check_fits(source, batch_size, n_samples)


def _shared(cfgs: tuple[DataConfig, DataConfig], key: str, value: int | None) -> int:
    """The one ``size`` or ``channels`` of both domains: ``value``, else the configs' own value,
    which must then agree."""
    if value is None:
        a, b = (getattr(c, key) for c in cfgs)
        if a != b:
            raise UserError(
                f"domain A has data.{key}={a} but domain B data.{key}={b}; pass one {key}= to "
                "build_pair so that both domains get it"
            )
        value = a
    if key == "channels" and value not in (1, 3):
        raise UserError(f"channels must be 1 or 3, got {value}")
    if key == "size" and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise UserError(f"size must be a positive number of pixels, got {value!r}")
    return value


def build_pair(
    cfg_a: DataConfig,
    cfg_b: DataConfig,
    split: str = "train",
    size: int | None = None,
    channels: int | None = None,
) -> PairSource:
    """The ``split`` of domain A (``cfg_a``) and domain B (``cfg_b``), each built by its registered
    constructor with ``size`` and ``channels`` (None: the configs' own, which must agree)."""
    if split not in SPLITS:
        raise UserError(f"unknown data split {split!r}; use 'train' or 'test'")
    size = _shared((cfg_a, cfg_b), "size", size)
    channels = _shared((cfg_a, cfg_b), "channels", channels)
    sources = []
    for label, cfg in zip(DOMAINS, (cfg_a, cfg_b), strict=True):
        if cfg.name == NAME:
            raise UserError(
                f"domain {label} cannot itself be a {NAME}; name one data set, e.g. usps or mnist"
            )
        cfg = dataclasses.replace(cfg, size=size, channels=channels)
        try:
            sources.append(build_source(cfg, split))
        except UserError as e:
            raise UserError(f"domain {label} ({cfg.name}): {e}") from None
    return PairSource(sources[0], sources[1], split)


def build_pair_folder(
    path: str | Path, size: int, channels: int, split: str = "train"
) -> PairSource:
    """The CycleGAN layout: ``path/trainA`` and ``path/trainB`` (``testA``, ``testB`` for the
    test split), each a folder of PNG/JPEG images (class subfolders become labels)."""
    if split not in SPLITS:
        raise UserError(f"unknown data split {split!r}; use 'train' or 'test'")
    root = Path(path).expanduser()
    layout = "a CycleGAN folder holds trainA/, trainB/, testA/ and testB/ with each domain's images"
    if not root.is_dir():
        state = "is a file, not a folder" if root.exists() else "does not exist"
        raise UserError(f"pair folder {root} {state}; {layout}")
    folders = [root / f"{split}{label}" for label in DOMAINS]
    missing = [f"{f.name}/" for f in folders if not f.is_dir()]
    if missing:
        raise UserError(f"{root} has no {' or '.join(missing)} subfolder; {layout}")
    for label, folder in zip(DOMAINS, folders, strict=True):
        if not list_images(folder):
            raise UserError(
                f"{folder} holds no .png/.jpg/.jpeg images; put the images of domain {label} there"
            )
    cfgs = [DataConfig(name="folder", path=str(f), size=size, channels=channels) for f in folders]
    return build_pair(cfgs[0], cfgs[1], split, size=size, channels=channels)


@DATASETS.register(NAME)
def pair(cfg: DataConfig, split: str = "train") -> PairSource:
    """``data.name=pair``: the domains ``data.a`` and ``data.b``, or the CycleGAN folder
    ``data.path``, at the pair's ``data.size`` and ``data.channels``."""
    if cfg.path:
        return build_pair_folder(cfg.path, cfg.size, cfg.channels, split)
    if not (cfg.a and cfg.b):
        missing = "data.b.name" if cfg.a else "data.a.name"
        raise UserError(
            f"data.name=pair needs two domains: {missing} is not set (e.g. data.a.name=usps "
            "data.b.name=mnist), or set data.path to a folder with trainA/ and trainB/"
        )
    a, b = domain_config(cfg, "a"), domain_config(cfg, "b")
    return build_pair(a, b, split, size=cfg.size, channels=cfg.channels)
