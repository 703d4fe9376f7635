"""Perceptual path length (Karras et al. 2019, "A style-based generator architecture for GANs",
section 4.1; the "full" variant, as StyleGAN2-ADA's ``metrics/perceptual_path_length.py``).

PPL measures how much the image changes along a short step of a latent interpolation: a smooth,
disentangled latent space changes little per step. For each of ``n`` path samples draw z0, z1
(standard normal) and t ~ U(0, 1), then

- **Z**: ``z_a = slerp(z0, z1, t)``, ``z_b = slerp(z0, z1, t + eps)``, images ``G(z_a)``,
  ``G(z_b)``;
- **W** (nets with a mapping network): ``w0 = mapping(z0)``, ``w1 = mapping(z1)``,
  ``w_a = lerp(w0, w1, t)``, ``w_b = lerp(w0, w1, t + eps)``, images ``synthesis(w_a)``,
  ``synthesis(w_b)``;

with eps = 1e-4, one class per pair for a conditional generator (both ends and both images),
the net's fixed ("const") per-pixel noise for both images, no truncation. The path length of a
sample is ``||f(x_a) - f(x_b)||^2 / eps^2`` for a fixed feature network f; values below the 1st
and above the 99th percentile are dropped (``lower``/``higher`` interpolation, as the reference
code) and the rest averaged. Z and W use the same draws, so their difference is not sampling noise.

Slerp: as the paper's, along the great circle between the directions of z0 and z1; its length is
the linear interpolation of their norms (the paper's slerp has unit length, which a StyleGAN's
mapping ignores since it divides z by its root mean square, while a DCGAN must see z at its
typical norm). A net without a mapping network (``has_mapping`` False) has no W: it gets ppl_z only.

The paper's f is LPIPS-VGG16 (Zhang et al. 2018), whose weights are not available offline here;
``classifier_features`` (gankit's MNIST/Fashion-MNIST classifier, 128-d) and ``inception_features``
(Inception-v3 pool3, 2048-d, the FID network fed float pixels, not rounded to 8 bits: a 1e-4 step
would vanish in the rounding) stand in. So values compare Z against W, or models on one data set
with the same f, and never with published LPIPS numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from ..errors import UserError
from ..memory import check as check_memory
from ..registry import METRICS

EPS = 1e-4  # the step of the paper
DEFAULT_N = 10_000  # path samples (the paper: 50,000)
TRIM = (0.01, 0.99)  # quantiles kept: values below the 1st and above the 99th percentile dropped
Space = Literal["z", "w"]


@dataclass(frozen=True)
class FeatureNet:
    """A fixed feature network for path lengths, and what the protocol calls it."""

    fn: Callable[[Tensor], Tensor]  # float images [N, C, H, W] in [-1, 1] -> features [N, D]
    name: str  # e.g. "mnist classifier penultimate layer (128-d)"
    bytes_per_image: float = 0.0  # its peak memory per image, for the memory check


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation of ``a``, ``b`` ``[N, D]`` at ``t`` ``[N]``, length lerped."""
    na, nb = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)  # [N, 1] each
    ua, ub = a / na, b / nb  # [N, D] unit directions
    cos = (ua * ub).sum(dim=1, keepdim=True).clamp(-1.0, 1.0)  # [N, 1]
    angle = t[:, None] * torch.acos(cos)  # [N, 1]
    c = ub - cos * ua  # [N, D] the part of ub orthogonal to ua
    c = c / c.norm(dim=1, keepdim=True)
    u = ua * torch.cos(angle) + c * torch.sin(angle)  # [N, D]
    return u / u.norm(dim=1, keepdim=True) * torch.lerp(na, nb, t[:, None])  # [N, D]


def trimmed_mean(lengths: Tensor) -> float:
    """The mean of ``lengths`` ``[N]`` between the 1st (lower) and 99th (higher) percentile."""
    d = lengths.double()
    lo = torch.quantile(d, TRIM[0], interpolation="lower")
    hi = torch.quantile(d, TRIM[1], interpolation="higher")
    return float(d[(d >= lo) & (d <= hi)].mean())


