"""The PatchGAN discriminator of pix2pix (Isola et al. 2017) that CycleGAN uses (Zhu et al. 2017).

Instead of one score per image, D scores every overlapping patch: a stack of 4x4 convolutions
whose output map has one raw score per patch of ``receptive_field(n_layers)`` pixels (70x70 for
the paper's ``n_layers=3``), so D judges texture and local structure and runs on any image size.

Layers with ``c = ndf`` (channels capped at 8c, as in the paper):

    C@H -> c@H/2 -> 2c@H/4 -> ... (n_layers stride-2 convs) -> stride-1 conv -> 1@H'

The first convolution has no normalization, the others are followed by instance norm (no learned
scale and shift), every hidden layer by LeakyReLU(0.2). The scores are raw (no sigmoid), higher
= more real: ``[N, H', W']`` with ``H' = patch_map_size(H, n_layers)``, e.g. 30x30 for 256 px.
Weights are drawn N(0, 0.02) (``init_normal``).
"""

from __future__ import annotations

from torch import Tensor, nn

from ..errors import UserError
from .layers import check_positive, check_shape, init_normal

PAPER = {"ndf": 64, "n_layers": 3}  # the 70x70 PatchGAN of Isola et al. and Zhu et al.


def patch_map_size(side: int, n_layers: int) -> int:
    """The side of D's score map for an input side: each 4x4 stride-2 conv (padding 1) floors
    ``side / 2``, each of the two 4x4 stride-1 convs (padding 1) takes one off."""
    for _ in range(n_layers):
        side //= 2
    return side - 2


def receptive_field(n_layers: int) -> int:
    """The side of the input patch that one score sees: 70 for ``n_layers=3``, 34 for 2."""
    r = 1 + 3 + 3  # the two stride-1 4x4 convs
    for _ in range(n_layers):
        r = 2 * (r - 1) + 4  # a 4x4 conv of stride 2 below
    return r


class PatchDiscriminator(nn.Module):
    """Images ``[N, channels_in, H, W]`` -> raw patch scores ``[N, H', W']``, higher = more real.

    The map is at least 1x1 when ``H`` and ``W`` are at least ``3 * 2**n_layers`` (24 px for
    ``n_layers=3``, 12 for 2): 28 and 32 px digits give 5x5 and 6x6 with ``n_layers=2``.
    """

    def __init__(
        self,
        channels_in: int,  # image channels (1 grey, 3 RGB)
        ndf: int = 64,  # channels of the first conv; doubled per stride-2 conv, at most 8 ndf
        n_layers: int = 3,  # stride-2 convs: 3 gives 70x70 patches, 2 gives 34x34
    ):
        super().__init__()
        check_positive(channels_in=channels_in, ndf=ndf, n_layers=n_layers)
        self.channels_in, self.ndf, self.n_layers = channels_in, ndf, n_layers
        chans = [ndf * min(2**i, 8) for i in range(n_layers + 1)]
        layers: list[nn.Module] = [
            nn.Conv2d(channels_in, chans[0], 4, stride=2, padding=1),  # [N, c, H/2, W/2]
            nn.LeakyReLU(0.2),  # [N, c, H/2, W/2]
        ]
        for i in range(1, n_layers):
            layers += [
                nn.Conv2d(
                    chans[i - 1], chans[i], 4, stride=2, padding=1
                ),  # [N, c_i, H/2^(i+1), W/2^(i+1)]
                nn.InstanceNorm2d(chans[i]),  # [N, c_i, H/2^(i+1), W/2^(i+1)]
                nn.LeakyReLU(0.2),  # [N, c_i, H/2^(i+1), W/2^(i+1)]
            ]
        c = chans[n_layers]
        layers += [
            nn.Conv2d(chans[n_layers - 1], c, 4, stride=1, padding=1),  # [N, c, H'+1, W'+1]
            nn.InstanceNorm2d(c),  # [N, c, H'+1, W'+1]
            nn.LeakyReLU(0.2),  # [N, c, H'+1, W'+1]
            nn.Conv2d(c, 1, 4, stride=1, padding=1),  # [N, 1, H', W']
        ]
        self.net = nn.Sequential(*layers)
        init_normal(self)

    def check_size(self, h: int, w: int) -> None:
        """Raise ``UserError`` unless an ``h`` x ``w`` image gives a score map of at least 1x1."""
        if min(patch_map_size(h, self.n_layers), patch_map_size(w, self.n_layers)) < 1:
            low = 3 * 2**self.n_layers
            raise UserError(
                f"the PatchGAN discriminator with n_layers={self.n_layers} needs images of at "
                f"least {low}x{low} px, got {h}x{w}; use larger images or fewer n_layers"
            )

    def forward(self, x: Tensor) -> Tensor:
        check_shape(x, [None, self.channels_in, None, None], "x")
        self.check_size(x.shape[2], x.shape[3])
        return self.net(x).squeeze(1)  # [N, H', W']
