"""The trainer: it learns, resumes bit-exactly, stops cleanly, keeps the last good checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import gankit
from gankit.training import checkpoint
from gankit.training.ema import EMA
from gankit.training.trainer import Trainer
from gankit.variants.gan import GAN

QUIET = ["log.quiet=true"]


def _train(tmp_path, preset=None, *over):
    return gankit.train(preset, [f"out={tmp_path}", *QUIET, *over])


def test_gauss1d_matches_mean_and_std(tmp_path):
    run = _train(tmp_path, "gauss1d", "train.steps=1500", "seed=0")
    s = run.summary
    x = run.sample(20000, seed=1)[:, 0]  # fresh samples, not the ones the summary used
    assert abs(x.mean().item() - s["real_mean"][0]) < 0.1
    assert abs(x.std().item() - s["real_std"][0]) < 0.1


def test_default_ring_captures_at_least_7_of_8_modes(tmp_path):
    run = _train(tmp_path)  # the embedded default, fixed seed 0
    s = run.summary
    assert s["n_modes"] == 8 and s["n_samples"] == 2500
    assert s["modes_captured"] >= 7, s
    assert s["high_quality"] > 0.5, s
    for f in (
        "config.yaml",
        "metrics.jsonl",
        "summary.json",
        "losses.png",
        "timeline.png",
        "scatter.png",
        "report.html",
    ):
        assert (run.dir / f).is_file(), f


def _state(run_dir: Path) -> dict:
    return checkpoint.load(checkpoint.latest(run_dir))


def test_each_step_makes_n_critic_d_updates_then_g_steps_g_updates(tmp_path):
    run = _train(tmp_path, None, "train.steps=3", "train.n_critic=2", "train.g_steps=3")
    opts = _state(run.dir)["opts"]
    updates = {k: {int(st["step"]) for st in o["state"].values()} for k, o in opts.items()}
    assert updates == {"D": {6}, "G": {9}}


def test_loss_plot_counts_steps_not_g_updates_when_g_steps_is_above_one(tmp_path, monkeypatch):
    from gankit.report import plots

    labels = []
    figure = plots._losses_figure

    def record(*args):  # the label of the figure the run's losses.png is drawn from
        fig = figure(*args)
        labels.append(fig.axes[-1].get_xlabel())
        return fig

    monkeypatch.setattr(plots, "_losses_figure", record)
    _train(tmp_path / "one", None, "train.steps=2")
    _train(tmp_path / "two", None, "train.steps=2", "train.g_steps=2")
    assert labels == ["step (G updates)", "step (2 G updates each)"]


def _same(a, b, where="") -> None:
    """Bit-identical nested state: tensors equal element for element, everything else ==."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype, where
        assert torch.equal(a, b), f"{where} differs"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _assert_same_state(a: dict, b: dict) -> None:
    for part in ("step", "nets", "opts", "sched", "ema", "rng"):
        _same(a[part], b[part], part)


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["train.n_critic=2", "train.g_steps=2", "model.dropout=0.3", "train.ema=0.9"],
        ["train.ema=0.999", "train.ema_warmup=true"],  # the ramp follows the step, resumed too
    ],
)
def test_resume_is_bit_exact_on_toy_data(tmp_path, extra):
    # lr_decay=none: a linear schedule depends on the total steps, which the extension changes
    common = [
        "log.every=5",
        "log.sample_every=10",
        "log.checkpoint_every=10",
        "train.lr_decay=none",
        *extra,
    ]
    whole = _train(tmp_path, None, "name=whole", "train.steps=40", *common)
    half = _train(tmp_path, None, "name=half", "train.steps=20", *common)
    gankit.resume(half.dir, ["train.steps=40"])
    _assert_same_state(_state(whole.dir), _state(half.dir))
    rows = lambda d: [  # noqa: E731
        {k: v for k, v in json.loads(line).items() if k not in ("img_per_s", "seconds")}
        for line in (d / "metrics.jsonl").read_text().splitlines()
    ]
    assert rows(whole.dir) == rows(half.dir)


def test_interrupted_run_resumes_exactly_with_lr_decay(tmp_path):
    common = ["train.steps=40", "train.lr_decay=linear", "log.every=5", *QUIET]
    whole = _train(tmp_path, None, "name=whole", *common)
    t = Trainer(gankit.load_config(None, [f"out={tmp_path}", "name=half", *common]))
    run_phase = t._run_phase

    def stop_after_step_20(phase, window, log_now):
        run_phase(phase, window, log_now)
        if t.step == 19 and phase.name == "G":
            t._stop.set()  # what the Ctrl-C handler does

    t._run_phase = stop_after_step_20
    half = t.fit()
    assert half.interrupted and _state(half.dir)["step"] == 20
    gankit.resume(half.dir)
    _assert_same_state(_state(whole.dir), _state(half.dir))


