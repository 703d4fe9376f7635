"""Exponential moving average of the generator's weights (Karras et al. 2018; Yazici et al. 2019).

Samples from the averaged generator are usually smoother and closer to the data than those of the
last iterate, whose weights oscillate in the adversarial game.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, net: nn.Module, decay: float):
        self.decay = decay
        self.net = copy.deepcopy(net).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        ema_p = list(self.net.parameters())
        torch._foreach_lerp_(ema_p, list(net.parameters()), 1.0 - self.decay)
        for b_ema, b in zip(self.net.buffers(), net.buffers(), strict=True):
            b_ema.copy_(b)  # batch-norm statistics follow the live net

    def state_dict(self) -> dict:
        return self.net.state_dict()

    def load_state_dict(self, sd: dict) -> None:
        self.net.load_state_dict(sd)
