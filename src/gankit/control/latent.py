"""Latent tools: reproducible latents, truncation, interpolation and latent arithmetic.

- Truncation trick (Marchesi 2017; Brock et al. 2019, BigGAN): draw z from a normal truncated to
  ``|z_i| <= threshold`` (resampling the entries outside), or pull z towards the mean latent,
  ``mean + psi * (z - mean)`` (Karras et al. 2019, StyleGAN). Both trade diversity for fidelity.
- Interpolation: linear, and spherical (Shoemake 1985, recommended for Gaussian latents by
  White 2016) which keeps intermediate codes at a norm the prior makes likely.
- Latent arithmetic (Radford et al. 2016, DCGAN): average the codes of a few samples per concept,
  then generate ``mean(a) - mean(b) + mean(c)`` (with small noise around it).

Sample ids refer to ``gankit sample RUN --seed S --n N``: id ``i`` is row ``i`` of the latents
that command draws, so users pick codes from a grid they have seen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from ..errors import UserError
from ..memory import check as check_memory

Interpolation = Literal["lerp", "slerp"]


def sample_latents(
    z_dim: int, n: int, seed: int, num_classes: int = 0
) -> tuple[Tensor, Tensor | None]:
    """The latents ``[n, z_dim]`` (and labels ``[n]`` of a conditional model) that
    ``Generator.sample(n, seed=seed)`` draws: same generator, same order."""
    if n <= 0:
        raise UserError(f"the number of samples must be positive, got {n}")
    check_memory(4.0 * n * (z_dim + 2), f"{n} latent codes", "ask for fewer samples")
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, z_dim, generator=g)  # [n, z_dim]
    y = torch.randint(num_classes, (n,), generator=g) if num_classes else None  # [n]
    return z, y


def check_labels(net: nn.Module, n: int, labels: Tensor | int | None) -> Tensor | None:
    """Labels ``[n]`` for a conditional ``net`` (an int = one class for all), None otherwise."""
    k = getattr(net, "num_classes", 0)
    if labels is None:
        if k:
            raise UserError("this generator is conditional; pass a class (--class K)")
        return None
    if not k:
        raise UserError("this generator is unconditional; drop the class (--class)")
    y = torch.full((n,), labels) if isinstance(labels, int) else torch.as_tensor(labels)
    y = y.long()
    if y.shape != (n,):
        raise UserError(f"labels must have shape [{n}], got {list(y.shape)}")
    if y.numel() and (y.min() < 0 or y.max() >= k):
        raise UserError(f"class must be in 0..{k - 1}, got {int(y.min())}..{int(y.max())}")
    return y


@torch.no_grad()
def generate(net: nn.Module, z: Tensor, labels: Tensor | None = None, batch: int = 512) -> Tensor:
    """``G(z, labels)`` on the CPU in eval mode, in batches: ``[N, z_dim]`` -> ``[N, *shape]``."""
    if z.dim() != 2 or z.shape[1] != net.z_dim:
        raise UserError(f"z must have shape [N, {net.z_dim}], got {list(z.shape)}")
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    out = []
    for i in range(0, len(z), batch):
        yi = labels[i : i + batch].to(device) if labels is not None else None
        out.append(net(z[i : i + batch].to(device), yi).float().cpu())
        if i == 0:  # now the size of one sample is known
            per = out[0][0].numel() * 4
            check_memory(2.0 * per * len(z), f"{len(z)} samples", "ask for fewer samples")
    net.train(was_training)
    return torch.cat(out)  # [N, *shape]


# ------------------------------------------------------------------------------------ truncation
def truncated_normal(n: int, z_dim: int, threshold: float, seed: int = 0) -> Tensor:
    """``[n, z_dim]`` standard normal entries conditioned on ``|z_i| <= threshold`` (resampled)."""
    if not threshold > 0:
        raise UserError(f"the truncation threshold must be positive, got {threshold}")
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, z_dim, generator=g)  # [n, z_dim]
    out = z.abs() > threshold  # [n, z_dim]
    while out.any():  # each pass keeps P(|z| <= t) of the rest: few passes even for t = 0.1
        z[out] = torch.randn(int(out.sum()), generator=g)
        out = z.abs() > threshold
    return z


def truncate_to_mean(z: Tensor, psi: float, mean: Tensor | None = None) -> Tensor:
    """``mean + psi * (z - mean)``: psi = 1 keeps z, psi = 0 gives the mean latent (zero for the
    standard normal prior; pass e.g. ``z_many.mean(0)`` for another reference)."""
    if not 0 <= psi <= 1:
        raise UserError(f"psi must be in [0, 1] (1 = no truncation), got {psi}")
    mean = torch.zeros(z.shape[-1]) if mean is None else mean  # [z_dim]
    return mean + psi * (z - mean)  # [N, z_dim]


# -------------------------------------------------------------------------------- interpolation
def lerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Straight line: ``a [D]``, ``b [D]``, fractions ``t [T]`` -> ``[T, D]``."""
    t = t[:, None]  # [T, 1]
    return (1 - t) * a + t * b  # [T, D]


def slerp(a: Tensor, b: Tensor, t: Tensor, eps: float = 1e-7) -> Tensor:
    """Great-circle path with the norm interpolated linearly: ``a, b [D]``, ``t [T]`` -> ``[T, D]``.

    Equal norms stay equal all the way; (anti)parallel codes fall back to ``lerp``."""
    na, nb = a.norm(), b.norm()
    ua, ub = a / na.clamp_min(eps), b / nb.clamp_min(eps)
    omega = torch.arccos((ua * ub).sum().clamp(-1.0, 1.0))  # angle between them
    if omega < 1e-4 or torch.pi - omega < 1e-4:
        return lerp(a, b, t)
    t = t[:, None]  # [T, 1]
    s = torch.sin(omega)
    u = (torch.sin((1 - t) * omega) * ua + torch.sin(t * omega) * ub) / s  # [T, D], unit norm
    return u * ((1 - t) * na + t * nb)  # [T, D]