def test_mnist_dcgan_writes_report_and_resumes_exactly(tmp_path, data_root):
    common = [
        f"data.root={data_root}",
        "model.width=8",
        "train.batch_size=16",
        "log.every=2",
        "log.sample_every=3",
        "log.checkpoint_every=3",
        "log.n_samples=16",
    ]
    whole = _train(tmp_path, "mnist-dcgan", "name=whole", "train.steps=6", *common)
    half = _train(tmp_path, "mnist-dcgan", "name=half", "train.steps=3", *common)
    gankit.resume(half.dir, ["train.steps=6"])
    _assert_same_state(_state(whole.dir), _state(half.dir))
    for f in (
        "config.yaml",
        "metrics.jsonl",
        "summary.json",
        "losses.png",
        "timeline.png",
        "report.html",
        "samples/step_0000003.png",
        "samples/step_0000006.png",
    ):
        assert (whole.dir / f).is_file(), f
    html = (whole.dir / "report.html").read_text()
    assert html.count("data:image/png;base64") >= 3
    x = gankit.load_generator(whole.dir).sample(5, seed=0)
    assert x.shape == (5, 1, 28, 28) and x.min() >= -1 and x.max() <= 1


def test_checkpoint_is_plain_data_and_export_round_trips(tmp_path):
    run = _train(tmp_path, None, "train.steps=10", "train.ema=0.5")
    path = checkpoint.latest(run.dir)
    ck = torch.load(path, weights_only=True)  # no pickled code needed
    assert ck["step"] == 10 and ck["config"]["train"]["steps"] == 10
    out = gankit.export(run.dir, tmp_path / "G.safetensors")
    a = gankit.load_generator(run.dir).sample(50, seed=3)
    b = gankit.load_generator(out).sample(50, seed=3)
    c = gankit.load_generator(path).sample(50, seed=3)
    assert_close(a, b, rtol=0, atol=0)
    assert_close(a, c, rtol=0, atol=0)
    assert_close(run.sample(50, seed=3), a, rtol=0, atol=0)  # the EMA net is what samples


def test_ema_warmup_follows_the_ramp_and_forgets_the_initial_weights():
    net = nn.Linear(1, 1, bias=False, dtype=torch.float64)  # float32 can't show a 1e-12 share
    nn.init.constant_(net.weight, 0.0)
    plain, ramp = EMA(net, 0.999), EMA(net, 0.999, warmup=True)
    expect = 0.0  # the ramped average by hand: e <- d e + (1 - d) x, d = min(0.999, (1+t)/(10+t))
    for t in range(200):
        with torch.no_grad():
            net.weight.fill_(1.0)  # G jumped from its initial 0 to 1 and stays there
        plain.update(net, t)
        ramp.update(net, t)
        d = min(0.999, (1 + t) / (10 + t))
        expect = d * expect + (1 - d) * 1.0
    assert ramp.decay_at(0) == 0.1 and ramp.decay_at(10_000) == 0.999 and plain.decay_at(0) == 0.999
    assert_close(ramp.net.weight.item(), expect, rtol=1e-6, atol=0)
    assert ramp.net.weight.item() > 1 - 1e-12  # the initial weights' share: prod d < 1e-12
    assert_close(plain.net.weight.item(), 1 - 0.999**200, rtol=1e-5, atol=0)  # 82 % initial


def test_crash_while_saving_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    run = _train(tmp_path, None, "train.steps=10")
    good = checkpoint.latest(run.dir)
    before = good.read_bytes()

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        checkpoint.save_atomic({"x": 1}, good)
    assert good.read_bytes() == before
    checkpoint.load(good)  # still loads
    assert not list(good.parent.glob(".*.tmp"))  # and the half-written temporary is gone


def test_nan_loss_stops_with_message_and_keeps_checkpoint(tmp_path, monkeypatch):
    real_loss = GAN.loss

    def poisoned(self, phase, nets, batch):
        out = real_loss(self, phase, nets, batch)
        if batch.step >= 7:
            out.total = out.total * float("nan")
        return out

    monkeypatch.setattr(GAN, "loss", poisoned)
    with pytest.raises(gankit.TrainingDiverged, match="became nan at step 7"):
        _train(tmp_path, None, "train.steps=20", "log.checkpoint_every=5")
    ck = checkpoint.load(checkpoint.latest(tmp_path / "ring"))
    assert ck["step"] == 5
    assert all(torch.isfinite(v).all() for v in ck["nets"]["G"].values())


def test_run_folder_is_never_overwritten(tmp_path):
    a = _train(tmp_path, None, "train.steps=3")
    b = _train(tmp_path, None, "train.steps=3")
    assert a.dir.name == "ring" and b.dir.name == "ring-2"


