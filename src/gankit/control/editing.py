"""Classifier-guided editing of latent codes: make G(z) show a target class.

Edits move codes in a latent space (``gankit.control.spaces``): Z by default, or W, the
per-sample ``w`` of a mapping network broadcast to every synthesis layer (Karras et al. 2019).
Below, "z" is the code in the edit's space, and the prior is that space's: N(0, I) in Z, in W the
moment-matched Gaussian ``N(center, spread^2 I)`` of prior draws' w, so ``||z||^2 / 2`` reads
``||w - center||^2 / (2 spread^2)`` and ``sqrt(z_dim)`` reads ``spread * sqrt(w_dim)``.

Two modes, compared on the same figures:

- ``optimize``: per-sample gradient ascent on the classifier's log-probability of the target,
  ``log p(target | G(z)) - prior_weight * ||z||^2 / 2`` (the second term is the standard normal
  prior's negative log-density: it keeps z likely), with z projected back into a ball of radius
  ``max_distance`` around its start after every step (projected gradient ascent, as in the latent
  optimisation of Nguyen et al. 2016 and the GAN inversion/editing line of Zhu et al. 2016). A
  sample stops as soon as the classifier gives the target ``stop_prob``. Samples that fail
  restart from random points of the same ball (``restarts``), and for images the classifier's
  probability is averaged over a few copies shifted by up to 2 px (``shifts``), so that an edit
  cannot pass by fooling one classifier's exact pixels alone.
- ``direction``: one linear direction in z-space, fit from the classifier's labels of many samples
  (the difference of the mean codes of the target class and of the rest: Fisher's linear
  discriminant under an isotropic prior; Shen et al. 2020, InterFaceGAN, fit a linear SVM), applied
  to every sample without per-sample gradients: each moves along it by the smallest of a grid of
  distances up to ``max_distance`` at which the classifier gives the target ``stop_prob``.

Each sample reports success (the classifier's top class is the target after the edit), the
distance moved in z, and entanglement: the total variation distance between the classifier's
distributions over the *other* classes (renormalised without the target) before and after. An
edit that only raises the target leaves it at 0; one that also swaps, say, a 1 for a 7 among the
rest raises it (up to 1).

The classifier is any differentiable ``nn.Module`` mapping G's output to logits ``[N, K]``, e.g.
``gankit.metrics.classifier.load_classifier("mnist")``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import UserError
from ..metrics.classifier import random_shift
from .latent import check_labels, generate, sample_latents
from .spaces import LatentSpace, SpaceName, latent_space

Mode = Literal["optimize", "direction"]
# The default bound on the move, as a fraction of sqrt(z_dim), a prior code's typical length: on
# the 10k-step MNIST GAN, 0.5 left digit 1 at 80% success with 8 restarts, 0.8 reached 92%.
DEFAULT_DISTANCE = 0.8


@dataclass
class EditResult:
    """Codes, images and classifier logits before and after an edit towards ``target``."""

    target: int
    mode: str
    z_before: Tensor  # [N, dim] codes in the edit's space (``space``: z, or w)
    z_after: Tensor  # [N, dim]
    images_before: Tensor  # [N, *shape]
    images_after: Tensor  # [N, *shape]
    logits_before: Tensor  # [N, K]
    logits_after: Tensor  # [N, K]
    steps: Tensor  # [N] gradient steps taken (optimize) or distances tried (direction)
    tries: Tensor | None = None  # [N] optimize mode: starts tried (1 + restarts used)
    space: str = "z"  # where the codes live: "z" or "w"

    @property
    def success(self) -> Tensor:
        """``[N]`` bool: the classifier's top class is the target after the edit."""
        return self.logits_after.argmax(1) == self.target

    @property
    def distance(self) -> Tensor:
        """``[N]`` Euclidean distance moved in the edit's space."""
        return (self.z_after - self.z_before).norm(dim=1)

    def agrees(self, classifier: nn.Module) -> Tensor:
        """``[N]`` bool: another (held-out) classifier also calls the edited image the target."""
        return _classify(classifier, self.images_after).argmax(1) == self.target

    @property
    def entanglement(self) -> Tensor:
        """``[N]`` in [0, 1]: how much the distribution over the other classes changed."""
        return entanglement(self.logits_before, self.logits_after, self.target)

    def summary(self) -> dict[str, Any]:
        """The figures as plain numbers (means over samples; p = probability of the target)."""
        p0 = self.logits_before.softmax(1)[:, self.target]  # [N]
        p1 = self.logits_after.softmax(1)[:, self.target]  # [N]
        already = self.logits_before.argmax(1) == self.target
        return {
            "target": self.target,
            "mode": self.mode,
            "space": self.space,
            "n": len(self.z_before),
            "success_rate": self.success.float().mean().item(),
            "already_target": already.float().mean().item(),
            "p_target_before": p0.mean().item(),
            "p_target_after": p1.mean().item(),
            "distance_mean": self.distance.mean().item(),
            "distance_max": self.distance.max().item(),
            "entanglement_mean": self.entanglement.mean().item(),
            "steps_mean": self.steps.float().mean().item(),
            "tries_mean": None if self.tries is None else self.tries.float().mean().item(),
        }


