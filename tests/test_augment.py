"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) and its adaptive probability (ADA,
Karras et al. 2020), for every variant; small-data subsets (data.limit).

What must hold: each kind does what it claims on a hand-made image and passes gradients back to
its input; real and generated batches take one policy; p rises on a D that overfits and falls on
one that does not, stays in [0, 1] and resumes bit for bit; 2-D data and a critic's signs are
refused in one line; short image runs with augmentation still learn the data (the augmentations
do not leak into G), for the G/D game, WGAN-GP, a conditional G and StyleGAN with lazy R1.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.cli import main
from gankit.config import DataConfig, TrainConfig
from gankit.data import build_source
from gankit.data.subset import chosen
from gankit.errors import UserError
from gankit.nets import augment as aug
from gankit.training import checkpoint
from test_train import _same

pytestmark = pytest.mark.usefixtures("one_thread")

SIDE = 8
BRIGHT, DARK = 220, 35  # the data's halves: about +0.73 and -0.73 in [-1, 1]


def _halves(folder: Path, n: int, bright_left: bool = True, seed: int = 0) -> None:
    """``n`` gray 8x8 PNGs, one half bright and the other dark, with a little noise."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        x = np.full((SIDE, SIDE), float(DARK))
        x[:, : SIDE // 2] = BRIGHT
        x = x if bright_left else x[:, ::-1]
        x = np.clip(x + rng.normal(0, 10, x.shape), 0, 255).astype(np.uint8)
        Image.fromarray(x).save(folder / f"{i:03d}.png")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """``left``: 64 images bright on the left; ``classes``: class a bright left, b bright right."""
    root = tmp_path_factory.mktemp("halves")
    _halves(root / "left", 64)
    _halves(root / "classes" / "a", 32)
    _halves(root / "classes" / "b", 32, bright_left=False, seed=1)
    return root


TINY = [
    "log.quiet=true",
    "data.name=folder",
    f"data.size={SIDE}",
    "data.channels=1",
    "model.net=mlp",
    "model.width=32",
    "model.depth=2",
    "model.z_dim=4",
    "train.batch_size=32",
    "train.lr_decay=none",
    "log.n_samples=16",
    "log.every=10",
    "log.sample_every=100000",
]


def _train(tmp_path, folder, *over, preset=None):
    return gankit.train(preset, [f"out={tmp_path}", f"data.path={folder}", *TINY, *over])


def _halves_of(run, labels=None) -> tuple[float, float]:
    """Mean of G's left and right halves over 256 samples."""
    x = run.sample(256, seed=1, labels=labels)  # [256, 1, S, S]
    half = x.shape[-1] // 2
    return x[..., :half].mean().item(), x[..., half:].mean().item()


