"""Differentiable augmentation of D's inputs, for GANs trained on little data.

- **DiffAugment** (Zhao, Liu, Lin, Zhu and Han 2020, "Differentiable augmentation for
  data-efficient GAN training"): D sees every image, real or generated, through random
  transformations that are differentiable, so G's gradient flows back through them. D cannot
  memorise the few real images as easily, and since generated images pass through the same
  transformations, G is not taught to produce them (they do not "leak"). The policy's three
  kinds, each drawn per sample: ``color`` (brightness + U(-1/2, 1/2), saturation x U(0, 2),
  contrast x U(1/2, 3/2)), ``translation`` (a shift of up to 1/8 of the side, the uncovered
  border filled with 0, mid-grey in [-1, 1]) and ``cutout`` (a square of half the side, at a
  random centre, set to 0). One more kind, off by default: ``flip``, a horizontal mirror with
  probability 1/2 (ADA's ``xflip``, the first transformation of its pipeline; it leaks nothing
  for data whose mirror images are as likely as the images). And ``geometric``, off by default:
  ADA's geometric group, each sample warped by isotropic scaling (``2^N(0, 0.2^2)``), a rotation
  (uniform over the circle, with probability ``1 - sqrt(1 - p)``), anisotropic scaling
  (``2^N(0, 0.2^2)`` along x and its inverse along y), a second rotation as the first, and a
  fractional translation (``N(0, 0.125^2)`` of the side per axis), resampled bilinearly with
  the border reflected. Unlike the other kinds it leaks at p = 1 (every image turned at random:
  G may turn its own), so it belongs to ``ada``, whose p stays where D stops overfitting.
- **Adaptive probability** (Karras, Aittala, Hellsten, Laine, Lehtinen and Aila 2020, "Training
  generative adversarial networks with limited data", ADA): each kind is applied to each sample
  with probability p, and p follows D's overfitting: ``r_t = E[sign(D(x_real))]`` over the last
  ``ada_interval`` steps, and p moves by ``sign(r_t - target) * images / (ada_kimg * 1000)``,
  clamped to [0, 1]. Here p drives the DiffAugment kinds above, not ADA's 18-transform pipeline.

``attach`` wraps every discriminator (a player whose name starts with ``D``) of a run in an
``AugmentedD``, which augments its input in training mode and otherwise is the net: a variant
still calls ``D(real)`` and ``D(fake)``, so real and generated batches take one policy, each
sample its own draw. A gradient penalty or R1 then acts on the augmented images, as in both
papers: its gradient is taken with respect to the un-augmented input, through the
augmentation. Labels pass through to a conditional D. Random draws come from torch's global
generator on the batch's device, which checkpoints save and restore; ``Adaptive`` keeps p and
the interval's running sum of signs, which the trainer checkpoints too, so resume is exact.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import AUGMENT_KINDS as KINDS  # noqa: F401  (the policy's kinds, here too)
from ..config import augment_policy as parse_policy
from ..errors import UserError
from .layers import check_shape

SCALE_STD = 0.2  # ADA's lognormal scalings: log2 of the factor ~ N(0, 0.2^2)
SHIFT_STD = 0.125  # ADA's fractional translation: N(0, 0.125^2) of the side
TRANSLATION = 0.125  # the largest shift, a fraction of the side (Zhao et al.: 1/8)
CUTOUT = 0.5  # the side of the cut square, a fraction of the image's (Zhao et al.: 1/2)
SIGN_KEY = "ada_sign_real"  # the log of E[sign(D(x_real))] that variants give under ada


# ---------------------------------------------------------------------------------------------
# the transformations, each with its parameters given (testable by hand) ...


def brightness(x: Tensor, shift: Tensor) -> Tensor:
    """``x + shift`` per sample: ``x [N, C, H, W]``, ``shift [N]``."""
    return x + shift.to(x.dtype).view(-1, 1, 1, 1)


def saturation(x: Tensor, factor: Tensor) -> Tensor:
    """Each pixel's distance from its mean over the channels times ``factor [N]``."""
    mean = x.mean(dim=1, keepdim=True)  # [N, 1, H, W]
    return (x - mean) * factor.to(x.dtype).view(-1, 1, 1, 1) + mean


