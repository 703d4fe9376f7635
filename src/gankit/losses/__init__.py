"""Losses: pure functions of scores, and penalties."""

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
from .penalties import gradient_penalty

__all__ = [
    "bce_d",
    "ebgan_d",
    "ebgan_g",
    "g_minimax",
    "g_nonsaturating",
    "gradient_penalty",
    "lsgan_d",
    "lsgan_g",
    "pull_away",
    "wasserstein_d",
    "wasserstein_g",
]
