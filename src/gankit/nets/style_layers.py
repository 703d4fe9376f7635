"""The layers of StyleGAN2 (Karras et al. 2020, "Analyzing and improving the image quality of
StyleGAN") in plain PyTorch: no custom CUDA ops, so they run wherever torch runs.

- Equalized learning rate (Karras et al. 2018): weights are stored N(0, 1) / lr_mul and scaled
  at run time by ``lr_mul / sqrt(fan_in)``, so Adam's step is the same for every layer (and
  ``lr_mul`` times smaller for the mapping network, whose ``lr_mul`` is 0.01).
- Modulated convolution: each sample's style ``s`` scales the weight's input channels,
  ``w'_oik = s_i w_oik``; demodulation divides each output channel by ``sqrt(sum_ik w'^2 + 1e-8)``
  so the output has unit expected variance. Computed without grouped convolutions: scaling the
  input by ``s`` and the output by the demodulation coefficients is the same arithmetic.
- Filtered resampling with the binomial filter [1, 3, 3, 1] (outer product, normalised to sum 1):
  up-sampling inserts zeros and filters (gain 4), down-sampling filters and keeps every second
  pixel. Edges are replicated, so a constant image stays exactly constant.
- Minibatch standard deviation (Karras et al. 2018, "Progressive growing of GANs"): one extra
  feature, the batch's spread; StyleGAN's D uses it, and so do the mlp and dcgan D with
  ``model.mbstd`` (``MinibatchStd``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SQRT2 = math.sqrt(2.0)


def lrelu(x: Tensor) -> Tensor:
    """LeakyReLU(0.2) with StyleGAN's gain sqrt(2), which keeps the activations' scale."""
    return F.leaky_relu(x, 0.2) * SQRT2


class EqualLinear(nn.Module):
    """A linear layer with equalized learning rate: ``y = x (g W)^T + lr_mul b``,
    ``g = lr_mul / sqrt(in_dim)``, W stored as N(0, 1) / lr_mul."""

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full([out_dim], float(bias_init) / lr_mul))
        self.gain = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.gain, self.bias * self.lr_mul)  # [N, out_dim]


class EqualConv2d(nn.Module):
    """A same-size ``k x k`` convolution with equalized learning rate (gain 1/sqrt(C_in k^2))."""

    def __init__(self, c_in: int, c_out: int, k: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, k, k))
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None
        self.gain = 1.0 / math.sqrt(c_in * k * k)
        self.pad = k // 2

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.gain, self.bias, padding=self.pad)


def _binomial(channels: int) -> Tensor:
    """The [1, 3, 3, 1] outer-product filter, sum 1, as depthwise weights ``[C, 1, 4, 4]``."""
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f = torch.outer(f, f)
    return (f / f.sum()).expand(channels, 1, 4, 4).contiguous()


def upsample2d(x: Tensor) -> Tensor:
    """``[N, C, H, W]`` -> ``[N, C, 2H, 2W]``: zeros inserted, then the [1, 3, 3, 1] filter
    (gain 4, so a constant stays constant), as one depthwise transposed convolution."""
    c = x.shape[1]
    f = _binomial(c).to(x.dtype).to(x.device) * 4
    x = F.pad(x, (1, 1, 1, 1), mode="replicate")  # [N, C, H+2, W+2]
    return F.conv_transpose2d(x, f, stride=2, padding=3, groups=c)  # [N, C, 2H, 2W]


def downsample2d(x: Tensor) -> Tensor:
    """``[N, C, H, W]`` -> ``[N, C, H/2, W/2]``: the [1, 3, 3, 1] filter, every second pixel."""
    c = x.shape[1]
    x = F.pad(x, (1, 1, 1, 1), mode="replicate")  # [N, C, H+2, W+2]
    return F.conv2d(x, _binomial(c).to(x.dtype).to(x.device), stride=2, groups=c)


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, demodulate: bool = True) -> Tensor:
    """``x [N, I, H, W]``, ``weight [O, I, k, k]`` (already scaled), ``styles [N, I]`` ->
    ``[N, O, H, W]``: the convolution with each sample's modulated (and demodulated) weight."""
    k = weight.shape[-1]
    x = x * styles[:, :, None, None].to(x.dtype)  # [N, I, H, W]: modulation
    x = F.conv2d(x, weight.to(x.dtype), padding=k // 2)  # [N, O, H, W]
    if demodulate:
        # sum_ik (s_i w_oik)^2 = (s^2) @ (sum_k w_oik^2)^T
        d = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # [N, O]
        x = x * d[:, :, None, None].to(x.dtype)
    return x


class StyleConv(nn.Module):
    """A modulated 3x3 conv (optionally after 2x up-sampling), per-pixel noise with a learned
    strength (init 0), a bias and lrelu. ``w [N, w_dim]`` picks the style through an affine
    layer whose bias starts at 1 (styles near 1 at init)."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, res: int, up: bool):
        super().__init__()
        self.affine = EqualLinear(w_dim, c_in, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(c_out, c_in, 3, 3))
        self.gain = 1.0 / math.sqrt(c_in * 9)
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(1, 1, res, res))
        self.up, self.res = up, res

    def forward(self, x: Tensor, w: Tensor, noise: str, gen: torch.Generator | None) -> Tensor:
        if self.up:
            x = upsample2d(x)  # [N, I, res, res]
        x = modulated_conv2d(x, self.weight * self.gain, self.affine(w))  # [N, O, res, res]
        if noise == "random":
            size = (x.shape[0], 1, self.res, self.res)
            if gen is None:  # the training stream: torch's generator of x's device
                n = torch.randn(size, device=x.device, dtype=x.dtype)
            else:  # a seeded CPU stream, the same on any device
                n = torch.randn(size, generator=gen).to(x.device, x.dtype)
            x = x + n * self.noise_strength.to(x.dtype)
        elif noise == "const":
            x = x + self.noise_const.to(x.dtype) * self.noise_strength.to(x.dtype)
        return lrelu(x + self.bias.to(x.dtype)[None, :, None, None])


class ToRGB(nn.Module):
    """A modulated 1x1 conv to the image channels, not demodulated, plus a bias; linear."""

    def __init__(self, c_in: int, channels: int, w_dim: int):
        super().__init__()
        self.affine = EqualLinear(w_dim, c_in, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(channels, c_in, 1, 1))
        self.gain = 1.0 / math.sqrt(c_in)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        y = modulated_conv2d(x, self.weight * self.gain, self.affine(w), demodulate=False)
        return y + self.bias.to(y.dtype)[None, :, None, None]  # [N, C, H, W]


def minibatch_std(x: Tensor, group: int = 4) -> Tensor:
    """Append one feature: the standard deviation of each feature across a group of samples,
    averaged over features and pixels (Karras et al. 2018). Samples ``i, i + N/G, ...`` form a
    group of ``G = gcd(group, N)``; ``[N, C, H, W]`` -> ``[N, C + 1, H, W]``, and for the
    features of an MLP ``[N, F]`` -> ``[N, F + 1]``."""
    n, c, *rest = x.shape
    g = math.gcd(group, n)
    y = x.float().reshape(g, n // g, c, *rest)  # [G, M, C, ...]
    y = (y - y.mean(dim=0)).square().mean(dim=0)  # [M, C, ...]: variance over the group
    y = (y + 1e-8).sqrt().mean(dim=list(range(1, y.dim())))  # [M]
    ones = [1] * len(rest)
    y = y.to(x.dtype).reshape(1, n // g, 1, *ones).expand(g, -1, 1, *rest).reshape(n, 1, *rest)
    return torch.cat([x, y], dim=1)  # [N, C + 1, ...]


class MinibatchStd(nn.Module):
    """``minibatch_std`` as a layer, for the mlp and dcgan discriminators (``model.mbstd``): D
    sees how diverse its batch is, so a generator that collapses is easy to tell from data."""

    def __init__(self, group: int):
        super().__init__()
        self.group = group

    def forward(self, x: Tensor) -> Tensor:
        return minibatch_std(x, self.group)  # [N, C + 1, ...]

    def extra_repr(self) -> str:
        return f"group={self.group}"