def interpolate(a: Tensor, b: Tensor, steps: int, mode: Interpolation = "slerp") -> Tensor:
    """``steps`` codes from ``a [D]`` to ``b [D]``, both ends included -> ``[steps, D]``."""
    if steps < 2:
        raise UserError(f"interpolation needs at least 2 steps (both ends), got {steps}")
    if a.shape != b.shape or a.dim() != 1:
        raise UserError(f"interpolate wants two codes [D], got {list(a.shape)}, {list(b.shape)}")
    if mode not in ("lerp", "slerp"):
        raise UserError(f"interpolation mode must be lerp or slerp, got {mode!r}")
    check_memory(12.0 * steps * len(a), f"{steps} interpolation steps", "ask for fewer steps")
    t = torch.linspace(0, 1, steps, dtype=a.dtype)  # [steps]
    return (lerp if mode == "lerp" else slerp)(a, b, t)


def save_gif(
    frames: Tensor, path: str | Path, ms_per_frame: int = 120, bounce: bool = True
) -> Path:
    """Images ``[T, C, H, W]`` in [-1, 1] -> an animated GIF that loops (forth and back if
    ``bounce``); grayscale or RGB, scaled up to at least 112 px so a 28 px digit is visible."""
    from PIL import Image

    if frames.dim() != 4 or frames.shape[1] not in (1, 3) or len(frames) < 2:
        raise ValueError(f"save_gif wants frames [T >= 2, 1 or 3, H, W], got {list(frames.shape)}")
    x = ((frames.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    x = x.permute(0, 2, 3, 1).numpy()  # [T, H, W, C]
    scale = max(1, -(-112 // x.shape[1]))
    mode = "L" if x.shape[3] == 1 else "RGB"
    images = [Image.fromarray(f[..., 0] if mode == "L" else f, mode) for f in x]
    images = [im.resize((im.width * scale, im.height * scale), Image.NEAREST) for im in images]
    if bounce:
        images = images + images[-2:0:-1]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(
        path, save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0, optimize=False
    )
    return path


# ---------------------------------------------------------------------------------- arithmetic
def class_means(z: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """Mean code of each class ``[num_classes, z_dim]`` from codes ``[N, z_dim]``, labels ``[N]``;
    NaN rows for classes with no sample."""
    if z.dim() != 2 or labels.shape != (z.shape[0],):
        raise UserError(f"want z [N, D] and labels [N], got {list(z.shape)}, {list(labels.shape)}")
    onehot = torch.nn.functional.one_hot(labels.long(), num_classes).to(z.dtype)  # [N, K]
    counts = onehot.sum(0)[:, None]  # [K, 1]
    return onehot.T @ z / counts  # [K, z_dim] (0 / 0 = NaN for empty classes)


def arithmetic(
    za: Tensor,  # [Na, D] codes of concept a, averaged
    zb: Tensor,  # [Nb, D] codes of concept b
    zc: Tensor,  # [Nc, D] codes of concept c
    n: int = 8,  # results: the exact a - b + c, then n - 1 with noise around it
    noise: float = 0.25,  # std of that noise, as in Radford et al. 2016
    seed: int = 0,
) -> Tensor:
    """Codes ``[n, D]`` for ``mean(a) - mean(b) + mean(c)``; the first row has no noise."""
    for name, v in (("a", za), ("b", zb), ("c", zc)):
        if v.dim() != 2 or len(v) == 0 or v.shape[1] != za.shape[1]:
            raise UserError(
                f"concept {name} needs codes [N >= 1, {za.shape[1]}], got {list(v.shape)}"
            )
    r = za.mean(0) - zb.mean(0) + zc.mean(0)  # [D]
    g = torch.Generator().manual_seed(seed)
    eps = noise * torch.randn(n, r.shape[0], generator=g)  # [n, D]
    eps[0] = 0
    return r + eps  # [n, D]


def arithmetic_grid(
    net: nn.Module, za: Tensor, zb: Tensor, zc: Tensor, label: int | None = None
) -> Tensor:
    """Images ``[4, W, *shape]`` of ``a - b + c``, ``W = max(len) + 1``, one row per concept:

    rows 0-2 are the samples of a, b and c, each row's mean code in its last column; row 3 applies
    the attribute vector ``mean(a) - mean(b)`` to every c sample (under it), and in the last column
    to ``mean(c)``: Radford et al.'s ``mean(a) - mean(b) + mean(c)``. Blank cells are black.
    ``label``: the one class of a conditional G, or None."""
    for name, v in (("a", za), ("b", zb), ("c", zc)):
        if v.dim() != 2 or len(v) == 0 or v.shape[1] != za.shape[1]:
            raise UserError(
                f"concept {name} needs codes [N >= 1, {za.shape[1]}], got {list(v.shape)}"
            )
    w = max(len(za), len(zb), len(zc)) + 1
    attribute = za.mean(0) - zb.mean(0)  # [D]
    rows = [torch.cat([v, v.mean(0, keepdim=True)]) for v in (za, zb, zc)]  # [len + 1, D] each
    rows.append(rows[2] + attribute)  # c_i + (a - b), then mean(c) + (a - b)
    out = []
    for codes in rows:
        x = generate(net, codes, check_labels(net, len(codes), label))  # [len + 1, *shape]
        pad = torch.full((w - len(x), *x.shape[1:]), -1.0)  # blank (black) cells
        out.append(torch.cat([x[:-1], pad, x[-1:]]))  # the mean in the last column
    return torch.stack(out)  # [4, W, *shape]
