"""Regularisers of the discriminator.

- Gradient penalty of WGAN-GP (Gulrajani et al. 2017): lambda * (||grad D(x_hat)|| - 1)^2 on
  x_hat = eps * x + (1 - eps) * G(z), eps ~ U[0, 1] per sample.
- R1 (Mescheder et al. 2018): ||grad_x D(x)||^2 on real images; StyleGAN weighs it gamma / 2.
- Both take the gradient norm per score of D: a packed D (PacGAN, Lin et al. 2018) returns one
  score per pack of m consecutive samples, and the norm runs over the pack, D's real input.
- Path-length regularisation (Karras et al. 2020): for y ~ N(0, I / (H W)) and images g(w),
  the length ``a = ||J_w^T y||`` should stay at its running mean: (a - mean)^2.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor


def gradient_penalty(
    critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, eps: Tensor | None = None
) -> Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2] (unweighted); ``eps`` [N] defaults to U[0, 1), one
    per sample. The norm is per score: over each pack of samples when D scores packs."""
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} differ in shape")
    n = real.shape[0]
    if eps is None:
        eps = torch.rand(n, device=real.device, dtype=real.dtype)
    eps = eps.view(n, *([1] * (real.dim() - 1)))  # [N, 1, ...] broadcasts over a sample
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat)  # [S]: S = N, or N / m packs
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norm = grad.reshape(scores.shape[0], -1).norm(2, dim=1)  # [S]
    return (norm - 1).pow(2).mean()


def r1_penalty(critic: Callable[[Tensor], Tensor], real: Tensor) -> Tensor:
    """``||grad_x D(x)||^2`` per score ``[S]`` (unweighted), differentiable for D: per real
    sample (S = N), or per pack of samples when D scores packs."""
    x = real.detach().requires_grad_(True)
    scores = critic(x)  # [S]
    (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
    return grad.reshape(scores.shape[0], -1).square().sum(dim=1)  # [S]


def path_lengths(images: Tensor, ws: Tensor, noise: Tensor | None = None) -> Tensor:
    """``||J_w^T y||`` per sample ``[N]`` for images ``[N, C, H, W]`` made from ``ws``
    ``[N, L, w_dim]`` (``L`` style inputs, averaged), ``y ~ N(0, I / (H W))`` unless given."""
    h, w = images.shape[2], images.shape[3]
    if noise is None:
        noise = torch.randn_like(images) / math.sqrt(h * w)
    (grad,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
    return grad.square().sum(dim=2).mean(dim=1).sqrt()  # [N]
