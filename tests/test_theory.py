"""Goodfellow et al. 2014, Prop. 1 and Thm. 1 on 1-D densities: JSD, D*, V(G, D*), a trained D."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
from PIL import Image
from torch.testing import assert_close

from gankit import theory
from gankit.config import DataConfig
from gankit.data.toy import ToySource, gauss1d

LOG2 = math.log(2.0)
P_DATA = gauss1d(DataConfig())  # 1/2 N(-2, 0.5^2) + 1/2 N(2, 0.5^2)
CASES = {
    "far": theory.gaussian1d(6.0, 0.5),
    "overlapping": theory.gaussian1d(0.0, 1.5),
    "nearly equal": theory.mixture1d([-1.8, 2.2], [0.55, 0.55]),
}
TRAIN_STEPS = 1500  # converged to ~0.05 in D and ~0.002 nats in V on every seed we tried


pytestmark = pytest.mark.usefixtures("one_thread")


def d_star(p_g: ToySource):
    return partial(theory.optimal_logit, P_DATA, p_g)


# ------------------------------------------------------------------------------------------ JSD
def test_jsd_of_identical_densities_is_zero():
    lo, hi = theory.support(P_DATA)
    assert_close(theory.jsd(P_DATA, P_DATA, lo, hi), 0.0, atol=1e-12, rtol=0)


def test_jsd_of_disjoint_densities_is_log2():
    p, q = theory.gaussian1d(-10.0, 0.1, "p"), theory.gaussian1d(10.0, 0.1, "q")
    lo, hi = theory.support(p, q)  # 200 stds apart: the overlap is far below float64 precision
    assert_close(theory.jsd(p, q, lo, hi), LOG2, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", CASES)
def test_jsd_is_symmetric_bounded_and_matches_monte_carlo(name: str):
    p_g = CASES[name]
    lo, hi = theory.support(P_DATA, p_g)
    j = theory.jsd(P_DATA, p_g, lo, hi)
    assert_close(theory.jsd(p_g, P_DATA, lo, hi), j, atol=1e-12, rtol=0)
    assert 0 < j < LOG2
    # JSD = 1/2 E_p[log p/m] + 1/2 E_q[log q/m], estimated from samples: independent of the grid.
    gen = torch.Generator().manual_seed(0)
    n = 200_000
    terms = []
    for p, x in ((P_DATA, P_DATA.draw(n, gen)[0]), (p_g, p_g.draw(n, gen)[0])):
        x = x.double()  # [n, 1]
        lp, lq = P_DATA.log_density(x), p_g.log_density(x)  # [n], [n]
        own = lp if p is P_DATA else lq
        terms.append(0.5 * (own - (torch.logaddexp(lp, lq) - LOG2)))  # [n]
    estimate = float(sum(t.mean() for t in terms))
    stderr = math.sqrt(sum(float(t.var()) / n for t in terms))
    assert abs(estimate - j) < 4 * stderr + 1e-4


def test_jsd_refuses_an_interval_that_cuts_off_mass():
    with pytest.raises(ValueError, match="widen the interval"):
        theory.jsd(P_DATA, CASES["far"], -3.0, 3.0)


def test_two_dimensional_sources_are_refused():
    ring = ToySource("ring", torch.zeros(1, 2), 1.0)
    with pytest.raises(ValueError, match="1-D density"):
        theory.jsd(ring, P_DATA, -5.0, 5.0)


# ---------------------------------------------------------------------------------- the game
def test_optimal_discriminator_is_the_density_ratio():
    p_g = CASES["overlapping"]
    x = torch.linspace(-4, 4, 81, dtype=torch.float64)[:, None]  # [81, 1]
    p, q = P_DATA.density(x), p_g.density(x)
    d = theory.optimal_discriminator(P_DATA, p_g, x)
    assert d.shape == (81,)
    assert_close(d, p / (p + q), atol=1e-12, rtol=1e-10)
    same = theory.optimal_discriminator(P_DATA, P_DATA, x)
    assert_close(same, torch.full_like(same, 0.5), atol=0, rtol=0)


@pytest.mark.parametrize("name", CASES)
def test_value_at_d_star_is_2jsd_minus_2log2(name: str):
    p_g = CASES[name]
    lo, hi = theory.support(P_DATA, p_g)
    v = theory.game_value(d_star(p_g), P_DATA, p_g, lo, hi)
    assert_close(v, 2 * theory.jsd(P_DATA, p_g, lo, hi) - 2 * LOG2, atol=1e-9, rtol=0)
    assert_close(v, theory.game_value_at_optimum(P_DATA, p_g, lo, hi), atol=1e-9, rtol=0)


@pytest.mark.parametrize("name", CASES)
def test_d_star_maximises_the_value(name: str):
    p_g = CASES[name]
    lo, hi = theory.support(P_DATA, p_g)
    best = theory.game_value_at_optimum(P_DATA, p_g, lo, hi)
    half = theory.game_value(lambda x: torch.zeros(x.shape[0], dtype=x.dtype), P_DATA, p_g, lo, hi)
    assert_close(half, -2 * LOG2, atol=1e-9, rtol=0)  # D = 1/2: log(1/2) + log(1/2)
    for worse in (lambda x: d_star(p_g)(x) + 0.5, lambda x: 0.7 * d_star(p_g)(x)):
        assert theory.game_value(worse, P_DATA, p_g, lo, hi) < best  # pointwise, so strict


def test_value_at_d_star_matches_monte_carlo():
    """Thm. 1 from samples, with the sample-mean of log D*(x) + log(1 - D*(G(z)))."""
    p_g = CASES["overlapping"]
    gen = torch.Generator().manual_seed(1)
    n = 200_000
    real, fake = P_DATA.draw(n, gen)[0].double(), p_g.draw(n, gen)[0].double()  # [n, 1] each
    log_d = torch.nn.functional.logsigmoid(d_star(p_g)(real))  # [n]
    log_1md = torch.nn.functional.logsigmoid(-d_star(p_g)(fake))  # [n]
    estimate = float(log_d.mean() + log_1md.mean())
    stderr = math.sqrt(float(log_d.var() + log_1md.var()) / n)
    lo, hi = theory.support(P_DATA, p_g)
    assert abs(estimate - theory.game_value_at_optimum(P_DATA, p_g, lo, hi)) < 4 * stderr


# -------------------------------------------------------------------------------- a trained D
@pytest.fixture(scope="module")
def trained() -> dict[str, torch.nn.Module]:
    torch.set_num_threads(1)  # the autouse fixture is function-scoped; it restores the count
    names = ["overlapping", "nearly equal"]  # D* varies over the data in both
    return {n: theory.train_discriminator(P_DATA, CASES[n], steps=TRAIN_STEPS) for n in names}


@pytest.mark.parametrize("name", ["overlapping", "nearly equal"])
def test_trained_discriminator_approaches_d_star(trained, name: str):
    p_g, D = CASES[name], trained[name]
    lo, hi = theory.support(P_DATA, p_g)
    x = theory.grid(lo, hi, 4001)  # [n, 1]
    where = P_DATA.density(x) > 0.05  # where the data live
    target = theory.optimal_discriminator(P_DATA, p_g, x)[where]
    with torch.no_grad():
        got = torch.sigmoid(D(x.float())).double()[where]
    assert (got - target).abs().max() < 0.1
    # the bound means something: the uninformed D = 1/2 breaks it
    assert (0.5 - target).abs().max() > 0.1
    assert theory.max_gap(D, P_DATA, p_g, lo, hi) < 0.1  # also where only p_g lives

    best = theory.game_value_at_optimum(P_DATA, p_g, lo, hi)
    v = theory.game_value(D, P_DATA, p_g, lo, hi)
    assert best - 0.01 < v <= best + 1e-6  # D* maximises V: no D may exceed it


def test_training_is_seeded_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    a = theory.train_discriminator(P_DATA, CASES["far"], steps=10, seed=3)
    b = theory.train_discriminator(P_DATA, CASES["far"], steps=10, seed=3)
    c = theory.train_discriminator(P_DATA, CASES["far"], steps=10, seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    pairs = zip(a.parameters(), c.parameters(), strict=True)
    assert not all(torch.equal(pa, pc) for pa, pc in pairs)


# ------------------------------------------------------------------------------------ picture
def test_plots_write_pngs(tmp_path, trained):
    p_g = CASES["overlapping"]
    one = theory.plot_optimal_discriminator(
        P_DATA, p_g, tmp_path / "one.png", D=trained["overlapping"], title="overlapping"
    )
    bare = theory.plot_optimal_discriminator(P_DATA, p_g, tmp_path / "sub" / "bare.png")
    cases = [(n, CASES[n], trained.get(n)) for n in CASES]
    stacked = theory.plot_cases(P_DATA, cases, tmp_path / "cases.png")
    for path in (one, bare, stacked):
        with Image.open(path) as im:
            assert im.format == "PNG" and im.width > 400 and im.height > 300
    with Image.open(stacked) as im_s, Image.open(one) as im_1:
        assert im_s.height > 2 * im_1.height  # three panels
