"""Small MNIST / Fashion-MNIST / USPS and CIFAR-10 classifiers and the metrics they power.

The network is a LeNet-style CNN (LeCun et al. 1998) made cheap for a CPU: a stride-2 5x5 stem,
a stride-2 3x3 conv, one 3x3 conv at 7x7, batch norm (Ioffe and Szegedy 2015), max pooling and a
128-unit penultimate layer (the features). Trained with Adam and a one-cycle learning rate
(Smith and Topin 2019) and label smoothing (Szegedy et al. 2016), it reached 99.35-99.45% on
MNIST (3 epochs, random shifts of up to 2 px) and 91.1-91.4% on Fashion-MNIST (4 epochs) over seeds
0-2, in 56-102 s each on one thread of a busy 2-core machine. It is cached as safetensors in
``<gankit cache>/classifiers/<data>.safetensors`` and reused.

CIFAR-10 (32 px RGB, the JPEG tarballs of ``data/cifar10.py``) has its own network,
``CifarClassifier``: a ResNet-9-style net (He et al. 2016) at a quarter of the width of Page's
fast CIFAR-10 ResNet, trained with SGD (Nesterov momentum, weight decay 5e-4), the same one-cycle
schedule and label smoothing, random 4-px shifts (crops of the padded image) and horizontal
flips. The recipe runs 8 epochs: 83.0 % test accuracy in 554 s on a quiet 2-core CPU (3 epochs
gave 69.6 % in 210 s); its test accuracy is in ``info["test_accuracy"]`` and the README. It
reads ``[N, 3, S, S]``, resized to 32.

Input: square 1-channel images ``[N, 1, S, S]`` in [-1, 1] of any side S. The network reads
28x28; other sides (the 32-px StyleGAN and DCGAN presets) are resized to 28 inside
``DigitClassifier.features`` (``classifier_input``, the one place that does it), with the
antialiased bilinear interpolation the data loader resizes with (``data.images.resize_uint8``),
applied to the float images (no rounding to 8 bits). Every metric below inherits it;
``input_protocol`` is the sentence evaluations record.

Metrics (PROTOCOLS.md, "Conditional generation"), each returning a dict:
- ``class_coverage``: the entropy (nats) of the predicted-class histogram, log 10 at best; mode
  collapse at the class level lowers it.
- ``conditional_accuracy``: the classifier's accuracy on images a class-conditional generator made
  for a requested class, 1,000 per class.
- ``classifier_fid``: the Frechet distance (Heusel et al. 2017) of the classifier's features, a
  fast stand-in for FID to monitor training on a CPU (not comparable with Inception FID). Under
  several processes (``split``, ``metrics/split.py``) each extracts the features of its share of
  both image sets and rank 0 computes the distance of the gathered features.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cache import cache_dir
from ..errors import UserError
from ..files import atomic_path
from ..registry import METRICS
from .classifier_nets import (  # noqa: F401  (public here too)
    CIFAR_SHAPE,
    FEATURE_DIM,
    IMAGE_SHAPE,
    NETS,
    RANGE_SLACK,
    RESIZE,
    CifarClassifier,
    Classifier,
    DigitClassifier,
    check_images,
    classifier_input,
    input_protocol,
)
from .frechet import frechet_distance_features
from .split import Split

FORMAT = "gankit-classifier-1"  # bump when the network or the file layout changes
CIFAR_EPOCHS = 8  # 83.0 % test accuracy, about 9 minutes on a quiet 2-core CPU (docstring)


@dataclass(frozen=True)
class Recipe:
    """How one data set's classifier is trained (the figures are in the module docstring)."""

    epochs: int  # passes over the train split
    shift: int  # random translation of up to this many pixels (0 = off)
    lr: float = 5e-3  # peak of the one-cycle schedule
    batch_size: int = 128
    label_smoothing: float = 0.1
    net: str = "digits"  # "digits": DigitClassifier; "cifar": CifarClassifier
    flip: bool = False  # random horizontal flips
    optimizer: str = "adam"  # "adam", or "sgd" (Nesterov momentum 0.9)
    weight_decay: float = 0.0


RECIPES = {
    "mnist": Recipe(epochs=3, shift=2),
    "fashion-mnist": Recipe(epochs=4, shift=0),
    # USPS digits (16 px, resized to 28) for translation's class preservation: 7,291 training
    # images, so about as many steps as MNIST's 3 epochs
    "usps": Recipe(epochs=20, shift=2),
    # CIFAR-10 (32 px RGB): the small residual net, crops (4-px shifts) and flips, SGD
    "cifar10": Recipe(
        epochs=CIFAR_EPOCHS,
        shift=4,
        lr=0.2,
        batch_size=256,
        net="cifar",
        flip=True,
        optimizer="sgd",
        weight_decay=5e-4,
    ),
}
SUPPORTED = tuple(RECIPES)


