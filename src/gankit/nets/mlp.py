"""Fully connected G and D, as in the original GAN (Goodfellow et al. 2014).

For toy data (``shape == (D,)``) every hidden layer has ``cfg.width`` units and G's output is
linear (the grid data spans [-4, 4]). For images the data are flattened and G's hidden layers
grow ``width, 2*width, 4*width, ...`` while D's shrink in mirror; with width=256, depth=3 and
z_dim=100 this is the classic MNIST GAN: z -> 256 -> 512 -> 1024 -> 784 and 784 -> 1024 -> 512 ->
256 -> 1. G then ends in tanh (images live in [-1, 1]).

Both nets use LeakyReLU(cfg.leak); D applies dropout (cfg.dropout, 0.3 in the classic MNIST GAN)
after each hidden layer. There is no batch norm: the original MLP GAN had none, and a
discriminator without it keeps each sample's score independent of the rest of the batch, which
the gradient penalty of WGAN-GP relies on. Weights keep PyTorch's default init.

``model.mbstd=G`` puts a minibatch standard-deviation layer (Karras et al. 2018; the layer of
StyleGAN's D) before D's last hidden layer: that layer sees one more input, the spread of the
features over groups of G samples.

The family's own options (``model.options.*``, all off by default) give G a size of its own
(``g_width``, ``g_depth``), batch norm in G's hidden layers (``g_batchnorm``) and maxout units
in D (``d_maxout``): with ``model.leak=0`` they build the 2-D nets of VEEGAN (Srivastava et al.
2017), which PacGAN (Lin et al. 2018) reuses: G of 4 ReLU layers of 400 units with batch norm,
D of 3 layers of 200 maxout units of 5 pieces.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

from torch import Tensor, nn

from ..config import ModelConfig, build_options
from ..errors import UserError
from ..registry import NETS
from .layers import (
    AutoencoderD,
    LabelInput,
    ScoreHead,
    check_build_args,
    check_labels,
    check_shape,
    mlp_stack,
)
from .style_layers import MinibatchStd


@dataclass
class MLPOptions:
    """``model.options.*`` of ``model.net=mlp``; the defaults build the classic nets."""

    g_width: int = 0  # G's hidden units (images: its first layer's); 0 = model.width
    g_depth: int = 0  # G's hidden layers; 0 = model.depth
    g_batchnorm: bool = False  # batch norm after each of G's hidden linear layers
    d_maxout: int = 0  # D's hidden layers as maxout units of this many pieces; 0 = LeakyReLU

    def __post_init__(self) -> None:
        for key in ("g_width", "g_depth", "d_maxout"):
            if getattr(self, key) < 0:
                raise UserError(
                    f"model.options.{key} must be 0 (off) or positive, got {getattr(self, key)}"
                )
        if self.d_maxout == 1:
            raise UserError("model.options.d_maxout=1 is a linear layer; use 0 (off) or 2 or more")


def options(cfg: ModelConfig) -> MLPOptions:
    return build_options(MLPOptions, cfg.options, "model.options.", "model.net=mlp")


def hidden_widths(cfg: ModelConfig, shape: tuple[int, ...], role: str = "D") -> list[int]:
    """The hidden widths of G (``role="G"``, whose own options apply) or D, input side of G
    first; D uses them reversed."""
    width, depth = cfg.width, cfg.depth
    if role == "G":
        opts = options(cfg)
        width, depth = opts.g_width or width, opts.g_depth or depth
    if len(shape) == 1:
        return [width] * depth
    return [width * 2**i for i in range(depth)]


def d_stack(
    in_dim: int, widths: list[int], leak: float, dropout: float, mbstd: int, maxout: int = 0
) -> nn.Sequential:
    """D's hidden layers; with ``mbstd`` > 0 the minibatch-std layer comes before the last one
    (off: the plain stack, so checkpoints of earlier runs keep their parameter names)."""
    if not mbstd:
        return mlp_stack(in_dim, widths, leak, dropout, maxout=maxout)
    first = mlp_stack(in_dim, widths[:-1], leak, dropout, maxout=maxout)  # [N, widths[-2]]
    last_in = widths[-2] if len(widths) > 1 else in_dim
    return nn.Sequential(
        first,
        MinibatchStd(mbstd),  # [N, last_in + 1]
        mlp_stack(last_in + 1, widths[-1:], leak, dropout, maxout=maxout),  # [N, widths[-1]]
    )


class MLPGenerator(nn.Module):
    """``z [N, z_dim]`` (+ labels ``y [N]``) -> samples ``[N, *shape]``."""

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...], num_classes: int = 0):
        super().__init__()
        self.cfg = dataclasses.replace(cfg)
        self.shape = check_build_args(shape, num_classes)
        self.num_classes = num_classes
        self.z_dim = cfg.z_dim
        widths = hidden_widths(cfg, self.shape, "G")
        self.label = LabelInput(cfg.cond, num_classes, cfg.z_dim)
        bn = options(cfg).g_batchnorm
        self.body = mlp_stack(cfg.z_dim + self.label.dim, widths, cfg.leak, batchnorm=bn)
        self.out = nn.Linear(widths[-1], math.prod(self.shape))
        self.squash = nn.Tanh() if len(self.shape) == 3 else nn.Identity()

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        check_shape(z, [None, self.z_dim], "z")
        y = check_labels(y, z.shape[0], self.num_classes)
        h = self.label.join(z, y)  # [N, z_dim + label_dim]
        h = self.body(h)  # [N, widths[-1]]
        x = self.squash(self.out(h))  # [N, prod(shape)]
        return x.view(-1, *self.shape)  # [N, *shape]


class MLPDiscriminator(nn.Module):
    """Samples ``[N, *shape]`` (+ labels ``y [N]``) -> raw scores ``[N]``, higher = more real.

    ``cfg.cond == "onehot"`` concatenates ``one_hot(y)`` to the flattened input;
    ``cfg.cond == "embed"`` uses a projection head on the last hidden layer.
    """

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...], num_classes: int = 0):
        super().__init__()
        self.cfg = dataclasses.replace(cfg)
        self.shape = check_build_args(shape, num_classes)
        self.num_classes = num_classes
        widths = hidden_widths(cfg, self.shape)[::-1]
        self.label = LabelInput("onehot", num_classes if cfg.cond == "onehot" else 0)
        in_dim = math.prod(self.shape) + self.label.dim
        maxout = options(cfg).d_maxout
        self.body = d_stack(in_dim, widths, cfg.leak, cfg.dropout, cfg.mbstd, maxout)
        self.head = ScoreHead(widths[-1], num_classes if cfg.cond == "embed" else 0)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        check_shape(x, [None, *self.shape], "x")
        y = check_labels(y, x.shape[0], self.num_classes)
        h = self.label.join(x.flatten(1), y)  # [N, prod(shape) + label_dim]
        h = self.body(h)  # [N, width]
        return self.head(h, y)  # [N]


class MLPAutoencoderD(AutoencoderD):
    """EBGAN's D (Zhao et al. 2017) as MLPs: the encoder mirrors D's hidden layers and ends in a
    linear code of ``cfg.width`` units (the bottleneck); the decoder mirrors G's, linear output."""

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...], num_classes: int = 0):
        shape = check_build_args(shape, num_classes)
        super().__init__(shape, num_classes)
        self.cfg = dataclasses.replace(cfg)
        widths = hidden_widths(cfg, shape)  # G's order (not G's options): widths[0] == cfg.width
        in_dim = math.prod(shape)
        self.code_dim = widths[0]
        enc_hidden = widths[:0:-1]  # D's hidden layers but the last, which becomes the code
        self.encoder = nn.Sequential(
            nn.Flatten(1),  # [N, prod(shape)]
            mlp_stack(in_dim, enc_hidden, cfg.leak, cfg.dropout),
            nn.Linear(enc_hidden[-1] if enc_hidden else in_dim, self.code_dim),  # [N, width]
        )
        self.decoder = nn.Sequential(
            nn.LeakyReLU(cfg.leak),
            mlp_stack(self.code_dim, widths[1:], cfg.leak),
            nn.Linear(widths[-1], in_dim),  # [N, prod(shape)]
            nn.Unflatten(1, shape),  # [N, *shape]
        )


@NETS.register("mlp")
def build_mlp(
    role: Literal["G", "D"], cfg: ModelConfig, shape: tuple[int, ...], num_classes: int = 0
) -> nn.Module:
    """The MLP family's G or D for one data sample's ``shape``."""
    if role == "G":
        return MLPGenerator(cfg, shape, num_classes)
    if role == "D":
        if cfg.d_output == "autoencoder":
            if options(cfg).d_maxout:
                raise UserError(
                    "model.options.d_maxout builds a D that scores samples, not an autoencoder "
                    "D (model.d_output=autoencoder, as ebgan's); set model.options.d_maxout=0"
                )
            return MLPAutoencoderD(cfg, shape, num_classes)
        return MLPDiscriminator(cfg, shape, num_classes)
    raise ValueError(f"role must be 'G' or 'D', got {role!r}")


build_mlp.Options = MLPOptions  # type: ignore[attr-defined]
