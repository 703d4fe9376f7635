"""Small blocks shared by the network families: shape and label checks, conditioning, init.

Conditioning follows Mirza and Osindero (2014) (labels concatenated to the inputs of G and D) or,
for D, the projection discriminator of Miyato and Koyama (2018); the weight init is the one of
Radford et al. (2016); the autoencoder discriminator is the one of EBGAN (Zhao et al. 2017).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import UserError

_INT_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


# ---------------------------------------------------------------------------------------------
# checks


def _fmt(dims: Sequence[int | None]) -> str:
    return "[" + ", ".join("*" if d is None else str(d) for d in dims) + "]"


def check_shape(x: Tensor, expected: Sequence[int | None], name: str) -> None:
    """Raise ``ValueError`` unless ``x`` has ``expected`` shape (``None`` = any size)."""
    if not isinstance(x, Tensor):
        raise ValueError(
            f"{name} must be a tensor of shape {_fmt(expected)}, got {type(x).__name__}"
        )
    ok = x.dim() == len(expected) and all(
        e is None or e == s for e, s in zip(expected, x.shape, strict=True)
    )
    if not ok:
        raise ValueError(
            f"{name} must have shape {_fmt(expected)} (* = any size), got {_fmt(list(x.shape))}"
        )


def check_labels(y: Tensor | None, n: int, num_classes: int) -> Tensor | None:
    """Check the labels handed to a net of ``num_classes`` classes (0 = unconditional).

    Returns ``y`` as int64 ``[n]`` (or ``None``). Out-of-range values are left to ``one_hot`` and
    ``Embedding``, which reject them, because checking them here would sync with the GPU.
    """
    if num_classes == 0:
        if y is not None:
            raise ValueError(
                "got class labels y but this network is unconditional (num_classes=0); "
                "call it without y or build it with num_classes > 0"
            )
        return None
    if y is None:
        raise ValueError(
            f"this network is conditional on {num_classes} classes; pass labels y, "
            "an integer tensor of shape [N]"
        )
    check_shape(y, [n], "y")
    if y.dtype not in _INT_DTYPES:
        raise ValueError(f"y must hold integer class indices, got dtype {y.dtype}")
    return y.long()


def check_build_args(shape: Sequence[int], num_classes: int) -> tuple[int, ...]:
    """Validate the data shape and class count a net is built for; returns the shape as a tuple."""
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise UserError(f"data shape must be a tuple of integers, got {shape!r}") from None
    if len(shape) not in (1, 3) or min(shape) <= 0:
        raise UserError(
            f"data shape must be (D,) for toy data or (C, H, W) for images, got {shape}"
        )
    if num_classes < 0:
        raise UserError(f"num_classes must be 0 (unconditional) or positive, got {num_classes}")
    return shape


# ---------------------------------------------------------------------------------------------
# conditioning


class LabelInput(nn.Module):
    """Turns class labels into a vector concatenated to a net's input (Mirza and Osindero 2014).

    ``onehot``: ``one_hot(y)`` of size ``num_classes``; ``embed``: a learned ``nn.Embedding`` of
    size ``dim``. With ``num_classes == 0`` it adds nothing (``self.dim == 0``).
    """

    def __init__(self, mode: Literal["onehot", "embed"], num_classes: int, dim: int = 0):
        super().__init__()
        self.num_classes = num_classes
        self.embed: nn.Embedding | None = None
        if num_classes == 0:
            self.dim = 0
        elif mode == "onehot":
            self.dim = num_classes
        elif mode == "embed":
            self.dim = dim
            self.embed = nn.Embedding(num_classes, dim)  # N(0, 1), the scale of z
        else:
            raise UserError(f"model.cond must be onehot or embed, got {mode!r}")

    def forward(self, y: Tensor) -> Tensor:
        if self.embed is not None:
            return self.embed(y)  # [N, dim]
        return F.one_hot(y, self.num_classes).float()  # [N, num_classes]

    def join(self, x: Tensor, y: Tensor | None) -> Tensor:
        """``[N, F]`` -> ``[N, F + dim]``; ``y`` must already be checked."""
        if y is None or self.dim == 0:
            return x
        return torch.cat([x, self(y).to(x.dtype)], dim=1)  # [N, F + dim]

    def join_maps(self, x: Tensor, y: Tensor | None) -> Tensor:
        """``[N, C, H, W]`` -> ``[N, C + dim, H, W]``: one constant feature map per label unit."""
        if y is None or self.dim == 0:
            return x
        n, _, h, w = x.shape
        maps = self(y).to(x.dtype)[:, :, None, None].expand(n, self.dim, h, w)  # [N, dim, H, W]
        return torch.cat([x, maps], dim=1)  # [N, C + dim, H, W]


class ScoreHead(nn.Module):
    """D's last layer: ``linear(h)``, plus ``<embed(y), h>`` when projecting labels.

    The projection discriminator (Miyato and Koyama 2018) adds the inner product of a class
    embedding with the penultimate features ``h``; with ``num_classes == 0`` it is a plain linear
    layer. Returns raw scores ``[N]``: no sigmoid.
    """

    def __init__(self, in_dim: int, num_classes: int = 0):
        super().__init__()
        self.linear = nn.Linear(in_dim, 1)
        self.embed: nn.Embedding | None = None
        if num_classes > 0:
            self.embed = nn.Embedding(num_classes, in_dim)
            # nn.Linear's init scale: <embed(y), h> starts no larger than linear(h)
            bound = 1 / math.sqrt(in_dim)
            nn.init.uniform_(self.embed.weight, -bound, bound)

    def forward(self, h: Tensor, y: Tensor | None = None) -> Tensor:
        score = self.linear(h).squeeze(1)  # [N]
        if self.embed is not None:
            if y is None:
                raise ValueError("a projection head needs labels y")
            score = score + (self.embed(y).to(h.dtype) * h).sum(dim=1)  # [N]
        return score


# ---------------------------------------------------------------------------------------------
# blocks


class Maxout(nn.Module):
    """Maxout units (Goodfellow et al. 2013): ``[N, units * pieces] -> [N, units]``, the largest
    of each unit's ``pieces`` linear pieces (the pieces of a unit are adjacent)."""

    def __init__(self, pieces: int):
        super().__init__()
        self.pieces = pieces

    def forward(self, h: Tensor) -> Tensor:
        return h.unflatten(1, (-1, self.pieces)).amax(2)  # [N, units]

    def extra_repr(self) -> str:
        return f"pieces={self.pieces}"


