"""Run report: every plot writes a real PNG, panels follow the metrics present, the page is safe."""

from __future__ import annotations

import base64
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.errors import UserError
from gankit.report import (
    find_samples,
    plot_losses,
    plot_points,
    plot_timeline,
    read_metrics,
    save_grid,
    write_report,
)
from gankit.report.plots import _losses_figure, _timeline_figure, pick_frames
from gankit.report.points import FIELD_CHUNK


# ------------------------------------------------------------------------------------ fixtures
def bce_rows(n: int = 120) -> list[dict]:
    gen = np.random.default_rng(0)
    return [
        {
            "step": 10 * i,
            "loss_D": 1.3 - 0.001 * i + gen.normal(0, 0.1),
            "loss_G": 0.7 + 0.002 * i + gen.normal(0, 0.1),
            "D(x)": float(np.clip(0.6 + gen.normal(0, 0.05), 0, 1)),
            "D(G(z))": float(np.clip(0.4 + gen.normal(0, 0.05), 0, 1)),
            "grad_norm_D": float(np.exp(gen.normal(0, 0.5))),
            "grad_norm_G": float(np.exp(gen.normal(-1, 0.5))),
            "img_per_s": 5400.0,
            "lr_G": 1e-3,
            "seconds": 0.03 * i,
        }
        for i in range(n)
    ]


def wgan_rows(n: int = 120) -> list[dict]:
    gen = np.random.default_rng(1)
    return [
        {
            "step": 5 * i,
            "loss_D": -2.0 + gen.normal(0, 0.3),
            "loss_G": 3.0 - 0.01 * i,
            "D(x)": 3.0 + gen.normal(0, 0.5),  # critic values: unbounded, negative allowed
            "D(G(z))": -1.0 + gen.normal(0, 0.5),
            "grad_norm_D": 1.0,
            "grad_norm_G": 0.3,
        }
        for i in range(n)
    ]


def missing_rows() -> list[dict]:
    rows = [{"step": i, "loss_D": 1.0 + 0.01 * i} for i in range(40)]
    rows += [{"step": 40, "loss_G": 0.5}, {"loss_D": 2.0}, {"step": 41, "loss_D": float("nan")}]
    return rows + [{"step": 42, "grad_norm_D": 0.0}, {"step": 43}]  # 0: impossible on log axes


def fid_rows() -> list[dict]:
    return bce_rows() + [{"step": 500 * k, "fid": 200.0 / k} for k in range(1, 4)]


def assert_png(path: Path, min_w: int = 300, min_h: int = 150) -> tuple[int, int]:
    assert path.is_file()
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG"
        w, h = im.size
    assert min_w <= w <= 4000 and min_h <= h <= 4000, (w, h)
    return w, h


