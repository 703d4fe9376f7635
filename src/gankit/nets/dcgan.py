"""Convolutional G and D of DCGAN (Radford et al. 2016), for 28, 32 and 64 px images.

G projects z (a linear layer, the paper's "matrix multiplication") to a small map with the most
channels, 4x4 for 32 and 64 px or 7x7 for 28 px, then doubles the resolution with stride-2
transposed convolutions (kernel 4, padding 1) while halving the channels, and ends in tanh. D
mirrors it with stride-2 convolutions and LeakyReLU, flattens the last map and scores it with one
linear unit (no sigmoid: raw scores). No pooling, no hidden fully connected layers.

Channels with ``w = cfg.width`` (64 in the presets):

    64 px: G 8w@4 -> 4w@8 -> 2w@16 -> w@32 -> C@64      D C@64 -> w@32 -> 2w@16 -> 4w@8 -> 8w@4
    32 px: G 4w@4 -> 2w@8 -> w@16 -> C@32               D C@32 -> w@16 -> 2w@8 -> 4w@4
    28 px: G 4w@7 -> 2w@14 -> C@28                      D C@28 -> 2w@14 -> 4w@7

Batch norm (``cfg.batchnorm``) follows every layer but G's output and D's input; WGAN-GP
critics turn it off. D may add ``Dropout2d(cfg.dropout)`` after each block. Weights are drawn
as in the paper: N(0, 0.02), batch norm scales N(1, 0.02), biases 0.

``model.mbstd=G`` puts a minibatch standard-deviation map (Karras et al. 2018; the layer of
StyleGAN's D) before D's last convolution, as Karras et al. do before their last block. D takes
any number of input channels: a packed D (PacGAN, ``train.pac``) sees m images' channels at once.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from torch import Tensor, nn

from ..config import ModelConfig
from ..errors import UserError
from ..registry import NETS
from .layers import (
    AutoencoderD,
    LabelInput,
    ScoreHead,
    check_build_args,
    check_labels,
    check_shape,
    dcgan_init_,
)
from .style_layers import MinibatchStd

# image side -> (side of G's first map, channels of that map / width)
SIZES: dict[int, tuple[int, int]] = {28: (7, 4), 32: (4, 4), 64: (4, 8)}


def plan(
    cfg: ModelConfig, shape: tuple[int, ...], any_channels: bool = False
) -> tuple[int, list[int]]:
    """(side of G's first map, channels of G's maps from the first to the last hidden one);
    ``any_channels``: D's input may have any number of channels (packed images)."""
    channels_ok = shape[0] >= 1 if any_channels else shape[0] in (1, 3)
    if len(shape) != 3 or not channels_ok or shape[1] != shape[2] or shape[1] not in SIZES:
        raise UserError(
            f"model.net=dcgan supports square 28, 32 or 64 px images with 1 or 3 channels, "
            f"got data of shape {tuple(shape)}; set data.size to one of those or use model.net=mlp"
        )
    base, mult = SIZES[shape[1]]
    n_up = (shape[1] // base).bit_length() - 1  # stride-2 layers: 2 (28 px), 3 (32), 4 (64)
    return base, [cfg.width * mult // 2**i for i in range(n_up)]


def up_stack(chans: list[int], out_channels: int, batchnorm: bool) -> nn.Sequential:
    """Stride-2 transposed convs ``chans[0] -> ... -> out_channels``, each doubling H and W;
    BatchNorm + ReLU after all but the last, whose output is left linear."""
    layers: list[nn.Module] = []
    sizes = [*chans, out_channels]
    for i, (c_in, c_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        last = i == len(sizes) - 2
        layers.append(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=last or not batchnorm))
        if not last:
            layers += [nn.BatchNorm2d(c_out)] if batchnorm else []
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def down_stack(
    in_channels: int,
    chans: list[int],
    leak: float,
    batchnorm: bool,
    dropout: float,
    mbstd: int = 0,
) -> nn.Sequential:
    """Stride-2 convs ``in_channels -> chans[0] -> ...``, each halving H and W, then
    (BatchNorm, not on the first) LeakyReLU (Dropout2d); ``mbstd`` > 0 adds a minibatch-std
    map before the last conv."""
    layers: list[nn.Module] = []
    for i, c in enumerate(chans):
        bn = batchnorm and i > 0
        if mbstd and i == len(chans) - 1:
            layers.append(MinibatchStd(mbstd))  # [N, in_channels + 1, h, h]
            in_channels += 1
        layers.append(nn.Conv2d(in_channels, c, 4, 2, 1, bias=not bn))
        layers += [nn.BatchNorm2d(c)] if bn else []
        layers.append(nn.LeakyReLU(leak))
        layers += [nn.Dropout2d(dropout)] if dropout > 0 else []
        in_channels = c
    return nn.Sequential(*layers)


class DCGANGenerator(nn.Module):
    """``z [N, z_dim]`` (+ labels ``y [N]``) -> images ``[N, C, H, W]`` in [-1, 1]."""

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...], num_classes: int = 0):
        super().__init__()
        self.cfg = dataclasses.replace(cfg)
        self.shape = check_build_args(shape, num_classes)
        self.num_classes = num_classes
        self.z_dim = cfg.z_dim
        self.base, chans = plan(cfg, self.shape)
        self.label = LabelInput(cfg.cond, num_classes, cfg.z_dim)
        c0, b = chans[0], self.base
        self.project = nn.Linear(cfg.z_dim + self.label.dim, c0 * b * b, bias=not cfg.batchnorm)
        self.project_act = nn.Sequential(
            nn.BatchNorm2d(c0) if cfg.batchnorm else nn.Identity(), nn.ReLU()
        )
        self.up = up_stack(chans, self.shape[0], cfg.batchnorm)
        self.apply(dcgan_init_)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        check_shape(z, [None, self.z_dim], "z")
        y = check_labels(y, z.shape[0], self.num_classes)
        h = self.label.join(z, y)  # [N, z_dim + label_dim]
        h = self.project(h)  # [N, c0*b*b]
        h = self.project_act(h.view(h.shape[0], -1, self.base, self.base))  # [N, c0, b, b]
        return self.up(h).tanh()  # [N, C, H, W]


