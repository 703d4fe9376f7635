"""Losses against closed-form values, and the gradient penalty on a linear critic."""

import math

import torch
from torch.testing import assert_close

from gankit import losses as L


def t(*v):
    return torch.tensor(v, dtype=torch.float64)


def test_bce_d_closed_form():
    real, fake = t(0.0, 2.0), t(-1.0, 0.0)
    sig = torch.sigmoid
    expect = -(torch.log(sig(real)).mean() + torch.log(1 - sig(fake)).mean())
    assert_close(L.bce_d(real, fake), expect)
    # at D = 1/2 everywhere the loss is 2 log 2, the value of the minimax game at equilibrium
    assert_close(L.bce_d(t(0.0), t(0.0)), torch.tensor(2 * math.log(2), dtype=torch.float64))


def test_one_sided_label_smoothing_targets_real_only():
    real, fake = t(3.0), t(-3.0)
    s = torch.sigmoid(real)
    expect = -(0.9 * torch.log(s) + 0.1 * torch.log(1 - s)) - torch.log(1 - torch.sigmoid(fake))
    assert_close(L.bce_d(real, fake, real_target=0.9), expect.squeeze())


def test_generator_losses_closed_form():
    fake = t(-2.0, 0.5)
    p = torch.sigmoid(fake)
    assert_close(L.g_minimax(fake), torch.log(1 - p).mean())
    assert_close(L.g_nonsaturating(fake), -torch.log(p).mean())


def test_minimax_saturates_where_nonsaturating_does_not():
    # d/ds log(1 - sigmoid(s)) = -sigmoid(s) -> 0 as s -> -inf; d/ds -log sigmoid(s) -> -1
    s = t(-10.0).requires_grad_()
    (g_mm,) = torch.autograd.grad(L.g_minimax(s), s)
    s2 = t(-10.0).requires_grad_()
    (g_ns,) = torch.autograd.grad(L.g_nonsaturating(s2), s2)
    assert abs(g_mm.item()) < 1e-4 and abs(g_ns.item()) > 0.99


def test_wasserstein_and_lsgan_closed_form():
    real, fake = t(1.0, 3.0), t(-1.0, 0.0)
    assert_close(L.wasserstein_d(real, fake), t(-0.5 - 2.0).squeeze())
    assert_close(L.wasserstein_g(fake), t(0.5).squeeze())
    assert_close(L.lsgan_d(real, fake), t(0.5 * ((0 + 4) / 2 + (1 + 0) / 2)).squeeze())
    assert_close(L.lsgan_g(fake), t(0.5 * (4 + 1) / 2).squeeze())


def test_ebgan_margin_and_pull_away():
    er, ef = t(0.2, 0.4), t(0.5, 3.0)
    assert_close(L.ebgan_d(er, ef, margin=1.0), t(0.3 + (0.5 + 0.0) / 2).squeeze())
    assert_close(L.ebgan_g(ef), t(1.75).squeeze())
    same = torch.ones(4, 3, dtype=torch.float64)
    assert_close(L.pull_away(same), t(1.0).squeeze())  # identical codes: cosine 1
    ortho = torch.eye(3, dtype=torch.float64)
    assert_close(L.pull_away(ortho), t(0.0).squeeze())  # orthogonal codes: cosine 0


def test_gradient_penalty_on_linear_critic():
    # D(x) = w . x has gradient w everywhere, so the penalty is (||w|| - 1)^2 exactly
    w = torch.tensor([3.0, 4.0], dtype=torch.float64)
    real = torch.randn(16, 2, dtype=torch.float64)
    fake = torch.randn(16, 2, dtype=torch.float64)
    gp = L.gradient_penalty(lambda x: x @ w, real, fake)
    assert_close(gp, t(16.0).squeeze())  # (5 - 1)^2
    unit = w / w.norm()
    assert_close(L.gradient_penalty(lambda x: x @ unit, real, fake), t(0.0).squeeze())


def test_gradient_penalty_is_differentiable_wrt_critic():
    lin = torch.nn.Linear(2, 1, dtype=torch.float64)
    gp = L.gradient_penalty(
        lambda x: lin(x).squeeze(1),
        torch.randn(8, 2, dtype=torch.float64),
        torch.randn(8, 2, dtype=torch.float64),
    )
    gp.backward()
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0