def test_ctrl_c_saves_a_checkpoint_and_resume_finishes(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "gankit.cli",
        "train",
        f"out={tmp_path}",
        "train.steps=100000",
        "log.every=10",
        "log.checkpoint_every=100000",
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "ring" / "metrics.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and not (metrics.exists() and metrics.stat().st_size > 0):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted: checkpoint at step" in err
    ck = checkpoint.load(checkpoint.latest(tmp_path / "ring"))
    assert 0 < ck["step"] < 100000
    run = gankit.resume(tmp_path / "ring", [f"train.steps={ck['step'] + 5}", *QUIET])
    assert run.summary["steps"] == ck["step"] + 5 and not run.summary["interrupted"]


def test_vanishing_gradient_minimax_vs_nonsaturating():
    """Goodfellow et al. 2014, Sec. 3: against a D that wins, log(1 - D(G(z))) saturates."""
    torch.manual_seed(0)
    cfg = gankit.load_config(None, ["model.width=64"])
    variant = GAN(cfg)
    nets = variant.build_nets((2,), 0)
    G, D = nets["G"], nets["D"]
    from gankit.data import build_source

    real_src = build_source(cfg.data)
    opt = torch.optim.Adam(D.parameters(), lr=1e-3)
    G.requires_grad_(False)
    for _ in range(300):  # a strong D against a fixed G
        x, _ = real_src.sample(256)
        fake = G(torch.randn(256, G.z_dim))
        loss = gankit.losses.bce_d(D(x), D(fake))
        opt.zero_grad()
        loss.backward()
        opt.step()
    G.requires_grad_(True)
    z = torch.randn(512, G.z_dim)
    with torch.no_grad():
        assert torch.sigmoid(D(G(z))).mean() < 0.01  # D really wins

    def g_grad(loss_fn):
        G.zero_grad()
        loss_fn(D(G(z))).backward()
        return torch.sqrt(sum(p.grad.pow(2).sum() for p in G.parameters())).item()

    mm, ns = g_grad(gankit.losses.g_minimax), g_grad(gankit.losses.g_nonsaturating)
    assert ns > 0 and mm < ns / 100, (mm, ns)


# ---------------------------------------------------------------------------- the CLI


def _cli(*args, cwd=None):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "gankit.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["train", "train.bogus=1"], "unknown config key train.bogus"),
        (["train", "train.steps=ten"], "train.steps must be an integer"),
        (["train", "train.lr_g=-1"], "train.lr_g must be positive"),
        (["train", "--config", "nosuch"], "unknown preset 'nosuch'"),
        (["train", "--config", "missing.yaml"], "config file missing.yaml does not exist"),
        (["train", "data.name=folder"], "data.path"),
        (["train", "train.variant=nope"], "unknown variant 'nope'"),
        (["train", "--resume", "no/such/run"], "is not a run folder"),
        (["sample", "no/such/run"], "does not exist"),
        (["export", "no/such/run", "--out", "G.safetensors"], "does not exist"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path, args, fragment):
    r = _cli(*args, cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gankit: error:"), r.stderr
    assert fragment in lines[0]


@pytest.mark.parametrize("cmd", [[], ["train"], ["sample"], ["export"], ["presets"]])
def test_cli_help(cmd):
    r = _cli(*cmd, "--help")
    assert r.returncode == 0 and "usage: gankit" in r.stdout


def test_cli_presets_sample_export(tmp_path):
    r = _cli("presets")
    assert r.returncode == 0 and "mnist-dcgan" in r.stdout and "ring" in r.stdout
    r = _cli("train", f"out={tmp_path}", "train.steps=20", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "modes captured:" in r.stdout and "report:" in r.stdout
    run = tmp_path / "ring"
    r = _cli("sample", str(run), "--n", "100", "--out", str(tmp_path / "s.png"))
    assert r.returncode == 0 and (tmp_path / "s.png").stat().st_size > 0, r.stderr
    r = _cli("export", str(run), "--out", str(tmp_path / "G.safetensors"))
    assert r.returncode == 0 and (tmp_path / "G.safetensors").is_file(), r.stderr
    r = _cli("sample", str(run), "--class", "3", "--out", str(tmp_path / "c.png"))
    assert r.returncode == 2 and "unconditional" in r.stderr


def test_toy_runs_use_one_thread_and_restore_the_callers_setting(tmp_path, monkeypatch):
    seen = []
    real_phase = Trainer._run_phase

    def spy(self, phase, window, log_now):
        seen.append(torch.get_num_threads())
        return real_phase(self, phase, window, log_now)

    monkeypatch.setattr(Trainer, "_run_phase", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        _train(tmp_path, None, "train.steps=3")
        assert set(seen) == {1} and torch.get_num_threads() == 2
        seen.clear()
        _train(tmp_path, None, "train.steps=3", "threads=2", "name=two")
        assert set(seen) == {2}
    finally:
        torch.set_num_threads(before)