def _rows(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------------------------------------
# the kinds, by hand


@pytest.mark.parametrize(
    "policy", [("flip",), ("geometric",), ("color",), ("translation",), ("cutout",), aug.KINDS]
)
def test_each_kind_passes_gradients_to_its_input(policy):
    torch.manual_seed(0)
    x = torch.randn(6, 3, 16, 16, requires_grad=True)
    out = aug.augment(x, policy)
    assert out.shape == x.shape and not torch.equal(out, x)
    (grad,) = torch.autograd.grad((out * torch.randn_like(out)).sum(), x)
    assert grad.abs().sum(dim=(1, 2, 3)).min() > 0  # every sample's gradient reaches x


def test_brightness_saturation_and_contrast_by_hand():
    x = torch.tensor([[[[0.0, 0.5]], [[0.2, -0.1]], [[0.4, 0.2]]]])  # [1, 3, 1, 2]
    torch.testing.assert_close(aug.brightness(x, torch.tensor([0.25])), x + 0.25)
    gray = x.mean(dim=1, keepdim=True)  # [1, 1, 1, 2]: the pixels' channel means
    torch.testing.assert_close(aug.saturation(x, torch.tensor([0.0])), gray.expand_as(x))
    torch.testing.assert_close(aug.saturation(x, torch.tensor([2.0])), 2 * x - gray)
    m = x.mean()
    torch.testing.assert_close(aug.contrast(x, torch.tensor([0.5])), (x - m) * 0.5 + m)


def test_random_color_on_gray_images_is_a_shift_and_a_contrast_per_sample():
    torch.manual_seed(1)
    x = torch.rand(64, 1, 4, 4).expand(-1, 3, -1, -1) * 2 - 1  # gray: saturation changes nothing
    out = aug.random_color(x)
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
    dev_in = x - x.mean(dim=(1, 2, 3), keepdim=True)
    dev_out = out - out.mean(dim=(1, 2, 3), keepdim=True)
    factor = (dev_out * dev_in).sum(dim=(1, 2, 3)) / dev_in.square().sum(dim=(1, 2, 3))  # [64]
    torch.testing.assert_close(dev_out, factor.view(-1, 1, 1, 1) * dev_in)  # one contrast each
    assert factor.min() >= 0.5 and factor.max() <= 1.5 and factor.std() > 0.1
    shift = out.mean(dim=(1, 2, 3)) - x.mean(dim=(1, 2, 3))  # [64]: the brightness
    assert shift.min() >= -0.5 - 1e-6 and shift.max() <= 0.5 + 1e-6 and shift.std() > 0.1


def test_flip_mirrors_the_chosen_samples_half_the_time():
    x = torch.arange(2 * 1 * 2 * 3.0).view(2, 1, 2, 3)  # [2, 1, 2, 3]
    out = aug.mirror(x, torch.tensor([True, False]))
    assert torch.equal(out[0], x[0, :, :, [2, 1, 0]]) and torch.equal(out[1], x[1])
    torch.manual_seed(2)
    x = torch.randn(4000, 1, 1, 2)  # each sample: [left, right]
    for p, share in ((1.0, 0.5), (0.5, 0.25), (0.0, 0.0)):
        out = aug.random_flip(x, p)
        swapped = (out[..., 0] == x[..., 1]).flatten() & (out[..., 1] == x[..., 0]).flatten()
        kept = (out == x).flatten(1).all(1)
        assert bool((swapped | kept).all())  # each sample mirrored or left as it was
        assert abs(swapped.float().mean().item() - share) < 0.03, (p, swapped.float().mean())


def test_warp_by_hand_identity_quarter_turn_and_a_pixel_with_reflected_border():
    torch.manual_seed(3)
    x = torch.randn(2, 3, 6, 6)
    eye = torch.tensor([[1.0, 0, 0], [0, 1, 0]]).expand(2, 2, 3)
    torch.testing.assert_close(aug.warp(x, eye), x)  # pixel centres sampled exactly
    turn = torch.tensor([[0.0, -1, 0], [1, 0, 0]]).expand(2, 2, 3)  # output (u, v) <- (-v, u)
    torch.testing.assert_close(aug.warp(x, turn), torch.rot90(x, 1, (2, 3)))
    right = torch.tensor([[1.0, 0, -1], [0, 1, 0]]).expand(2, 2, 3)  # one pixel to the right
    out = aug.warp(x, right)
    torch.testing.assert_close(out[..., 1:], x[..., :-1])
    torch.testing.assert_close(out[..., 0], x[..., 0])  # what came in: the border reflected
    wide = torch.randn(1, 1, 4, 8)  # not square: a half turn in pixels is still exact
    half = torch.tensor([[[-1.0, 0, 0], [0, -1, 0]]])
    torch.testing.assert_close(aug.warp(wide, half), wide.flip(2, 3))


def test_geometric_takes_each_of_its_five_draws_with_the_stated_probability(monkeypatch):
    """A sample is left as it was only if all five draws are identities: scalings and the shift
    with probability 1 - p each, the two rotations with sqrt(1 - p) each: (1 - p)^4 in all.
    Then the draws' sizes, one at a time, on a disc at the centre (rotations keep it)."""
    torch.manual_seed(4)
    x = torch.randn(4000, 1, 6, 6)
    for p in (0.0, 0.5, 1.0):
        out = aug.random_geometric(x, p)
        kept = ((out - x).abs().flatten(1).amax(1) < 1e-5).float().mean().item()
        assert abs(kept - (1 - p) ** 4) < 0.02, (p, kept)
    disc = torch.zeros(2000, 1, 32, 32)
    yy, xx = torch.meshgrid(torch.arange(32.0) - 15.5, torch.arange(32.0) - 15.5, indexing="ij")
    disc[:, 0] = ((yy.square() + xx.square()) < 36).float()  # radius 6 pixels
    with monkeypatch.context() as m:
        m.setattr(aug, "SHIFT_STD", 0.0)  # the scalings alone: area x iso^2 (aniso keeps it)
        out = aug.random_geometric(disc, 1.0)
    log2 = (out.sum(dim=(1, 2, 3)) / disc[0].sum()).log2() / 2  # [N]: log2 of iso
    assert abs(log2.mean().item()) < 0.02 and 0.17 < log2.std().item() < 0.23
    with monkeypatch.context() as m:
        m.setattr(aug, "SCALE_STD", 0.0)  # the shift alone: the disc's centre moves N(0, 4^2)
        out = aug.random_geometric(disc, 1.0)
    mass = out.sum(dim=(2, 3))  # [N, 1]
    centre = torch.stack([(out[:, 0] * xx).sum((1, 2)), (out[:, 0] * yy).sum((1, 2))], 1) / mass
    mad = (centre - centre.median(0).values).abs().median(0).values  # [2], per axis
    torch.testing.assert_close(mad, torch.full((2,), 0.6745 * 0.125 * 32), atol=0.3, rtol=0)


def test_translate_moves_a_pixel_and_fills_with_zero():
    x = torch.full((2, 1, 5, 5), -1.0)
    x[:, 0, 2, 2] = 1.0  # one bright pixel in a dark image
    out = aug.translate(x, torch.tensor([1, -2]), torch.tensor([2, 0]))
    assert out[0, 0, 3, 4] == 1 and out[1, 0, 0, 2] == 1  # moved by (dy, dx)
    assert (out[0, 0, 0, :] == 0).all() and (out[0, 0, :, :2] == 0).all()  # what came in: 0
    assert (out[1, 0, 3:, :] == 0).all()
    assert (out == 1).sum() == 2 and (out == -1).sum() == 2 * 25 - 2 - 13 - 10


def test_random_translation_shifts_each_sample_by_at_most_an_eighth():
    torch.manual_seed(2)
    x = torch.rand(32, 2, 16, 16) + 1  # all values >= 1: what the shift brings in is 0
    out = aug.random_translation(x)
    shifts = set()
    moves = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]
    for i in range(32):
        one = x[i : i + 1].expand(len(moves), -1, -1, -1)  # [25, 2, 16, 16]: sample i, 25 times
        every = aug.translate(one, *torch.tensor(moves).T)  # each shift within 16 / 8 = 2 px
        found = [m for m, y in zip(moves, every, strict=True) if torch.equal(y, out[i])]
        assert len(found) == 1, i  # exactly one of them explains it
        shifts.add(found[0])
    assert len(shifts) > 5  # each sample its own draw