def build_classifier(data: str, num_classes: int = 10) -> Classifier:
    """The untrained network of ``data``'s recipe."""
    return NETS[RECIPES[check_data(data)].net](num_classes)


def check_data(data: str) -> str:
    """``data`` if a classifier exists for it, else a ``UserError`` naming the supported ones."""
    if data not in RECIPES:
        raise UserError(
            f"no evaluation classifier for data {data!r}; choose one of: {', '.join(SUPPORTED)}"
        )
    return data


def _device(device: str | torch.device) -> torch.device:
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"device must be cpu, cuda, cuda:N or mps, got {device!r}") from None


# ---------------------------------------------------------------------------------------------
# training


def random_shift(x: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Translate each image of ``[B, C, H, W]`` by its own offset in -max..max px (fill -1)."""
    b, _, h, w = x.shape
    p = max_shift
    padded = F.pad(x, (p, p, p, p), value=-1.0)  # [B, C, H + 2p, W + 2p]
    dy, dx = torch.randint(0, 2 * p + 1, (2, b, 1), generator=generator)  # [B, 1] each
    rows = (dy + torch.arange(h)).to(x.device)  # [B, H]
    cols = (dx + torch.arange(w)).to(x.device)  # [B, W]
    n = torch.arange(b, device=x.device)[:, None, None]  # [B, 1, 1]
    out = padded.permute(0, 2, 3, 1)[n, rows[:, :, None], cols[:, None, :]]  # [B, H, W, C]
    return out.permute(0, 3, 1, 2)  # [B, C, H, W]


def random_flip(x: Tensor, generator: torch.Generator) -> Tensor:
    """Mirror each image of ``[B, C, H, W]`` left-right with probability 1/2."""
    flip = (torch.rand(len(x), generator=generator) < 0.5).to(x.device)  # [B]
    return torch.where(flip[:, None, None, None], x.flip(3), x)


@torch.no_grad()
def _batched(classifier: Classifier, fn, images: Tensor, batch: int) -> list[Tensor]:
    """``fn`` over ``images`` in batches on the classifier's device, in eval mode -> CPU float."""
    check_images(images, shape=classifier.image_shape)
    device = next(classifier.parameters()).device
    was_training = classifier.training
    classifier.eval()
    out = [fn(images[i : i + batch].to(device)).float().cpu() for i in range(0, len(images), batch)]
    classifier.train(was_training)
    return out


def predict(classifier: Classifier, images: Tensor, batch: int = 500) -> Tensor:
    """Logits ``[N, num_classes]`` (float32, CPU) of ``images`` ``[N, 1, S, S]``, in batches."""
    out = _batched(classifier, classifier, images, batch)
    return torch.cat(out) if out else torch.empty(0, classifier.num_classes)  # [N, K]


def extract_features(classifier: Classifier, images: Tensor, batch: int = 500) -> Tensor:
    """Penultimate features ``[N, feature_dim]`` (float32, CPU) of ``images``, in batches."""
    return torch.cat(_batched(classifier, classifier.features, images, batch))  # [N, feature_dim]


def _source(data: str, root: str | None, split: str, download: bool):
    from ..config import DataConfig  # data loading is only needed to train or to test
    from ..data import build_source

    c, _, side = NETS[RECIPES[data].net].image_shape  # the images the network reads
    cfg = DataConfig(name=data, root=root, download=download, channels=c, size=side)
    return build_source(cfg, split)


def train_classifier(
    data: str = "mnist",
    root: str | None = None,  # data root; None = $GANKIT_DATA or ~/.cache/gankit/data
    *,
    epochs: int | None = None,  # None = the recipe's (mnist 3, fashion-mnist 4, usps 20, cifar10 8)
    device: str | torch.device = "cpu",
    seed: int = 0,  # weights, shuffling and augmentation; the global RNG is left untouched
    download: bool = True,  # fetch missing data files when online
    quiet: bool = False,  # no per-epoch lines
) -> tuple[Classifier, dict[str, Any]]:
    """Train the evaluation classifier of ``data``; returns it (eval mode) and what it measured.

    ``info`` holds ``data``, ``test_accuracy`` (0..1, on the whole test split), ``epochs``,
    ``seed``, ``seconds``, ``format`` and ``torch``. Nothing is saved: see ``save_classifier``.
    """
    recipe = RECIPES[check_data(data)]
    epochs = recipe.epochs if epochs is None else epochs
    if epochs <= 0:
        raise UserError(f"epochs must be positive, got {epochs}")
    dev = _device(device)
    train, test = _source(data, root, "train", download), _source(data, root, "test", download)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_classifier(data, train.num_classes)
    model = model.to(dev, memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(seed)
    steps_per_epoch = len(train) // recipe.batch_size
    if recipe.optimizer == "sgd":
        opt = torch.optim.SGD(
            model.parameters(),
            lr=recipe.lr,
            momentum=0.9,
            nesterov=True,
            weight_decay=recipe.weight_decay,
        )
    else:
        opt = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=recipe.lr, total_steps=epochs * steps_per_epoch, pct_start=0.2
    )
    start, cpu_start = time.perf_counter(), time.process_time()
    model.train()
    for epoch in range(epochs):
        perm = torch.randperm(len(train), generator=g)  # [N]
        total_loss = torch.zeros((), device=dev)
        for k in range(steps_per_epoch):
            x, y = train.batch(perm[k * recipe.batch_size : (k + 1) * recipe.batch_size])
            if recipe.shift:
                x = random_shift(x, recipe.shift, g)  # [B, C, S, S]
            if recipe.flip:
                x = random_flip(x, g)
            logits = model(x.to(dev))  # [B, 10]
            loss = F.cross_entropy(logits, y.to(dev), label_smoothing=recipe.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total_loss += loss.detach()  # no per-step sync with the GPU
        if not quiet:
            print(
                f"{data} classifier: epoch {epoch + 1}/{epochs}, loss "
                f"{float(total_loss) / steps_per_epoch:.4f} ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start  # all threads
    model.eval()
    x_test, y_test = test.batch(torch.arange(len(test)))  # [N, C, S, S], [N]
    accuracy = float((predict(model, x_test).argmax(1) == y_test).double().mean())
    model.info = {
        "format": FORMAT,
        "data": data,
        "test_accuracy": accuracy,
        "epochs": epochs,
        "seed": seed,
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu_seconds, 1),
        "torch": torch.__version__,
    }
    return model, dict(model.info)


# ---------------------------------------------------------------------------------------------
# the cache


def classifier_path(data: str) -> Path:
    """Where the classifier of ``data`` is cached: ``<cache>/classifiers/<data>.safetensors``."""
    return cache_dir("classifiers", f"{check_data(data)}.safetensors")


def save_classifier(model: Classifier, data: str, info: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (and ``info``, as metadata) to the cache atomically; returns the path."""
    from safetensors.torch import save_file

    path = classifier_path(data)
    info = {**(info if info is not None else model.info), "format": FORMAT, "data": data}
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"format": FORMAT, "info": json.dumps(info)})
    return path


def cached_info(data: str) -> dict[str, Any] | None:
    """The metadata of the cached classifier of ``data``; None when missing or of an old format."""
    from safetensors import SafetensorError, safe_open

    path = classifier_path(data)
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            info = json.loads((f.metadata() or {}).get("info", "{}"))
    except (SafetensorError, OSError, ValueError):
        return None
    return info if info.get("format") == FORMAT and info.get("data") == data else None


def load_classifier(
    data: str = "mnist",
    root: str | None = None,  # data root, used only to train
    *,
    train_if_missing: bool = False,  # train and cache it when missing (cifar10: 15 CPU minutes)
    device: str | torch.device = "cpu",
    quiet: bool = False,  # no per-epoch lines while training
) -> Classifier:
    """The cached classifier of ``data`` in eval mode; its ``info`` holds the test accuracy."""
    from safetensors.torch import load_file

    path, dev = classifier_path(data), _device(device)
    info = cached_info(data)
    if info is None:
        if not train_if_missing:
            what = "is missing" if not path.exists() else "is unreadable or from an older gankit"
            raise UserError(
                f"the {data} classifier {path} {what}; run `gankit classifier train --data {data}"
                f"{' --force' if path.exists() else ''}` first"
            )
        model, info = train_classifier(data, root, device=dev, quiet=quiet)
        save_classifier(model, data, info)
        return model.eval()
    model = build_classifier(data)
    try:
        model.load_state_dict(load_file(str(path)))
    except (RuntimeError, OSError) as e:  # a damaged file whose metadata still reads
        reason = " ".join(str(e).split())[:120]
        raise UserError(
            f"cannot load the {data} classifier {path} ({reason}); run "
            f"`gankit classifier train --data {data} --force`"
        ) from None
    model.info = info
    return model.to(dev, memory_format=torch.channels_last).eval()


# ---------------------------------------------------------------------------------------------
# metrics


def _histogram(logits_or_labels: Tensor, num_classes: int) -> Tensor:
    """Counts ``[K]`` of the predicted classes of logits ``[N, K]`` or labels ``[N]``."""
    x = logits_or_labels
    if x.dim() == 2 and x.is_floating_point() and x.shape[1] == num_classes:
        labels = x.argmax(1)  # [N]
    elif x.dim() == 1 and not x.is_floating_point():
        labels = x.long()
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"labels must be in 0..{num_classes - 1}")
    else:
        raise ValueError(
            f"want logits [N, {num_classes}] or integer labels [N], got {x.dtype} {tuple(x.shape)}"
        )
    if len(labels) == 0:
        raise ValueError("class coverage needs at least one sample")
    return torch.bincount(labels.cpu(), minlength=num_classes)  # [K]


@METRICS.register("class_coverage")
def class_coverage(logits_or_labels: Tensor, num_classes: int = 10) -> dict[str, Any]:
    """Entropy (nats) of the predicted-class histogram of unconditional samples.

    Returns ``class_entropy`` (log K when every class is equally frequent, 0 when one class
    takes all), ``class_entropy_max`` (log K), ``class_histogram`` (the K fractions) and ``n``.
    """
    counts = _histogram(logits_or_labels, num_classes).double()  # [K]
    p = counts / counts.sum()  # [K]
    nz = p[p > 0]
    return {
        "class_entropy": float(-(nz * nz.log()).sum()) + 0.0,  # + 0.0: no "-0.0" for one class
        "class_entropy_max": math.log(num_classes),
        "class_histogram": p.tolist(),
        "n": int(counts.sum()),
    }


@METRICS.register("conditional_accuracy")
def conditional_accuracy(
    generator: Any,  # gankit.api.Generator of a class-conditional model
    classifier: Classifier,
    n_per_class: int = 1000,  # the protocol's 1,000 per class (10,000 for MNIST)
    seed: int = 0,  # class c is sampled with seed + c
) -> dict[str, Any]:
    """The classifier's accuracy on images generated for each requested class.

    Returns ``conditional_accuracy`` (the mean over classes, 0..1), ``per_class_accuracy``
    (K values) and ``n_per_class``.
    """
    k = int(getattr(generator, "num_classes", 0))
    if k == 0:
        raise UserError(
            "conditional accuracy needs a class-conditional generator and this one is "
            "unconditional; use the coverage metric for it, or train with data.classes=true"
        )
    if k != classifier.num_classes:
        raise UserError(
            f"the generator has {k} classes and the classifier {classifier.num_classes}; "
            "evaluate a model trained on the classifier's data set"
        )
    if n_per_class <= 0:
        raise UserError(f"n_per_class must be positive, got {n_per_class}")
    per_class = []
    for c in range(k):
        x = generator.sample(n_per_class, seed=seed + c, labels=c)  # [n, 1, S, S]
        check_images(x, "generated images", shape=classifier.image_shape)
        per_class.append(float((predict(classifier, x).argmax(1) == c).double().mean()))
    return {
        "conditional_accuracy": sum(per_class) / k,
        "per_class_accuracy": per_class,
        "n_per_class": n_per_class,
    }


@METRICS.register("classifier_fid")
def classifier_fid(
    fake: Tensor,  # [N, 1, S, S] in [-1, 1]; this rank's share under a split
    real: Tensor,  # [M, 1, S, S] in [-1, 1]; this rank's share under a split
    classifier: Classifier,
    split: Split | None = None,  # several processes (metrics/split.py); None: one
) -> dict[str, Any] | None:
    """Frechet distance of the classifier's 128-d features of ``fake`` and ``real`` images.

    Both ``[N, 1, S, S]`` in [-1, 1] (resized to 28), N >= 2. A cheap training monitor; its
    values are on their own scale, not comparable with Inception FID. Returns
    ``classifier_fid``, ``n_fake``, ``n_real``. With ``split`` every rank passes its shares of
    both sets; rank 0 returns the result for the gathered features, the other ranks None.
    """
    check_images(fake, "fake images", shape=classifier.image_shape)
    check_images(real, "real images", shape=classifier.image_shape)
    n_fake, n_real = len(fake), len(real)
    if split is not None:
        n_fake, n_real = split.total(n_fake), split.total(n_real)
    if n_fake < 2 or n_real < 2:
        raise UserError(f"classifier FID needs at least 2 images per side, got {n_fake}, {n_real}")
    f_fake = extract_features(classifier, fake)  # [N, F]
    f_real = extract_features(classifier, real)  # [M, F]
    if split is not None:
        f_fake, f_real = split.gather(f_fake), split.gather(f_real)  # every rank's, rank order
        if not split.main:
            return None
    return {
        "classifier_fid": frechet_distance_features(f_fake, f_real),
        "n_fake": n_fake,
        "n_real": n_real,
    }
