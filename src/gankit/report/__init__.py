"""Run reports: loss plots, sample grids and timelines, toy-data scatter plots, the HTML page."""

from gankit.report.html import write_report
from gankit.report.plots import (
    find_samples,
    picture_bytes,
    plot_losses,
    plot_rows,
    plot_timeline,
    read_metrics,
    save_grid,
)
from gankit.report.points import plot_points

__all__ = [
    "find_samples",
    "picture_bytes",
    "plot_losses",
    "plot_points",
    "plot_rows",
    "plot_timeline",
    "read_metrics",
    "save_grid",
    "write_report",
]