def _images(net: nn.Module, space: Space, z0, z1, t, y, eps: float) -> Tensor:
    """The images at t and t + eps of one batch: ``[2B, C, H, W]`` (all at t first)."""
    tt = torch.cat([t, t + eps])  # [2B]
    yy = None if y is None else torch.cat([y, y])  # [2B]: one class for both images of a pair
    if space == "z":
        z = slerp(torch.cat([z0, z0]), torch.cat([z1, z1]), tt)  # [2B, z_dim]
        if not getattr(net, "has_mapping", False):
            return net(z, yy)
        return net.synthesis(net.mapping(z, yy), noise="const")
    w = net.mapping(torch.cat([z0, z1]), torch.cat([y, y]) if y is not None else None)  # [2B, w]
    w0, w1 = w.chunk(2)  # [B, w_dim] each
    ws = torch.lerp(torch.cat([w0, w0]), torch.cat([w1, w1]), tt[:, None])  # [2B, w_dim]
    return net.synthesis(ws, noise="const")  # [2B, C, H, W]


@torch.no_grad()
def path_lengths(
    net: nn.Module,  # a generator; W needs has_mapping, mapping(z, y) and synthesis(ws, noise)
    features: FeatureNet | Callable[[Tensor], Tensor],
    z0: Tensor,  # [N, z_dim] path starts
    z1: Tensor,  # [N, z_dim] path ends
    t: Tensor,  # [N] positions in [0, 1)
    y: Tensor | None = None,  # [N] classes of a conditional net, one per path
    space: Space = "z",
    eps: float = EPS,
    batch: int = 100,  # path samples per forward pass (twice as many images)
) -> Tensor:
    """Per-sample path lengths ``||f(x_t) - f(x_{t+eps})||^2 / eps^2``, float64 ``[N]`` (CPU).

    The net runs in eval mode (restored after) with its own parameters' device and dtype."""
    if space not in ("z", "w"):
        raise ValueError(f"space must be 'z' or 'w', got {space!r}")
    if space == "w" and not getattr(net, "has_mapping", False):
        raise UserError(
            "ppl in W needs a generator with a mapping network (model.net=stylegan); "
            "use ppl_z for this one"
        )
    fn = features.fn if isinstance(features, FeatureNet) else features
    param = next(net.parameters())
    was_training = net.training
    net.eval()
    out = []
    try:
        for i in range(0, len(z0), batch):
            part = [v[i : i + batch].to(param.device) for v in (z0, z1, t)]
            za, zb, ti = (v.to(param.dtype) for v in part)
            yi = None if y is None else y[i : i + batch].to(param.device)
            f = fn(_images(net, space, za, zb, ti, yi, eps))  # [2B, D]
            fa, fb = f.double().chunk(2)  # [B, D] each
            out.append(((fa - fb).square().sum(dim=1) / eps**2).cpu())  # [B]
    finally:
        net.train(was_training)
    return torch.cat(out)  # [N]


@METRICS.register("perceptual_path_length")
def compute(
    net: nn.Module,  # the sampling generator: G(z, y); with has_mapping also mapping / synthesis
    features: FeatureNet | Callable[[Tensor], Tensor],
    n: int = DEFAULT_N,  # path samples per space
    seed: int = 0,  # z0, z1, t and classes are drawn from it, on the CPU
    batch: int = 100,  # path samples per forward pass (twice as many images)
    eps: float = EPS,
) -> dict[str, Any]:
    """PPL in Z (and in W for a net with a mapping network); see the module docstring.

    Returns ``ppl_z``, ``ppl_w`` (only with a mapping network), ``n``, ``eps`` and ``spaces``.
    The same seed gives the same draws whatever ``batch`` is."""
    if n < 2:
        raise UserError(f"ppl needs at least 2 path samples, got n={n}")
    if batch < 1:
        raise UserError(f"the batch size must be at least 1, got {batch}")
    z_dim, k = int(net.z_dim), int(getattr(net, "num_classes", 0))
    check_memory(4.0 * n * (2 * z_dim + 4), f"n={n} path samples", "ask for fewer (--n)")
    shape = getattr(net, "shape", None)
    if shape is not None:  # two images per path, their features and the net's activations
        per = 4.0 * 8 * math.prod(shape) + getattr(features, "bytes_per_image", 0.0)
        check_memory(2 * batch * per, f"a batch of {batch} path samples", "lower --batch-size")
    g = torch.Generator().manual_seed(seed)
    z0 = torch.randn(n, z_dim, generator=g)  # [n, z_dim]
    z1 = torch.randn(n, z_dim, generator=g)  # [n, z_dim]
    t = torch.rand(n, generator=g)  # [n]
    y = torch.randint(k, (n,), generator=g) if k else None  # [n]
    spaces = ("z", "w") if getattr(net, "has_mapping", False) else ("z",)
    out: dict[str, Any] = {}
    for space in spaces:
        lengths = path_lengths(net, features, z0, z1, t, y, space, eps, batch)  # [n]
        if not torch.isfinite(lengths).all():
            raise UserError(
                f"ppl in {space.upper()} met NaN or infinite images or features; the generator "
                "may have diverged, evaluate an earlier checkpoint"
            )
        out[f"ppl_{space}"] = trimmed_mean(lengths)
    return {**out, "n": n, "eps": eps, "spaces": list(spaces)}


