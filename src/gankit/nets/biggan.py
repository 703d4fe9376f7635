"""BigGAN's G and D (Brock et al. 2019, "Large scale GAN training for high fidelity natural image
synthesis"), CPU-sized, for 16, 28, 32 and 64 px images; the blocks are in ``biggan_layers.py``.

G: z is split into chunks (the hierarchical latent): the first feeds a linear layer that makes
the first map (4x4, or 7x7 at 28 px), each other chunk conditions one residual up-block. A class
embedding shared by all blocks (``model.options.shared_dim``) is concatenated to each block's
chunk; the result sets the gains and biases of the block's two conditional batch norms. Then
batch norm, ReLU, a 3x3 conv to the image's channels and tanh. ``model.options.hier=false`` gives
all of z to the first layer and conditions the batch norms on the class embedding alone; an
unconditional G conditions them on its z chunks (or, without either, uses plain batch norms).

D: residual down-blocks (the first not pre-activated), one more block at the last side without
down-sampling, ReLU, a sum over positions, ``phi(x)``, and the projection head (Miyato and Koyama
2018, ``layers.ScoreHead``): ``score = linear(phi(x)) + <embed(y), phi(x)>``. No batch norm in D.
``model.options.attn=S`` adds a self-attention block (SAGAN, Zhang et al. 2019) after the block of
G and of D whose maps have side S.

Channels with ``w = model.width``, e.g. at 32 px (BigGAN keeps 4w everywhere at 32 px; here they
halve per resolution, as in DCGAN, to fit a CPU):

    G: z0 -> 4w@4 -> 4w@8 -> 2w@16 -> w@32 -> C@32      D: C@32 -> w@16 -> 2w@8 -> 4w@4 -> 4w@4

Weights are orthogonal at init (BigGAN's); spectral normalisation of G and D (as in BigGAN) is
``model.spectral_norm_g`` and ``model.spectral_norm``, orthogonal regularisation of G
``train.ortho_reg``, the hinge loss ``train.variant=hinge``, truncation ``gankit sample
--truncation T`` (z from a normal truncated to ``|z_i| <= T``, every chunk).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from ..config import ModelConfig, build_options
from ..errors import UserError
from ..registry import NETS
from .biggan_layers import DBlock, GBlock, SelfAttention, ortho_init_
from .layers import ScoreHead, check_build_args, check_labels, check_shape

SIZES = {16: 4, 28: 7, 32: 4, 64: 4}  # image side -> side of G's first map


@dataclass
class BigGANOptions:
    """``model.options.*`` of ``model.net=biggan`` (BigGAN's values in brackets)."""

    shared_dim: int = 32  # size of G's shared class embedding (128)
    hier: bool = True  # hierarchical latent: one chunk of z per G block, and one for the input
    attn: int = 0  # side of the maps after which G and D get a self-attention block; 0 = none

    def __post_init__(self) -> None:
        if self.shared_dim < 1:
            raise UserError(f"model.options.shared_dim must be at least 1, got {self.shared_dim}")
        if self.attn < 0:
            raise UserError(f"model.options.attn must be 0 (none) or a side, got {self.attn}")


def options(cfg: ModelConfig) -> BigGANOptions:
    return build_options(BigGANOptions, cfg.options, "model.options.", "model.net=biggan")


def plan(cfg: ModelConfig, shape: tuple[int, ...], num_classes: int, image: bool) -> int:
    """The number of up-blocks of G (= down-blocks of D) for ``shape``, after refusing what this
    family cannot build, one sentence each; ``image``: the channels must be an image's (G)."""
    ok = len(shape) == 3 and shape[1] == shape[2] and shape[1] in SIZES
    if not ok or (image and shape[0] not in (1, 3)):
        raise UserError(
            f"model.net=biggan supports square 16, 28, 32 or 64 px images with 1 or 3 channels, "
            f"got data of shape {tuple(shape)}; set data.size to one of those"
        )
    for key, bad, fix in (
        ("dropout", cfg.dropout > 0, "model.dropout=0"),
        ("d_output", cfg.d_output != "linear", "model.d_output=linear (not ebgan's autoencoder)"),
        ("mbstd", cfg.mbstd > 0, "model.mbstd=0"),
    ):
        if bad:
            raise UserError(f"model.net=biggan has no {key} option; set {fix}")
    if not cfg.batchnorm:
        raise UserError(
            "model.net=biggan's G always has (conditional) batch norms and its D none; set "
            "model.batchnorm=true"
        )
    if num_classes and cfg.cond != "embed":
        raise UserError(
            "model.net=biggan conditions by embedding (a shared class embedding in G, a "
            "projection in D); set model.cond=embed"
        )
    side = shape[1]
    n_up = (side // SIZES[side]).bit_length() - 1  # 2 (16, 28 px), 3 (32), 4 (64)
    attn = options(cfg).attn
    if attn and attn not in attention_sides(side, n_up):
        valid = ", ".join(map(str, attention_sides(side, n_up))) or "none at this size"
        raise UserError(
            f"model.options.attn={attn} is not a side of both G's and D's maps at {side} px; "
            f"choose one of: {valid} (or 0: no attention)"
        )
    return n_up


def g_sides(side: int, n_up: int) -> list[int]:
    """The sides of G's up-blocks' outputs."""
    return [SIZES[side] * 2 ** (i + 1) for i in range(n_up)]


def d_sides(side: int, n_up: int) -> list[int]:
    """The sides of D's down-blocks' outputs (its last block keeps the last one)."""
    return [side >> (i + 1) for i in range(n_up)]


def attention_sides(side: int, n_up: int) -> list[int]:
    """The values ``model.options.attn`` may take at this image side: sides of both nets."""
    return sorted(set(g_sides(side, n_up)) & set(d_sides(side, n_up)))


def chunk_sizes(z_dim: int, slots: int) -> list[int]:
    """Sizes of the ``slots`` chunks of z, as equal as possible (the first ones 1 larger)."""
    return [z_dim // slots + (i < z_dim % slots) for i in range(slots)]


class BigGANGenerator(nn.Module):
    """``z [N, z_dim]`` (+ labels ``y [N]``) -> images ``[N, C, H, W]`` in [-1, 1]."""

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...], num_classes: int = 0):
        super().__init__()
        self.shape = check_build_args(shape, num_classes)
        n_up = plan(cfg, self.shape, num_classes, image=True)
        self.opts = opts = options(cfg)
        self.num_classes, self.z_dim = num_classes, cfg.z_dim
        self.base = SIZES[self.shape[1]]
        slots = n_up + 1 if opts.hier else 1
        if cfg.z_dim < slots:
            raise UserError(
                f"model.z_dim={cfg.z_dim} cannot be split into the {slots} chunks of the "
                f"hierarchical latent; set model.z_dim={slots} or more, or model.options.hier=false"
            )
        self.z_sizes = chunk_sizes(cfg.z_dim, slots)
        self.shared = nn.Embedding(num_classes, opts.shared_dim) if num_classes else None
        e = opts.shared_dim if num_classes else 0
        cond = [(self.z_sizes[i + 1] if opts.hier else 0) + e for i in range(n_up)]
        chans = [cfg.width * 2 ** (n_up - 1 - i) for i in range(n_up)]  # block outputs
        self.first = chans[0]
        self.linear = nn.Linear(self.z_sizes[0], self.first * self.base**2)
        ins = [self.first, *chans[:-1]]
        blocks = zip(ins, chans, cond, strict=True)
        self.blocks = nn.ModuleList(GBlock(a, b, c) for a, b, c in blocks)
        sides = g_sides(self.shape[1], n_up)
        self.attn_after = sides.index(opts.attn) if opts.attn else -1
        self.attn = SelfAttention(chans[self.attn_after]) if opts.attn else None
        self.out = nn.Sequential(
            nn.BatchNorm2d(chans[-1]), nn.ReLU(), nn.Conv2d(chans[-1], self.shape[0], 3, padding=1)
        )
        self.apply(ortho_init_)

    def conditions(self, z: Tensor, y: Tensor | None) -> tuple[Tensor, list[Tensor | None]]:
        """``(z0 [N, z_sizes[0]], [c_i [N, cond_i] or None per block])``: the first layer's
        chunk of z and each block's conditioning vector, ``cat(z_{i+1}, shared(y))``."""
        chunks = z.split(self.z_sizes, dim=1) if self.opts.hier else (z,)
        e = self.shared(y).to(z.dtype) if self.shared is not None else None  # [N, shared_dim]
        conds: list[Tensor | None] = []
        for i in range(len(self.blocks)):
            parts = [chunks[i + 1]] if self.opts.hier else []
            parts += [e] if e is not None else []
            conds.append(torch.cat(parts, dim=1) if parts else None)  # [N, cond_i]
        return chunks[0], conds

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        check_shape(z, [None, self.z_dim], "z")
        y = check_labels(y, z.shape[0], self.num_classes)
        z0, conds = self.conditions(z, y)
        h = self.linear(z0).view(-1, self.first, self.base, self.base)  # [N, c0, b, b]
        for i, (block, c) in enumerate(zip(self.blocks, conds, strict=True)):
            h = block(h, c)  # [N, c_i, 2s, 2s]
            if i == self.attn_after:
                h = self.attn(h)
        return self.out(h).tanh()  # [N, C, H, W]


class BigGANDiscriminator(nn.Module):
    """Images ``[N, C, H, W]`` (+ labels ``y [N]``) -> raw scores ``[N]``, higher = more real.

    Takes any number of input channels: a packed D (PacGAN, ``train.pac``) sees m images'."""

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...], num_classes: int = 0):
        super().__init__()
        self.shape = check_build_args(shape, num_classes)
        n_up = plan(cfg, self.shape, num_classes, image=False)
        opts = options(cfg)
        self.num_classes = num_classes
        chans = [cfg.width * 2**i for i in range(n_up)] + [cfg.width * 2 ** (n_up - 1)]
        ins = [self.shape[0], *chans[:-1]]
        self.blocks = nn.ModuleList(
            DBlock(a, b, preactivation=i > 0, down=i < n_up)
            for i, (a, b) in enumerate(zip(ins, chans, strict=True))
        )
        sides = d_sides(self.shape[1], n_up)
        self.attn_after = sides.index(opts.attn) if opts.attn else -1
        self.attn = SelfAttention(chans[self.attn_after]) if opts.attn else None
        self.head = ScoreHead(chans[-1], num_classes)
        self.apply(ortho_init_)

    def features(self, x: Tensor) -> Tensor:
        """``phi(x) [N, c_last]``: the last block's ReLU summed over positions."""
        h = x
        for i, block in enumerate(self.blocks):
            h = block(h)  # [N, c_i, s_i, s_i]
            if i == self.attn_after:
                h = self.attn(h)
        return torch.relu(h).sum(dim=(2, 3))  # [N, c_last]

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        check_shape(x, [None, *self.shape], "x")
        y = check_labels(y, x.shape[0], self.num_classes)
        return self.head(self.features(x), y)  # [N]


def build_biggan(
    role: Literal["G", "D"], cfg: ModelConfig, shape: tuple[int, ...], num_classes: int = 0
) -> nn.Module:
    """The BigGAN family's G or D for one image's ``shape`` ``(C, H, W)``."""
    if role == "G":
        return BigGANGenerator(dataclasses.replace(cfg), shape, num_classes)
    if role == "D":
        return BigGANDiscriminator(dataclasses.replace(cfg), shape, num_classes)
    raise ValueError(f"role must be 'G' or 'D', got {role!r}")


build_biggan.Options = BigGANOptions  # type: ignore[attr-defined]
NETS.register("biggan")(build_biggan)
