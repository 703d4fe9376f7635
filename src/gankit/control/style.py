"""Control in W for a generator with a mapping network (Karras et al. 2019, "A style-based
generator architecture for GANs", sections 3 and 5 and figures 3, 4 and 8):

- **Truncation in W**: ``w' = w_avg + psi (w - w_avg)``, psi from 1 (no truncation) to 0 (every
  sample is the average image ``synthesis(w_avg)``). Nets without a mapping network truncate z
  towards the prior's mean instead, ``psi * z`` (``latent.truncate_to_mean``).
- **Style mixing** (figure 3): ``ws [N, num_ws, w_dim]`` take one w for some synthesis layers and
  another for the rest. In the paper's grid the top row holds the images of sources B and the
  left column those of sources A; the cell in row r, column c takes **all** styles of the row's
  source A except the chosen group's (coarse 4-8 px, middle, fine: ``G.layer_groups()``), which
  it copies from the column's source B (the caption: "copying a specified subset of styles from
  source B and taking the rest from source A"; NVlabs' ``draw_style_mixing_figure`` does the
  same, with B = ``src`` on top and A = ``dst`` on the left). A crossover index I copies from B
  the indices ``0..I-1`` (coarse ones first) and keeps A's from I on: w1 = w_B below I, w2 = w_A
  from I, as style-mixing regularisation crosses over in training.
- **Stochastic variation** (figure 4): one w, the per-pixel noise drawn again and again from
  seeded generators; the per-pixel standard deviation over many draws shows what the noise
  controls (zero wherever every layer's noise strength is zero).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..errors import UserError
from .latent import check_labels, generate, sample_latents, truncate_to_mean
from .spaces import check_mapping, has_mapping, w_space

GROUPS = ("coarse", "middle", "fine")


# ------------------------------------------------------------------------------------ truncation
def truncated_images(
    net: nn.Module, z: Tensor, labels: Tensor | None = None, psi: float = 1.0
) -> Tensor:
    """Images ``[N, *shape]`` of ``z [N, z_dim]`` truncated by ``psi`` in [0, 1]: in W for a net
    with a mapping network (``w_avg + psi (w - w_avg)``), else in Z (``psi * z``)."""
    if not 0.0 <= psi <= 1.0:
        raise UserError(f"psi must be in [0, 1] (1 = no truncation), got {psi}")
    if not has_mapping(net):
        return generate(net, truncate_to_mean(z, psi), labels)
    sp = w_space(net)
    w = sp.codes(z, labels).to(next(net.parameters()).device)  # [N, w_dim]
    return sp.generate(net.truncate(w, psi))  # [N, *shape]


def truncation_strip(
    net: nn.Module, z: Tensor, labels: Tensor | None = None, steps: int = 9
) -> tuple[Tensor, Tensor]:
    """``(images [R, steps, *shape], psi [steps])``: row r is ``z[r]`` truncated by psi from 1
    (left) to 0 (right) in equal steps (Karras et al. 2019, figure 8); in W for a mapping net."""
    if steps < 2:
        raise UserError(f"a truncation strip needs at least 2 steps (psi 1 and 0), got {steps}")
    if z.dim() != 2 or len(z) == 0:
        raise UserError(f"z must have shape [R >= 1, z_dim], got {list(z.shape)}")
    psis = torch.linspace(1.0, 0.0, steps)  # [steps]
    cols = [truncated_images(net, z, labels, float(p)) for p in psis]  # steps x [R, *shape]
    return torch.stack(cols, dim=1), psis  # [R, steps, *shape]


# -------------------------------------------------------------------------------- style mixing
def mix_ws(w_rest: Tensor, w_group: Tensor, indices: Sequence[int], num_ws: int) -> Tensor:
    """``ws [N, num_ws, w_dim]``: ``w_rest [N, w_dim]`` at every index but ``indices``, which
    take ``w_group [N, w_dim]``."""
    if w_rest.shape != w_group.shape or w_rest.dim() != 2:
        raise UserError(
            f"want two w [N, w_dim], got {list(w_rest.shape)} and {list(w_group.shape)}"
        )
    bad = [i for i in indices if not 0 <= i < num_ws]
    if bad:
        raise UserError(f"ws indices must be in 0..{num_ws - 1}, got {bad}")
    ws = w_rest[:, None].repeat(1, num_ws, 1)  # [N, num_ws, w_dim]
    ws[:, list(indices)] = w_group[:, None]
    return ws


def check_crossover(crossover: int, num_ws: int) -> None:
    if not 1 <= crossover <= num_ws - 1:
        raise UserError(
            f"the crossover index must be in 1..{num_ws - 1} (this G has {num_ws} ws: index I "
            f"takes ws 0..I-1 from one w and I..{num_ws - 1} from the other), got {crossover}"
        )


def crossover_ws(w1: Tensor, w2: Tensor, crossover: int, num_ws: int) -> Tensor:
    """``ws [N, num_ws, w_dim]``: ``w1`` at indices below ``crossover``, ``w2`` from it on."""
    check_crossover(crossover, num_ws)
    return mix_ws(w2, w1, range(crossover), num_ws)


def group_indices(net: nn.Module, names: Sequence[str]) -> list[list[int]]:
    """The ws indices of each group name (coarse, middle, fine) of ``net.layer_groups()``."""
    groups = net.layer_groups()
    out = []
    for name in names:
        if name not in groups:
            raise UserError(
                f"unknown layer group {name!r}; the groups are {', '.join(groups)} (e.g. "
                "coarse,middle,fine)"
            )
        if not groups[name]:
            raise UserError(f"the {name} group of this G drives no layer; pick another group")
        out.append(groups[name])
    return out


@dataclass
class MixingGrid:
    """The style-mixing figure: ``images [R + 1, K + 1, *shape]`` with a blank top-left cell,
    the sources B in row 0, the sources A in column 0, mixes elsewhere; ``ws`` fed to them."""

    images: Tensor  # [R + 1, K + 1, *shape]
    ws: Tensor  # [R, K, num_ws, w_dim] the styles of the mixed cells
    rows: list[list[int]]  # [R] the ws indices each row copies from the sources B
    names: list[str] | None = None  # [R + 1] row labels (mixing_figure)


@torch.no_grad()
def mixing_grid(
    net: nn.Module,
    z_b: Tensor,  # [K, z_dim] sources B: the top row, giving the chosen indices
    z_a: Tensor,  # [R, z_dim] sources A: the left column, giving every other index
    rows: Sequence[Sequence[int]],  # [R] the ws indices row r copies from B
    labels_b: Tensor | None = None,  # [K] classes of a conditional G
    labels_a: Tensor | None = None,  # [R]
) -> MixingGrid:
    """Karras et al. 2019, figure 3: cell (r, c) shows ``ws`` equal to ``w_A[r]`` everywhere but
    at ``rows[r]``, which hold ``w_B[c]``; row 0 shows ``w_B``, column 0 ``w_A``."""
    check_mapping(net, "style mixing")
    if len(rows) != len(z_a):
        raise UserError(f"want one source A per row: {len(rows)} rows, {len(z_a)} sources A")
    sp = w_space(net)
    w_b, w_a = sp.codes(z_b, labels_b), sp.codes(z_a, labels_a)  # [K, w_dim], [R, w_dim]
    k, n = len(w_b), net.num_ws
    ws = torch.stack(
        [mix_ws(w_a[r : r + 1].expand(k, -1), w_b, idx, n) for r, idx in enumerate(rows)]
    )  # [R, K, num_ws, w_dim]
    mixed = synthesize(net, ws.flatten(0, 1))  # [R * K, *shape]
    shape = mixed.shape[1:]
    blank = torch.full((1, *shape), -1.0)  # the empty top-left cell
    top = torch.cat([blank, sp.generate(w_b)])  # [K + 1, *shape]
    left = sp.generate(w_a)  # [R, *shape]
    body = torch.cat([left[:, None], mixed.view(len(rows), k, *shape)], dim=1)  # [R, K + 1, ...]
    return MixingGrid(torch.cat([top[None], body]), ws, [list(r) for r in rows])


def _span(indices: Sequence[int]) -> str:
    i = list(indices)
    return (
        f"{i[0]}-{i[-1]}"
        if i == list(range(i[0], i[-1] + 1)) and len(i) > 1
        else ",".join(map(str, i))
    )


def mixing_figure(
    net: nn.Module,
    rows: Sequence[str] | None = None,  # group per row; None = coarse, middle, fine
    n_sources: int = 5,  # K sources B (columns)
    seed: int = 0,  # of the sources: the first K draws are B, the next R are A
    crossover: int | None = None,  # instead of groups: every row copies ws 0..I-1 from B
    label: int | None = None,  # the one class of a conditional G (None: the draws' classes)
) -> MixingGrid:
    """The style-mixing grid of ``sample_latents(z_dim, K + R, seed)``: K sources B on top, R
    sources A on the left (``mixing_grid``), one row per group name, or with ``crossover`` K rows
    that take ws ``0..crossover-1`` from B; ``names`` label the rows."""
    check_mapping(net, "style mixing")
    if n_sources < 1:
        raise UserError(f"style mixing needs at least 1 source per row, got {n_sources}")
    if crossover is not None:
        if rows is not None:
            raise UserError("a crossover index replaces the row groups; give one, not both")
        check_crossover(crossover, net.num_ws)
        idx = [list(range(crossover))] * n_sources
        names = [f"ws {_span(idx[0])} from B"] * n_sources
    else:
        rows = list(GROUPS if rows is None else rows)
        if not rows:
            raise UserError("style mixing needs at least one row group (coarse, middle, fine)")
        idx = group_indices(net, rows)
        names = [f"{g} from B (ws {_span(i)})" for g, i in zip(rows, idx, strict=True)]
    k, r = n_sources, len(idx)
    z, drawn = sample_latents(net.z_dim, k + r, seed, getattr(net, "num_classes", 0))
    y = check_labels(net, k + r, drawn if label is None else label)
    yb, ya = (None, None) if y is None else (y[:k], y[k:])
    grid = mixing_grid(net, z[:k], z[k:], idx, yb, ya)
    grid.names = ["sources B", *names]
    return grid


@torch.no_grad()
def synthesize(
    net: nn.Module,
    ws: Tensor,  # [N, num_ws, w_dim] or [N, w_dim]
    noise: str = "const",
    generator: torch.Generator | None = None,
    batch: int = 256,
) -> Tensor:
    """Images ``[N, *shape]`` (CPU) of ``G.synthesis(ws)`` in eval mode, in batches."""
    check_mapping(net, "synthesis from ws")
    device = next(net.parameters()).device
    was = net.training
    net.eval()
    try:
        out = [
            net.synthesis(ws[i : i + batch].to(device), noise, generator).float().cpu()
            for i in range(0, len(ws), batch)
        ]
    finally:
        net.train(was)
    return torch.cat(out)  # [N, *shape]


# --------------------------------------------------------------------------- stochastic variation
@dataclass
class Variation:
    """One w per row, its noise drawn again and again (Karras et al. 2019, figure 4)."""

    const: Tensor  # [N, *shape] with the net's fixed noise maps
    draws: Tensor  # [N, k, *shape] the first k of the random noise draws
    std: Tensor  # [N, H, W] per-pixel std over all draws (channels averaged)
    n_draws: int

    def figure(self) -> Tensor:
        """``[N, k + 2, C, H, W]``: the fixed-noise image, the k draws, then the std map scaled
        so the largest std of the figure is white (all black when the noise does nothing)."""
        top = self.std.max()
        s = self.std / top if top > 0 else self.std  # [N, H, W] in [0, 1]
        c = self.const.shape[1]
        smap = (2 * s - 1)[:, None, None].expand(-1, 1, c, -1, -1)  # [N, 1, C, H, W]
        return torch.cat([self.const[:, None], self.draws, smap], dim=1)


def noise_variation(
    net: nn.Module,
    z: Tensor,  # [N, z_dim] prior draws; their w stays fixed
    labels: Tensor | None = None,
    k: int = 4,  # draws to show
    n_draws: int = 64,  # draws behind the std map (the first k included)
    seed: int = 0,  # of the noise draws' generator
) -> Variation:
    """The images of ``w = mapping(z)`` with the per-pixel noise resampled ``n_draws`` times from
    one CPU generator seeded ``seed`` (draw j is the same for any device), and their std map."""
    check_mapping(net, "stochastic variation")
    if not 1 <= k <= n_draws or n_draws < 2:
        raise UserError(f"want 1 <= k <= draws and draws >= 2, got k={k}, draws={n_draws}")
    sp = w_space(net)
    y = check_labels(net, len(z), labels)
    w = sp.codes(z, y)  # [N, w_dim]
    gen = torch.Generator().manual_seed(seed)
    first = synthesize(net, w, "random", gen).double()  # [N, C, H, W]
    shown, s1, s2 = [first.float()], torch.zeros_like(first), torch.zeros_like(first)
    for j in range(1, n_draws):  # moments of x - first: exactly 0 when the noise does nothing
        x = synthesize(net, w, "random", gen).double()  # [N, C, H, W]
        if j < k:
            shown.append(x.float())
        d = x - first
        s1, s2 = s1 + d, s2 + d * d
    var = (s2 - s1 * s1 / n_draws) / (n_draws - 1)  # [N, C, H, W] unbiased
    std = var.clamp_min(0).sqrt().mean(1).float()  # [N, H, W]
    return Variation(sp.generate(w), torch.stack(shown, dim=1), std, n_draws)
