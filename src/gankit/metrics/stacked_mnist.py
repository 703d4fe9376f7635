"""Stacked MNIST mode count and reverse KL (Metz et al. 2017; Srivastava et al. 2017; Lin et al.
2018), exactly as PROTOCOLS.md states it.

A pretrained MNIST classifier (>= 99% test accuracy, ``metrics/classifier.py``) labels each channel
of a generated 3-channel image; the digit triple is the image's mode, one of 1,000. The protocol
draws 26,000 samples and reports the number of distinct modes and ``KL(p_gen || uniform over the
1,000 modes)`` in nats. ``stacked_mnist_modes`` takes whatever number of images it is given and
reports it; ``generator_modes`` samples the protocol's 26,000 from a generator.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..data.stacked import NUM_MODES, triple_labels
from ..errors import UserError
from ..registry import METRICS
from .classifier import DigitClassifier, predict
from .modes import reverse_kl_uniform

PROTOCOL = "Stacked MNIST: 3 channels classified by an MNIST CNN, modes of 1,000, KL to uniform"
PROTOCOL_N = 26_000  # samples the protocol draws


def _check_stacks(images: Tensor) -> None:
    if (
        not isinstance(images, Tensor)
        or images.dim() != 4
        or tuple(images.shape[1:]) != (3, 28, 28)
    ):
        got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise UserError(
            f"Stacked MNIST images must be [N, 3, 28, 28] (one digit per channel), got {got}; "
            "sample a model trained on data.name=stacked-mnist data.size=28"
        )
    if len(images) == 0:
        raise UserError("the Stacked MNIST mode count needs at least one image")


def stack_modes(images: Tensor, classifier: DigitClassifier, batch: int = 500) -> Tensor:
    """The mode ``100 r + 10 g + b`` of each image ``[N, 3, 28, 28]``: int64 ``[N]``."""
    _check_stacks(images)
    n = len(images)
    digits = predict(classifier, images.reshape(n * 3, 1, 28, 28), batch).argmax(1)  # [3N]
    return triple_labels(digits.view(n, 3))  # [N]


def modes_summary(modes: Tensor) -> dict[str, Any]:
    """The protocol's numbers for the modes ``[N]`` of N images."""
    counts = torch.bincount(modes, minlength=NUM_MODES)  # [1000]
    digits = torch.stack([modes // 100, modes // 10 % 10, modes % 10])  # [3, N]: R, G, B
    return {
        "modes": int((counts > 0).sum()),
        "kl": reverse_kl_uniform(counts),
        # how much of the KL is each channel's digit frequencies alone (not the protocol's)
        "channel_kl": [reverse_kl_uniform(torch.bincount(d, minlength=10)) for d in digits],
        "n": len(modes),
        "protocol": PROTOCOL,
    }


@METRICS.register("stacked_mnist_modes")
def stacked_mnist_modes(images: Tensor, classifier: DigitClassifier) -> dict[str, Any]:
    """Distinct digit triples and ``KL(p_gen || uniform over 1,000)`` of ``images``.

    ``images`` ``[N, 3, 28, 28]`` in [-1, 1]; ``classifier`` the MNIST classifier
    (``load_classifier("mnist")``). Returns ``modes`` (0..1000), ``kl`` (nats: about
    ``999 / (2 N)`` for a perfect generator, ``log 1000`` for one that repeats one triple),
    ``n`` (N; the protocol's is 26,000) and ``protocol``. ``channel_kl`` is a diagnostic beside
    the protocol: ``KL(p || uniform over 10)`` of the digits of each channel (R, G, B). The three
    add up to ``kl`` when the channels are independent, so their sum says how much of ``kl`` is a
    preference for some digits rather than missing or favoured combinations of them.
    """
    return modes_summary(stack_modes(images, classifier))


@torch.no_grad()
def generator_modes(
    generator: Any,  # gankit.api.Generator trained on stacked-mnist
    classifier: DigitClassifier,
    n: int = PROTOCOL_N,
    seed: int = 0,
    chunk: int = 2000,  # images generated and classified at a time (bounds memory)
) -> dict[str, Any]:
    """``stacked_mnist_modes`` of ``n`` samples of ``generator`` (labels drawn uniformly when it
    is conditional), generated ``chunk`` at a time with seeds drawn from ``seed``."""
    if n <= 0:
        raise UserError(f"the number of samples must be positive, got {n}")
    g = torch.Generator().manual_seed(seed)
    modes = []
    for i in range(0, n, chunk):
        chunk_seed = int(torch.randint(2**62, (1,), generator=g))
        modes.append(stack_modes(generator.sample(min(chunk, n - i), seed=chunk_seed), classifier))
    return modes_summary(torch.cat(modes))  # [n]
