"""The GAN game in closed form, on 1-D densities we know exactly (Goodfellow et al. 2014).

For a *fixed* generator density p_g, Goodfellow et al. 2014 prove (Prop. 1) that the
discriminator maximising

    V(G, D) = E_{x ~ p_data}[log D(x)] + E_{x ~ p_g}[log(1 - D(x))]

is D*(x) = p_data(x) / (p_data(x) + p_g(x)), and (Thm. 1) that at D* the value of the game is
V(G, D*) = 2 JSD(p_data || p_g) - 2 log 2: between -2 log 2 (p_g = p_data, D* = 1/2 everywhere)
and 0 (disjoint supports, D* = 1 on the data and 0 on the fakes).

Here p_data and p_g are 1-D Gaussian mixtures (``ToySource``) with exact densities, so JSD and V
are integrals on a fine grid (trapezoid rule, natural log: nats), free of sampling noise. A real
MLP discriminator trained with the BCE loss against the fixed p_g (whose loss is exactly -V on a
batch) should land on D* where the data live; ``plot_optimal_discriminator`` draws both.

Discriminators follow gankit's contract: functions of ``x [N, 1]`` returning raw scores ``[N]``
(logits), with D(x) = sigmoid(score). The score of D* is log p_data(x) - log p_g(x).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor, nn

from .config import ModelConfig
from .data.toy import ToySource
from .losses.adversarial import bce_d
from .nets import build_discriminator, check_shape
from .report.plots import DPI, FAKE_COLOR, REAL_COLOR, _save, _style

Score = Callable[[Tensor], Tensor]  # x [N, 1] -> raw scores [N]; D(x) = sigmoid(score)
LOG2 = math.log(2.0)
MASS_TOL = 1e-3  # a density may lose at most this much mass outside the integration interval


# ---------------------------------------------------------------------------------- densities
def gaussian1d(mean: float, std: float, name: str = "p_g") -> ToySource:
    """N(mean, std^2) on the real line, as a one-component ``ToySource``."""
    return mixture1d([mean], [std], name=name)


def mixture1d(
    means: Sequence[float],  # component means
    stds: Sequence[float],  # component stds, one per mean
    weights: Sequence[float] | None = None,  # mixture weights (normalised); None = equal
    name: str = "p_g",
) -> ToySource:
    """A 1-D Gaussian mixture with exact ``density`` / ``log_density`` and seeded ``draw``."""
    if not means or len(stds) != len(means) or min(stds) <= 0:
        raise ValueError(f"need one positive std per mean, got means {means} and stds {stds}")
    modes = torch.tensor([[float(m)] for m in means])  # [K, 1]
    w = None if weights is None else torch.tensor([float(v) for v in weights])  # [K]
    return ToySource(name, modes, torch.tensor([float(s) for s in stds]), w)


def _check_1d(*sources: ToySource) -> None:
    for p in sources:
        if p.shape != (1,):
            raise ValueError(f"{p.name} must be a 1-D density, got sample shape {p.shape}")


def support(*sources: ToySource, n_std: float = 8.0) -> tuple[float, float]:
    """An interval holding all the mass of every 1-D source: each mode +- ``n_std`` stds."""
    _check_1d(*sources)
    lo = min(float((p.modes[:, 0] - n_std * p.stds).min()) for p in sources)
    hi = max(float((p.modes[:, 0] + n_std * p.stds).max()) for p in sources)
    return lo, hi


def grid(lo: float, hi: float, n: int = 20001) -> Tensor:
    """``n`` evenly spaced float64 points from ``lo`` to ``hi`` as a batch ``[n, 1]``."""
    if not hi > lo or n < 3:
        raise ValueError(f"need lo < hi and n >= 3, got lo={lo}, hi={hi}, n={n}")
    return torch.linspace(lo, hi, n, dtype=torch.float64)[:, None]  # [n, 1]


def _log_densities(p_data: ToySource, p_g: ToySource, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """x [n, 1] on a grid -> (x [n], log p_data [n], log p_g [n]), checking the grid's mass."""
    _check_1d(p_data, p_g)
    check_shape(x, [None, 1], "x")
    lp, lq = p_data.log_density(x), p_g.log_density(x)  # [n], [n]
    xs = x[:, 0]  # [n]
    for p, logp in ((p_data, lp), (p_g, lq)):
        mass = float(torch.trapezoid(logp.exp(), xs))
        if abs(mass - 1) > MASS_TOL:
            raise ValueError(
                f"{p.name} integrates to {mass:.4f} on [{float(xs[0]):g}, {float(xs[-1]):g}]: "
                "widen the interval (see theory.support) or use more grid points"
            )
    return xs, lp, lq


