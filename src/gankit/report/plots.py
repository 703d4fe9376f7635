"""Pictures of a training run: loss curves, sample grids and timelines (toy data: ``points.py``).

The panels follow what the GAN literature looks at when diagnosing training: the two players'
losses, the discriminator's outputs on real and generated data, whose fixed point is D = 1/2
everywhere (Goodfellow et al. 2014), and gradient norms, whose collapse or explosion is the usual
first sign of a failing run (Arjovsky & Bottou 2017).

Every function builds a matplotlib ``Figure`` directly and renders it with the Agg canvas: no
pyplot, so no global figure registry to leak from and no display needed.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from PIL import Image
from torch import Tensor
from torchvision.utils import save_image

DPI = 110
D_COLOR, G_COLOR = "C0", "C1"  # the discriminator is blue and the generator orange everywhere
REAL_COLOR, FAKE_COLOR = "#1f4e9c", "#e8590c"
_STYLE = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
# Keys with a panel of their own, and bookkeeping keys that say nothing about the game.
KNOWN_KEYS = {"loss_D", "loss_G", "D(x)", "D(G(z))", "grad_norm_D", "grad_norm_G"}


def _is_loss(key: str) -> bool:  # loss_D, loss_G, and every player's own: loss_D_A, ...
    return key.startswith("loss_")


def _is_score(key: str) -> bool:  # D(x), D(G(z)), D_A(a), D_B(G_AB(a)): mean D outputs
    return key.startswith("D") and "(" in key and key.endswith(")")


def _is_grad(key: str) -> bool:  # grad_norm_D, grad_norm_G_AB, ...
    return key.startswith("grad_norm_")


def _keys_where(rows: list[dict], keep: Callable[[str], bool], positive: bool = False) -> list[str]:
    """Keys that ``keep`` accepts with data, D's and G's known keys first, then first-seen order."""
    seen = {k: None for row in rows for k in row if keep(k)}
    keys = [k for k in seen if len(_series(rows, k, positive)[0])]
    return sorted(keys, key=lambda k: (0, k.endswith(("G", "G(z))"))) if k in KNOWN_KEYS else (1,))


def _color(key: str, i: int) -> str:
    """D blue and G orange for the G/D game's keys; other players' keys take the next colours."""
    if key in KNOWN_KEYS:
        return G_COLOR if key.endswith(("G", "G(z))")) else D_COLOR
    return f"C{i + 2}"


BOOKKEEPING_KEYS = {"step", "seconds", "img_per_s", "epoch", "kimg"}


# --------------------------------------------------------------------------------------- metrics
def read_metrics(path: Path) -> list[dict]:
    """metrics.jsonl -> one dict per row; skips (with a warning) lines that are not JSON objects.

    A crash mid-write leaves a truncated last line; that line is dropped silently. Raises
    ``FileNotFoundError`` when the file does not exist.
    """
    lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
    rows = []
    for k, (number, line) in enumerate(numbered):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if isinstance(row, dict):
            rows.append(row)
        elif k < len(numbered) - 1:  # the last line being cut short is expected after a crash
            warnings.warn(f"{path}: skipping unreadable line {number}", stacklevel=2)
    return rows


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _series(rows: list[dict], key: str, positive: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of the rows that carry a finite number under ``key`` (and ``step``)."""
    pairs = [
        (r["step"], r[key])
        for r in rows
        if _is_number(r.get("step")) and _is_number(r.get(key)) and (not positive or r[key] > 0)
    ]
    steps, values = zip(*pairs, strict=True) if pairs else ((), ())
    return np.asarray(steps, dtype=float), np.asarray(values, dtype=float)


def _ema(values: np.ndarray, window: float) -> np.ndarray:
    """Bias-corrected exponential moving average; ``window`` ~ number of points averaged."""
    beta = 1.0 - 1.0 / max(window, 1.0)
    out, acc = np.empty_like(values), 0.0
    for i, v in enumerate(values):
        acc = beta * acc + (1 - beta) * v
        out[i] = acc / (1 - beta ** (i + 1))  # undo the pull towards the initial 0
    return out


