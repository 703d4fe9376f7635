"""The evaluation classifiers' networks and their input: a LeNet-style CNN for 28 px digits and
garments (LeCun et al. 1998) and a quarter-width ResNet-9-style net for 32 px CIFAR-10 (He et al.
2016), with the one place where images of another side are resized to the network's. Training,
caching and the metrics built on them are in ``classifier.py``, which re-exports these names.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import UserError

FEATURE_DIM = 128
IMAGE_SHAPE = (1, 28, 28)  # what the network reads; other square sides are resized to it
CIFAR_SHAPE = (3, 32, 32)  # what the CIFAR-10 network reads
RESIZE = "antialiased bilinear (F.interpolate, align_corners=False), as the data loader resizes"
RANGE_SLACK = 1e-3  # images may overshoot [-1, 1] by this much (round-off), no more


class DigitClassifier(nn.Module):
    """Images ``[N, 1, S, S]`` in [-1, 1] (resized to 28 when S != 28) -> logits ``[N, K]``."""

    image_shape = IMAGE_SHAPE  # what the network reads

    def __init__(self, num_classes: int = 10, feature_dim: int = FEATURE_DIM):
        super().__init__()
        self.num_classes, self.feature_dim = num_classes, feature_dim
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 5, 2, 2, bias=False),  # [N, 16, 14, 14]
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, 2, 1, bias=False),  # [N, 32, 7, 7]
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, 1, 1, bias=False),  # [N, 64, 7, 7]
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(2),  # [N, 64, 3, 3]
            nn.Flatten(1),  # [N, 576]
            nn.Linear(64 * 3 * 3, feature_dim),  # [N, feature_dim]
            nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)
        self.info: dict[str, Any] = {}  # what it was trained with (set on training and loading)

    def features(self, x: Tensor) -> Tensor:
        """The penultimate layer: ``[N, 1, S, S]`` -> ``[N, feature_dim]`` (after ReLU)."""
        x = classifier_input(x)  # [N, 1, 28, 28]; the metrics check the range once per call
        # channels-last makes the CPU convolutions about 20% faster
        return self.body(x.contiguous(memory_format=torch.channels_last))  # [N, feature_dim]

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # [N, num_classes]


def _conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()
    )


class _Residual(nn.Module):
    """``x + f(x)`` with two 3x3 conv-BN-ReLU layers of ``c`` channels."""

    def __init__(self, c: int):
        super().__init__()
        self.f = nn.Sequential(_conv_bn(c, c), _conv_bn(c, c))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.f(x)


class CifarClassifier(nn.Module):
    """Images ``[N, 3, S, S]`` in [-1, 1] (resized to 32 when S != 32) -> logits ``[N, K]``.

    A ResNet-9-style net (He et al. 2016; the layout of Page's fast CIFAR-10 training) at a
    quarter of its width, for a CPU: conv-BN-ReLU layers of 16, 32, 64, 128 channels with max
    pooling after the 2nd, 3rd and 4th, a residual pair after the 2nd and 4th, global max pooling
    and a 128-unit penultimate layer (the features).
    """

    image_shape = CIFAR_SHAPE  # what the network reads

    def __init__(self, num_classes: int = 10, feature_dim: int = FEATURE_DIM, width: int = 16):
        super().__init__()
        self.num_classes, self.feature_dim = num_classes, feature_dim
        w = width
        self.body = nn.Sequential(
            _conv_bn(3, w),  # [N, w, 32, 32]
            _conv_bn(w, 2 * w),
            nn.MaxPool2d(2),  # [N, 2w, 16, 16]
            _Residual(2 * w),
            _conv_bn(2 * w, 4 * w),
            nn.MaxPool2d(2),  # [N, 4w, 8, 8]
            _conv_bn(4 * w, 8 * w),
            nn.MaxPool2d(2),  # [N, 8w, 4, 4]
            _Residual(8 * w),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(1),  # [N, 8w]
            nn.Linear(8 * w, feature_dim),  # [N, feature_dim]
            nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)
        self.info: dict[str, Any] = {}  # what it was trained with (set on training and loading)

    def features(self, x: Tensor) -> Tensor:
        """The penultimate layer: ``[N, 3, S, S]`` -> ``[N, feature_dim]`` (after ReLU)."""
        x = classifier_input(x, CIFAR_SHAPE)  # [N, 3, 32, 32]
        return self.body(x.contiguous(memory_format=torch.channels_last))  # [N, feature_dim]

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # [N, num_classes]


Classifier = DigitClassifier | CifarClassifier
NETS = {"digits": DigitClassifier, "cifar": CifarClassifier}


def check_images(
    x: Tensor,
    name: str = "images",
    check_range: bool = True,
    shape: tuple[int, int, int] = IMAGE_SHAPE,  # the network's input (``image_shape``)
) -> None:
    """A ``UserError`` unless ``x`` is float ``[N, C, S, S]`` in [-1, 1] with the channels C of
    ``shape`` (the classifier's input, any side S); ``check_range=False`` skips the range, which
    costs a pass and a GPU sync."""
    c = shape[0]
    if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != c or x.shape[2] != x.shape[3]:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        if c == 1:
            raise UserError(
                f"{name} must be square 1-channel images for the MNIST classifier ([N, 1, 28, 28]"
                f", or [N, 1, S, S] resized to 28), got {got}; sample a model trained with "
                "data.channels=1 (Stacked MNIST: use stacked_mnist_modes)"
            )
        side = shape[-1]
        raise UserError(
            f"{name} must be square {c}-channel images for the CIFAR-10 classifier ([N, {c}, "
            f"{side}, {side}], or [N, {c}, S, S] resized to {side}), got {got}; sample a model "
            f"trained with data.channels={c}"
        )
    if not x.is_floating_point():
        raise UserError(f"{name} must be float images in [-1, 1], got dtype {x.dtype}")
    if (
        check_range
        and x.numel()
        and not (x.min() >= -1 - RANGE_SLACK and x.max() <= 1 + RANGE_SLACK)
    ):
        raise UserError(
            f"{name} must lie in [-1, 1], got values in {float(x.min()):.3g}..{float(x.max()):.3g}"
            "; convert 0..255 pixels with x / 127.5 - 1 (NaN: the generator diverged)"
        )


def classifier_input(x: Tensor, shape: tuple[int, int, int] = IMAGE_SHAPE) -> Tensor:
    """Checked images ``[N, C, S, S]`` -> ``[N, *shape]``: the one place where images of another
    side are resized to the network's side (28 px; CIFAR-10: 32), with ``RESIZE``
    (differentiable)."""
    check_images(x, check_range=False, shape=shape)
    if x.shape[-1] == shape[-1]:
        return x
    size = shape[1:]
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)


def input_protocol(shape: tuple[int, ...], net_shape: tuple[int, ...] = IMAGE_SHAPE) -> str:
    """How images of ``shape`` ``(C, S, S)`` reach a classifier that reads ``net_shape``, for a
    metric's protocol."""
    side = "x".join(map(str, shape))
    if tuple(shape) == tuple(net_shape):
        return f"{side} as is"
    return f"{side} resized to {'x'.join(map(str, net_shape))}, {RESIZE}"