# ---------------------------------------------------------------------------------------------
# feature networks


def classifier_features(classifier: nn.Module, data: str, input_note: str) -> FeatureNet:
    """gankit's digit classifier's penultimate features (``DigitClassifier.features``, which
    resizes other sides to 28); ``input_note`` says how images reach it, for the protocol."""
    dim = classifier.feature_dim

    def fn(x: Tensor) -> Tensor:
        return classifier.features(x)  # [N, 128]

    name = f"{data} classifier penultimate layer ({dim}-d; input {input_note})"
    return FeatureNet(fn, name, bytes_per_image=4.0 * 16 * 28 * 28 * 4)


# the layers of torch-fidelity's Inception-v3 up to pool3, in the order of its forward()
_COMPLETE_POOL3 = (
    "Conv2d_1a_3x3 Conv2d_2a_3x3 Conv2d_2b_3x3 MaxPool_1 Conv2d_3b_1x1 Conv2d_4a_3x3 MaxPool_2 "
    "Mixed_5b Mixed_5c Mixed_5d Mixed_6a Mixed_6b Mixed_6c Mixed_6d Mixed_6e Mixed_7a Mixed_7b "
    "Mixed_7c AvgPool"
).split()


def inception_pool3_float(module: nn.Module, x: Tensor) -> Tensor:
    """Pool3 features ``[N, 2048]`` of float pixels ``[N, 3, H, W]`` in 0..255, unrounded.

    ``module`` is a loaded extractor (``inception.load_extractor(...).module``): torch-fidelity's
    extractors accept only uint8, so this does their resize and scaling and then runs their
    network; on integer pixel values it gives their features exactly."""
    from torch_fidelity.interpolate_compat_tensorflow import (
        interpolate_bilinear_2d_like_tensorflow1x,
    )

    from .inception import INPUT_SIZE, InceptionPool3

    dtype = getattr(module, "feature_extractor_internal_dtype", torch.float32)
    size = (INPUT_SIZE, INPUT_SIZE)
    x = interpolate_bilinear_2d_like_tensorflow1x(x.to(dtype), size=size, align_corners=False)
    x = (x - 128) / 128  # [N, 3, 299, 299]
    if isinstance(module, InceptionPool3):
        return module.net(x).float()  # [N, 2048]
    for name in _COMPLETE_POOL3:
        x = getattr(module, name)(x)
    return torch.flatten(x, 1).float()  # [N, 2048]


def inception_features(extractor: Any) -> FeatureNet:
    """Inception-v3 pool3 of an ``inception.Extractor``: images in [-1, 1] become float pixels
    ``(x + 1) * 127.5`` (gray tiled to 3 channels), not rounded, then the FID network."""

    def fn(x: Tensor) -> Tensor:
        if x.shape[1] not in (1, 3):
            raise UserError(
                f"Inception features need 1- or 3-channel images, got {x.shape[1]} channels"
            )
        px = ((x.float() + 1) * 127.5).expand(-1, 3, -1, -1)  # [N, 3, H, W] in 0..255
        return inception_pool3_float(extractor.module, px)  # [N, 2048]

    name = (
        f"Inception-v3 pool3 (2048-d, {extractor.name}, weights sha256 {extractor.sha256[:12]}), "
        "float pixels (x + 1) * 127.5 unrounded, gray tiled to 3 channels, TF1 bilinear to 299"
    )
    return FeatureNet(fn, name, bytes_per_image=16e6)  # ~16 MB of activations per 299-px image
