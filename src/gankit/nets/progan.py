"""Progressive growing of G and D (Karras et al. 2018, "Progressive growing of GANs for improved
quality, stability, and variation"), in plain PyTorch and small enough for a CPU.

Both nets are built at full size from the start: every block exists, so optimizers, checkpoints
and exports never change shape. A *schedule* decides which blocks run. Training starts at
``start_res`` (4x4); the resolution then doubles up to the data's side, each new block faded in
linearly over ``fade_images`` images and then trained alone for ``stage_images`` images:

    images:  [0, S)  start_res  |  [S, S+F) fade to 2x  |  [S+F, 2S+F) 2x  |  fade to 4x  |  ...

``S = stage_images``, ``F = fade_images``; images are the generator's, ``step * global batch``,
which the trainer passes to ``set_progress(step, images)`` (its hook for nets with a schedule).
``stage_of(images, ...)`` is that pure function: ``(stage, alpha)``, stage 0 at ``start_res``.

- **G**: z divided by its root mean square (pixel norm), an equalized-lr linear layer to a 4x4
  map, a 3x3 conv; per doubling a nearest up-sampling and two 3x3 convs; every conv followed by
  lrelu and pixel norm (each pixel's feature vector divided by its root mean square). A toRGB
  (1x1) per resolution. While a block fades in, the image is
  ``(1 - alpha) * up(toRGB_prev(h_prev)) + alpha * toRGB(block(h_prev))``. The image at the
  current resolution ends in tanh and is up-sampled (nearest) to the data's size, so samples,
  metrics and variants see full-size images at every stage.
- **D** mirrors it: real and fake images alike are average-pooled to the current resolution (the
  data "served at the current resolution"; pooling undoes G's nearest up-sampling exactly), and,
  while a block fades in, blended with their 2x-coarser version by ``alpha``; a fromRGB (1x1)
  per resolution, per halving two 3x3 convs and a 2x average pooling, with the faded input
  ``(1 - alpha) * fromRGB_prev(pool(x)) + alpha * block(fromRGB(x))``; at 4x4 a minibatch
  standard-deviation map, a 3x3 conv, a linear layer and the score.
- **Equalized learning rate**: every layer is ``EqualConv2d``/``EqualLinear`` of
  ``style_layers.py`` (weights N(0, 1), scaled by ``1/sqrt(fan_in)`` at run time), with lrelu's
  gain sqrt(2) (He's constant).

Blocks the schedule does not run get no gradient; under torchrun ``distributed.touch`` gives them
a zero one. The schedule's position is the buffer ``images`` (-1: fully grown, the state of a net
built outside training), saved with the weights, so a checkpoint or export samples at the
resolution it was trained to.
"""

from __future__ import annotations

import itertools
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
from .style_layers import EqualConv2d, EqualLinear, MinibatchStd, lrelu


@dataclass
class ProGANOptions:
    """``model.options.*`` of ``model.net=progan`` (the paper's values in brackets)."""

    start_res: int = 4  # side of the first stage, a power of two from 4 to the data's side (4)
    stage_images: int = 50_000  # images of G per stable stage (800k)
    fade_images: int = 50_000  # images of G over which a new block fades in; 0 = at once (800k)
    channel_base: int = 1024  # channels at resolution r: min(channel_base // r, channel_max)
    channel_max: int = 128  # (8192 and 512)
    mbstd_group: int = 4  # samples per minibatch standard-deviation group in D (4)

    def __post_init__(self) -> None:
        for key in ("stage_images", "channel_base", "channel_max", "mbstd_group"):
            v = getattr(self, key)
            if v < 1:
                raise UserError(f"model.options.{key} must be at least 1, got {v}")
        if self.fade_images < 0:
            raise UserError(f"model.options.fade_images must be 0 or more, got {self.fade_images}")
        if self.start_res < 4 or self.start_res & (self.start_res - 1):
            raise UserError(
                f"model.options.start_res must be a power of two, 4 or more, got {self.start_res}"
            )


def options(cfg: ModelConfig) -> ProGANOptions:
    return build_options(ProGANOptions, cfg.options, "model.options.", "model.net=progan")


def stage_of(images: int, n_stages: int, stage_images: int, fade_images: int) -> tuple[int, float]:
    """``(stage, alpha)`` after ``images`` images: stage ``k`` runs at ``start_res * 2**k``;
    ``alpha`` < 1 while stage k's block fades in, 1 once it is stable. ``images < 0``: fully
    grown, ``(n_stages - 1, 1.0)``."""
    last = n_stages - 1
    if images < 0:
        return last, 1.0
    k, r = divmod(images, stage_images + fade_images)  # k stable stages and k fades behind
    if r < stage_images:
        return min(k, last), 1.0
    if k + 1 > last:
        return last, 1.0
    return k + 1, (r - stage_images) / fade_images


