"""Adversarial losses as pure functions of discriminator scores.

Every function takes raw scores (higher = more real; logits for the BCE losses, critic values for
the Wasserstein loss) and returns a scalar to *minimise*. Sigmoids live here, never in the nets.

- BCE discriminator loss and both generator losses of Goodfellow et al. 2014: the minimax
  ``log(1 - D(G(z)))`` and the non-saturating ``-log D(G(z))``; one-sided label smoothing
  (Salimans et al. 2016).
- Wasserstein critic and generator losses (Arjovsky et al. 2017).
- Least-squares losses with a = 0, b = c = 1 (Mao et al. 2017).
- Energy-based margin loss and pull-away term (Zhao et al. 2017).
- Hinge losses (Lim and Ye 2017; Miyato et al. 2018; the loss of SAGAN and BigGAN, Zhang et al.
  2019 and Brock et al. 2019).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def bce_d(real: Tensor, fake: Tensor, real_target: float = 1.0) -> Tensor:
    """-[t log D(x) + log(1 - D(G(z)))]; ``real_target`` < 1 is one-sided label smoothing."""
    loss_real = F.binary_cross_entropy_with_logits(real, torch.full_like(real, real_target))
    loss_fake = F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    return loss_real + loss_fake


def g_minimax(fake: Tensor) -> Tensor:
    """log(1 - D(G(z))), minimised by G: saturates (vanishing gradient) when D wins."""
    return -F.softplus(fake).mean()  # log(1 - sigmoid(s)) = -softplus(s)


def g_nonsaturating(fake: Tensor) -> Tensor:
    """-log D(G(z)): same fixed point as the minimax loss, strong gradients early on."""
    return F.softplus(-fake).mean()  # -log sigmoid(s) = softplus(-s)


def wasserstein_d(real: Tensor, fake: Tensor) -> Tensor:
    """Critic loss E[D(G(z))] - E[D(x)]: its negative estimates the Wasserstein-1 distance."""
    return fake.mean() - real.mean()


def wasserstein_g(fake: Tensor) -> Tensor:
    return -fake.mean()


def lsgan_d(real: Tensor, fake: Tensor) -> Tensor:
    """0.5 E[(D(x) - 1)^2] + 0.5 E[D(G(z))^2]."""
    return 0.5 * ((real - 1).pow(2).mean() + fake.pow(2).mean())


def lsgan_g(fake: Tensor) -> Tensor:
    """0.5 E[(D(G(z)) - 1)^2]."""
    return 0.5 * (fake - 1).pow(2).mean()


def hinge_d(real: Tensor, fake: Tensor) -> Tensor:
    """E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]: D stops pushing a score once it is past the
    margin (above 1 on real, below -1 on generated samples)."""
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def hinge_g(fake: Tensor) -> Tensor:
    """-E[D(G(z))]: G raises D's raw score of its samples, with no margin."""
    return -fake.mean()


def ebgan_d(energy_real: Tensor, energy_fake: Tensor, margin: float) -> Tensor:
    """E[D(x)] + E[max(0, m - D(G(z)))] with D = energy (reconstruction error)."""
    return energy_real.mean() + F.relu(margin - energy_fake).mean()


def ebgan_g(energy_fake: Tensor) -> Tensor:
    return energy_fake.mean()


def pull_away(code: Tensor) -> Tensor:
    """Mean squared cosine similarity between distinct codes of a batch (EBGAN's PT term)."""
    n = code.shape[0]
    if n < 2:
        return code.new_zeros(())
    u = F.normalize(code.flatten(1), dim=1)  # [N, K]
    sim = (u @ u.t()).pow(2)  # [N, N]
    return (sim.sum() - sim.diagonal().sum()) / (n * (n - 1))