def _draw(ax: Axes, steps: np.ndarray, values: np.ndarray, label: str, color: str) -> None:
    """A faint raw curve under its EMA; sparse series (evaluations) get markers instead."""
    if len(values) == 0:
        return  # absent from this run: no empty legend entry
    if len(values) < 30:
        ax.plot(steps, values, marker="o", markersize=3, lw=1.4, color=color, label=label)
        return
    ax.plot(steps, values, lw=0.7, alpha=0.25, color=color)
    ax.plot(steps, _ema(values, len(values) / 40), lw=1.6, color=color, label=label)


# ---------------------------------------------------------------------------------- loss figure
def _plain_log_axis(ax: Axes) -> None:
    """Log y-axis labelled 0.2, 1, 5 rather than 2x10^-1: minor labels only when zoomed in."""

    def minor(value: float, _pos: int) -> str:
        low, high = ax.get_ylim()
        coeff = round(value / 10 ** math.floor(math.log10(value)), 6)  # 2 for 0.2, 20, ...
        return f"{value:g}" if high / low < 100 and coeff in (2, 5) else ""

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(minor))


def _panel_losses(ax: Axes, rows: list[dict]) -> None:
    for i, key in enumerate(_keys_where(rows, _is_loss)):
        _draw(ax, *_series(rows, key), key, _color(key, i))
    ax.set_title("losses")
    ax.set_ylabel("loss")


def _panel_outputs(ax: Axes, rows: list[dict]) -> None:
    series = {key: _series(rows, key) for key in _keys_where(rows, _is_score)}
    for i, (key, (steps, values)) in enumerate(series.items()):
        _draw(ax, steps, values, key, _color(key, i))
    everything = np.concatenate([v for _, v in series.values()])
    probabilities = all(k in KNOWN_KEYS for k in series)  # other players log raw scores
    if probabilities and everything.min() >= 0 and everything.max() <= 1:
        ax.set_ylim(-0.02, 1.02)
        equilibrium = "D = 1/2: equilibrium of the minimax game"
        ax.axhline(0.5, ls="--", lw=1, color="0.35", label=equilibrium)
        ax.set_title("discriminator output on real and generated data")
        ax.set_ylabel("probability")
    else:  # WGAN critics and friends: unbounded scores, no 1/2 to aim for
        ax.set_title("critic scores on real and generated data")
        ax.set_ylabel("score")


def _panel_grads(ax: Axes, rows: list[dict]) -> None:
    for i, key in enumerate(_keys_where(rows, _is_grad, positive=True)):
        _draw(ax, *_series(rows, key, positive=True), key, _color(key, i))
    _plain_log_axis(ax)
    ax.set_title("gradient norms")
    ax.set_ylabel("L2 norm (log)")


def _other_keys(rows: list[dict]) -> list[str]:
    """Numeric keys outside the known panels and the bookkeeping, in first-seen order."""
    keys: dict[str, None] = {}
    for row in rows:
        for key, value in row.items():
            known = _is_loss(key) or _is_score(key) or _is_grad(key)
            skip = known or key in BOOKKEEPING_KEYS or key.startswith(("lr_", "eval/"))
            if not skip and _is_number(value):
                keys[key] = None
    return list(keys)


def _eval_keys(rows: list[dict]) -> list[str]:
    """Periodic evaluation metrics (``eval/<name>``) with data, in first-seen order."""
    keys = {k: None for row in rows for k in row if k.startswith("eval/")}
    return [k for k in keys if len(_series(rows, k)[0])]


def _eval_panel(key: str) -> Callable[[Axes, list[dict]], None]:
    """One panel per evaluation metric: FID and a class entropy do not share a scale."""

    def draw(ax: Axes, rows: list[dict]) -> None:
        steps, values = _series(rows, key)
        _draw(ax, steps, values, key[5:], "C4")
        ax.set_title(f"evaluation: {key[5:]}")
        ax.set_ylabel(key[5:])

    return draw


