"""Does G copy its training images? A nearest-neighbour test in pixel space.

For each generated sample, the L2 distance to the nearest training image (the run's own images:
its ``data.limit`` subset when it has one) and to the nearest of as many held-out test images. A
generator that has learned the distribution is as near the one set as the other: the median ratio
``d_train / d_test`` is about 1 and about half the samples are nearer a training image. One that
reproduces its training images scores well below 1, and nearly every sample is nearer a training
image. Both sets have the same size, so neither is nearer only because it is larger.

This is the check that a small data set invites (D memorises a few thousand images, and G may
follow it), not a quality score: a G that draws blurry averages also scores about 1. Pixel
distance finds copies and near copies; it does not find a shifted or recoloured copy.
"""

from __future__ import annotations

from torch import Tensor

from ..registry import METRICS
from .distances import nearest_distance


@METRICS.register("memorisation")
def memorisation(fake: Tensor, train: Tensor, test: Tensor) -> dict[str, float]:
    """Nearest-neighbour distances of generated ``fake`` ``[n, ...]`` to ``train`` and ``test``
    images ``[m, ...]`` (the same m; any shape, flattened; values as the generator makes them).

    Returns ``memorisation_ratio`` (the median over samples of d_train / d_test), ``nearer_train``
    (the share of samples with d_train < d_test) and the medians ``nn_dist_train`` and
    ``nn_dist_test``.
    """
    if len(train) != len(test):
        raise ValueError(f"train and test must be the same size, got {len(train)} and {len(test)}")
    fake, train, test = fake.flatten(1), train.flatten(1), test.flatten(1)
    d_train, d_test = nearest_distance(fake, train), nearest_distance(fake, test)  # [n] each
    return {
        "memorisation_ratio": float((d_train / d_test.clamp_min(1e-12)).median()),
        "nearer_train": float((d_train < d_test).float().mean()),
        "nn_dist_train": float(d_train.median()),
        "nn_dist_test": float(d_test.median()),
    }
