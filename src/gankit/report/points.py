"""Real against generated toy data: a 2-D scatter over a heat map of the discriminator, or 1-D
density histograms with D as a curve, the classic mixture-of-Gaussians picture of mode collapse
(Metz et al. 2017)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from torch import Tensor

from gankit.report.plots import DPI, FAKE_COLOR, REAL_COLOR, _save, _style

# The light half of "Greys": dark enough to read D's view, light enough for points on top.
_HEAT_CMAP = ListedColormap(matplotlib.colormaps["Greys"](np.linspace(0.0, 0.6, 256)), "heat")
FIELD_CHUNK = 8192  # grid points per call of the field: bounds memory for big discriminators


def _as_numpy(x: Tensor) -> np.ndarray:
    return x.detach().float().cpu().numpy()


def _eval_field(field: Callable[[Tensor], Tensor], points: np.ndarray) -> np.ndarray:
    """field over ``points`` [M, D] in chunks, without autograd -> [M]."""
    grid = torch.from_numpy(points.astype(np.float32))
    with torch.no_grad():
        out = [field(chunk).detach().float().cpu().reshape(-1) for chunk in grid.split(FIELD_CHUNK)]
    values = torch.cat(out).numpy()  # [M]
    if values.shape[0] != points.shape[0]:
        got, want = values.shape[0], points.shape[0]
        raise ValueError(f"field must return one value per point: {got} values for {want} points")
    return values


def _bounds(arrays: list[np.ndarray], margin: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension (low, high) covering every array, widened by ``margin`` of the span."""
    stacked = np.concatenate(arrays)
    low, high = stacked.min(axis=0), stacked.max(axis=0)
    pad = np.maximum((high - low) * margin, 0.5)  # 0.5: a collapsed G must not give a zero span
    return low - pad, high + pad


def _is_probability(values: np.ndarray) -> bool:
    return bool(values.min() >= 0 and values.max() <= 1)


def _legend(fig: Figure) -> None:
    """One legend under the plot, out of the data's way; scatter handles at a readable size."""
    pairs = [pair for ax in fig.axes for pair in zip(*ax.get_legend_handles_labels(), strict=True)]
    order = ["real", "generated", "modes"]  # whatever the drawing order; field curves last
    pairs.sort(key=lambda pair: order.index(pair[1]) if pair[1] in order else len(order))
    handles, labels = zip(*pairs, strict=True)
    legend = fig.legend(handles, labels, loc="outside lower center", ncols=4, frameon=False)
    for handle in legend.legend_handles:
        if hasattr(handle, "set_sizes"):
            handle.set_sizes([36])
            handle.set_alpha(1.0)


def _points_2d(ax: Axes, fig: Figure, real, fake, field, field_label, modes) -> None:
    low, high = _bounds([real, fake] + ([modes] if modes is not None else []))
    if field is not None:
        xs, ys = np.linspace(low[0], high[0], 200), np.linspace(low[1], high[1], 200)
        gx, gy = np.meshgrid(xs, ys)  # [200, 200] each, rows follow y
        heat = _eval_field(field, np.stack([gx.ravel(), gy.ravel()], 1)).reshape(gx.shape)
        prob = _is_probability(heat)
        image = ax.imshow(
            heat, origin="lower", extent=(low[0], high[0], low[1], high[1]), cmap=_HEAT_CMAP,
            vmin=0 if prob else None, vmax=1 if prob else None, aspect="equal",
        )  # fmt: skip
        fig.colorbar(image, ax=ax, label=field_label, shrink=0.85)
    size = 6 if len(real) + len(fake) < 4000 else 3  # many points: smaller, or they merge
    # Real on top: a mode G covers then shows a blue core in an orange halo, not just orange.
    for data, color, label in ((fake, FAKE_COLOR, "generated"), (real, REAL_COLOR, "real")):
        if len(data):  # the CLI plots generated samples alone, with an empty real set
            ax.scatter(*data.T, s=size, c=color, alpha=0.6, lw=0, label=label)
    if modes is not None:  # big and thin: the cluster under a cross stays visible
        ax.scatter(*modes.T, marker="x", s=110, c="black", lw=1.0, label="modes")
    ax.set_xlim(low[0], high[0])
    ax.set_ylim(low[1], high[1])
    ax.set_aspect("equal")
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    _legend(fig)


def _points_1d(ax: Axes, fig: Figure, real, fake, field, field_label, modes) -> None:
    low, high = _bounds([real, fake] + ([modes] if modes is not None else []), margin=0.1)
    bins = np.linspace(low[0], high[0], 60)
    for data, color, label in ((real, REAL_COLOR, "real"), (fake, FAKE_COLOR, "generated")):
        if not len(data):
            continue
        ax.hist(data[:, 0], bins=bins, density=True, color=color, alpha=0.35, label=label)
        ax.hist(data[:, 0], bins=bins, density=True, color=color, histtype="step", lw=1.2)
    if modes is not None:
        ax.plot(modes[:, 0], np.zeros(len(modes)), "kx", ms=9, mew=2, label="modes", clip_on=False)
    ax.set_xlim(low[0], high[0])
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    if field is not None:
        xs = np.linspace(low[0], high[0], 400)
        values = _eval_field(field, xs[:, None])
        twin = ax.twinx()
        twin.plot(xs, values, color="0.15", lw=1.8, label=field_label)
        if _is_probability(values):
            twin.set_ylim(0, 1.02)
        twin.set_ylabel(field_label)
        twin.grid(False)
    _legend(fig)


def plot_points(
    real: Tensor,
    fake: Tensor,
    path: Path,
    field: Callable[[Tensor], Tensor] | None = None,  # CPU float [M, D] -> [M]; e.g. sigmoid(D(x))
    field_label: str = "D(x)",
    title: str = "",
    modes: Tensor | None = None,  # [K, D] mode centres, drawn as crosses
) -> Path:
    """Real vs generated toy data -> PNG: 2-D scatter over a heat map of ``field``, or 1-D
    density histograms with ``field`` as a curve on a second axis."""
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1] or real.shape[1] > 2:
        raise ValueError(
            f"plot_points wants real and fake [N, 1] or [N, 2], got {tuple(real.shape)} and "
            f"{tuple(fake.shape)}"
        )
    if len(real) + len(fake) == 0:
        raise ValueError("plot_points needs at least one real or generated point")
    dim = real.shape[1]
    real_np, fake_np = _as_numpy(real), _as_numpy(fake)
    modes_np = _as_numpy(modes).reshape(-1, dim) if modes is not None else None
    with _style():
        fig = Figure(figsize=(7, 6) if dim == 2 else (8, 4.5), dpi=DPI, layout="constrained")
        ax = fig.add_subplot()
        if dim == 2:
            _points_2d(ax, fig, real_np, fake_np, field, field_label, modes_np)
        else:
            _points_1d(ax, fig, real_np, fake_np, field, field_label, modes_np)
        if title:
            ax.set_title(title)
        return _save(fig, path)