class DCGANDiscriminator(nn.Module):
    """Images ``[N, C, H, W]`` (+ labels ``y [N]``) -> raw scores ``[N]``, higher = more real.

    ``cfg.cond == "onehot"`` adds ``num_classes`` constant maps (``one_hot(y)``) to the image
    channels; ``cfg.cond == "embed"`` uses a projection head on the flattened last map.
    """

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...], num_classes: int = 0):
        super().__init__()
        self.cfg = dataclasses.replace(cfg)
        self.shape = check_build_args(shape, num_classes)
        self.num_classes = num_classes
        base, chans = plan(cfg, self.shape, any_channels=True)
        self.label = LabelInput("onehot", num_classes if cfg.cond == "onehot" else 0)
        c_in = self.shape[0] + self.label.dim
        self.body = down_stack(c_in, chans[::-1], cfg.leak, cfg.batchnorm, cfg.dropout, cfg.mbstd)
        self.head = ScoreHead(chans[0] * base * base, num_classes if cfg.cond == "embed" else 0)
        self.apply(dcgan_init_)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        check_shape(x, [None, *self.shape], "x")
        y = check_labels(y, x.shape[0], self.num_classes)
        h = self.label.join_maps(x, y)  # [N, C + label_dim, H, W]
        h = self.body(h).flatten(1)  # [N, c0*b*b]
        return self.head(h, y)  # [N]


class DCGANAutoencoderD(AutoencoderD):
    """EBGAN's D (Zhao et al. 2017) in DCGAN layers: D's conv stack encodes, G's transposed
    conv stack decodes (linear output). As in EBGAN the code is the encoder's last feature map,
    flattened: ``code_dim = c0*b*b`` (e.g. 8w*4*4 at 64 px)."""

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...], num_classes: int = 0):
        shape = check_build_args(shape, num_classes)
        super().__init__(shape, num_classes)
        self.cfg = dataclasses.replace(cfg)
        base, chans = plan(cfg, shape)
        self.code_dim = chans[0] * base * base
        down = down_stack(shape[0], chans[::-1], cfg.leak, cfg.batchnorm, cfg.dropout)
        self.encoder = nn.Sequential(
            down,  # [N, c0, b, b]
            nn.Flatten(1),  # [N, code_dim]
        )
        self.decoder = nn.Sequential(
            nn.Unflatten(1, (chans[0], base, base)),  # [N, c0, b, b]
            up_stack(chans, shape[0], cfg.batchnorm),  # [N, C, H, W]
        )
        self.apply(dcgan_init_)


@NETS.register("dcgan")
def build_dcgan(
    role: Literal["G", "D"], cfg: ModelConfig, shape: tuple[int, ...], num_classes: int = 0
) -> nn.Module:
    """The DCGAN family's G or D for one image's ``shape`` ``(C, H, W)``."""
    if role == "G":
        return DCGANGenerator(cfg, shape, num_classes)
    if role == "D":
        if cfg.d_output == "autoencoder":
            return DCGANAutoencoderD(cfg, shape, num_classes)
        return DCGANDiscriminator(cfg, shape, num_classes)
    raise ValueError(f"role must be 'G' or 'D', got {role!r}")