def test_cut_zeroes_the_box_clipped_at_the_border():
    x = torch.ones(2, 3, 6, 6)
    out = aug.cut(x, torch.tensor([1, -2]), torch.tensor([2, 4]), (3, 3))
    assert (out[0, :, 1:4, 2:5] == 0).all() and out[0].sum() == 3 * (36 - 9)
    assert (out[1, :, 0:1, 4:6] == 0).all() and out[1].sum() == 3 * (36 - 2)


def test_random_cutout_zeroes_one_square_of_half_the_side():
    torch.manual_seed(3)
    x = torch.ones(64, 1, 8, 8)
    out = aug.random_cutout(x)
    sizes = []
    for i in range(64):
        rows, cols = torch.nonzero(out[i, 0] == 0, as_tuple=True)
        assert len(rows) > 0
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert box == len(rows) and rows.max() - rows.min() < 4 and cols.max() - cols.min() < 4
        sizes.append(len(rows))
    assert max(sizes) == 16 and min(sizes) < 16  # 4x4 inside, clipped at a border


def test_probability_p_applies_each_kind_to_about_p_of_the_samples():
    torch.manual_seed(4)
    x = torch.ones(400, 1, 8, 8)
    assert torch.equal(aug.augment(x, aug.KINDS, 0.0), x)
    cut = (aug.random_cutout(x, 0.25) == 0).flatten(1).any(1).float().mean().item()
    assert 0.18 < cut < 0.32
    moved = (aug.random_translation(x, 0.25) == 0).flatten(1).any(1).float().mean().item()
    assert moved < 0.25  # chosen samples may still draw the shift (0, 0)
    assert moved > 0.15


