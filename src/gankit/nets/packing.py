"""PacGAN packing (Lin, Khetan, Fanti and Oh 2018, "PacGAN: the power of two samples in
generative adversarial networks").

D judges ``m`` samples at once instead of one: a pack of m real samples against a pack of m
generated ones. A generator that collapses onto few modes makes packs whose members look alike,
which D tells from real packs easily, so packing penalises mode collapse; the paper shows that
the packed game's optimum punishes it more strongly as m grows.

``PackedD`` is built by ``nets.build_discriminator`` (``train.pac=m``), around a D of the same
family whose input layer is built for m times the input size, and scores ``[N, *shape]`` as
``N / m`` packs of consecutive samples, concatenated as the paper does: along the feature axis for
toy data (``[N, D]`` -> ``[N/m, m*D]``) and along the channels for images (``[N, C, H, W]`` ->
``[N/m, m*C, H, W]``; an MLP D then flattens a pack to the m images' pixels one after another).
It returns ``[N / m]`` raw scores. The variants cannot tell: they call ``D(real)`` and
``D(fake)`` separately, so a pack holds real with real and fake with fake, and the losses average
over whatever number of scores D returns.

- **Gradient penalty and R1** (``losses.penalties``) take the gradient norm per score: for a
  packed D, over each pack of m samples, since the pack is D's input. WGAN-GP's interpolates
  ``eps x + (1 - eps) G(z)`` are drawn per sample (eps per sample, as without packing) and
  packed the same way, so a pack of interpolates lies between a real pack and a fake pack.
- **Labels**: refused (``train.pac`` with ``data.classes=true``): a pack would hold m classes
  and D one label input.
- **Autoencoder D** (EBGAN's): refused; it reconstructs each sample, it does not score packs.
- ``score_points(x)`` scores each sample alone as a pack of m copies of itself: the trainer's
  2-D heat maps of D use it.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from .layers import check_shape


def packed_shape(shape: Sequence[int], pac: int) -> tuple[int, ...]:
    """The shape of one pack of ``pac`` samples of ``shape``: ``(pac*D,)`` or ``(pac*C, H, W)``."""
    return (pac * shape[0], *shape[1:])


class PackedD(nn.Module):
    """``x [N, *shape]`` -> ``[N / pac]`` raw scores of packs of ``pac`` consecutive samples."""

    def __init__(self, net: nn.Module, pac: int, shape: Sequence[int]):
        super().__init__()
        self.net, self.pac, self.shape = net, pac, tuple(shape)
        self.num_classes = 0

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        check_shape(x, [None, *self.shape], "x")
        n = x.shape[0]
        if n % self.pac:
            raise ValueError(f"a packed D scores packs of {self.pac} samples; got a batch of {n}")
        if y is not None:
            raise ValueError("a packed D is unconditional; call it without labels y")
        packs = x.reshape(n // self.pac, *packed_shape(self.shape, self.pac))  # [N/m, m*C, ...]
        return self.net(packs)  # [N/m]

    def score_points(self, x: Tensor) -> Tensor:
        """Each sample of ``x [N, *shape]`` scored alone, as a pack of ``pac`` copies of itself:
        ``[N]`` scores (for heat maps of D over single points)."""
        return self(x.repeat_interleave(self.pac, dim=0))  # [N]