# ----------------------------------------------------------------------------------- the game
def optimal_logit(p_data: ToySource, p_g: ToySource, x: Tensor) -> Tensor:
    """The raw score of D*: log p_data(x) - log p_g(x), for ``x [N, 1]`` -> ``[N]``."""
    _check_1d(p_data, p_g)
    check_shape(x, [None, 1], "x")
    return p_data.log_density(x) - p_g.log_density(x)  # [N]


def optimal_discriminator(p_data: ToySource, p_g: ToySource, x: Tensor) -> Tensor:
    """D*(x) = p_data(x) / (p_data(x) + p_g(x)) for ``x [N, 1]`` -> ``[N]`` in [0, 1]."""
    return torch.sigmoid(optimal_logit(p_data, p_g, x))  # [N]; stable where both densities vanish


def jsd(p_data: ToySource, p_g: ToySource, lo: float, hi: float, n: int = 20001) -> float:
    """JSD(p_data || p_g) in nats, by the trapezoid rule on ``n`` points of [lo, hi].

    JSD = 1/2 KL(p || m) + 1/2 KL(q || m) with m = (p + q) / 2; lies in [0, log 2]. Terms with a
    zero density count as 0 (0 log 0 = 0).
    """
    xs, lp, lq = _log_densities(p_data, p_g, grid(lo, hi, n))
    lm = torch.logaddexp(lp, lq) - LOG2  # [n] log m
    p, q = lp.exp(), lq.exp()  # [n]
    kl_p = torch.where(p > 0, p * (lp - lm), 0.0)  # [n]
    kl_q = torch.where(q > 0, q * (lq - lm), 0.0)  # [n]
    return float(torch.trapezoid(0.5 * (kl_p + kl_q), xs))


def _scores_on(D: Score, x: Tensor) -> Tensor:
    """D's raw scores on float64 points ``x [n, 1]`` -> float64 ``[n]``, in D's dtype, no grad."""
    params = next(iter(D.parameters()), None) if isinstance(D, nn.Module) else None
    dtype = params.dtype if params is not None else x.dtype
    with torch.no_grad():
        s = D(x.to(dtype))  # [n]
    check_shape(s, [x.shape[0]], "D(x)")
    return s.to(torch.float64)


def game_value(
    D: Score, p_data: ToySource, p_g: ToySource, lo: float, hi: float, n: int = 20001
) -> float:
    """V(G, D) = int p_data log D + p_g log(1 - D) dx on ``n`` points of [lo, hi], in nats.

    ``D`` returns raw scores (an MLP discriminator, or ``partial(optimal_logit, p_data, p_g)``);
    log D = logsigmoid(score) and log(1 - D) = logsigmoid(-score), so saturated scores stay finite.
    V(G, D) <= V(G, D*) for every D; the gap is int (p_data + p_g) KL(Bern(D*) || Bern(D)) dx.
    """
    x = grid(lo, hi, n)  # [n, 1]
    xs, lp, lq = _log_densities(p_data, p_g, x)
    s = _scores_on(D, x)  # [n]
    integrand = lp.exp() * F.logsigmoid(s) + lq.exp() * F.logsigmoid(-s)  # [n]
    return float(torch.trapezoid(integrand, xs))