def mlp_stack(
    in_dim: int,
    widths: Sequence[int],
    leak: float,
    dropout: float = 0.0,
    batchnorm: bool = False,
    maxout: int = 0,
) -> nn.Sequential:
    """``Linear (-> BatchNorm) -> LeakyReLU (-> Dropout)`` for each width; empty when ``widths``
    is empty. ``maxout=k`` replaces the linear layer and its activation by ``w`` maxout units of
    ``k`` pieces each."""
    layers: list[nn.Module] = []
    for w in widths:
        if maxout:
            layers += [nn.Linear(in_dim, w * maxout), Maxout(maxout)]
        else:
            layers.append(nn.Linear(in_dim, w))
            if batchnorm:
                layers.append(nn.BatchNorm1d(w))
            layers.append(nn.LeakyReLU(leak))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_dim = w
    return nn.Sequential(*layers)


def dcgan_init_(module: nn.Module) -> None:
    """Radford et al. (2016): conv/linear weights N(0, 0.02), batch norm weights N(1, 0.02),
    biases 0. Use as ``net.apply(dcgan_init_)``; embeddings keep their own init."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


# ---------------------------------------------------------------------------------------------
# the EBGAN discriminator


class AutoencoderD(nn.Module):
    """An energy-based D (Zhao et al. 2017): the energy of ``x`` is its reconstruction error.

    Subclasses set ``self.encoder`` (``x [N, *shape] -> code [N, code_dim]``), ``self.decoder``
    (the way back) and ``self.code_dim``. ``forward`` returns the *negated* energy, so that, as
    for every D, higher = more real. Unconditional only.
    """

    encoder: nn.Module
    decoder: nn.Module
    code_dim: int

    def __init__(self, shape: tuple[int, ...], num_classes: int = 0):
        super().__init__()
        if num_classes > 0:
            raise UserError(
                "model.d_output=autoencoder supports unconditional models only; "
                "set data.classes=false or model.d_output=linear"
            )
        self.shape = shape
        self.num_classes = 0

    def _check(self, x: Tensor, y: Tensor | None) -> None:
        check_shape(x, [None, *self.shape], "x")
        check_labels(y, x.shape[0], 0)

    def encode(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The code that EBGAN's pull-away term compares, ``[N, code_dim]``."""
        self._check(x, y)
        return self.encoder(x)  # [N, code_dim]

    def reconstruct(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        self._check(x, y)
        return self.decoder(self.encoder(x))  # [N, *shape]

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        rec = self.reconstruct(x, y)  # [N, *shape]
        return -(rec - x).pow(2).flatten(1).mean(dim=1)  # [N]: minus the energy


def init_normal(module: nn.Module, std: float = 0.02) -> nn.Module:
    """Draw every conv/linear weight of ``module`` (and its children) from N(0, std) and every
    normalization scale from N(1, std); zero the biases. Returns ``module``.

    The init of Radford et al. (2016) that the CycleGAN code uses by default; instance norms
    without affine parameters have nothing to draw."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return module


def check_positive(**values: int) -> None:
    """Raise ``UserError`` unless each named value is an int >= 1 (``n_blocks`` may be 0)."""
    for name, v in values.items():
        low = 0 if name in ("n_blocks", "n_down") else 1
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise UserError(f"{name} must be an integer >= {low}, got {v!r}")