def _panel_other(ax: Axes, rows: list[dict]) -> None:
    keys = _other_keys(rows)
    series = [_series(rows, key) for key in keys]
    for i, (key, (steps, values)) in enumerate(zip(keys, series, strict=True)):
        _draw(ax, steps, values, key, f"C{i + 2}")  # C0 / C1 are taken by D and G
    everything = np.concatenate([v for _, v in series])
    # FID (~100) next to a gradient penalty (~0.1) is only readable on a log scale.
    if everything.min() > 0 and everything.max() / everything.min() > 100:
        _plain_log_axis(ax)
    ax.set_title("other metrics")
    ax.set_ylabel("value")


def _has(rows: list[dict], keys: list[str], positive: bool = False) -> bool:
    return any(len(_series(rows, key, positive)[0]) for key in keys)


def _losses_figure(rows: list[dict], title: str = "", g_steps: int = 1) -> Figure:
    """The figure behind ``plot_losses``: one panel per group of metrics that has data."""
    panels = [
        (_panel_losses, bool(_keys_where(rows, _is_loss))),
        (_panel_outputs, bool(_keys_where(rows, _is_score))),
        (_panel_grads, bool(_keys_where(rows, _is_grad, positive=True))),
        (_panel_other, _has(rows, _other_keys(rows))),
        *[(_eval_panel(key), True) for key in _eval_keys(rows)],
    ]
    panels = [draw for draw, present in panels if present]
    fig = Figure(figsize=(9, 1.0 + 2.5 * max(len(panels), 1)), dpi=DPI, layout="constrained")
    if not panels:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no metrics logged yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0] if panels else []
    for ax, draw in zip(axes, panels, strict=True):
        draw(ax, rows)
        ax.legend(loc="best", framealpha=0.85)
    if len(axes):
        # a step is one G update unless train.g_steps > 1
        each = "G updates" if g_steps == 1 else f"{g_steps} G updates each"
        axes[-1].set_xlabel(f"step ({each})")
    if title:
        fig.suptitle(title)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig).print_png(str(path))
    fig.clear()  # drop artists now rather than whenever the garbage collector gets to them
    return path


@contextmanager
def _style() -> Iterator[None]:
    with matplotlib.rc_context(_STYLE):
        yield


def plot_losses(rows: list[dict], path: Path, title: str = "", g_steps: int = 1) -> Path:
    """Loss, discriminator-output, gradient-norm and other-metric panels against step -> PNG
    (``g_steps``: the run's ``train.g_steps``, which the step axis is labelled with)."""
    with _style():
        return _save(_losses_figure(rows, title, g_steps), path)


# -------------------------------------------------------------------------------- sample grids
def picture_bytes(n: int, shape: tuple[int, ...]) -> float:
    """About how much memory drawing ``n`` samples of ``shape`` takes: a ``save_grid`` of images
    (the float grid, its 8-bit copy and PIL's) or a ``plot_points`` scatter of toy data."""
    if len(shape) == 3:
        h, w = shape[1] + 2, shape[2] + 2  # 2 px padding
        return 18.0 * n * h * w  # 3 channels x (4 float + 1 uint8 + 1 PIL) bytes per pixel
    return 200.0 * n  # matplotlib's arrays and paths per scatter point, measured ~100-150


def save_grid(images: Tensor, path: Path, nrow: int | None = None) -> Path:
    """Images ``[N, C, H, W]`` in [-1, 1] -> one PNG grid, ``nrow`` images per row (~sqrt(N))."""
    if images.ndim != 4 or images.shape[1] not in (1, 3) or images.shape[0] == 0:
        shape = tuple(images.shape)
        raise ValueError(f"save_grid wants images [N, 1 or 3, H, W] with N > 0, got {shape}")
    nrow = nrow or math.ceil(math.sqrt(images.shape[0]))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = images.detach().float().cpu()
    save_image(images, path, nrow=nrow, padding=2, normalize=True, value_range=(-1, 1))
    return path