def game_value_at_optimum(
    p_data: ToySource, p_g: ToySource, lo: float, hi: float, n: int = 20001
) -> float:
    """V(G, D*) = 2 JSD(p_data || p_g) - 2 log 2 (Thm. 1), in nats."""
    return 2 * jsd(p_data, p_g, lo, hi, n) - 2 * LOG2


# -------------------------------------------------------------------------- a trained D vs D*
def _linear_decay(step: int, steps: int) -> float:
    """lr multiplier: 1 at the first step, 0 after the last, so the last iterates settle."""
    return 1 - step / steps


def train_discriminator(
    p_data: ToySource,
    p_g: ToySource,
    steps: int = 3000,  # Adam steps, each on fresh samples
    batch: int = 256,  # samples per density per step
    lr: float = 2e-3,  # initial Adam lr, decayed linearly to 0
    seed: int = 0,  # seeds both the init and the sample stream; the global RNG is untouched
    width: int = 64,  # hidden units of each of D's 2 hidden layers
) -> nn.Module:
    """An MLP D trained with the BCE loss (``bce_d`` = -V on a batch) against the fixed p_g.

    Returns D in eval mode: ``D(x [N, 1]) -> raw scores [N]``; sigmoid(D) estimates D*.
    """
    _check_1d(p_data, p_g)
    if steps < 1 or batch < 1:
        raise ValueError(f"need steps >= 1 and batch >= 1, got steps={steps}, batch={batch}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        D = build_discriminator(ModelConfig(net="mlp", width=width, depth=2), (1,))
    opt = torch.optim.Adam(D.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, partial(_linear_decay, steps=steps))
    gen = torch.Generator().manual_seed(seed)
    D.train()
    for _ in range(steps):
        real, _ = p_data.draw(batch, gen)  # [B, 1]
        fake, _ = p_g.draw(batch, gen)  # [B, 1]
        scores = D(torch.cat([real, fake]))  # [2B]: one pass for both halves
        loss = bce_d(scores[:batch], scores[batch:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return D.eval()


def max_gap(
    D: Score, p_data: ToySource, p_g: ToySource, lo: float, hi: float, threshold: float = 0.05
) -> float:
    """max |sigmoid(D(x)) - D*(x)| over grid points of [lo, hi] where p_data + p_g > threshold.

    Elsewhere no samples land, nothing pins D down, and D* itself is a ratio of vanishing tails.
    """
    x = grid(lo, hi, 4001)  # [n, 1]
    where = p_data.density(x) + p_g.density(x) > threshold  # [n]
    if not where.any():
        raise ValueError(f"p_data + p_g never exceeds {threshold} on [{lo}, {hi}]")
    gap = (torch.sigmoid(_scores_on(D, x)) - optimal_discriminator(p_data, p_g, x)).abs()  # [n]
    return float(gap[where].max())


# ------------------------------------------------------------------------------------ picture
def _numbers(p_data: ToySource, p_g: ToySource, D: Score | None) -> str:
    """The title line: JSD, V(G, D*) = 2 JSD - 2 log 2 and, given D, V(G, D), in nats."""
    lo, hi = support(p_data, p_g)
    j = jsd(p_data, p_g, lo, hi)
    text = f"JSD = {j:.4f}    V(G, D*) = 2·JSD − 2 log 2 = {2 * j - 2 * LOG2:.4f}"
    if D is not None:
        text += f"    V(G, D trained) = {game_value(D, p_data, p_g, lo, hi):.4f}"
    return text.replace("-", "−")


def _draw_case(
    ax: Axes,
    p_data: ToySource,
    p_g: ToySource,
    D: Score | None,
    xlim: tuple[float, float] | None,
    threshold: float,
) -> Axes:
    """Densities on ``ax``, D* and sigmoid(D) on a twin axis (returned) sharing x."""
    x0, x1 = xlim or support(p_data, p_g, n_std=4.0)
    x = grid(x0, x1, 1001)  # [n, 1]
    xs = x[:, 0].numpy()  # [n]
    pd, pg = p_data.density(x).numpy(), p_g.density(x).numpy()  # [n], [n]
    for dens, color, label in ((pd, REAL_COLOR, "p_data(x)"), (pg, FAKE_COLOR, "p_g(x)")):
        ax.fill_between(xs, dens, color=color, alpha=0.25, lw=0)
        ax.plot(xs, dens, color=color, lw=1.5, label=label)
    ax.set_xlim(x0, x1)
    ax.set_ylim(0, None)
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    twin = ax.twinx()
    twin.plot(xs, optimal_discriminator(p_data, p_g, x).numpy(), color="black", lw=2.2,
              label="D*(x) = p_data / (p_data + p_g)")  # fmt: skip
    if D is not None:
        d_hat = torch.sigmoid(_scores_on(D, x)).numpy()  # [n]
        twin.plot(xs, d_hat, color="C2", lw=1.8, ls="--", label="sigmoid(D(x)), D trained")
    twin.fill_between(
        xs, 0, 1, where=pd + pg < threshold, color="0.5", alpha=0.12, lw=0,
        label=f"p_data + p_g < {threshold:g}: few samples, D unconstrained",
    )  # fmt: skip
    twin.axhline(0.5, color="0.3", lw=0.9, ls=":", label="D = ½: what D* is when p_g = p_data")
    twin.set_ylim(-0.02, 1.02)
    twin.set_ylabel("D(x) = P(real | x)")
    twin.grid(False)
    return twin


def _legend(fig: Figure, axes: list[Axes]) -> None:
    """One legend under the plot: densities, then the discriminators, then the guides."""
    pairs = [pair for ax in axes for pair in zip(*ax.get_legend_handles_labels(), strict=True)]
    unique = list(dict((label, handle) for handle, label in pairs).items())
    labels, handles = zip(*unique, strict=True)
    fig.legend(handles, labels, loc="outside lower center", ncols=3, frameon=False)


def plot_optimal_discriminator(
    p_data: ToySource,
    p_g: ToySource,
    path: Path,
    D: Score | None = None,  # a trained discriminator (raw scores); None = draw D* alone
    xlim: tuple[float, float] | None = None,  # None = every mode +- 4 stds
    title: str = "",  # first title line, e.g. the case name
    threshold: float = 0.05,  # shade where p_data + p_g is below this: D is unconstrained there
) -> Path:
    """p_data and p_g (left axis) with D* and sigmoid(D) (right axis, 0..1) -> PNG.

    The title gives JSD, V(G, D*) = 2 JSD - 2 log 2 and V(G, D) of the trained D, in nats.
    """
    return plot_cases(p_data, [(title, p_g, D)], path, xlim, threshold)


def plot_cases(
    p_data: ToySource,
    cases: Sequence[tuple[str, ToySource, Score | None]],  # (title, p_g, trained D or None)
    path: Path,
    xlim: tuple[float, float] | None = None,  # None = every mode of every case +- 4 stds
    threshold: float = 0.05,  # shade where p_data + p_g is below this
) -> Path:
    """One ``plot_optimal_discriminator`` panel per fixed generator, stacked on one x range."""
    if not cases:
        raise ValueError("plot_cases needs at least one (title, p_g, D) case")
    xlim = xlim or support(p_data, *(p_g for _, p_g, _ in cases), n_std=4.0)
    with _style():
        fig = Figure(figsize=(8, 0.6 + 4.2 * len(cases)), dpi=DPI, layout="constrained")
        axes = fig.subplots(len(cases), 1, squeeze=False)[:, 0]
        twins = []
        for ax, (title, p_g, D) in zip(axes, cases, strict=True):
            twins.append(_draw_case(ax, p_data, p_g, D, xlim, threshold))
            numbers = _numbers(p_data, p_g, D)
            ax.set_title(f"{title}\n{numbers}" if title else numbers)
        _legend(fig, [axes[0], twins[0]])
        return _save(fig, path)