def entanglement(logits_before: Tensor, logits_after: Tensor, target: int) -> Tensor:
    """Total variation distance ``[N]`` between softmax over the non-target logits before/after."""
    if logits_before.shape != logits_after.shape or logits_before.dim() != 2:
        raise UserError(
            f"want logits [N, K] twice, got {list(logits_before.shape)}, {list(logits_after.shape)}"
        )
    keep = torch.arange(logits_before.shape[1]) != target  # [K]
    p = logits_before[:, keep].softmax(1)  # [N, K - 1]
    q = logits_after[:, keep].softmax(1)  # [N, K - 1]
    return 0.5 * (p - q).abs().sum(1)  # [N]


# ---------------------------------------------------------------------------------- helpers
def _check(space: LatentSpace, classifier: nn.Module, z: Tensor, target: int, y) -> bool:
    """Shapes and the target's range, on one sample; returns whether G makes images [N, C, H, W]."""
    space.check(z)
    with torch.no_grad():
        x = space.generate(z[:1], None if y is None else y[:1])  # [1, *shape]
        k = _logits(classifier, x).shape[1]
    if not 0 <= target < k:
        raise UserError(f"target class must be in 0..{k - 1} for this classifier, got {target}")
    return x.dim() == 4


def _logits(classifier: nn.Module, x: Tensor) -> Tensor:
    device = next(classifier.parameters()).device
    out = classifier(x.to(device)).float()  # [N, K]
    if out.dim() != 2:
        raise UserError(f"the classifier must return logits [N, K], got {list(out.shape)}")
    return out.to(x.device)


@torch.no_grad()
def _classify(classifier: nn.Module, x: Tensor, batch: int = 512) -> Tensor:
    return torch.cat([_logits(classifier, x[i : i + batch]) for i in range(0, len(x), batch)])


@torch.no_grad()
def _log_probs(space: LatentSpace, classifier: nn.Module, z: Tensor, y: Tensor | None) -> Tensor:
    return F.log_softmax(_classify(classifier, space.generate(z, y)), 1)  # [N, K]


def _default_distance(space: LatentSpace, max_distance: float | None) -> float:
    r = DEFAULT_DISTANCE * space.scale if max_distance is None else float(max_distance)
    if not r > 0:
        raise UserError(f"max_distance must be positive (inf: unbounded), got {max_distance}")
    return r


def _eval_mode(*nets: nn.Module) -> list[bool]:
    modes = [m.training for m in nets]
    for m in nets:
        m.eval()
    return modes


def _restore(nets: tuple[nn.Module, ...], modes: list[bool]) -> None:
    for m, was in zip(nets, modes, strict=True):
        m.train(was)


def _result(space, classifier, z0, z1, labels, target, mode, steps) -> EditResult:
    x0, x1 = space.generate(z0, labels), space.generate(z1, labels)  # [N, *shape] each
    l0, l1 = _classify(classifier, x0), _classify(classifier, x1)  # [N, K] each
    return EditResult(target, mode, z0, z1, x0, x1, l0, l1, steps, space=space.name)


# ---------------------------------------------------------------------------- optimize mode
SHIFT_PX = 2  # the largest shift of the copies behind ``shifts``, as in the classifier's training


def _target_logp(classifier, x: Tensor, target: int, shifts: int, rng) -> Tensor:
    """``[N]`` log p(target | x), or with ``shifts`` the log of its mean over x and that many
    copies shifted by up to SHIFT_PX pixels (expectation over transformation)."""
    if shifts == 0:
        return F.log_softmax(_logits(classifier, x), 1)[:, target]
    xs = torch.cat([x, *(random_shift(x, SHIFT_PX, rng) for _ in range(shifts))])
    logp = F.log_softmax(_logits(classifier, xs), 1)[:, target].view(shifts + 1, len(x))
    return torch.logsumexp(logp, 0) - math.log(shifts + 1)  # [N]


