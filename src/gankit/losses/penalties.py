"""Regularisers of the discriminator.

- Gradient penalty of WGAN-GP (Gulrajani et al. 2017): lambda * (||grad D(x_hat)|| - 1)^2 on
  x_hat = eps * x + (1 - eps) * G(z), eps ~ U[0, 1] per sample.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def gradient_penalty(
    critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, eps: Tensor | None = None
) -> Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2] (unweighted); ``eps`` [N] defaults to U[0, 1)."""
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} differ in shape")
    n = real.shape[0]
    if eps is None:
        eps = torch.rand(n, device=real.device, dtype=real.dtype)
    eps = eps.view(n, *([1] * (real.dim() - 1)))  # [N, 1, ...] broadcasts over a sample
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat)  # [N]
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norm = grad.flatten(1).norm(2, dim=1)  # [N]
    return (norm - 1).pow(2).mean()
