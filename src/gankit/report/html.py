"""One static HTML page per training run: headline figures, warnings, plots, samples, config.

The page is self-contained (images inlined as base64 data URIs, styles inline, no JavaScript, no
external resources) so it can be mailed, attached to an issue or opened from an archive. Every
string that comes from the run folder is HTML-escaped: warnings and config values are user text.
"""

from __future__ import annotations

import base64
import json
import math
from html import escape
from pathlib import Path

from gankit.errors import UserError
from gankit.report.plots import find_samples, read_metrics

# (file in the run folder, caption); the latest sample grid is added after these.
PLOTS = [
    ("losses.png", "Losses, discriminator outputs and gradient norms"),
    ("timeline.png", "Samples from one fixed z over training"),
    ("scatter.png", "Real and generated data over the discriminator's view (2-D data)"),
]
_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ddd; padding: 0.25em 0.8em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f4f4f4; }
.warnings { background: #fff4e5; border-left: 5px solid #e8590c; padding: 0.6em 1em; }
.warnings li { margin: 0.2em 0; }
.ok { background: #ebfbee; border-left: 5px solid #2b8a3e; padding: 0.6em 1em; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: 0.9em; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
pre { background: #f8f8f8; padding: 1em; overflow-x: auto; font-size: 0.9em; }
.muted { color: #777; }
"""
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>gankit run: {title}</title>
<style>{css}</style>
</head>
<body>
{body}
</body>
</html>
"""


def _short(value: object) -> str:
    """A value as short text: 4 significant digits for floats, also inside lists and dicts."""
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    return "–" if value is None else str(value)


def _fmt(value: object) -> str:
    return escape(_short(value))


def _cell(value: object) -> str:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return f'<td class="num">{_fmt(value)}</td>' if numeric else f"<td>{_fmt(value)}</td>"


def _read_summary(path: Path) -> tuple[dict, str | None]:
    """(summary, problem): an unreadable summary is reported on the page, not raised."""
    if not path.is_file():
        return {}, "summary.json is absent (the run may still be going, or it crashed)."
    try:
        summary = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except json.JSONDecodeError as err:
        return {}, f"summary.json could not be read: {err}."
    if not isinstance(summary, dict):
        return {}, "summary.json does not hold a JSON object."
    return summary, None


def _summary_section(summary: dict, problem: str | None) -> str:
    if problem:
        return f'<h2>Summary</h2>\n<p class="muted">{escape(problem)}</p>'
    rows = [
        f"<tr><th>{escape(str(k))}</th>{_cell(v)}</tr>"
        for k, v in summary.items()
        if k != "warnings"  # they get their own, highlighted section
    ]
    if not rows:
        return '<h2>Summary</h2>\n<p class="muted">summary.json is empty.</p>'
    return "<h2>Summary</h2>\n<table>\n" + "\n".join(rows) + "\n</table>"


def _warnings_section(warnings: object) -> str:
    if warnings is None or warnings == [] or warnings == "":
        items: list = []
    else:
        items = warnings if isinstance(warnings, list) else [warnings]
    if not items:
        return '<h2>Warnings</h2>\n<p class="ok">none</p>'
    lis = "\n".join(f"<li>{escape(str(w))}</li>" for w in items)
    return f'<h2>Warnings</h2>\n<ul class="warnings">\n{lis}\n</ul>'


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{escape(alt)}">'


def _plots_section(run_dir: Path) -> str:
    present = [(run_dir / name, caption) for name, caption in PLOTS if (run_dir / name).is_file()]
    absent = [name for name, _ in PLOTS if not (run_dir / name).is_file()]
    samples = find_samples(run_dir / "samples")
    if samples:
        step, latest = samples[-1]
        present.append((latest, f"Latest samples (step {step}), samples/{latest.name}"))
    else:
        absent.append("samples/step_*.png")
    figures = [
        f"<figure>{_img(path, caption)}<figcaption>{escape(caption)}</figcaption></figure>"
        for path, caption in present
    ]
    if absent:
        names = ", ".join(escape(name) for name in absent)
        figures.append(f'<p class="muted">Not in the run folder: {names}.</p>')
    return "<h2>Plots and samples</h2>\n" + "\n".join(figures)


def _latest_values(rows: list[dict]) -> dict[str, tuple[object, object]]:
    """key -> (value, step) from the last row holding that key: the last row plus what it lacks
    (evaluation rows may carry only ``step`` and ``fid``)."""
    latest: dict[str, tuple[object, object]] = {}
    for row in rows:  # later rows overwrite; keys keep the order they were first logged in
        for key, value in row.items():
            if key != "step":
                latest[key] = (value, row.get("step", "?"))
    return latest


def _metrics_section(path: Path) -> str:
    rows = read_metrics(path) if path.is_file() else []
    if not rows:
        return '<h2>Last metrics</h2>\n<p class="muted">metrics.jsonl is absent or empty.</p>'
    last_step = rows[-1].get("step", "?")
    lines = [
        f"<tr><th>{escape(str(key))}</th>{_cell(value)}{_cell(step)}</tr>"
        for key, (value, step) in _latest_values(rows).items()
    ]
    return (
        f"<h2>Last metrics</h2>\n<p>Last logged row: step {_fmt(last_step)}; a metric it lacks "
        "shows its value from the latest row that has it.</p>\n"
        "<table>\n<tr><th>metric</th><th>value</th><th>at step</th></tr>\n"
        + "\n".join(lines)
        + "\n</table>"
    )


def _config_section(path: Path) -> str:
    if not path.is_file():
        return '<h2>Config</h2>\n<p class="muted">config.yaml is absent.</p>'
    text = path.read_text(encoding="utf-8", errors="replace")
    return f"<h2>Config</h2>\n<pre>{escape(text)}</pre>"


def write_report(run_dir: Path) -> Path:
    """Write ``run_dir/report.html`` from whatever the run folder holds; returns its path."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run folder {run_dir} does not exist; pass the folder of a training run.")
    summary, problem = _read_summary(run_dir / "summary.json")
    body = "\n\n".join(
        [
            f"<h1>gankit run: {escape(run_dir.name)}</h1>",
            _summary_section(summary, problem),
            _warnings_section(summary.get("warnings")),
            _plots_section(run_dir),
            _metrics_section(run_dir / "metrics.jsonl"),
            _config_section(run_dir / "config.yaml"),
        ]
    )
    out = run_dir / "report.html"
    out.write_text(_PAGE.format(title=escape(run_dir.name), css=_CSS, body=body), encoding="utf-8")
    return out
