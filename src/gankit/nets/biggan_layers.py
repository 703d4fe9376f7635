"""The blocks of BigGAN (Brock et al. 2019, "Large scale GAN training for high fidelity natural
image synthesis"), each usable on its own:

- ``ConditionalBatchNorm2d``: batch norm whose per-channel gain and bias are linear functions of a
  conditioning vector (de Vries et al. 2017; Dumoulin et al. 2017), ``gain = 1 + W_g c + b_g``,
  ``bias = W_b c + b_b``. In BigGAN ``c`` is the block's chunk of z concatenated with a class
  embedding shared by all blocks; with no conditioning (``cond_dim=0``) it is a plain batch norm.
- ``SelfAttention``: the non-local block of SAGAN (Zhang et al. 2019, "Self-attention generative
  adversarial networks"): ``x + gamma * o(g(x) softmax(theta(x)^T phi(x)))`` with 1x1 convs
  theta, phi to C/8 channels and g to C/2, and gamma a learned scalar that starts at 0, so the
  block starts as the identity. (BigGAN max-pools phi and g to cut the cost; at the sides a CPU
  trains this is not needed.)
- ``GBlock`` / ``DBlock``: the residual up- and down-sampling blocks of BigGAN (after Miyato et
  al. 2018's ResNet GAN): G's is BN-ReLU-up-conv3-BN-ReLU-conv3 plus a nearest-up 1x1 shortcut;
  D's is (ReLU)-conv3-ReLU-conv3-avgpool plus a 1x1 shortcut, pre-activated except in the first
  block, which sees the image.
- ``ortho_init_``: BigGAN's initialisation, orthogonal weights (Saxe et al. 2014), zero biases.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ConditionalBatchNorm2d(nn.Module):
    """``x [N, C, H, W]``, ``c [N, cond_dim]`` -> ``bn(x) * (1 + W_g c + b_g) + W_b c + b_b``.

    ``bn`` normalises with the batch's statistics (running ones in eval mode) and has no affine
    parameters of its own; with ``cond_dim == 0`` it has them and ``c`` must be None."""

    def __init__(self, channels: int, cond_dim: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.cond_dim = cond_dim
        self.bn = nn.BatchNorm2d(channels, eps=eps, momentum=momentum, affine=cond_dim == 0)
        self.gain = nn.Linear(cond_dim, channels) if cond_dim else None
        self.bias = nn.Linear(cond_dim, channels) if cond_dim else None

    def forward(self, x: Tensor, c: Tensor | None) -> Tensor:
        h = self.bn(x)  # [N, C, H, W]
        if self.gain is None:
            return h
        gain = 1 + self.gain(c)[:, :, None, None]  # [N, C, 1, 1]
        bias = self.bias(c)[:, :, None, None]  # [N, C, 1, 1]
        return h * gain + bias


class SelfAttention(nn.Module):
    """SAGAN's self-attention over the H*W positions of a map; output shape = input shape."""

    def __init__(self, channels: int):
        super().__init__()
        c8, c2 = max(channels // 8, 1), max(channels // 2, 1)
        self.theta = nn.Conv2d(channels, c8, 1, bias=False)
        self.phi = nn.Conv2d(channels, c8, 1, bias=False)
        self.g = nn.Conv2d(channels, c2, 1, bias=False)
        self.o = nn.Conv2d(c2, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))  # the block starts as the identity

    def attention(self, x: Tensor) -> Tensor:
        """``beta [N, HW, HW]``: row i is how position i weighs every position j (sums to 1)."""
        theta = self.theta(x).flatten(2)  # [N, C/8, HW]
        phi = self.phi(x).flatten(2)  # [N, C/8, HW]
        return torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # [N, HW, HW]

    def forward(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        beta = self.attention(x)  # [N, HW, HW]
        g = self.g(x).flatten(2)  # [N, C/2, HW]
        out = (g @ beta.transpose(1, 2)).view(n, -1, h, w)  # [N, C/2, H, W]
        return x + self.gamma * self.o(out)  # [N, C, H, W]


class GBlock(nn.Module):
    """``x [N, c_in, H, W]``, ``c [N, cond_dim]`` -> ``[N, c_out, 2H, 2W]``."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int):
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(c_in, cond_dim)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.bn2 = ConditionalBatchNorm2d(c_out, cond_dim)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: Tensor, c: Tensor | None) -> Tensor:
        h = F.interpolate(F.relu(self.bn1(x, c)), scale_factor=2.0)  # [N, c_in, 2H, 2W]
        h = self.conv1(h)  # [N, c_out, 2H, 2W]
        h = self.conv2(F.relu(self.bn2(h, c)))  # [N, c_out, 2H, 2W]
        return h + self.shortcut(F.interpolate(x, scale_factor=2.0))  # [N, c_out, 2H, 2W]


class DBlock(nn.Module):
    """``x [N, c_in, H, W]`` -> ``[N, c_out, H/2, W/2]`` (``down``) or ``[N, c_out, H, W]``."""

    def __init__(self, c_in: int, c_out: int, preactivation: bool, down: bool):
        super().__init__()
        self.preactivation, self.down = preactivation, down
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        learnable = c_in != c_out or down
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if learnable else None

    def _pool(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, 2) if self.down else x

    def _skip(self, x: Tensor) -> Tensor:
        if self.shortcut is None:
            return x
        if self.preactivation:  # conv then pool, as BigGAN does (the same up to the order)
            return self._pool(self.shortcut(x))
        return self.shortcut(self._pool(x))  # the first block: pool the image, then conv

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(x) if self.preactivation else x  # not in place: the shortcut reads x
        h = self.conv2(F.relu(self.conv1(h)))  # [N, c_out, H, W]
        return self._pool(h) + self._skip(x)  # [N, c_out, H', W']


def ortho_init_(module: nn.Module) -> None:
    """BigGAN's init: orthogonal weights for convolutions, linear layers and embeddings, zero
    biases. Use as ``net.apply(ortho_init_)``."""
    if isinstance(module, (nn.Conv2d, nn.Linear, nn.Embedding)):
        nn.init.orthogonal_(module.weight)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
