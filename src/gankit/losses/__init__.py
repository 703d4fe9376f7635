"""Losses: pure functions of scores, penalties, and the unrolled D of Metz et al. 2017."""

from .adversarial import (
    bce_d,
    ebgan_d,
    ebgan_g,
    g_minimax,
    g_nonsaturating,
    lsgan_d,
    lsgan_g,
    pull_away,
    wasserstein_d,
    wasserstein_g,
)
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
    "identity_loss",
    "lsgan_d",
    "lsgan_g",
    "path_lengths",
    "pull_away",
    "r1_penalty",
    "unrolled_scores",
    "wasserstein_d",
    "wasserstein_g",
]
