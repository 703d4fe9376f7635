"""A StyleGAN2 generator and its residual discriminator (Karras et al. 2019, "A style-based
generator architecture for GANs"; Karras et al. 2020, "Analyzing and improving the image quality
of StyleGAN"), small enough for a CPU and free of custom CUDA ops.

G = synthesis(mapping(z, y)):

- **Mapping** ``z [N, z_dim] -> w [N, w_dim]``: z divided by its root mean square, ``y`` (if
  conditional) one-hot through a learned linear embedding, also normalised, and concatenated;
  then ``mapping_layers`` equalized-lr linear layers with lrelu and a learning-rate multiplier of
  0.01. The buffer ``w_avg`` follows the batches' mean w (decay 0.995) while training: the
  centre that truncation in W pulls towards, ``w' = w_avg + psi (w - w_avg)``.
- **Synthesis** ``ws [N, num_ws, w_dim] -> x [N, C, R, R]``: a learned 4x4 constant, then per
  resolution up to R (16, 32 or 64) two modulated 3x3 convs (the first after [1, 3, 3, 1]
  up-sampling) each with its own style (an affine layer of w, bias 1) and per-pixel noise of
  learned strength (init 0), and a toRGB per resolution whose outputs are up-sampled and summed
  (the skip architecture). Index ``i`` of ``ws`` drives the layers of resolution
  ``4 * 2 ** (i // 2)``: ``num_ws = 2 log2(R / 4) + 2``. Channels at resolution r:
  ``min(channel_base // r, channel_max)``. The summed RGB ends in tanh, gankit's image contract
  (the reference leaves it linear and clamps when saving).
- **Noise**: ``noise="random"`` draws fresh per-pixel noise (training), ``"const"`` uses one fixed
  map per layer stored with the net (sampling: a seed gives one image), ``"none"`` leaves it out.

D: fromRGB (1x1), one residual block per resolution down to 8 (3x3 conv, filtered
down-sampling, 3x3 conv; a filtered 1x1 skip; sum times sqrt(1/2)), then at 4x4 a minibatch
standard-deviation map, a 3x3 conv, a linear layer and the score. A conditional D projects: its
score is ``<h, embed(y)> / sqrt(dim)`` (Miyato and Koyama 2018, as StyleGAN2-ADA does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig, build_options
from ..errors import UserError
from ..registry import NETS
from .layers import check_build_args, check_labels, check_shape
from .style_layers import (
    EqualConv2d,
    EqualLinear,
    StyleConv,
    ToRGB,
    downsample2d,
    lrelu,
    minibatch_std,
    upsample2d,
)

RESOLUTIONS = (16, 32, 64)
NOISE_MODES = ("random", "const", "none")


@dataclass
class StyleGANOptions:
    """``model.options.*`` of ``model.net=stylegan`` (the paper's values in brackets)."""

    w_dim: int = 128  # size of w (512)
    mapping_layers: int = 2  # linear layers of the mapping network (8; 2 in ADA's small configs)
    channel_base: int = 2048  # channels at resolution r: min(channel_base // r, channel_max)
    channel_max: int = 128  # (32768 and 512)
    mapping_lr_mul: float = 0.01  # learning-rate multiplier of the mapping network
    w_avg_beta: float = 0.995  # decay of the running mean of w
    mbstd_group: int = 4  # samples per minibatch standard-deviation group in D

    def __post_init__(self) -> None:
        for key in ("w_dim", "mapping_layers", "channel_base", "channel_max", "mbstd_group"):
            v = getattr(self, key)
            if v < 1:
                raise UserError(f"model.options.{key} must be at least 1, got {v}")
        if not 0 < self.mapping_lr_mul <= 1:
            raise UserError(
                f"model.options.mapping_lr_mul must be in (0, 1], got {self.mapping_lr_mul}"
            )
        if not 0 <= self.w_avg_beta < 1:
            raise UserError(f"model.options.w_avg_beta must be in [0, 1), got {self.w_avg_beta}")


def options(cfg: ModelConfig) -> StyleGANOptions:
    return build_options(StyleGANOptions, cfg.options, "model.options.", "model.net=stylegan")


def check_config(cfg: ModelConfig, shape: tuple[int, ...]) -> int:
    """The image side, after refusing what this family cannot build; one sentence each."""
    if len(shape) != 3 or shape[1] != shape[2] or shape[1] not in RESOLUTIONS:
        got = "x".join(str(s) for s in shape[1:]) if len(shape) == 3 else f"{shape[0]}-d points"
        raise UserError(
            f"model.net=stylegan needs square images whose side is a power of two from 16 to 64, "
            f"got {got}; set data.size to 16, 32 or 64"
        )
    for key, bad, fix in (
        ("batchnorm", cfg.batchnorm, "model.batchnorm=false"),
        ("dropout", cfg.dropout > 0, "model.dropout=0"),
        ("d_output", cfg.d_output != "linear", "model.d_output=linear"),
        ("spectral_norm", cfg.spectral_norm, "model.spectral_norm=false (R1 regularises its D)"),
        ("mbstd", cfg.mbstd > 0, "model.mbstd=0 (its D has one: model.options.mbstd_group)"),
    ):
        if bad:
            raise UserError(f"model.net=stylegan has no {key} option; set {fix}")
    return shape[1]


def channels(opts: StyleGANOptions, res: int) -> int:
    return min(opts.channel_base // res, opts.channel_max)


def normalize_2nd_moment(x: Tensor) -> Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()


class MappingNetwork(nn.Module):
    """``z [N, z_dim]`` (+ ``y [N]``) -> ``w [N, w_dim]``; updates ``w_avg`` when asked."""

    def __init__(self, z_dim: int, num_classes: int, opts: StyleGANOptions):
        super().__init__()
        self.num_classes, self.beta = num_classes, opts.w_avg_beta
        self.embed = EqualLinear(num_classes, opts.w_dim) if num_classes else None
        dims = [z_dim + (opts.w_dim if num_classes else 0)] + [opts.w_dim] * opts.mapping_layers
        self.fcs = nn.ModuleList(
            EqualLinear(a, b, lr_mul=opts.mapping_lr_mul)
            for a, b in zip(dims[:-1], dims[1:], strict=True)
        )
        self.register_buffer("w_avg", torch.zeros(opts.w_dim))

    def forward(self, z: Tensor, y: Tensor | None, update_w_avg: bool = False) -> Tensor:
        x = normalize_2nd_moment(z.float())  # [N, z_dim]
        if self.embed is not None:
            e = self.embed(F.one_hot(y, self.num_classes).float())  # [N, w_dim]
            x = torch.cat([x, normalize_2nd_moment(e)], dim=1)  # [N, z_dim + w_dim]
        for fc in self.fcs:
            x = lrelu(fc(x))  # [N, w_dim]
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().float().mean(dim=0).lerp(self.w_avg, self.beta))
        return x


class SynthesisNetwork(nn.Module):
    """``ws [N, num_ws, w_dim]`` -> images ``[N, C, R, R]`` in [-1, 1]."""

    def __init__(self, res: int, image_channels: int, opts: StyleGANOptions):
        super().__init__()
        self.res, self.w_dim = res, opts.w_dim
        self.sides = [2**i for i in range(2, int(math.log2(res)) + 1)]  # 4, 8, ..., R
        ch = {r: channels(opts, r) for r in self.sides}
        self.const = nn.Parameter(torch.randn(ch[4], 4, 4))
        convs, rgbs = [StyleConv(ch[4], ch[4], opts.w_dim, 4, up=False)], []
        rgbs.append(ToRGB(ch[4], image_channels, opts.w_dim))
        for r in self.sides[1:]:
            convs.append(StyleConv(ch[r // 2], ch[r], opts.w_dim, r, up=True))
            convs.append(StyleConv(ch[r], ch[r], opts.w_dim, r, up=False))
            rgbs.append(ToRGB(ch[r], image_channels, opts.w_dim))
        self.convs, self.rgbs = nn.ModuleList(convs), nn.ModuleList(rgbs)
        self.num_ws = len(convs) + 1

    def ws_side(self, i: int) -> int:
        """The resolution that index ``i`` of ``ws`` drives."""
        return 4 * 2 ** (i // 2)

    def forward(
        self, ws: Tensor, noise: str = "const", generator: torch.Generator | None = None
    ) -> Tensor:
        if noise not in NOISE_MODES:
            raise ValueError(f"noise must be one of {NOISE_MODES}, got {noise!r}")
        if ws.dim() == 2:
            ws = ws[:, None, :].expand(-1, self.num_ws, -1)  # [N, num_ws, w_dim]
        check_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        n = ws.shape[0]
        x = self.const[None].expand(n, -1, -1, -1).to(ws.dtype)  # [N, C4, 4, 4]
        x = self.convs[0](x, ws[:, 0], noise, generator)
        img = self.rgbs[0](x, ws[:, 1])  # [N, C, 4, 4]
        for b in range(1, len(self.sides)):
            x = self.convs[2 * b - 1](x, ws[:, 2 * b - 1], noise, generator)  # [N, Cr, r, r]
            x = self.convs[2 * b](x, ws[:, 2 * b], noise, generator)
            img = upsample2d(img) + self.rgbs[b](x, ws[:, 2 * b + 1])  # [N, C, r, r]
        return img.tanh()  # [N, C, R, R]


class StyleGenerator(nn.Module):
    """``G(z, y)``: ``z [N, z_dim]`` (+ labels ``y [N]``) -> images ``[N, C, R, R]``.

    ``mapping``, ``truncate`` and ``synthesis`` are the steps, for control in W."""

    has_mapping = True
    compile_methods = ("mapping", "synthesis")  # what training calls, for train.compile

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...], num_classes: int = 0):
        super().__init__()
        self.shape = check_build_args(shape, num_classes)
        res = check_config(cfg, self.shape)
        self.opts = options(cfg)
        self.num_classes, self.z_dim, self.w_dim = num_classes, cfg.z_dim, self.opts.w_dim
        self.mapping_net = MappingNetwork(cfg.z_dim, num_classes, self.opts)
        self.synthesis = SynthesisNetwork(res, self.shape[0], self.opts)
        self.num_ws = self.synthesis.num_ws

    @property
    def w_avg(self) -> Tensor:
        return self.mapping_net.w_avg

    def mapping(self, z: Tensor, y: Tensor | None = None, update_w_avg: bool = False) -> Tensor:
        """``w [N, w_dim]`` of ``z [N, z_dim]`` (and labels)."""
        check_shape(z, [None, self.z_dim], "z")
        y = check_labels(y, z.shape[0], self.num_classes)
        return self.mapping_net(z, y, update_w_avg)

    def truncate(self, w: Tensor, psi: float) -> Tensor:
        """``w_avg + psi (w - w_avg)`` for ``w [N, w_dim]`` or ``[N, num_ws, w_dim]``."""
        if not 0.0 <= psi <= 1.0:
            raise UserError(f"psi must be in [0, 1] (1 = no truncation), got {psi}")
        return self.w_avg.to(w.dtype).lerp(w, psi)

    def layer_groups(self) -> dict[str, list[int]]:
        """Indices of ``ws`` by the scale they control (Karras et al. 2019, figure 3): coarse
        4-8 px, middle 16-32 px, fine 64 px and up; below 64 px the last resolution is fine and
        the one before it middle."""
        sides = [self.synthesis.ws_side(i) for i in range(self.num_ws)]
        if self.synthesis.res >= 64:
            fine = {s for s in sides if s >= 64}
            middle = {16, 32}
        else:
            fine, middle = {self.synthesis.res}, {self.synthesis.res // 2}
        return {
            "coarse": [i for i, s in enumerate(sides) if s not in fine | middle],
            "middle": [i for i, s in enumerate(sides) if s in middle],
            "fine": [i for i, s in enumerate(sides) if s in fine],
        }

    def forward(
        self,
        z: Tensor,
        y: Tensor | None = None,
        psi: float = 1.0,
        noise: str | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Images of ``z``; ``noise`` defaults to "random" in training, else "const". In training
        mode ``w_avg`` follows the batch (a variant that calls ``mapping`` itself decides)."""
        w = self.mapping(z, y, update_w_avg=self.training)  # [N, w_dim]
        if psi != 1.0:
            w = self.truncate(w, psi)
        mode = noise or ("random" if self.training else "const")
        return self.synthesis(w, mode, generator)  # [N, C, R, R]


class DBlock(nn.Module):
    """Residual: ``(skip(x) + conv1(down(conv0(x)))) / sqrt(2)``, halving the side."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv0 = EqualConv2d(c_in, c_in, 3)
        self.conv1 = EqualConv2d(c_in, c_out, 3)
        self.skip = EqualConv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        s = self.skip(downsample2d(x))  # [N, O, H/2, W/2]
        x = lrelu(self.conv1(downsample2d(lrelu(self.conv0(x)))))  # [N, O, H/2, W/2]
        return (s + x) * math.sqrt(0.5)


class StyleDiscriminator(nn.Module):
    """Images ``[N, C, R, R]`` (+ labels ``y [N]``) -> raw scores ``[N]``."""

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...], num_classes: int = 0):
        super().__init__()
        self.shape = check_build_args(shape, num_classes)
        res = check_config(cfg, self.shape)
        opts = options(cfg)
        self.num_classes, self.group = num_classes, opts.mbstd_group
        sides = [2**i for i in range(int(math.log2(res)), 2, -1)]  # R, R/2, ..., 8
        self.from_rgb = EqualConv2d(self.shape[0], channels(opts, res), 1)
        self.blocks = nn.Sequential(
            *(DBlock(channels(opts, r), channels(opts, r // 2)) for r in sides)
        )
        c4 = channels(opts, 4)
        self.conv = EqualConv2d(c4 + 1, c4, 3)
        self.fc = EqualLinear(c4 * 16, c4)
        self.cmap_dim = c4 if num_classes else 1
        self.out = EqualLinear(c4, self.cmap_dim)
        self.embed = EqualLinear(num_classes, c4) if num_classes else None

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        check_shape(x, [None, *self.shape], "x")
        y = check_labels(y, x.shape[0], self.num_classes)
        h = self.blocks(lrelu(self.from_rgb(x)))  # [N, C4, 4, 4]
        h = lrelu(self.conv(minibatch_std(h, self.group)))  # [N, C4, 4, 4]
        h = self.out(lrelu(self.fc(h.flatten(1))))  # [N, cmap_dim]
        if self.embed is None:
            return h.squeeze(1)  # [N]
        cmap = self.embed(F.one_hot(y, self.num_classes).to(h.dtype))  # [N, cmap_dim]
        return (h * cmap).sum(dim=1) / math.sqrt(self.cmap_dim)  # [N]


def build_stylegan(
    role: Literal["G", "D"], cfg: ModelConfig, shape: tuple[int, ...], num_classes: int = 0
) -> nn.Module:
    """The StyleGAN family's G or D for one image's ``shape`` ``(C, R, R)``."""
    if role == "G":
        return StyleGenerator(cfg, shape, num_classes)
    if role == "D":
        return StyleDiscriminator(cfg, shape, num_classes)
    raise ValueError(f"role must be 'G' or 'D', got {role!r}")


build_stylegan.Options = StyleGANOptions  # type: ignore[attr-defined]
NETS.register("stylegan")(build_stylegan)