def check_config(cfg: ModelConfig, shape: tuple[int, ...], opts: ProGANOptions) -> int:
    """The image side, after refusing what this family cannot build; one sentence each."""
    side = shape[1] if len(shape) == 3 else 0
    if len(shape) != 3 or shape[1] != shape[2] or side < 8 or side & (side - 1):
        got = "x".join(str(s) for s in shape[1:]) if len(shape) == 3 else f"{shape[0]}-d points"
        raise UserError(
            f"model.net=progan needs square images whose side is a power of two, 8 or more, got "
            f"{got}; set data.size to 16, 32 or 64"
        )
    if opts.start_res > side:
        raise UserError(
            f"model.options.start_res={opts.start_res} is larger than the images ({side} px); "
            f"set it to a power of two from 4 to {side}"
        )
    for key, bad, fix in (
        ("batchnorm", cfg.batchnorm, "model.batchnorm=false (it uses pixel norm)"),
        ("dropout", cfg.dropout > 0, "model.dropout=0"),
        ("d_output", cfg.d_output != "linear", "model.d_output=linear"),
        ("mbstd", cfg.mbstd > 0, "model.mbstd=0 (its D has one: model.options.mbstd_group)"),
    ):
        if bad:
            raise UserError(f"model.net=progan has no {key} option; set {fix}")
    return side


def pixel_norm(x: Tensor) -> Tensor:
    """Each pixel's (or sample's) feature vector divided by its root mean square, ``dim=1``."""
    return x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()


class _Scheduled(nn.Module):
    """What G and D share: resolutions, channels and the schedule's position."""

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...], num_classes: int):
        super().__init__()
        self.shape = check_build_args(shape, num_classes)
        if num_classes:
            raise UserError("model.net=progan is unconditional; set data.classes=false")
        self.opts = opts = options(cfg)
        side = check_config(cfg, self.shape, opts)
        self.sides = [4 * 2**i for i in range(int(math.log2(side)) - 1)]  # 4, 8, ..., side
        self.first = self.sides.index(opts.start_res)  # the block index of stage 0
        self.n_stages = len(self.sides) - self.first
        self.register_buffer("images", torch.tensor(-1, dtype=torch.int64))
        # What forward reads: the top block and whether it fades in, plain Python that changes
        # only at stage boundaries, and the fade's weight as a tensor, so a compiled forward
        # guards on the stage alone and is not compiled again for every step of a fade.
        self.register_buffer("alpha", torch.tensor(1.0), persistent=False)
        self._move(-1)  # fully grown until the trainer says where the schedule is
        self.register_load_state_dict_post_hook(_sync_images)
        # graphs torch.compile needs, one per (stage, fading); train.compile raises its limit
        self.compile_graphs = 2 * self.n_stages - 1

    def channels(self, res: int) -> int:
        return min(self.opts.channel_base // res, self.opts.channel_max)

    def set_progress(self, step: int, images: int) -> None:
        """The trainer's hook: move the schedule to ``images`` images of G (``step`` unused)."""
        self._move(int(images))
        self.images.fill_(self._images)

    def _move(self, images: int) -> None:
        self._images = images  # the buffer's value, read without a device sync
        self._top, alpha = self.progress()
        self._fading = alpha < 1
        self.alpha.fill_(alpha)

    def progress(self) -> tuple[int, float]:
        """``(index of the highest block that runs, alpha of its fade-in)``."""
        o = self.opts
        stage, alpha = stage_of(self._images, self.n_stages, o.stage_images, o.fade_images)
        return self.first + stage, alpha

    def resolution(self) -> int:
        return self.sides[self.progress()[0]]

    def describe_progress(self, images: int) -> str:
        """Where the schedule stands after ``images`` images, in words, e.g. "16 px" or
        "8 -> 16 px, fade 0.40" (the trainer's timeline captions its frames with it)."""
        o = self.opts
        stage, alpha = stage_of(images, self.n_stages, o.stage_images, o.fade_images)
        side = self.sides[self.first + stage]
        return f"{side} px" if alpha >= 1 else f"{side // 2} -> {side} px, fade {alpha:.2f}"

    def extra_repr(self) -> str:
        top, alpha = self.progress()
        return f"resolution={self.sides[top]}, alpha={alpha:g}, images={self._images}"


def _sync_images(module: _Scheduled, incompatible) -> None:
    module._move(int(module.images))


class GBlock(nn.Module):
    """Nearest 2x up-sampling and two 3x3 convs, each with lrelu and pixel norm."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv0 = EqualConv2d(c_in, c_out, 3)
        self.conv1 = EqualConv2d(c_out, c_out, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")  # [N, I, 2H, 2W]
        x = pixel_norm(lrelu(self.conv0(x)))  # [N, O, 2H, 2W]
        return pixel_norm(lrelu(self.conv1(x)))


class ProGenerator(_Scheduled):
    """``z [N, z_dim] -> [N, C, R, R]`` in [-1, 1], at the schedule's resolution up-sampled."""

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...], num_classes: int = 0):
        super().__init__(cfg, shape, num_classes)
        self.z_dim, self.num_classes = cfg.z_dim, 0
        c4 = self.channels(4)
        self.dense = EqualLinear(cfg.z_dim, c4 * 16)
        self.conv4 = EqualConv2d(c4, c4, 3)
        chans = [self.channels(r) for r in self.sides]
        self.blocks = nn.ModuleList(GBlock(a, b) for a, b in itertools.pairwise(chans))
        self.to_rgb = nn.ModuleList(EqualConv2d(c, self.shape[0], 1) for c in chans)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        check_shape(z, [None, self.z_dim], "z")
        check_labels(y, z.shape[0], 0)
        top = self._top
        h = pixel_norm(lrelu(self.dense(pixel_norm(z))))  # [N, c4 * 16]
        h = h.view(z.shape[0], -1, 4, 4)  # [N, c4, 4, 4]
        h = pixel_norm(lrelu(self.conv4(h)))  # [N, c4, 4, 4]
        prev = h
        for block in self.blocks[:top]:
            prev, h = h, block(h)  # [N, c_r, r, r]
        img = self.to_rgb[top](h)  # [N, C, r, r]
        if self._fading:  # the new block fades in over the up-sampled image of the previous one
            old = F.interpolate(self.to_rgb[top - 1](prev), scale_factor=2, mode="nearest")
            img = torch.lerp(old, img, self.alpha.to(img.dtype))  # [N, C, r, r]
        img = img.tanh()
        scale = self.shape[1] // img.shape[-1]
        return F.interpolate(img, scale_factor=scale, mode="nearest") if scale > 1 else img