# ---------------------------------------------------------------------------------------------
# D's side: one policy for real and generated batches, labels through, none in eval mode


class Recorder(torch.nn.Module):
    """A D that remembers its inputs and scores each sample by its mean."""

    def __init__(self):
        super().__init__()
        self.seen: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        self.w = torch.nn.Parameter(torch.ones([]))

    def forward(self, x, y=None):
        self.seen.append((x.detach().clone(), y))
        return x.flatten(1).mean(1) * self.w  # [N]

    def encode(self, x):
        return x.flatten(1)


def test_augmented_d_passes_labels_and_is_the_net_in_eval_mode():
    net = Recorder()
    D = aug.AugmentedD(net, aug.Pipe(aug.KINDS, 1.0))
    x, y = torch.rand(4, 1, 8, 8), torch.arange(4)
    D(x, y)
    assert not torch.equal(net.seen[-1][0], x) and torch.equal(net.seen[-1][1], y)
    D.eval()
    D(x)
    assert torch.equal(net.seen[-1][0], x)
    assert D.encode is not None and set(D.state_dict()) == {"net.w"}  # the net's, nothing more


def test_real_and_generated_batches_take_one_policy_in_each_phase(tmp_path, folders, monkeypatch):
    calls = []
    for kind, fn in list(aug.RANDOM.items()):
        monkeypatch.setitem(aug.RANDOM, kind, lambda x, p, k=kind, f=fn: calls.append(k) or f(x, p))
    _train(tmp_path, folders / "left", "train.steps=1", "train.augment=diffaug",
           "train.augment_policy=cutout,color")  # fmt: skip
    # D(real), D(G(z)) in D's phase, D(G(z)) in G's: each through the whole policy, in order
    assert calls == ["cutout", "color"] * 3


# ---------------------------------------------------------------------------------------------
# ADA's probability


def _adaptive(p: float, **kw) -> aug.Adaptive:
    cfg = TrainConfig(augment="ada", batch_size=50, ada_interval=2, ada_kimg=1.0, **kw)
    return aug.Adaptive(aug.Pipe(aug.KINDS, p), cfg)


def _d_phase_logs(variant, s_real: torch.Tensor) -> dict:
    return variant.score_logs(s_real, -s_real)


@pytest.mark.parametrize("scores, direction", [(3.0, +1), (-0.5, -1)])
def test_p_follows_the_sign_of_d_on_reals(scores, direction):
    from gankit.variants.gan import GAN

    gan = GAN(gankit.load_config(None, ["train.augment=ada"]))
    ada = _adaptive(0.5)
    real = torch.full((50,), scores)
    real[:5] = -scores  # 90 % one sign: r_t = +-0.8, either side of the target 0.6
    for step in (1, 2):
        ada.observe(_d_phase_logs(gan, real))
        ada.update(step)
    assert ada.last == pytest.approx(0.8 * math.copysign(1, scores))
    # two batches of 50 reals in the interval: p moves by 100 / (1 kimg * 1000)
    assert ada.pipe.p == pytest.approx(0.5 + direction * 0.1)