def _ascend(space, classifier, z0, start, y, target, *, steps, lr, prior_weight, radius, stop_prob,
            optimizer, shifts, shift_rng) -> tuple[Tensor, Tensor]:  # fmt: skip
    """One projected ascent from ``start`` inside the ball around ``z0``: final codes, steps."""
    zv = start.clone().requires_grad_(True)
    opt = (torch.optim.Adam if optimizer == "adam" else torch.optim.SGD)([zv], lr=lr)
    active = torch.ones(len(z0), dtype=torch.bool, device=z0.device)  # [N]
    taken = torch.zeros(len(z0), dtype=torch.long, device=z0.device)  # [N]
    for _ in range(steps):
        logp = _target_logp(classifier, space.decode(zv, y), target, shifts, shift_rng)  # [N]
        if stop_prob is not None:
            active &= logp.detach().exp() < stop_prob  # stopped samples stay stopped
        if not active.any():
            break
        objective = logp - prior_weight * space.prior_penalty(zv)  # [N]
        (grad,) = torch.autograd.grad(objective[active].sum(), zv)  # [N, z_dim]
        before = zv.detach().clone()
        zv.grad = -grad  # the optimizers descend; we ascend
        opt.step()
        with torch.no_grad():
            zv.copy_(torch.where(active[:, None], _project(zv, z0, radius), before))
        taken += active
    return zv.detach(), taken


def _check_shifts(shifts: int | None, image: bool) -> int:
    if shifts is None:
        return 4 if image else 0
    if shifts < 0 or (shifts and not image):
        raise UserError(f"shifts must be >= 0, and 0 unless G makes images [N, C, H, W]: {shifts}")
    return shifts


def _project(z: Tensor, z0: Tensor, radius: float) -> Tensor:
    """``z`` ``[N, D]`` moved onto the ball of ``radius`` around ``z0`` if it lies outside."""
    delta = z - z0  # [N, D]
    return z0 + delta * (radius / delta.norm(dim=1, keepdim=True)).clamp(max=1.0)


def edit_optimize(
    net: nn.Module,  # G: z [N, z_dim] (+ labels [N]) -> images
    classifier: nn.Module,  # images -> logits [N, K], differentiable
    z: Tensor,  # [N, dim] starting codes in ``space`` (z, or w = G.mapping(z, labels))
    target: int,  # class to reach
    *,
    space: SpaceName | LatentSpace = "z",  # where to move: Z, or W of a mapping network
    labels: Tensor | int | None = None,  # classes of a conditional G (kept fixed)
    steps: int = 200,  # most gradient steps per sample and try
    lr: float = 0.05,  # step size of the optimizer
    prior_weight: float = 0.01,  # weight of ||z||^2 / 2, the prior's negative log-density
    max_distance: float | None = None,  # radius of the ball around z; None = 0.8 sqrt(z_dim)
    #                                     (in W: 0.8 spread sqrt(w_dim), see the module's doc)
    stop_prob: float | None = 0.9,  # a sample stops once p(target) >= this; None = all steps
    optimizer: Literal["adam", "sgd"] = "adam",
    restarts: int = 8,  # a sample that fails gets up to this many more tries (see below)
    shifts: int | None = None,  # shifted copies per image (see below); None = 4 for images
    seed: int = 0,  # of the restarts' random directions and the shifts
) -> EditResult:
    """Projected gradient ascent on ``log p(target | G(z)) - prior_weight * ||z||^2 / 2``.

    With ``shifts`` (images only), p(target) is the mean over the image and that many copies
    shifted by up to 2 px, both in the objective and in ``stop_prob``: an edit must then convince
    the classifier from several positions, which steers it away from the pixel-exact blind spots
    of one classifier (Athalye et al. 2018's expectation over transformation). Success is still
    the classifier's verdict on the unshifted image.

    The ascent can stall in a local optimum of the classifier-through-G landscape. With
    ``restarts``, each sample the classifier does not yet call ``target`` tries again, still
    inside the same ball around its own z, from a start at distance ``max_distance * i /
    restarts`` in a random direction on try i: near starts first, so an edit stays as small as
    the tries allow. A sample keeps the first try that succeeds, else its most probable one.
    """
    sp = latent_space(net, space)
    y = check_labels(net, len(z), labels)
    shifts = _check_shifts(shifts, image=_check(sp, classifier, z, target, y))
    if steps < 0 or not 0 < lr < math.inf:
        raise UserError(f"steps must be >= 0 and lr finite and > 0, got steps={steps}, lr={lr}")
    if not 0 <= prior_weight < math.inf:
        raise UserError(f"prior_weight must be finite and >= 0, got {prior_weight}")
    _check_stop(stop_prob)
    if restarts < 0:
        raise UserError(f"restarts must be >= 0, got {restarts}")
    radius = _default_distance(sp, max_distance)
    device = next(net.parameters()).device
    z0 = z.detach().float().to(device)
    y = y.to(device) if y is not None else None
    opts = dict(steps=steps, lr=lr, prior_weight=prior_weight, radius=radius,
                stop_prob=stop_prob, optimizer=optimizer, shifts=shifts,
                shift_rng=torch.Generator().manual_seed(seed))  # fmt: skip
    rng = torch.Generator().manual_seed(seed)
    modes = _eval_mode(net, classifier)
    try:
        best, taken = _ascend(sp, classifier, z0, z0, y, target, **opts)
        tries = torch.ones(len(z0), dtype=torch.long, device=device)  # [N]
        logp = _log_probs(sp, classifier, best, y).to(device)  # [N, K]
        for i in range(1, restarts + 1):
            fail = (logp.argmax(1) != target).nonzero().squeeze(1)  # [M] indices
            if len(fail) == 0:
                break
            u = torch.randn(len(fail), z0.shape[1], generator=rng).to(device)  # [M, dim]
            start = z0[fail] + radius * i / restarts * u / u.norm(dim=1, keepdim=True)
            yf = None if y is None else y[fail]
            zf, tf = _ascend(sp, classifier, z0[fail], start, yf, target, **opts)
            lf = _log_probs(sp, classifier, zf, yf).to(device)  # [M, K]
            better = (lf.argmax(1) == target) | (lf[:, target] > logp[fail, target])  # [M]
            keep = fail[better]
            best[keep], logp[keep] = zf[better], lf[better]
            taken[fail] += tf
            tries[fail] += 1
    finally:
        _restore((net, classifier), modes)
    res = _result(sp, classifier, z0.cpu(), best.cpu(), y, target, "optimize", taken.cpu())
    res.tries = tries.cpu()
    return res