class DBlock(nn.Module):
    """Two 3x3 convs with lrelu, then 2x average pooling."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv0 = EqualConv2d(c_in, c_in, 3)
        self.conv1 = EqualConv2d(c_in, c_out, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = lrelu(self.conv1(lrelu(self.conv0(x))))  # [N, O, H, W]
        return F.avg_pool2d(x, 2)  # [N, O, H/2, W/2]


class ProDiscriminator(_Scheduled):
    """Images ``[N, C, R, R]`` -> raw scores ``[N]``, looked at the schedule's resolution."""

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...], num_classes: int = 0):
        super().__init__(cfg, shape, num_classes)
        self.num_classes = 0
        chans = [self.channels(r) for r in self.sides]
        self.from_rgb = nn.ModuleList(EqualConv2d(self.shape[0], c, 1) for c in chans)
        # blocks[i] takes resolution sides[i + 1] to sides[i]
        self.blocks = nn.ModuleList(DBlock(b, a) for a, b in itertools.pairwise(chans))
        c4 = chans[0]
        self.mbstd = MinibatchStd(self.opts.mbstd_group)
        self.conv4 = EqualConv2d(c4 + 1, c4, 3)
        self.fc = EqualLinear(c4 * 16, c4)
        self.out = EqualLinear(c4, 1)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        check_shape(x, [None, *self.shape], "x")
        check_labels(y, x.shape[0], 0)
        top, fading = self._top, self._fading
        x = F.avg_pool2d(x, self.shape[1] // self.sides[top])  # [N, C, r, r]
        if fading:  # reals blend as G's fakes do: with their 2x-coarser version
            coarse = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")
            x = torch.lerp(coarse, x, self.alpha.to(x.dtype))  # [N, C, r, r]
        h = lrelu(self.from_rgb[top](x))  # [N, c_r, r, r]
        if top > 0:
            h = self.blocks[top - 1](h)  # [N, c_r/2, r/2, r/2]
        if fading:  # the previous stage's input path fades out
            old = lrelu(self.from_rgb[top - 1](F.avg_pool2d(x, 2)))  # [N, c_r/2, r/2, r/2]
            h = torch.lerp(old, h, self.alpha.to(h.dtype))
        for i in range(top - 2, -1, -1):
            h = self.blocks[i](h)  # [N, c_4, 4, 4] at the end
        h = lrelu(self.conv4(self.mbstd(h)))  # [N, c4, 4, 4]
        return self.out(lrelu(self.fc(h.flatten(1)))).squeeze(1)  # [N]


def build_progan(
    role: Literal["G", "D"], cfg: ModelConfig, shape: tuple[int, ...], num_classes: int = 0
) -> nn.Module:
    """The ProGAN family's G or D for one image's ``shape`` ``(C, R, R)``."""
    if role == "G":
        return ProGenerator(cfg, shape, num_classes)
    if role == "D":
        return ProDiscriminator(cfg, shape, num_classes)
    raise ValueError(f"role must be 'G' or 'D', got {role!r}")


build_progan.Options = ProGANOptions  # type: ignore[attr-defined]
NETS.register("progan")(build_progan)