def plot_rows(
    rows: list[Tensor], labels: list[str], path: Path, title: str = "", scale: float = 2.0
) -> Path:
    """Rows of images ``[N_i, C, H, W]`` in [-1, 1], each with its label on the left -> one PNG,
    each image shown at about ``scale`` screen pixels per image pixel."""
    if not rows or len(rows) != len(labels):
        raise ValueError(f"plot_rows wants one label per row, got {len(rows)} rows, {len(labels)}")
    from torchvision.utils import make_grid

    width = max(len(r) for r in rows)
    strips = []
    for r in rows:  # one padded strip per row, blank (black) cells on the right
        r = r.detach().float().cpu()
        pad = torch.full((width - len(r), *r.shape[1:]), -1.0)
        grid = make_grid(torch.cat([r, pad]), nrow=width, padding=2, normalize=True,
                         value_range=(-1, 1))  # fmt: skip
        strips.append(grid.permute(1, 2, 0).numpy())  # [h, w, 3]
    h, w = strips[0].shape[:2]
    label_in = 0.12 * max(len(t) for t in labels) + 0.2
    row_in = h * scale / DPI + 0.08  # an image row and the gap under it
    size = (w * scale / DPI + label_in, len(rows) * row_in + (0.4 if title else 0.1))
    with _style():
        fig = Figure(figsize=size, dpi=DPI, layout="constrained")
        axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
        for ax, strip, text in zip(axes, strips, labels, strict=True):
            ax.imshow(strip, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            ax.set_ylabel(text, rotation=0, ha="right", va="center")
        if title:
            fig.suptitle(title)
        return _save(fig, path)


# ------------------------------------------------------------------------------------ timeline
_SAMPLE_NAME = re.compile(r"step_(\d+)\.png")


def find_samples(samples_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of every ``step_000500.png`` in ``samples_dir``, in step order; [] if none."""
    samples_dir = Path(samples_dir)
    if not samples_dir.is_dir():
        return []
    found = [(_SAMPLE_NAME.fullmatch(p.name), p) for p in samples_dir.iterdir()]
    return sorted((int(m.group(1)), p) for m, p in found if m)


def pick_frames(n: int, max_frames: int) -> list[int]:
    """At most ``max_frames`` indices into ``n`` frames, evenly spread, first and last included."""
    if max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    if n <= max_frames:
        return list(range(n))
    if max_frames == 1:
        return [n - 1]  # one frame can't be both ends: the latest says more
    return sorted({round(i * (n - 1) / (max_frames - 1)) for i in range(max_frames)})


def _timeline_figure(
    frames: list[tuple[int, Path]], max_frames: int, caption: Callable[[int], str] | None = None
) -> Figure:
    """The figure behind ``plot_timeline``: one titled, axis-less panel per chosen frame."""
    if not frames:
        raise ValueError("plot_timeline needs at least one (step, png) frame")
    frames = sorted(frames, key=lambda frame: frame[0])
    chosen = [frames[i] for i in pick_frames(len(frames), max_frames)]
    images = []
    for _, png in chosen:
        with Image.open(png) as im:
            images.append(np.asarray(im.convert("RGB")))  # [H, W, 3]
    height_px, width_px = images[-1].shape[:2]
    # About one screen pixel per image pixel, within bounds that keep "step N" readable.
    frame_w = min(max(width_px / DPI, 1.6), max(2.6, 16 / len(chosen)))  # <= ~16 in wide
    titles = [f"step {step}" for step, _ in chosen]
    if caption is not None and any(caption(step) for step, _ in chosen):
        titles = [f"{t}\n{caption(step)}" for t, (step, _) in zip(titles, chosen, strict=True)]
    lines = max(t.count("\n") + 1 for t in titles)
    size = (frame_w * len(chosen), frame_w * height_px / width_px + 0.2 + 0.25 * lines)
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    axes = fig.subplots(1, len(chosen), squeeze=False)[0]
    for ax, title, image in zip(axes, titles, images, strict=True):
        ax.imshow(image, interpolation="nearest" if image.shape[0] <= 128 else "antialiased")
        ax.set_title(title)
        ax.set_axis_off()
    return fig


def plot_timeline(
    frames: list[tuple[int, Path]],
    path: Path,
    max_frames: int = 8,
    caption: Callable[[int], str] | None = None,
) -> Path:
    """Sample images at a few steps, side by side, each titled "step N" (and under it
    ``caption(N)`` when that says something, e.g. a growing net's resolution) -> one PNG."""
    with _style():
        return _save(_timeline_figure(frames, max_frames, caption), path)