# ---------------------------------------------------------------------------- direction mode
def fit_direction(z: Tensor, labels: Tensor, target: int) -> Tensor:
    """Unit direction ``[z_dim]``: mean code of ``target`` minus mean code of the other labels."""
    if z.dim() != 2 or labels.shape != (len(z),):
        raise UserError(f"want z [N, D] and labels [N], got {list(z.shape)}, {list(labels.shape)}")
    hit = labels == target  # [N]
    if hit.all() or not hit.any():
        raise UserError(
            f"{int(hit.sum())} of {len(z)} samples are labelled {target}; fitting a direction "
            "needs both target and other samples: draw more (fit_n)"
        )
    d = z[hit].mean(0) - z[~hit].mean(0)  # [z_dim]
    return d / d.norm()


def label_latents(
    net: nn.Module,
    classifier: nn.Module,
    n: int,
    seed: int,
    labels: Tensor | int | None = None,
    space: SpaceName | LatentSpace = "z",
) -> tuple[Tensor, Tensor]:
    """``n`` prior codes ``[n, dim]`` in ``space`` and the classifier's labels ``[n]`` of their
    images."""
    sp = latent_space(net, space)
    z, _ = sample_latents(net.z_dim, n, seed)
    y = check_labels(net, n, labels)
    codes = sp.codes(z, y)  # [n, dim]
    return codes, _classify(classifier, sp.generate(codes, y)).argmax(1)


class TooFewInClass(UserError):
    """Fewer draws of the pool than wanted are labelled the target class."""

    def __init__(self, found: int, pool: int, target: int, n: int):
        self.found = found
        super().__init__(
            f"only {found} of {pool} samples are labelled {target}, {n} wanted; "
            "draw a larger pool or ask for fewer"
        )


def _check_stop(stop_prob: float | None) -> None:
    if stop_prob is not None and not 0 < stop_prob <= 1:
        raise UserError(f"stop_prob must be in (0, 1] (or None: never stop early), got {stop_prob}")


def class_codes(
    net: nn.Module, classifier: nn.Module, target: int, n: int = 8, pool: int = 2000, seed: int = 0
) -> Tensor:
    """The ``n`` codes ``[n, z_dim]`` among ``pool`` prior draws (seed ``seed``) whose images the
    classifier labels ``target`` most confidently: a concept for latent arithmetic."""
    if not 1 <= n <= pool:
        raise UserError(f"want 1 <= n <= pool, got n={n}, pool={pool}")
    z, _ = sample_latents(net.z_dim, pool, seed)
    _check(latent_space(net), classifier, z[:1], target, None)
    p = _classify(classifier, generate(net, z)).softmax(1)  # [pool, K]
    hit = (p.argmax(1) == target).nonzero().squeeze(1)  # [M]
    if len(hit) < n:
        raise TooFewInClass(len(hit), pool, target, n)
    best = p[hit, target].argsort(descending=True)[:n]  # the most confident first
    return z[hit[best]]


