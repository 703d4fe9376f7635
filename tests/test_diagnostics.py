"""The trainer's diagnostics recognise a winning D, vanishing gradients, divergence and collapse."""

import math

import torch

import gankit
from gankit.data import build_source
from gankit.training.diagnostics import Diagnostics


def _diag(*over):
    cfg = gankit.load_config(None, list(over))
    return Diagnostics(cfg, build_source(cfg.data), probabilities=True)


def _row(step, dx=0.6, dgz=0.4, **kw):
    return {
        "step": step,
        "loss_D": 1.2,
        "loss_G": 0.9,
        "D(x)": dx,
        "D(G(z))": dgz,
        "grad_norm_G": 0.5,
        "grad_norm_D": 0.5,
        **kw,
    }


def test_healthy_run_gives_no_warning():
    d = _diag()
    assert all(d.observe(_row(s)) == [] for s in range(50, 1000, 50))
    assert d.warnings == []


def test_d_wins_after_a_streak_once_with_hint():
    d = _diag()
    out = [d.observe(_row(s, dx=0.995, dgz=0.004)) for s in (50, 100, 150, 200)]
    assert out[0] == [] and out[1] == []  # a streak, not one noisy row
    assert len(out[2]) == 1 and "discriminator is winning at step 150" in out[2][0]
    assert "label_smoothing" in out[2][0]
    assert out[3] == [] and len(d.warnings) == 1  # warned once


def test_minimax_with_vanishing_gradient_suggests_nonsaturating():
    d = _diag("train.g_loss=minimax")
    for s in (50, 100, 150):
        msgs = d.observe(_row(s, dx=0.999, dgz=0.001, grad_norm_G=1e-6))
    assert "vanishing" in msgs[0] and "g_loss=nonsaturating" in msgs[0]


def test_divergence_when_losses_explode():
    d = _diag()
    for s in range(1, 6):
        assert d.observe(_row(s * 50)) == []
    msgs = d.observe(_row(300, loss_D=1e4))
    assert len(msgs) == 1 and "diverging at step 300" in msgs[0] and "loss_D" in msgs[0]


def test_collapse_on_one_mode_but_not_for_samples_between_modes():
    d = _diag("train.steps=300")
    modes = d.source.modes  # [8, 2]
    collapsed = modes[3].repeat(500, 1) + 0.01 * torch.randn(500, 2)
    assert d.check_samples(50, collapsed) == []  # too early to judge
    msgs = d.check_samples(200, collapsed)
    assert len(msgs) == 1 and "cluster near 1 of 8 modes" in msgs[0]
    d2 = _diag("train.steps=300")
    angle = torch.rand(2000) * 2 * math.pi  # a smeared ring: poor quality, not collapse
    smeared = torch.stack([angle.cos(), angle.sin()], 1)
    assert d2.check_samples(200, smeared) == []


def test_image_collapse_by_diversity(data_root):
    cfg = gankit.load_config("mnist-gan", [f"data.root={data_root}", "train.steps=3000"])
    d = Diagnostics(cfg, build_source(cfg.data), probabilities=True)
    real, _ = d.source.sample(64, torch.Generator().manual_seed(5))
    assert d.check_samples(1000, real) == []  # real images are as diverse as real images
    same = real[:1].repeat(64, 1, 1, 1) + 0.01 * torch.randn(64, 1, 28, 28)
    assert d.check_samples(999, same) == []  # a third of the run: too early to judge
    assert "mode collapse suspected" in d.check_samples(1000, same)[0]


def test_a_short_image_run_gets_no_collapse_verdict(data_root):
    # an untrained G's images are alike across z without having collapsed: a 30-step try is no
    # evidence either way (before IMAGE_MIN_STEP, 500, images are not judged)
    cfg = gankit.load_config("mnist-gan", [f"data.root={data_root}", "train.steps=30"])
    d = Diagnostics(cfg, build_source(cfg.data), probabilities=True)
    real, _ = d.source.sample(64, torch.Generator().manual_seed(5))
    same = real[:1].repeat(64, 1, 1, 1) + 0.01 * torch.randn(64, 1, 28, 28)
    assert d.check_samples(20, same) == [] and d.check_samples(499, same) == []
    assert "mode collapse suspected" in d.check_samples(500, same)[0]


def test_state_round_trip():
    d = _diag()
    for s in (50, 100, 150):
        d.observe(_row(s, dx=0.999, dgz=0.001))
    e = _diag()
    e.load_state_dict(d.state_dict())
    assert e.warnings == d.warnings and e.streak == d.streak
    assert e.observe(_row(200, dx=0.999, dgz=0.001)) == []  # already warned
