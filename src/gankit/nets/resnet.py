"""The ResNet image-to-image generator of CycleGAN (Zhu et al. 2017).

The architecture is the one Zhu et al. take from Johnson et al. (2016, perceptual losses for style
transfer): a 7x7 stem, ``n_down`` stride-2 convolutions that halve H and W while doubling the
channels, ``n_blocks`` residual blocks at the lowest resolution, ``n_down`` stride-2 transposed
convolutions back up, and a 7x7 output convolution ending in tanh. Borders are reflection-padded
(the 7x7 convolutions and the residual blocks), which avoids the dark frame zero padding leaves.

Normalization is instance norm without learned scale and shift and without running statistics
(``nn.InstanceNorm2d``'s defaults, which are also the CycleGAN code's default ``--norm instance``),
so the convolutions keep their biases. Weights are drawn N(0, 0.02) (``init_normal``).

Channels with ``c = ngf``, ``d = n_down`` (2 in the paper):

    C_in@H -> c@H -> 2c@H/2 -> ... -> 2^d c@H/2^d -> [n_blocks x residual] -> ... -> c@H -> C_out@H

The paper uses ``ngf=64`` with 6 blocks for 128 px and 9 blocks for 256 px (``PAPER_256``:
11.38M parameters for RGB); digits need far less (the defaults: ``ngf=32``, 6 blocks).
"""

from __future__ import annotations

from torch import Tensor, nn

from ..errors import UserError
from .layers import check_positive, check_shape, init_normal

PAPER_256 = {"ngf": 64, "n_blocks": 9, "n_down": 2}  # Zhu et al. 2017, 256x256 images


class ResnetBlock(nn.Module):
    """``x + F(x)`` with F = pad, 3x3 conv, IN, ReLU, pad, 3x3 conv, IN; keeps ``[N, C, H, W]``."""

    def __init__(self, channels: int):
        super().__init__()
        c = channels
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),  # [N, c, H+2, W+2]
            nn.Conv2d(c, c, 3),  # [N, c, H, W]
            nn.InstanceNorm2d(c),  # [N, c, H, W]
            nn.ReLU(),  # [N, c, H, W]
            nn.ReflectionPad2d(1),  # [N, c, H+2, W+2]
            nn.Conv2d(c, c, 3),  # [N, c, H, W]
            nn.InstanceNorm2d(c),  # [N, c, H, W]
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)  # [N, c, H, W]


class ResnetGenerator(nn.Module):
    """Images ``[N, channels_in, H, W]`` in [-1, 1] -> images ``[N, channels_out, H, W]`` in
    [-1, 1]; H and W must be multiples of ``2**n_down`` (and at least 4 and ``2 * 2**n_down``).
    """

    def __init__(
        self,
        channels_in: int,  # image channels of the source domain (1 grey, 3 RGB)
        channels_out: int,  # image channels of the target domain
        ngf: int = 32,  # channels after the stem; doubled by each downsampling
        n_blocks: int = 6,  # residual blocks at the lowest resolution
        n_down: int = 2,  # stride-2 down (and up) convolutions: the bottleneck is H / 2**n_down
    ):
        super().__init__()
        check_positive(
            channels_in=channels_in,
            channels_out=channels_out,
            ngf=ngf,
            n_blocks=n_blocks,
            n_down=n_down,
        )
        self.channels_in, self.channels_out = channels_in, channels_out
        self.ngf, self.n_blocks, self.n_down = ngf, n_blocks, n_down
        c, d = ngf, n_down
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),  # [N, C_in, H+6, W+6]
            nn.Conv2d(channels_in, c, 7),  # [N, c, H, W]
            nn.InstanceNorm2d(c),  # [N, c, H, W]
            nn.ReLU(),  # [N, c, H, W]
        ]
        for i in range(d):  # down: 3x3, stride 2, zero padding 1 halves an even side exactly
            c_in, c_out = c * 2**i, c * 2 ** (i + 1)
            layers += [
                nn.Conv2d(c_in, c_out, 3, stride=2, padding=1),  # [N, c_out, H/2^(i+1), W/2^(i+1)]
                nn.InstanceNorm2d(c_out),  # [N, c_out, H/2^(i+1), W/2^(i+1)]
                nn.ReLU(),  # [N, c_out, H/2^(i+1), W/2^(i+1)]
            ]
        layers += [ResnetBlock(c * 2**d) for _ in range(n_blocks)]  # [N, 2^d c, H/2^d, W/2^d]
        for i in reversed(range(d)):  # up: output_padding 1 makes each layer double exactly
            c_in, c_out = c * 2 ** (i + 1), c * 2**i
            layers += [
                nn.ConvTranspose2d(
                    c_in, c_out, 3, stride=2, padding=1, output_padding=1
                ),  # [N, c_out, H/2^i, W/2^i]
                nn.InstanceNorm2d(c_out),  # [N, c_out, H/2^i, W/2^i]
                nn.ReLU(),  # [N, c_out, H/2^i, W/2^i]
            ]
        layers += [
            nn.ReflectionPad2d(3),  # [N, c, H+6, W+6]
            nn.Conv2d(c, channels_out, 7),  # [N, C_out, H, W]
            nn.Tanh(),  # [N, C_out, H, W] in [-1, 1]
        ]
        self.net = nn.Sequential(*layers)
        init_normal(self)

    def check_size(self, h: int, w: int) -> None:
        """Raise ``UserError`` unless an ``h`` x ``w`` image fits this generator."""
        m = 2**self.n_down
        low = max(4, 2 * m)  # reflection padding needs a side > 3 here and > 1 in the blocks
        if h % m or w % m or min(h, w) < low:
            raise UserError(
                f"the ResNet generator with n_down={self.n_down} needs image sides that are "
                f"multiples of {m} and at least {low}, got {h}x{w}; resize the images or "
                f"change n_down"
            )

    def forward(self, x: Tensor) -> Tensor:
        check_shape(x, [None, self.channels_in, None, None], "x")
        self.check_size(x.shape[2], x.shape[3])
        return self.net(x)  # [N, C_out, H, W]