def test_p_stays_in_0_1_and_needs_the_signs():
    up, down = _adaptive(0.95), _adaptive(0.05)
    for step in (1, 2):
        up.observe({aug.SIGN_KEY: torch.tensor(1.0)})
        down.observe({aug.SIGN_KEY: torch.tensor(-1.0)})
        up.update(step)
        down.update(step)
    assert up.pipe.p == 1.0 and down.pipe.p == 0.0
    silent = _adaptive(0.5)
    silent.update(1)  # not yet an update step
    with pytest.raises(UserError, match="does not report"):
        silent.update(2)


def test_under_torchrun_p_follows_the_mean_over_the_processes():
    ada = _adaptive(0.5)
    for step in (1, 2):
        ada.observe({aug.SIGN_KEY: torch.tensor(1.0)})  # this process: r = 1 ...
        # ... the other: r = 0 (what distributed.mean_values returns: each number's mean)
        ada.update(step, lambda v: {"sum": v["sum"] / 2, "count": v["count"]}, world=2)
    assert ada.last == 0.5  # below the target 0.6: p falls, by 2 x 2 batches of 50 reals
    assert ada.pipe.p == pytest.approx(0.5 - 0.2)


def test_p_rises_from_0_in_a_run_whose_d_overfits(tmp_path, folders):
    # G barely moves: D tells the real images from its noise, and E[sign D(x)] goes to 1
    over = ["train.steps=48", "train.augment=ada", "train.ada_kimg=1", "train.lr_g=1e-6"]
    rows = _rows(_train(tmp_path, folders / "left", *over).dir)
    assert rows[-1]["ada_sign_real"] > 0.6
    p = [r["augment_p"] for r in rows]  # 0 at the start (ada's default)
    assert p == sorted(p) and p[-1] > 0.5, p


def test_ada_resume_is_bit_exact_mid_interval(tmp_path, folders):
    common = [
        "train.augment=ada",
        "train.augment_p=0.4",  # augmenting from the first step
        "train.ada_interval=3",  # the checkpoint at step 10 falls inside an interval
        "train.ada_kimg=1",
        "log.every=5",
        "log.checkpoint_every=10",
        "model.dropout=0.2",
    ]
    whole = _train(tmp_path, folders / "left", "name=whole", "train.steps=20", *common)
    half = _train(tmp_path, folders / "left", "name=half", "train.steps=10", *common)
    mid = checkpoint.load(checkpoint.latest(half.dir))
    assert mid["augment"]["count"] == 1 and mid["augment"]["has_sum"]  # step 10: 1 of 3 batches
    gankit.resume(half.dir, ["train.steps=20"])
    a = checkpoint.load(checkpoint.latest(whole.dir))
    b = checkpoint.load(checkpoint.latest(half.dir))
    for part in ("step", "nets", "opts", "rng", "augment"):
        _same(a[part], b[part], part)
    assert a["augment"]["p"] != 0.4  # p moved, and the resumed run moved it the same way
    clock = ("img_per_s", "seconds")
    rows = lambda d: [{k: v for k, v in r.items() if k not in clock} for r in _rows(d)]  # noqa: E731
    assert rows(whole.dir) == rows(half.dir)


# ---------------------------------------------------------------------------------------------
# refusals, in one line


