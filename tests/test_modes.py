"""The VEEGAN/PacGAN mode-coverage metric (Srivastava et al. 2017; Lin et al. 2018), in closed
form."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from gankit.config import DataConfig
from gankit.data import build_source
from gankit.data.toy import grid_modes, ring_modes
from gankit.metrics.modes import PROTOCOL, mode_coverage
from gankit.registry import METRICS

RING = ring_modes(8)  # [8, 2]
STD = 0.01


def test_samples_on_every_mode():
    out = mode_coverage(RING.repeat(10, 1), RING, STD)  # [80, 2]
    assert out["modes_captured"] == 8 and out["n_modes"] == 8 and out["n_samples"] == 80
    assert out["high_quality"] == 1.0
    assert_close(out["reverse_kl"], 0.0, atol=1e-12, rtol=0)
    assert out["protocol"] == PROTOCOL


def test_collapse_to_one_mode():
    out = mode_coverage(RING[3:4].repeat(50, 1), RING, STD)
    assert out["modes_captured"] == 1 and out["high_quality"] == 1.0
    assert_close(out["reverse_kl"], math.log(8))


def test_uneven_histogram_kl():
    samples = torch.cat([RING[0:1].repeat(3, 1), RING[1:2].repeat(1, 1)])  # p = (3/4, 1/4)
    out = mode_coverage(samples, RING, STD)
    expected = 0.75 * math.log(0.75 * 8) + 0.25 * math.log(0.25 * 8)
    assert out["modes_captured"] == 2
    assert_close(out["reverse_kl"], expected)


def test_half_far_away():
    far = torch.full((80, 2), 5.0)
    out = mode_coverage(torch.cat([RING.repeat(10, 1), far]), RING, STD)
    assert out["high_quality"] == 0.5 and out["modes_captured"] == 8
    assert_close(out["reverse_kl"], 0.0, atol=1e-12, rtol=0)


def test_three_std_boundary():
    inside = RING[0] + torch.tensor([2.9 * STD, 0.0])
    outside = RING[0] + torch.tensor([3.1 * STD, 0.0])
    assert mode_coverage(inside[None], RING, STD)["high_quality"] == 1.0
    assert mode_coverage(outside[None], RING, STD)["high_quality"] == 0.0


def test_no_high_quality_sample_and_nan():
    samples = torch.tensor([[9.0, 9.0], [float("nan"), 0.0], [float("inf"), 1.0]])
    out = mode_coverage(samples, RING, STD)
    assert out["modes_captured"] == 0 and out["high_quality"] == 0.0
    assert_close(out["reverse_kl"], math.log(8))


@pytest.mark.parametrize("name, n_modes", [("ring", 8), ("grid", 25)])
def test_true_distribution_scores_perfectly(name, n_modes):
    source = build_source(DataConfig(name=name))
    x, _ = source.sample(2500, torch.Generator().manual_seed(0))
    out = mode_coverage(x, source.modes, source.std)
    assert out["modes_captured"] == n_modes
    assert 0.98 < out["high_quality"] <= 1.0
    assert 0.0 <= out["reverse_kl"] < 0.02


def test_linspace_ring_pitfall():
    angles = torch.linspace(0, 2 * math.pi, 8)  # 0 and 2*pi are the same point
    bad = torch.stack([angles.cos(), angles.sin()], dim=1)  # [8, 2]
    gaps = torch.cdist(bad, bad) + 10 * torch.eye(8)
    assert gaps.min() < 1e-6  # only 7 distinct modes: the first and the last coincide
    # A generator that reproduces the linspace ring exactly, scored by the protocol's true ring:
    # only the angle-0 mode lines up (2*pi/7 and 2*pi/8 are 0.11 apart, far beyond 3 std).
    out = mode_coverage(bad.repeat(10, 1), RING, STD)
    assert out["modes_captured"] == 1 and out["high_quality"] == 0.25


def test_grid_modes_and_registration():
    assert grid_modes().shape == (25, 2)
    assert METRICS.get("modes2d") is mode_coverage


def test_bad_shapes():
    with pytest.raises(ValueError):
        mode_coverage(torch.zeros(5, 3), RING, STD)
    with pytest.raises(ValueError):
        mode_coverage(torch.zeros(0, 2), RING, STD)
    with pytest.raises(ValueError):
        mode_coverage(RING, RING, 0.0)


def test_energy_distance_known_value_and_blocks_equal_the_full_matrix(monkeypatch):
    from gankit.metrics import distances

    x, y = torch.zeros(2, 1), torch.full((2, 1), 3.0)
    assert distances.energy_distance(x, y) == 6.0  # 2 E|X - Y| - E|X - X'| - E|Y - Y'| = 6 - 0 - 0
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(53, 2, generator=g), torch.randn(41, 2, generator=g) + 0.5
    a64, b64 = a.double(), b.double()
    full = 2 * torch.cdist(a64, b64).mean()
    full -= torch.cdist(a64, a64).sum() / (53 * 52) + torch.cdist(b64, b64).sum() / (41 * 40)
    monkeypatch.setattr(distances, "CHUNK", 7)  # blocks that divide neither size
    assert distances.energy_distance(a, b) == pytest.approx(float(full), rel=1e-12, abs=1e-12)
