"""Inline displays for notebooks: ``Run`` and ``Generator`` render themselves (``_repr_html_``)
with their samples, the loss plot and the key figures, so that ``gankit.train(...)`` as the last
line of a Jupyter cell shows the result. Pictures are inlined PNGs; strings are escaped."""

from __future__ import annotations

import base64
import tempfile
from html import escape
from pathlib import Path
from typing import Any

import torch

from gankit.report.plots import find_samples, plot_losses, read_metrics, save_grid
from gankit.report.points import plot_points

N_SHOWN = 64  # samples of an image generator's grid (seed 0: ``gankit sample --seed 0``)
N_POINTS = 1000  # points of a toy generator's scatter
KEYS = ("steps", "seconds", "loss_D", "loss_G", "D(x)", "D(G(z))", "img_per_s", "modes_captured",
        "high_quality", "reverse_kl", "mode_collapse")  # fmt: skip
_STYLE = "font-family:system-ui,sans-serif;font-size:13px"


def _png(path: Path, alt: str, width: int | None = None) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    size = f' width="{width}"' if width else ""
    return f'<img src="data:image/png;base64,{data}" alt="{escape(alt)}"{size}>'


def _samples(net: torch.nn.Module, shape: tuple[int, ...], folder: Path) -> str:
    """An inlined picture of seed 0's samples: a grid of images, or a scatter of toy points."""
    from gankit.generator import sample_from

    if len(shape) == 3:
        x = sample_from(net, N_SHOWN, seed=0)  # [64, C, H, W]
        return _png(save_grid(x, folder / "g.png", nrow=8), "samples (seed 0)", 320)
    x = sample_from(net, N_POINTS, seed=0)  # [n, D]
    return _png(plot_points(x[:0], x, folder / "p.png"), "samples (seed 0)", 320)


def _table(rows: dict[str, Any]) -> str:
    def cell(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else escape(str(v))

    body = "".join(f"<tr><th>{escape(k)}</th><td>{cell(v)}</td></tr>" for k, v in rows.items())
    return f'<table style="{_STYLE}">{body}</table>'


def generator_html(gen: Any) -> str:
    """A ``Generator``: 64 samples of seed 0 (a scatter for toy data) and what it is."""
    info = {
        "variant": gen.config.train.variant,
        "data": gen.config.data.name,
        "net": gen.config.model.net,
        "shape": "x".join(map(str, gen.shape)),
        "classes": gen.num_classes or "unconditional",
        "step": "step –" if gen.step is None else f"step {gen.step}",
    }
    with tempfile.TemporaryDirectory() as d:
        picture = _samples(gen.net, tuple(gen.shape), Path(d))
    return (
        f'<div style="display:flex;gap:1em;{_STYLE}"><div>{picture}</div>'
        f"<div><b>gankit Generator</b>{_table(info)}</div></div>"
    )


def run_html(run: Any) -> str:
    """A training ``Run``: its samples, the loss plot, key figures and warnings."""
    folder = Path(run.dir)
    summary = run.summary or {}
    figures = {k: summary[k] for k in KEYS if k in summary and summary[k] is not None}
    for k, v in (summary.get("eval") or {}).items():
        if isinstance(v, (int, float)):
            figures[k] = v
    warnings = summary.get("warnings") or []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        pictures = []
        if (folder / "scatter.png").is_file():
            pictures.append(_png(folder / "scatter.png", "samples", 320))
        else:
            shape = tuple(getattr(run.generator, "shape", ()) or ())
            frames = find_samples(folder / "samples")
            if frames:
                pictures.append(_png(frames[-1][1], "samples", 320))
            elif shape:
                pictures.append(_samples(run.generator, shape, tmp))
        losses = folder / "losses.png"
        if not losses.is_file() and (folder / "metrics.jsonl").is_file():
            rows = read_metrics(folder / "metrics.jsonl")
            g_steps = run.config.train.g_steps
            losses = plot_losses(rows, tmp / "l.png", g_steps=g_steps) if rows else losses
        if losses.is_file():
            pictures.append(_png(losses, "losses", 480))
    warn = "".join(f"<li>{escape(str(w))}</li>" for w in warnings) or "<li>none</li>"
    name = escape(folder.name)
    return (
        f'<div style="{_STYLE}"><b>gankit run {name}</b> ({escape(str(folder))}): '
        f"{escape(run.config.train.variant)} on {escape(run.config.data.name)}"
        f"{' (interrupted)' if getattr(run, 'interrupted', False) else ''}"
        f'<div style="display:flex;gap:1em;align-items:flex-start">{"".join(pictures)}'
        f"<div>{_table(figures)}<b>warnings</b><ul>{warn}</ul>"
        f"<code>gankit explore {escape(str(folder))}</code></div></div></div>"
    )