def ring(n: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    angle = torch.randint(0, 8, (n,), generator=gen) * (2 * math.pi / 8)
    centres = torch.stack([2 * torch.cos(angle), 2 * torch.sin(angle)], 1)  # [n, 2]
    return centres + 0.05 * torch.randn(n, 2, generator=gen)


# ------------------------------------------------------------------------------------- metrics
def test_read_metrics_tolerates_truncated_last_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    rows = bce_rows(3)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 30, "loss_')
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a crash-truncated last line is normal: no warning
        got = read_metrics(path)
    assert got == rows


def test_read_metrics_skips_bad_middle_line_with_warning(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\nnot json\n\n[1, 2]\n{"step": 2, "fid": NaN}\n')
    with pytest.warns(UserWarning) as caught:
        got = read_metrics(path)
    assert ["line 2" in str(w.message) for w in caught] == [True, False]
    assert "line 4" in str(caught[1].message)  # numbers count the blank line too
    assert [r["step"] for r in got] == [1, 2]
    assert math.isnan(got[1]["fid"])


# ---------------------------------------------------------------------------------- loss plots
@pytest.mark.parametrize("rows", [bce_rows(), wgan_rows(), missing_rows(), fid_rows(), []])
def test_plot_losses_writes_png(tmp_path: Path, rows: list[dict]) -> None:
    out = plot_losses(rows, tmp_path / "sub" / "losses.png", title="a run")
    assert out == tmp_path / "sub" / "losses.png"
    assert_png(out)


def titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes]


def test_losses_panels_follow_the_metrics_present() -> None:
    assert titles(_losses_figure(bce_rows())) == [
        "losses",
        "discriminator output on real and generated data",
        "gradient norms",
    ]  # img_per_s, lr_G and seconds are bookkeeping, not "other metrics"
    fig = _losses_figure(fid_rows())
    assert len(fig.axes) == 4 and titles(fig)[-1] == "other metrics"
    assert [line.get_label() for line in fig.axes[3].get_lines()] == ["fid"]
    assert titles(_losses_figure(missing_rows())) == ["losses"]


def test_losses_x_label_says_what_a_step_is() -> None:
    assert _losses_figure(bce_rows()).axes[-1].get_xlabel() == "step (G updates)"
    fig = _losses_figure(bce_rows(), g_steps=3)
    assert fig.axes[-1].get_xlabel() == "step (3 G updates each)"


def test_probability_panel_has_equilibrium_line_and_fixed_range() -> None:
    ax = _losses_figure(bce_rows()).axes[1]
    assert ax.get_ylim() == pytest.approx((-0.02, 1.02))
    labels = [line.get_label() for line in ax.get_lines()]
    assert any("equilibrium" in label for label in labels)
    assert ax.get_yaxis().get_scale() == "linear"


def test_critic_panel_has_no_equilibrium_line() -> None:
    fig = _losses_figure(wgan_rows())
    ax = fig.axes[1]
    assert "critic" in ax.get_title()
    assert not any("equilibrium" in line.get_label() for line in ax.get_lines())
    assert ax.get_ylim()[0] < -1  # auto range covers the negative critic values
    assert fig.axes[2].get_yscale() == "log"


# --------------------------------------------------------------------------------- sample grid
def test_save_grid_maps_minus_one_to_black_and_one_to_white(tmp_path: Path) -> None:
    images = torch.cat([-torch.ones(1, 1, 4, 4), torch.ones(1, 1, 4, 4)])  # [2, 1, 4, 4]
    path = save_grid(images, tmp_path / "grid.png", nrow=2)
    pixels = np.asarray(Image.open(path).convert("L"))
    assert pixels.shape == (4 + 2 * 2, 2 * 4 + 3 * 2)  # padding 2 around and between
    assert (pixels[2:6, 2:6] == 0).all()
    assert (pixels[2:6, 8:12] == 255).all()


def test_save_grid_default_rows_and_shape_check(tmp_path: Path) -> None:
    path = save_grid(torch.rand(9, 3, 8, 8) * 2 - 1, tmp_path / "grid.png")
    assert Image.open(path).size == (3 * 8 + 4 * 2, 3 * 8 + 4 * 2)  # 3 x 3
    with pytest.raises(ValueError, match="N, 1 or 3, H, W"):
        save_grid(torch.zeros(4, 8, 8), tmp_path / "bad.png")


def test_plot_rows_draws_each_row_with_its_label_and_pads_short_rows(tmp_path: Path) -> None:
    from gankit.report.plots import plot_rows

    rows = [-torch.ones(5, 1, 8, 8), torch.ones(2, 1, 8, 8)]  # black row; 2 white + 3 blank
    assert_png(plot_rows(rows, ["dark", "light"], tmp_path / "l.png", title="t"), 150, 90)
    path = plot_rows(rows, ["", ""], tmp_path / "rows.png", scale=4)  # no text: only the images
    pixels = np.asarray(Image.open(path).convert("L")).astype(int)
    h, w = pixels.shape
    assert w > 1.5 * h  # two rows of five cells: wide, not square
    ys, xs = np.nonzero(pixels <= 5)  # the image strips are the only black: their bounding box
    box = pixels[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    top, bottom = box[: len(box) // 3], box[-len(box) // 3 :]
    assert (top <= 5).mean() > 0.95  # the dark row: all black cells
    # the light row: 2 white 8 px cells in a strip 5 * (8 + 2) + 2 px wide, the rest black
    white = (bottom >= 250).mean(1).max()  # the whitest pixel row
    assert abs(white - 16 / 52) < 0.03, white
    with pytest.raises(ValueError, match="one label per row"):
        plot_rows(rows, ["only one"], tmp_path / "bad.png")


# ---------------------------------------------------------------------------------- toy points
def test_plot_points_2d_with_field_calls_it_in_chunks_without_grad(tmp_path: Path) -> None:
    calls: list[tuple[int, bool]] = []

    def field(x: torch.Tensor) -> torch.Tensor:
        calls.append((x.shape[0], torch.is_grad_enabled()))
        assert x.shape[1] == 2
        return torch.sigmoid(-x.norm(dim=1))

    modes = ring(8)
    real, fake = ring(500), ring(500, seed=1) * 0.5
    assert_png(plot_points(real, fake, tmp_path / "s.png", field=field, title="t", modes=modes))
    assert sum(n for n, _ in calls) == 200 * 200
    assert max(n for n, _ in calls) <= FIELD_CHUNK
    assert not any(grad for _, grad in calls)


def test_plot_points_2d_without_field_and_with_collapsed_g(tmp_path: Path) -> None:
    fake = torch.zeros(100, 2)  # total collapse: one point; the view must still have a size
    assert_png(plot_points(ring(300), fake, tmp_path / "s.png"))
    assert_png(plot_points(fake, fake, tmp_path / "same.png", field=lambda x: x[:, 0] * 3))


def test_plot_points_1d(tmp_path: Path) -> None:
    real = torch.cat([torch.randn(400, 1) - 2, torch.randn(400, 1) + 2])
    fake = torch.randn(800, 1) + 2
    field = lambda x: torch.sigmoid(x[:, 0])  # noqa: E731
    assert_png(plot_points(real, fake, tmp_path / "h.png", field=field, field_label="D(x)"))
    assert_png(plot_points(real, fake, tmp_path / "h2.png", modes=torch.tensor([-2.0, 2.0])))


@pytest.mark.parametrize("dim", [1, 2])
def test_plot_points_generated_only(tmp_path: Path, dim: int) -> None:
    fake = torch.randn(300, dim)  # `gankit sample` passes an empty real set
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_png(plot_points(fake[:0], fake, tmp_path / "g.png", title="300 samples"))


def test_plot_points_rejects_bad_shapes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="N, 1"):
        plot_points(torch.zeros(5, 2), torch.zeros(5, 1), tmp_path / "x.png")
    with pytest.raises(ValueError, match="one value per point"):
        plot_points(ring(10), ring(10), tmp_path / "x.png", field=lambda x: x[:1, 0])
    with pytest.raises(ValueError, match="at least one"):
        plot_points(torch.zeros(0, 2), torch.zeros(0, 2), tmp_path / "x.png")


# ------------------------------------------------------------------------------------ timeline
@pytest.mark.parametrize("n,k", [(20, 8), (13, 8), (9, 8), (8, 8), (3, 8), (5, 2), (1, 8)])
def test_pick_frames_spreads_and_keeps_the_ends(n: int, k: int) -> None:
    picked = pick_frames(n, k)
    assert picked[0] == 0 and picked[-1] == n - 1
    assert len(picked) == min(n, k) and picked == sorted(set(picked))
    assert pick_frames(n, 1) == [n - 1]


def write_frames(folder: Path, steps: list[int]) -> list[tuple[int, Path]]:
    for step in steps:
        save_grid(torch.rand(16, 1, 8, 8) * 2 - 1, folder / f"step_{step:06d}.png")
    return find_samples(folder)


def test_plot_timeline_picks_first_last_and_at_most_max(tmp_path: Path) -> None:
    frames = write_frames(tmp_path / "samples", [100 * i for i in range(12)])
    (tmp_path / "samples" / "notes.png").write_bytes(b"")  # not a step_*.png: ignored
    assert [s for s, _ in frames] == [100 * i for i in range(12)]
    got = titles(_timeline_figure(frames[::-1], max_frames=5))  # order given does not matter
    assert len(got) == 5 and got[0] == "step 0" and got[-1] == "step 1100"
    w, h = assert_png(plot_timeline(frames, tmp_path / "timeline.png"), min_h=80)
    assert w > 3 * h  # side by side
    with pytest.raises(ValueError):
        plot_timeline([], tmp_path / "none.png")


def test_timeline_captions_go_under_the_step_and_make_room(tmp_path: Path) -> None:
    frames = write_frames(tmp_path / "samples", [0, 500, 1000])
    caption = {0: "4 px", 500: "4 -> 8 px, fade 0.00", 1000: "8 px"}.get
    plain, captioned = _timeline_figure(frames, 8), _timeline_figure(frames, 8, caption)
    assert titles(captioned) == [
        "step 0\n4 px",
        "step 500\n4 -> 8 px, fade 0.00",
        "step 1000\n8 px",
    ]
    assert captioned.get_figheight() > plain.get_figheight()  # the second line gets its room
    silent = _timeline_figure(frames, 8, lambda step: "")  # a net without a schedule
    assert titles(silent) == titles(plain) and silent.get_figheight() == plain.get_figheight()


# ------------------------------------------------------------------------------------ the page
def fake_run(run: Path) -> None:
    run.mkdir()
    (run / "config.yaml").write_text("variant: gan\ntrain:\n  steps: 300\n  note: a<b & c\n")
    summary = {"steps": 300, "seconds": 4.25, "modes_captured": 7, "n_modes": 8}
    summary["warnings"] = ["G collapsed <script>alert(1)</script>"]
    (run / "summary.json").write_text(json.dumps(summary))
    rows = bce_rows(30) + [{"step": 300, "fid": 42.5}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"st')
    plot_losses(rows, run / "losses.png")
    frames = write_frames(run / "samples", [0, 100, 200, 300])
    plot_timeline(frames, run / "timeline.png")
    plot_points(ring(200), ring(200, seed=2), run / "scatter.png")


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def test_write_report_is_self_contained_and_escaped(tmp_path: Path) -> None:
    run = tmp_path / "ring-<b>"
    fake_run(run)
    page = write_report(run).read_text(encoding="utf-8")
    for png in ["losses.png", "timeline.png", "scatter.png", "samples/step_000300.png"]:
        assert data_uri(run / png) in page, png
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page.lower() and "ring-&lt;b&gt;" in page
    assert "steps: 300" in page and "a&lt;b &amp; c" in page  # config, escaped
    assert "42.5" in page and "modes_captured" in page  # last metrics row and summary
    assert "http://" not in page and "https://" not in page and 'src="data:' in page


def test_write_report_with_missing_files(tmp_path: Path) -> None:
    run = tmp_path / "run"
    fake_run(run)
    for name in ["scatter.png", "timeline.png", "summary.json"]:
        (run / name).unlink()
    page = write_report(run).read_text(encoding="utf-8")
    assert data_uri(run / "losses.png") in page
    assert "scatter.png" in page and "timeline.png" in page  # named as absent
    assert "Warnings" in page and ">none<" in page

    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "summary.json").write_text("{not json")
    page = write_report(bare).read_text(encoding="utf-8")
    assert "could not be read" in page and "base64" not in page
    with pytest.raises(UserError):
        write_report(tmp_path / "nope")
