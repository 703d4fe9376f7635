"""Stacked MNIST: three MNIST digits as the R, G and B channels of one image, 1,000 modes.

The data set of Metz et al. (2017, Unrolled GANs) and Srivastava et al. (2017, VEEGAN), used again
by Lin et al. (2018, PacGAN) to count how many of the 1,000 digit triples a generator produces.
Each split holds as many stacks as the MNIST split has images (60,000 train, 10,000 test); the
three digits of a stack are drawn independently and uniformly from that split by a fixed seed, so
every run sees the same stacks. They are kept as indices ``[N, 3]`` into the digits and gathered
per batch, so the set costs no more memory than MNIST itself. The label of a stack is
``100 * r + 10 * g + b`` (its digit triple, 1,000 classes), so conditional models can train on it.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from ..config import DataConfig
from ..errors import UserError
from ..registry import DATASETS
from .idx import mnist
from .images import ImageSource, to_float

NAME = "stacked-mnist"
NUM_MODES = 1000  # digit triples
_TRIPLE_SEED = {"train": 2017, "test": 2018}  # fixed: the stacks are part of the data set
_PLACE = torch.tensor([100, 10, 1])  # digit triple (r, g, b) -> label 100 r + 10 g + b


def triple_labels(digits: Tensor) -> Tensor:
    """Digit triples int ``[N, 3]`` (R, G, B) -> labels ``100 r + 10 g + b`` int64 ``[N]``."""
    if digits.dim() != 2 or digits.shape[1] != 3:
        raise ValueError(f"digits must be [N, 3], got {tuple(digits.shape)}")
    return (digits.long() * _PLACE.to(digits.device)).sum(1)  # [N]


class StackedSource(ImageSource):
    """Stacks of three digits of one MNIST split, held as indices into the digits.

    ``digits`` is the 1-channel MNIST split (uint8 ``[M, 1, S, S]``), ``triples`` int64
    ``[N, 3]`` the indices of each stack's R, G and B digits. Batches, samplers (seeded,
    resumable) and ``sample`` work exactly as for any ``ImageSource``.
    """

    def __init__(self, digits: ImageSource, triples: Tensor, split: str = "train"):
        if digits.shape[0] != 1 or digits.labels is None:
            raise ValueError(f"digits must be a labelled 1-channel source, got {digits}")
        if triples.dim() != 2 or triples.shape[1] != 3:
            raise ValueError(f"triples must be [N, 3], got {tuple(triples.shape)}")
        self.name, self.split = NAME, split
        self.digits = digits.images[:, 0]  # [M, S, S] uint8, a view
        self.digit_labels = digits.labels  # [M]
        self.triples = triples.long()  # [N, 3]
        self.labels = triple_labels(self.digit_labels[self.triples])  # [N]
        self.num_classes = NUM_MODES
        self.class_names = [f"{i:03d}" for i in range(NUM_MODES)]
        self.shape = (3, *self.digits.shape[1:])

    def __len__(self) -> int:
        return len(self.triples)

    @property
    def images(self) -> Tensor:
        """All stacks as uint8 ``[N, 3, S, S]``: a full copy (141 MB for the train split at 28
        px); ``batch`` gathers only what it needs."""
        return self.digits[self.triples]  # [N, 3, S, S]

    def batch(self, index: Tensor) -> tuple[Tensor, Tensor]:
        """The stacks at ``index`` ``[B]`` as float32 ``[B, 3, S, S]`` in [-1, 1], and labels."""
        return to_float(self.digits[self.triples[index]]), self.labels[index]  # [B, 3, S, S]


def draw_triples(n_digits: int, n_stacks: int, seed: int) -> Tensor:
    """``n_stacks`` independent, uniform triples of digit indices: int64 ``[n_stacks, 3]``."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(n_digits, (n_stacks, 3), generator=g)  # [n_stacks, 3]


@DATASETS.register(NAME)
def stacked_mnist(cfg: DataConfig, split: str = "train") -> StackedSource:
    if cfg.channels != 3:
        raise UserError(
            f"stacked-mnist images have 3 channels (one digit each), got data.channels="
            f"{cfg.channels}; set data.channels=3"
        )
    digits = mnist(dataclasses.replace(cfg, name="mnist", channels=1), split)  # [M, 1, S, S]
    triples = draw_triples(len(digits), len(digits), _TRIPLE_SEED[split])  # [M, 3]
    return StackedSource(digits, triples, split)