def contrast(x: Tensor, factor: Tensor) -> Tensor:
    """Each value's distance from the sample's mean times ``factor [N]``."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # [N, 1, 1, 1]
    return (x - mean) * factor.to(x.dtype).view(-1, 1, 1, 1) + mean


def translate(x: Tensor, dy: Tensor, dx: Tensor, pad: tuple[int, int] | None = None) -> Tensor:
    """Sample i shifted by ``dy[i]`` rows down and ``dx[i]`` columns right (int64 ``[N]``); what
    moves out is lost, what comes in is 0. ``pad``: bounds of ``|dy|``, ``|dx|`` (None: read
    from the shifts, a device sync)."""
    n, _, h, w = x.shape
    if pad is None:
        pad = (int(dy.abs().max()), int(dx.abs().max())) if n else (0, 0)
    py, px = pad
    padded = F.pad(x, [px, px, py, py])  # [N, C, H + 2py, W + 2px], zeros around
    rows = torch.arange(h, device=x.device) + py - dy.view(-1, 1)  # [N, H]
    cols = torch.arange(w, device=x.device) + px - dx.view(-1, 1)  # [N, W]
    i = torch.arange(n, device=x.device).view(-1, 1, 1)  # [N, 1, 1]
    out = padded[i, :, rows[:, :, None], cols[:, None, :]]  # [N, H, W, C]
    return out.permute(0, 3, 1, 2)  # [N, C, H, W]


def mirror(x: Tensor, flipped: Tensor) -> Tensor:
    """Sample i mirrored left to right where ``flipped[i]`` (bool ``[N]``)."""
    return torch.where(flipped.view(-1, 1, 1, 1), x.flip(3), x)


def warp(x: Tensor, matrix: Tensor) -> Tensor:
    """Sample i resampled bilinearly at ``matrix[i] @ (u, v, 1)`` for each output pixel's centre
    ``(u, v)`` in pixels from the image's centre (``matrix [N, 2, 3]``: output to input, x right
    and y down); where that falls outside, the image reflected about its border."""
    n, _, h, w = x.shape
    to_norm = x.new_tensor([2.0 / w, 2.0 / h]).view(1, 2, 1)  # pixels -> [-1, 1], per row
    m = matrix.to(x.dtype)
    theta = torch.cat([m[:, :, :2] * to_norm / to_norm.view(1, 1, 2), m[:, :, 2:] * to_norm], 2)
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)  # [N, H, W, 2]
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def cut(x: Tensor, top: Tensor, left: Tensor, size: tuple[int, int]) -> Tensor:
    """Sample i with the box of ``size`` (rows, cols) at ``top[i]``, ``left[i]`` (int64 ``[N]``,
    the box may reach past the border) set to 0."""
    _, _, h, w = x.shape
    rows = torch.arange(h, device=x.device).view(1, -1) - top.view(-1, 1)  # [N, H]
    cols = torch.arange(w, device=x.device).view(1, -1) - left.view(-1, 1)  # [N, W]
    in_rows, in_cols = (rows >= 0) & (rows < size[0]), (cols >= 0) & (cols < size[1])
    box = in_rows[:, :, None] & in_cols[:, None, :]  # [N, H, W]
    return x * (~box).to(x.dtype)[:, None]  # [N, C, H, W]


# ---------------------------------------------------------------------------------------------
# ... and their random draws, each sample taking a kind with probability p


def _chosen(n: int, p: float, device: torch.device) -> Tensor | None:
    """Which of ``n`` samples take a kind ([N] bool), or None for all (p >= 1: no draw)."""
    return None if p >= 1 else torch.rand(n, device=device) < p


def _where(chosen: Tensor | None, value: Tensor, identity: float) -> Tensor:
    return value if chosen is None else torch.where(chosen, value, torch.full_like(value, identity))


def random_flip(x: Tensor, p: float = 1.0) -> Tensor:
    n, dev = x.shape[0], x.device
    flipped = torch.rand(n, device=dev) < 0.5  # [N]: a chosen sample is mirrored half the time
    chosen = _chosen(n, p, dev)
    return mirror(x, flipped if chosen is None else flipped & chosen)


def random_color(x: Tensor, p: float = 1.0) -> Tensor:
    n, dev = x.shape[0], x.device
    chosen = _chosen(n, p, dev)
    x = brightness(x, _where(chosen, torch.rand(n, device=dev) - 0.5, 0.0))
    x = saturation(x, _where(chosen, torch.rand(n, device=dev) * 2, 1.0))
    return contrast(x, _where(chosen, torch.rand(n, device=dev) + 0.5, 1.0))


def random_translation(x: Tensor, p: float = 1.0) -> Tensor:
    n, _, h, w = x.shape
    sy, sx = int(h * TRANSLATION + 0.5), int(w * TRANSLATION + 0.5)
    dy = torch.randint(-sy, sy + 1, (n,), device=x.device)  # [N]
    dx = torch.randint(-sx, sx + 1, (n,), device=x.device)  # [N]
    chosen = _chosen(n, p, x.device)
    if chosen is not None:
        dy, dx = dy * chosen, dx * chosen
    return translate(x, dy, dx, (sy, sx))


def random_cutout(x: Tensor, p: float = 1.0) -> Tensor:
    n, _, h, w = x.shape
    size = (int(h * CUTOUT + 0.5), int(w * CUTOUT + 0.5))
    cy = torch.randint(0, h, (n,), device=x.device)  # [N], the box's centre
    cx = torch.randint(0, w, (n,), device=x.device)  # [N]
    chosen = _chosen(n, p, x.device)
    top, left = cy - size[0] // 2, cx - size[1] // 2
    if chosen is not None:  # a box wholly above the image cuts nothing
        top = torch.where(chosen, top, torch.full_like(top, -size[0] - h))
    return cut(x, top, left, size)


def _rotation(angle: Tensor) -> Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)  # [N, 2, 2]


def random_geometric(x: Tensor, p: float = 1.0) -> Tensor:
    n, _, h, w = x.shape
    dev = x.device
    p_rot = 1 - (1 - min(p, 1.0)) ** 0.5  # two rotations: one or both with probability p

    def drawn(value: Tensor, identity: float, prob: float) -> Tensor:
        return _where(_chosen(n, prob, dev), value, identity)

    iso = drawn(torch.exp2(torch.randn(n, device=dev) * SCALE_STD), 1.0, p)
    pre = drawn((torch.rand(n, device=dev) * 2 - 1) * torch.pi, 0.0, p_rot)
    aniso = drawn(torch.exp2(torch.randn(n, device=dev) * SCALE_STD), 1.0, p)
    post = drawn((torch.rand(n, device=dev) * 2 - 1) * torch.pi, 0.0, p_rot)
    shift = torch.randn(n, 2, device=dev) * SHIFT_STD * x.new_tensor([w, h]).float()
    chosen = _chosen(n, p, dev)
    if chosen is not None:
        shift = shift * chosen.view(-1, 1)
    # the image's transform is u -> iso * R(post) diag(aniso, 1 / aniso) R(pre) u + shift; warp
    # takes its inverse, output to input, in closed form (no batched matrix inverse)
    shrink = torch.diag_embed(torch.stack([1 / aniso, aniso], -1))  # [N, 2, 2]
    inverse = _rotation(-pre) @ shrink @ _rotation(-post) / iso.view(-1, 1, 1)
    matrix = torch.cat([inverse, -(inverse @ shift[:, :, None])], 2)  # [N, 2, 3]
    return warp(x, matrix)


RANDOM: dict[str, Callable[[Tensor, float], Tensor]] = {
    "flip": random_flip,
    "geometric": random_geometric,
    "color": random_color,
    "translation": random_translation,
    "cutout": random_cutout,
}


def augment(x: Tensor, policy: Sequence[str], p: float = 1.0) -> Tensor:
    """``x [N, C, H, W]`` through each kind of ``policy`` in turn, each sample drawing its own
    parameters and taking each kind with probability ``p``; differentiable in ``x``."""
    check_shape(x, [None, None, None, None], "x")
    if p <= 0:
        return x
    for kind in policy:
        x = RANDOM[kind](x, p)
    return x


# ---------------------------------------------------------------------------------------------
# D's side: the wrapper, and the adaptive p


class Pipe:
    """The augmentation every wrapped D of a run shares: its policy and probability ``p``."""

    def __init__(self, policy: Sequence[str], p: float):
        self.policy, self.p = tuple(policy), float(p)

    def __call__(self, x: Tensor) -> Tensor:
        return augment(x, self.policy, self.p)


class AugmentedD(nn.Module):
    """``D(pipe(x), ...)`` in training mode, ``D(x, ...)`` in eval mode; every other attribute
    (``pac``, ``num_classes``, ``encode``, ...) is the wrapped net's."""

    def __init__(self, net: nn.Module, pipe: Pipe):
        super().__init__()
        self.net = net
        self.pipe = pipe  # a plain object: no parameters, nothing in the state dict

    def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        return self.net(self.pipe(x) if self.training else x, *args, **kwargs)

    def compile(self, *args: Any, **kwargs: Any) -> None:
        """``train.compile`` compiles the net; the augmentation, whose p changes, runs eagerly."""
        self.net.compile(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "net":
                raise
            return getattr(self.net, name)


class Adaptive:
    """ADA's controller of ``pipe.p``: ``observe`` the logs of each phase (the variants' mean sign
    of D on a real batch, ``SIGN_KEY``), ``update`` after each step. ``mean`` averages numbers
    over the processes of a torchrun run (identity alone)."""

    def __init__(self, pipe: Pipe, cfg):  # cfg: TrainConfig
        self.pipe, self.target, self.interval = pipe, cfg.ada_target, cfg.ada_interval
        self.kimg, self.batch_size, self.variant = cfg.ada_kimg, cfg.batch_size, cfg.variant
        self.sum: Tensor | None = None  # this process's signs in the interval, on the device
        self.count = 0  # batches observed in the interval by this process
        self.last: float | None = None  # r_t of the last update

    def observe(self, logs: dict[str, Tensor]) -> None:
        sign = logs.get(SIGN_KEY)
        if sign is None:
            return
        sign = sign.detach().float()
        self.sum = sign if self.sum is None else self.sum + sign  # no device sync
        self.count += 1

    def update(self, step: int, mean: Callable[[dict], dict] = dict, world: int = 1) -> None:
        """At every ``interval``-th step, move p by what D said of the reals since the last;
        ``mean`` averages the numbers of the ``world`` processes of a torchrun run."""
        if step % self.interval:
            return
        total = float(self.sum) if self.sum is not None else 0.0  # the interval's one sync
        avg = mean({"sum": total, "count": float(self.count)})
        if avg["count"] <= 0:
            raise UserError(
                f"train.augment=ada needs the mean sign of D on real images, which "
                f"train.variant={self.variant} does not report; use train.augment=diffaug"
            )
        self.last = r_t = avg["sum"] / avg["count"]
        images = avg["count"] * world * self.batch_size  # reals D judged in the interval
        direction = (r_t > self.target) - (r_t < self.target)
        self.pipe.p = min(1.0, max(0.0, self.pipe.p + direction * images / (self.kimg * 1000)))
        self.sum, self.count = None, 0

    def state_dict(self) -> dict[str, Any]:
        s = torch.zeros([]) if self.sum is None else self.sum.detach().cpu()
        return {"p": self.pipe.p, "sum": s, "count": self.count, "has_sum": self.sum is not None}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.pipe.p = float(state["p"])
        self.count = int(state["count"])
        self.sum = state["sum"].to(device) if state["has_sum"] else None


class Augmentation:
    """What the trainer holds of a run's augmentation (``train.augment``): the shared pipe and,
    for ``ada``, its controller."""

    def __init__(self, mode: str, pipe: Pipe, adaptive: Adaptive | None):
        self.mode, self.pipe, self.adaptive = mode, pipe, adaptive

    def observe(self, logs: dict[str, Tensor]) -> None:
        if self.adaptive is not None:
            self.adaptive.observe(logs)

    def update(self, step: int, mean: Callable[[dict], dict] = dict, world: int = 1) -> None:
        if self.adaptive is not None:
            self.adaptive.update(step, mean, world)

    def row(self) -> dict[str, float]:
        """What a row of metrics.jsonl shows: p under ada (constant otherwise)."""
        return {"augment_p": self.pipe.p} if self.adaptive is not None else {}

    def summary(self) -> dict[str, Any]:
        return {"mode": self.mode, "policy": ",".join(self.pipe.policy), "p": self.pipe.p}

    def state_dict(self) -> dict[str, Any]:
        return self.adaptive.state_dict() if self.adaptive is not None else {}

    def load_state_dict(self, state: dict[str, Any] | None, device: torch.device) -> None:
        if self.adaptive is not None and state:
            self.adaptive.load_state_dict(state, device)


def attach(
    nets: dict[str, nn.Module],
    cfg,  # TrainConfig
    shape: Sequence[int],
    data_name: str,
    signed_scores: bool,
) -> Augmentation | None:
    """Wrap each discriminator of ``nets`` (a player named ``D...``) in place in an
    ``AugmentedD`` for ``cfg.augment``; None for ``none``. Refuses data that are not images,
    and ``ada`` for a D whose score's sign does not say real or generated (a critic's)."""
    if cfg.augment == "none":
        return None
    if len(shape) != 3:
        raise UserError(
            f"train.augment={cfg.augment} transforms images (colour, translation, cutout), but "
            f"data.name={data_name} gives points of shape {tuple(shape)}; set train.augment=none"
        )
    discriminators = [name for name in nets if name.startswith("D")]
    if not discriminators:
        raise UserError(
            f"train.variant={cfg.variant} has no discriminator to augment (a player named D...);"
            " set train.augment=none"
        )
    if cfg.augment == "ada" and not signed_scores:
        raise UserError(
            f"train.augment=ada reads overfitting from the sign of D's logits on real images, "
            f"and train.variant={cfg.variant}'s D gives scores whose sign means nothing (critic "
            "values, energies or regression targets); use train.augment=diffaug"
        )
    policy = parse_policy(cfg.augment_policy)
    p = cfg.augment_p if cfg.augment_p is not None else (0.0 if cfg.augment == "ada" else 1.0)
    pipe = Pipe(policy, p)
    for name in discriminators:
        nets[name] = AugmentedD(nets[name], pipe)
    adaptive = None
    if cfg.augment == "ada":
        adaptive = Adaptive(pipe, cfg)
    return Augmentation(cfg.augment, pipe, adaptive)