@pytest.mark.parametrize(
    "over, words",
    [
        (["train.augment=diffaug"], "gives points of shape (2,); set train.augment=none"),
        (["train.augment_policy=color,rotate"], "unknown kind 'rotate'"),
        (["train.augment_policy=color,color"], "names a kind twice"),
        (["train.augment_p=1.5"], "train.augment_p must be in [0, 1]"),
        (["train.ada_target=1"], "train.ada_target must be in (0, 1)"),
        (["train.ada_interval=0"], "train.ada_interval must be at least 1"),
        (["train.ada_kimg=0"], "train.ada_kimg must be a positive number"),
        (["train.augment=flip"], "train.augment must be one of none, diffaug, ada"),
        (["data.limit=-1"], "data.limit must be 0 (all images)"),
        (["data.limit=10"], "ring is a toy data set; set data.limit=0"),
    ],
)
def test_bad_settings_are_one_line_before_the_run_folder(tmp_path, capsys, over, words):
    assert main(["train", f"out={tmp_path}", *over]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
    assert not (tmp_path / "ring").exists()


def test_ada_is_refused_for_a_critic_but_diffaug_trains_it(tmp_path, folders):
    wgan = ["train.variant=wgan-gp", "model.batchnorm=false", "train.beta1=0", "train.beta2=0.9"]
    with pytest.raises(UserError, match="sign of D's logits on real images.*use train.augment"):
        _train(tmp_path, folders / "left", *wgan, "train.augment=ada")
    run = _train(tmp_path, folders / "left", *wgan, "train.augment=diffaug", "train.steps=120",
                 "train.lr_g=1e-3", "train.lr_d=1e-3")  # fmt: skip
    left, right = _halves_of(run)
    assert left > 0.4 and right < -0.4, (left, right)  # about +-0.73 in the data


def test_ada_is_accepted_for_the_hinge_variant(tmp_path, folders):
    hinge_ada = ["train.variant=hinge", "train.augment=ada", "train.ada_interval=1"]
    run = _train(tmp_path, folders / "left", *hinge_ada, "train.steps=2", "log.every=1",
                 preset="mnist-dcgan")  # fmt: skip
    rows = _rows(run.dir)
    assert [r["step"] for r in rows] == [1, 2]
    assert all(abs(r["ada_sign_real"]) <= 1 and 0 <= r["augment_p"] <= 1 for r in rows)


# ---------------------------------------------------------------------------------------------
# short runs still learn the data: what D sees augmented does not leak into G


def test_the_gd_game_learns_the_image_under_diffaug_and_ada(tmp_path, folders):
    for mode in ("diffaug", "ada"):
        run = _train(tmp_path, folders / "left", f"name={mode}", "train.steps=100",
                     f"train.augment={mode}", "train.augment_p=0.5", "data.limit=48")  # fmt: skip
        left, right = _halves_of(run)
        assert left > 0.5 and right < -0.5, (mode, left, right)  # the data: about +-0.73
        assert run.summary["data_subset"].startswith("48 of the 64 images of image folder")


def test_a_conditional_g_learns_each_class_under_diffaug(tmp_path, folders):
    run = _train(tmp_path, folders / "classes", "train.variant=cgan", "data.classes=true",
                 "train.augment=diffaug", "train.steps=200")  # fmt: skip
    a_left, a_right = _halves_of(run, torch.zeros(256, dtype=torch.long))
    b_left, b_right = _halves_of(run, torch.ones(256, dtype=torch.long))
    assert a_left - a_right > 0.3 and b_right - b_left > 0.3, (a_left, a_right, b_left, b_right)


def test_stylegan_with_lazy_r1_trains_under_ada(tmp_path, folders):
    style = "{w_dim: 8, mapping_layers: 1, channel_base: 32, channel_max: 8}"
    run = gankit.train("mnist-stylegan", [
        f"out={tmp_path}", f"data.path={folders / 'left'}", *TINY, "model.net=stylegan",
        f"model.options={style}", "model.z_dim=8", "train.ema=0", "train.steps=60", "data.size=16",
        "variant.r1_every=2", "variant.pl_weight=0", "variant.mixing=0", "train.augment=ada",
        "train.augment_p=0.5",
        "train.ada_kimg=2", "log.every=2",
    ])  # fmt: skip
    rows = _rows(run.dir)
    assert all(math.isfinite(r[k]) for r in rows for k in ("loss_D", "loss_G", "r1"))
    assert len({r["augment_p"] for r in rows}) > 3  # p moved
    left, right = _halves_of(run)
    assert left - right > 0.3, (left, right)


# ---------------------------------------------------------------------------------------------
# data.limit


def test_a_subset_is_the_same_images_for_every_seed_and_nested():
    small, large = chosen(50_000, 1000), chosen(50_000, 5000)
    assert len(small) == len(set(small.tolist())) == 1000 and torch.equal(small, small.sort()[0])
    assert set(small.tolist()) <= set(large.tolist())  # 1,000 of the same 5,000
    assert torch.equal(small, chosen(50_000, 1000))


@pytest.mark.parametrize("cache", ["memory", "none"])
def test_limit_keeps_the_chosen_images_with_their_labels(folders, cache):
    cfg = DataConfig(name="folder", path=str(folders / "classes"), size=SIDE, cache=cache)
    full, part = build_source(cfg), build_source(DataConfig(**{**vars(cfg), "limit": 10}))
    keep = chosen(64, 10)
    assert len(part) == 10 and len(full) == 64 and "10 images of" in part.origin
    x, y = part.batch(torch.arange(10))
    x_full, y_full = full.batch(keep)
    assert torch.equal(x, x_full) and torch.equal(y, y_full)
    batch = part.sampler(10, 0).next()[0]  # one epoch of the subset: its 10 images
    assert sorted(batch.sum((1, 2, 3)).tolist()) == sorted(x.sum((1, 2, 3)).tolist())
    assert len(build_source(DataConfig(**{**vars(cfg), "limit": 10}), "test")) == 64
    with pytest.raises(UserError, match="data.limit=65 is more than the 64 training images"):
        build_source(DataConfig(**{**vars(cfg), "limit": 65}))


def test_limit_cuts_mnist(data_root):
    cfg = DataConfig(name="mnist", root=str(data_root), download=False, limit=100)
    part = build_source(cfg)
    assert len(part) == 100 and part.labels.bincount(minlength=10).min() > 0
    full = build_source(DataConfig(name="mnist", root=str(data_root), download=False))
    assert torch.equal(part.images, full.images[chosen(60_000, 100)])


# ---------------------------------------------------------------------------------------------
# two discriminators (CycleGAN) and two processes (torchrun)


def test_cyclegan_augments_both_discriminators(tmp_path, data_root, monkeypatch):
    calls = []
    cutout = aug.RANDOM["cutout"]
    monkeypatch.setitem(aug.RANDOM, "cutout", lambda x, p: calls.append(len(x)) or cutout(x, p))
    tiny = ["train.batch_size=4", "variant.ngf=4", "variant.n_blocks=1", "variant.ndf=8"]
    run = gankit.train("usps-mnist-cyclegan", [
        f"out={tmp_path}", f"data.root={data_root}", "data.download=false", *tiny,
        "log.quiet=true", "log.n_samples=4", "train.steps=1", "train.augment=diffaug",
        "train.augment_policy=cutout",
    ])  # fmt: skip
    # G's phase: D_B(G_AB(a)), D_A(G_BA(b)); D's phase: each D on its reals and its pool's fakes
    assert calls == [4] * 6 and math.isfinite(run.summary["loss_D"])
    assert run.summary["augment"]["mode"] == "diffaug"


def test_two_processes_agree_on_p(tmp_path, folders):
    from test_distributed import QUIET, assert_same, ranks, run_helper

    over = ["train.steps=6", "train.batch_size=16", "train.augment=ada", "train.ada_interval=1",
            "train.ada_kimg=0.5", "train.augment_p=0.5", f"out={tmp_path / 'runs'}"]  # fmt: skip
    tiny = [o for o in TINY if not o.startswith(("log.quiet", "train.batch_size"))]
    run_helper(tmp_path / "dump", ["ring", f"data.path={folders / 'left'}", *tiny, *over, *QUIET])
    assert_same(*ranks(tmp_path / "dump"))
    ck = checkpoint.load(checkpoint.latest(tmp_path / "runs" / "ring"))
    (p0, p1) = (part["augment"]["p"] for part in ck["ranks"])
    assert p0 == p1 == ck["augment"]["p"] and p0 != 0.5  # one p, from the ranks' mean sign