@torch.no_grad()
def edit_direction(
    net: nn.Module,  # G: z [N, z_dim] (+ labels [N]) -> images
    classifier: nn.Module,  # images -> logits [N, K]
    z: Tensor,  # [N, dim] starting codes in ``space``
    target: int,  # class to reach
    direction: Tensor,  # [dim], e.g. from fit_direction (normalised here)
    *,
    space: SpaceName | LatentSpace = "z",  # where to move: Z, or W of a mapping network
    labels: Tensor | int | None = None,  # classes of a conditional G (kept fixed)
    max_distance: float | None = None,  # farthest move; None = 0.8 sqrt(z_dim)
    n_distances: int = 20,  # distances tried: max_distance * (1..n) / n
    stop_prob: float | None = 0.9,  # move the least that gives p(target) >= this; None = the most
) -> EditResult:
    """Move each code along ``direction`` by the smallest tried distance that reaches the target."""
    sp = latent_space(net, space)
    y = check_labels(net, len(z), labels)
    _check(sp, classifier, z, target, y)
    if direction.shape != (sp.dim,) or not direction.norm() > 0:
        raise UserError(f"direction must be a nonzero [{sp.dim}] vector, got {direction.shape}")
    if n_distances < 1:
        raise UserError(f"n_distances must be at least 1, got {n_distances}")
    _check_stop(stop_prob)
    radius = _default_distance(sp, max_distance)
    d = direction.float() / direction.norm()  # [dim]
    z0 = z.detach().float().cpu()
    modes = _eval_mode(net, classifier)
    try:
        alpha = torch.full((len(z0),), radius)  # [N], the most unless a smaller one works
        tried = torch.full((len(z0),), n_distances)  # [N]
        if stop_prob is not None:
            done = torch.zeros(len(z0), dtype=torch.bool)  # [N]
            for i in range(n_distances + 1):  # i = 0: already there, no move
                a = radius * i / n_distances
                p = _classify(classifier, sp.generate(z0 + a * d, y)).softmax(1)[:, target]
                new = ~done & (p >= stop_prob)  # [N]
                alpha[new], tried[new] = a, i
                done |= new
                if done.all():
                    break
    finally:
        _restore((net, classifier), modes)
    z1 = z0 + alpha[:, None] * d  # [N, dim]
    return _result(sp, classifier, z0, z1, y, target, "direction", tried)


# --------------------------------------------------------------------------------- one call
def edit(
    generator: Any,  # a gankit Generator (load_generator) or a G module with .z_dim
    classifier: nn.Module,
    target: int,
    *,
    n: int = 64,  # samples to edit: those of Generator.sample(n, seed=seed)
    seed: int = 0,
    mode: Mode = "optimize",
    space: SpaceName = "z",  # edit z, or the per-sample w of a mapping network
    fit_n: int = 2000,  # direction mode: labelled samples (seed + 1) to fit the direction on
    labels: Tensor | int | None = None,  # conditional G: classes (None = those sample draws)
    **options: Any,  # passed on to edit_optimize / edit_direction
) -> EditResult:
    """Edit the samples ``Generator.sample(n, seed=seed)`` (in W: their w) towards ``target``."""
    net = getattr(generator, "net", generator)
    if mode not in ("optimize", "direction"):
        raise UserError(f"edit mode must be optimize or direction, got {mode!r}")
    sp = latent_space(net, space)
    k = getattr(net, "num_classes", 0)
    z, drawn = sample_latents(net.z_dim, n, seed, k)
    labels = drawn if labels is None else labels
    z = sp.codes(z, check_labels(net, n, labels))  # [n, dim]
    if mode == "optimize":  # the restarts' directions come from the same seed
        return edit_optimize(
            net, classifier, z, target, space=sp, labels=labels, seed=seed, **options
        )
    if fit_n < 2:
        raise UserError(f"fit_n must be at least 2, got {fit_n}")
    fit_y = labels if labels is None or isinstance(labels, int) else None
    if k and fit_y is None:  # conditional: fit across random classes
        fit_y = sample_latents(net.z_dim, fit_n, seed + 1, k)[1]
    zf, lf = label_latents(net, classifier, fit_n, seed + 1, fit_y, space=sp)
    direction = fit_direction(zf, lf, target)
    return edit_direction(net, classifier, z, target, direction, space=sp, labels=labels, **options)
