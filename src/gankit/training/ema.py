"""Exponential moving average of the generator's weights (Karras et al. 2018; Yazici et al. 2019).

Samples from the averaged generator are usually smoother and closer to the data than those of the
last iterate, whose weights oscillate in the adversarial game.

With ``warmup`` the decay at update ``t`` (0-based) is ``min(decay, (1 + t) / (10 + t))``, the
ramp of TensorFlow's ``ExponentialMovingAverage(num_updates=...)``: early averages follow G
instead of holding its random initial weights (at 0.999 and no warm-up, 58 % of the average is
still the initial weights after 537 updates; with the warm-up, 9e-20).
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, net: nn.Module, decay: float, warmup: bool = False):
        self.decay = decay
        self.warmup = warmup
        self.net = copy.deepcopy(net).eval().requires_grad_(False)

    def decay_at(self, t: int) -> float:
        """The decay of update ``t`` (0-based: the trainer's step before it is counted)."""
        return min(self.decay, (1 + t) / (10 + t)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, net: nn.Module, t: int) -> None:
        """Average ``net`` in as update ``t``; required, since the warm-up ramp depends on it."""
        ema_p = list(self.net.parameters())
        torch._foreach_lerp_(ema_p, list(net.parameters()), 1.0 - self.decay_at(t))
        for b_ema, b in zip(self.net.buffers(), net.buffers(), strict=True):
            b_ema.copy_(b)  # batch-norm statistics follow the live net

    def state_dict(self) -> dict:
        return self.net.state_dict()

    def load_state_dict(self, sd: dict) -> None:
        self.net.load_state_dict(sd)
