"""Unrolled discriminator (Metz, Poole, Pfau and Sohl-Dickstein 2017, "Unrolled generative
adversarial networks").

G is trained against the D that ``k`` more steps of D's own loss would make, and the gradient
flows through those steps: G's surrogate loss ``f(theta_G, theta_D^k(theta_G))`` with
``theta_D^{i+1} = theta_D^i - lr * grad_D L_D(theta_G, theta_D^i)``, so G also sees how D would
answer its move, which keeps it from jumping from mode to mode.

The unroll is functional (``torch.func.functional_call`` on copies of D's parameters and buffers):
the real D, its buffers (batch-norm statistics, spectral-norm vectors) and its optimizer are left
as they are. The steps are plain SGD: Metz et al. unroll with D's Adam, but a fresh Adam's first
steps are ``lr * sign(grad)``, whose derivative is 0, so G would get no gradient through them,
and the real Adam's moments belong to the trainer. Every step sees the same real batch and
the same fakes (still attached to G).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call


def unrolled_scores(
    D: nn.Module,
    d_loss: Callable[[Tensor, Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    y: Tensor | None,
    steps: int,
    lr: float,
) -> Tensor:
    """``D_k(fake, y)``: the scores of ``fake`` by D after ``steps`` SGD steps of size ``lr`` on
    ``d_loss(D(real, y), D(fake, y))``, differentiable through the steps for ``fake``'s G."""
    params = {n: p.detach().requires_grad_(True) for n, p in D.named_parameters()}
    buffers = {n: b.clone() for n, b in D.named_buffers()}  # the unroll's own statistics
    real = real.detach()
    for _ in range(steps):
        state = {**params, **buffers}
        s_real = functional_call(D, state, (real, y))  # [B]
        s_fake = functional_call(D, state, (fake, y))  # [B]
        grads = torch.autograd.grad(
            d_loss(s_real, s_fake), list(params.values()), create_graph=True, allow_unused=True
        )
        params = {
            n: p if g is None else p - lr * g
            for (n, p), g in zip(params.items(), grads, strict=True)
        }
    return functional_call(D, {**params, **buffers}, (fake, y))  # [B]
