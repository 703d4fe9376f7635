"""Losses: pure functions of scores, penalties, the unrolled D of Metz et al. 2017 and BigGAN's
orthogonal regularisation (Brock et al. 2019)."""

from .adversarial import (
    bce_d,
    ebgan_d,
    ebgan_g,
    g_minimax,
    g_nonsaturating,
    hinge_d,
    hinge_g,
    lsgan_d,
    lsgan_g,
    pull_away,
    wasserstein_d,
    wasserstein_g,
)
from .orthogonal import orthogonal_penalty
from .penalties import gradient_penalty, path_lengths, r1_penalty
from .reconstruction import cycle_loss, identity_loss
from .unrolled import unrolled_scores

__all__ = [
    "bce_d",
    "cycle_loss",
    "ebgan_d",
    "ebgan_g",
    "g_minimax",
    "g_nonsaturating",
    "gradient_penalty",
    "hinge_d",
    "hinge_g",
    "identity_loss",
    "lsgan_d",
    "lsgan_g",
    "orthogonal_penalty",
    "path_lengths",
    "pull_away",
    "r1_penalty",
    "unrolled_scores",
    "wasserstein_d",
    "wasserstein_g",
]
