"""Remedies for mode collapse, each usable by every variant: PacGAN packing (Lin et al. 2018),
minibatch standard deviation (Karras et al. 2018), spectral normalisation (Miyato et al. 2018) and
the unrolled GAN (Metz et al. 2017). Shapes, closed forms, refusals, exact resume, one step of
each with both net families, and a short ring run where packing keeps the modes a plain GAN
drops."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.testing import assert_close

import gankit
from gankit.cli import main
from gankit.config import ModelConfig
from gankit.errors import UserError
from gankit.losses import gradient_penalty, r1_penalty, unrolled_scores
from gankit.nets import PackedD, build_discriminator
from gankit.nets.style_layers import MinibatchStd, minibatch_std
from gankit.registry import VARIANTS
from gankit.training import checkpoint
from gankit.training.trainer import Trainer
from gankit.variants import Batch
from gankit.variants.gan import GAN
from test_train import _same  # bit-identical nested state

pytestmark = pytest.mark.usefixtures("one_thread")

QUIET = ["log.quiet=true"]
TINY = ["model.width=8", "model.depth=2", "train.batch_size=8", "log.n_samples=4"]


def tiny(**kw) -> ModelConfig:
    return ModelConfig(**{"z_dim": 4, "width": 8, "depth": 2, **kw})


def _config(tmp_path, *over) -> gankit.Config:
    return gankit.load_config(None, [f"out={tmp_path}", *QUIET, *over])


def _rows(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _first_layer(D: nn.Module) -> nn.Module:
    return next(m for m in D.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))


def _record_inputs(layer: nn.Module) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    layer.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    return seen


# ---------------------------------------------------------------------------------------------
# config: new keys, strict values, combinations that cannot work


def test_defaults_are_off():
    cfg = gankit.load_config(None)
    assert (cfg.train.pac, cfg.model.mbstd, cfg.model.spectral_norm) == (1, 0, False)
    assert GAN(cfg).opts.unroll == 0 and GAN(cfg).opts.unroll_lr is None


@pytest.mark.parametrize(
    "over, message",
    [
        (["train.pac=0"], "train.pac must be at least 1"),
        (["train.pac=two"], "train.pac must be an integer, got 'two'"),
        (["train.batch_size=30", "train.pac=4"], "train.batch_size=30 must be divisible by "),
        (["train.pac=2", "data.classes=true"], "train.pac packs unlabelled samples"),
        (["model.mbstd=1"], "model.mbstd must be 0 (off) or a group size of at least 2"),
        (["model.mbstd=-4"], "model.mbstd must be 0"),
        (["model.mbstd=2.5"], "model.mbstd must be an integer"),
        (["model.spectral_norm=maybe"], "model.spectral_norm must be true or false"),
    ],
)
def test_bad_config_values_name_the_key(over, message):
    with pytest.raises(UserError, match=re.escape(message)):
        gankit.load_config(None, over)


@pytest.mark.parametrize(
    "over, message",
    [
        (["variant.unroll=-1"], "variant.unroll must be 0 (off)"),
        (["variant.unroll=x"], "variant.unroll must be an integer, got 'x'"),
        (["variant.unroll_lr=0"], "variant.unroll_lr must be positive"),
        (["variant.unrol=2"], "variant gan has no option variant.unrol"),
        (["train.variant=cgan", "data.classes=true", "variant.unroll=-2"], "variant.unroll"),
    ],
)
def test_bad_unroll_options_name_the_key(tmp_path, over, message):
    cfg = _config(tmp_path, *over)
    with pytest.raises(UserError, match=re.escape(message)):
        VARIANTS.get(cfg.train.variant)(cfg)


@pytest.mark.parametrize(
    "over, message",
    [
        (["train.variant=ebgan", "train.pac=2"], "cannot pack the inputs of an autoencoder D"),
        (["train.variant=ebgan", "model.mbstd=2"], "model.mbstd is a layer of a D that scores"),
        (["train.variant=unpacked-gan", "train.pac=2"], "do not pack samples; set train.pac=1"),
    ],
)
def test_combinations_that_cannot_work_are_one_line(tmp_path, over, message):
    with pytest.raises(UserError, match=message) as e:
        Trainer(_config(tmp_path, *over))
    assert "\n" not in str(e.value)
    assert not (tmp_path / "ring").exists()  # refused before the run folder is made


STYLE = {"w_dim": 8, "channel_base": 32}  # a tiny StyleGAN


@pytest.mark.parametrize("key, value", [("spectral_norm", True), ("mbstd", 2)])
def test_stylegan_and_cyclegan_refuse_the_d_options_they_do_not_have(key, value):
    cfg = tiny(net="stylegan", batchnorm=False, options=STYLE, **{key: value})
    with pytest.raises(UserError, match=f"model.net=stylegan has no {key} option"):
        build_discriminator(cfg, (1, 16, 16))
    cyc = gankit.load_config("usps-mnist-cyclegan", [f"model.{key}={value}"])
    with pytest.raises(UserError, match=f"train.variant=cyclegan does not use model.{key}"):
        VARIANTS.get("cyclegan")(cyc)


def test_cyclegan_refuses_packing_before_training(tmp_path, data_root):
    over = [f"out={tmp_path}", *QUIET, f"data.root={data_root}", "data.download=false"]
    cfg = gankit.load_config("usps-mnist-cyclegan", [*over, "train.pac=2"])
    with pytest.raises(UserError, match="cyclegan builds discriminators that do not pack samples"):
        Trainer(cfg)
    assert not (tmp_path / "usps-mnist-cyclegan").exists()


def test_cli_refuses_a_batch_that_packs_unevenly_with_exit_2(tmp_path, capsys):
    assert main(["train", f"out={tmp_path}", "train.batch_size=10", "train.pac=4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "gankit: error: train.batch_size=10 must be divisible by train.pac=4: D scores packs of "
        "train.pac samples"
    ]
    assert not (tmp_path / "ring").exists()


@VARIANTS.register("unpacked-gan")
class UnpackedGAN(GAN):
    """A variant whose own D ignores train.pac: the trainer must refuse it, not run unpacked."""

    def build_nets(self, shape, num_classes):
        return {
            "G": gankit.nets.build_generator(self.cfg.model, shape, num_classes),
            "D": build_discriminator(self.cfg.model, shape, num_classes),
        }


# ---------------------------------------------------------------------------------------------
# packing (PacGAN)


@pytest.mark.parametrize(
    "net, shape, pac",
    [("mlp", (2,), 4), ("mlp", (1, 8, 8), 2), ("dcgan", (1, 28, 28), 2), ("dcgan", (3, 32, 32), 3)],
)
def test_packed_d_shapes_and_input_layer(net, shape, pac):
    D = build_discriminator(tiny(net=net), shape, pac=pac)
    assert isinstance(D, PackedD) and D.pac == pac
    first = _first_layer(D)
    if isinstance(first, nn.Linear):
        assert first.in_features == pac * math.prod(shape)  # m times the input size
    else:
        assert first.in_channels == pac * shape[0]  # m times the channels
    assert D(torch.randn(2 * pac, *shape)).shape == (2,)
    assert D.score_points(torch.randn(5, *shape)).shape == (5,)
    with pytest.raises(ValueError, match=f"packs of {pac} samples; got a batch of {2 * pac + 1}"):
        D(torch.randn(2 * pac + 1, *shape))
    with pytest.raises(ValueError, match="unconditional"):
        D(torch.randn(pac, *shape), torch.zeros(pac, dtype=torch.long))
    with pytest.raises(UserError, match="a conditional D"):
        build_discriminator(tiny(net=net), shape, num_classes=3, pac=pac)


def test_packed_stylegan_d_scores_packs():
    cfg = tiny(net="stylegan", batchnorm=False, options=STYLE)
    D = build_discriminator(cfg, (1, 16, 16), pac=2)
    assert D.net.from_rgb.weight.shape[1] == 2  # from_rgb sees two images' channels
    assert D(torch.randn(6, 1, 16, 16)).shape == (3,)


@pytest.mark.parametrize("net, shape", [("mlp", (2,)), ("mlp", (1, 8, 8)), ("dcgan", (1, 28, 28))])
def test_a_pack_holds_m_distinct_consecutive_samples(net, shape):
    m, n = 4, 8
    D = build_discriminator(tiny(net=net), shape, pac=m)
    seen = _record_inputs(_first_layer(D))
    x = torch.randn(n, *shape)
    D(x)
    (packs,) = seen  # what D's input layer saw
    if net == "mlp":
        assert packs.shape == (n // m, m * math.prod(shape))
        samples = packs.reshape(n // m, m, *shape)  # the flattened pack, sample after sample
    else:
        assert packs.shape == (n // m, m * shape[0], *shape[1:])
        samples = packs.reshape(n // m, m, *shape)  # channel blocks, one per sample
    for p in range(n // m):
        for j in range(m):
            assert torch.equal(samples[p, j], x[p * m + j])  # pack p holds samples pm .. pm+m-1
        assert len({tuple(s.flatten().tolist()) for s in samples[p]}) == m  # m different ones


def test_packs_hold_real_with_real_and_fake_with_fake(tmp_path):
    cfg = _config(tmp_path, *TINY, "train.pac=2")
    v = GAN(cfg)
    nets = v.build_nets((2,), 0)
    seen = _record_inputs(_first_layer(nets["D"]))
    real = torch.randn(8, 2) + 100.0  # far from anything G makes
    batch = Batch(real=real, labels=None, z=torch.randn(8, cfg.model.z_dim), step=0)
    out = v.loss("D", nets, batch)
    assert torch.isfinite(out.total)
    assert len(seen) == 2
    for packs, is_real in zip(seen, (True, False), strict=True):
        samples = packs.reshape(4, 2, 2)  # [packs, m, D]
        assert ((samples > 50).all(dim=2) == is_real).all()  # every sample of every pack
    assert torch.equal(seen[0], real.reshape(4, 4))


def test_score_points_scores_a_pack_of_copies():
    D = build_discriminator(tiny(), (2,), pac=3)
    x = torch.randn(5, 2)
    copies = torch.stack([D(p.expand(3, 2)) for p in x]).squeeze(1)  # [5]
    assert_close(D.score_points(x), copies)


def test_gradient_penalty_and_r1_take_the_norm_per_pack():
    m, w = 2, torch.tensor([3.0, 0.0, 0.0, 4.0])  # a linear packed D: <w, pack>, ||w|| = 5
    critic = PackedD(_Linear(w), m, (2,))
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    # per pack the gradient is w, norm 5: (5 - 1)^2 = 16 (per sample: norms 3 and 4, 6.5)
    assert_close(gradient_penalty(critic, real, fake), torch.tensor(16.0))
    r1 = r1_penalty(critic, real)
    assert r1.shape == (3,)
    assert_close(r1, torch.full((3,), 25.0))


class _Linear(nn.Module):
    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x, y=None):
        return x @ self.w  # [N]


# ---------------------------------------------------------------------------------------------
# minibatch standard deviation (Karras et al. 2018), shared with StyleGAN's D


def test_minibatch_std_of_features_by_hand():
    x = torch.tensor([[0.0, 1.0, 2.0], [5.0, 5.0, 5.0], [2.0, 1.0, 0.0], [1.0, 3.0, 5.0]])
    out = minibatch_std(x, group=2)  # groups: samples (0, 2) and (1, 3)
    assert out.shape == (4, 4)
    assert torch.equal(out[:, :3], x)
    a = torch.sqrt(torch.tensor([1.0, 0.0, 1.0]) + 1e-8).mean()  # |x0 - x2| / 2 per feature
    b = torch.sqrt(torch.tensor([4.0, 1.0, 0.0]) + 1e-8).mean()  # |x1 - x3| / 2
    assert_close(out[:, 3], torch.stack([a, b, a, b]))


def test_minibatch_std_of_maps_is_unchanged_for_stylegan():
    x = torch.randn(8, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    n, c, h, w = x.shape  # the layer as StyleGAN's D had it before it was shared
    g = math.gcd(4, n)
    y = x.float().reshape(g, n // g, c, h, w)
    y = (y - y.mean(dim=0)).square().mean(dim=0)
    y = (y + 1e-8).sqrt().mean(dim=[1, 2, 3])
    y = y.to(x.dtype).reshape(1, n // g, 1, 1, 1).expand(g, -1, 1, h, w).reshape(n, 1, h, w)
    assert torch.equal(minibatch_std(x, 4), torch.cat([x, y], dim=1))
    assert MinibatchStd(4)(x).shape == (8, 4, 4, 4)


@pytest.mark.parametrize(
    "net, shape, depth",
    [("mlp", (2,), 2), ("mlp", (2,), 1), ("mlp", (1, 8, 8), 2), ("dcgan", (1, 28, 28), 2)],
)
def test_mbstd_d_sees_its_group(net, shape, depth):
    cfg = tiny(net=net, depth=depth, mbstd=2, batchnorm=False)
    D = build_discriminator(cfg, shape).eval()
    assert sum(isinstance(m, MinibatchStd) for m in D.modules()) == 1
    x = torch.randn(4, *shape)  # groups of 2: samples (0, 2) and (1, 3)
    with torch.no_grad():
        s = D(x)
        same_group, other_group = x.clone(), x.clone()
        same_group[2] += 1.0
        other_group[1] += 1.0
        assert s.shape == (4,)
        assert not torch.allclose(D(same_group)[0], s[0])  # 0's score depends on its group
        assert_close(D(other_group)[0], s[0])  # and on nothing else
        plain = build_discriminator(tiny(net=net, depth=depth, batchnorm=False), shape).eval()
        assert_close(plain(same_group)[0], plain(x)[0])  # without it, scores are per sample


# ---------------------------------------------------------------------------------------------
# spectral normalisation (Miyato et al. 2018)


def _matrix(module: nn.Module, weight: torch.Tensor) -> torch.Tensor:
    """The matrix whose largest singular value torch normalises: the output dim first."""
    if isinstance(module, nn.ConvTranspose2d):
        weight = weight.transpose(0, 1)  # [I, O, k, k] -> [O, I, k, k]
    return weight.reshape(weight.shape[0], -1)


@pytest.mark.parametrize(
    "net, shape, d_output",
    [
        ("mlp", (2,), "linear"),
        ("dcgan", (1, 28, 28), "linear"),
        ("dcgan", (1, 28, 28), "autoencoder"),
    ],
)
def test_spectral_norm_bounds_every_layer_near_1(net, shape, d_output):
    torch.manual_seed(0)
    cfg = tiny(net=net, spectral_norm=True, batchnorm=False, d_output=d_output)
    D = build_discriminator(cfg, shape)
    layers = [m for m in D.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]
    assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
    kinds = {type(m).__name__ for m in layers}
    assert kinds >= ({"ParametrizedConvTranspose2d"} if d_output == "autoencoder" else set())
    with torch.no_grad():
        for m in layers:  # far from 1 before the normalisation
            m.parametrizations.weight.original.mul_(100.0)
        for _ in range(30):  # one power iteration per forward in training mode
            D(torch.randn(4, *shape))
    for m in layers:
        original = m.parametrizations.weight.original.detach()
        assert torch.linalg.svdvals(_matrix(m, original))[0] > 2.0
        sigma = torch.linalg.svdvals(_matrix(m, m.weight.detach()))[0]
        assert abs(sigma.item() - 1.0) < 1e-2, (type(m).__name__, sigma.item())


# ---------------------------------------------------------------------------------------------
# unrolled GAN (Metz et al. 2017)


class _LinearG(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, z, y=None):
        return self.fc(z)  # [N, 2]


class _LinearD(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 1)

    def forward(self, x, y=None):
        return self.fc(x).squeeze(1)  # [N]


def test_one_sgd_unroll_of_a_linear_d_matches_the_closed_form(tmp_path):
    torch.manual_seed(0)
    lr = 0.5
    cfg = _config(tmp_path, "variant.unroll=1", f"variant.unroll_lr={lr}", "model.z_dim=2")
    v = GAN(cfg)
    G, D = _LinearG(), _LinearD()
    real, z = torch.randn(6, 2), torch.randn(6, 2)
    w0, b0 = D.fc.weight.detach().clone()[0], D.fc.bias.detach().clone()[0]
    out = v.loss("G", {"G": G, "D": D}, Batch(real=real, labels=None, z=z, step=0))
    (g_unrolled,) = torch.autograd.grad(out.total, G.fc.weight)

    fake = G(z)  # by hand: BCE(D) = mean softplus(-s_real) + mean softplus(s_fake)
    s_real, s_fake = real @ w0 + b0, fake @ w0 + b0
    dw = (-torch.sigmoid(-s_real)[:, None] * real).mean(0) + (
        torch.sigmoid(s_fake)[:, None] * fake
    ).mean(0)
    db = -torch.sigmoid(-s_real).mean() + torch.sigmoid(s_fake).mean()
    w1, b1 = w0 - lr * dw, b0 - lr * db  # one SGD step of D's loss, a function of G
    hand = F.softplus(-(fake @ w1 + b1)).mean()  # non-saturating G loss against D_1
    assert_close(out.total, hand)
    (g_hand,) = torch.autograd.grad(hand, G.fc.weight, retain_graph=True)
    assert_close(g_unrolled, g_hand)  # G's gradient flows through the unrolled step

    plain = F.softplus(-(fake @ w0 + b0)).mean()
    (g_plain,) = torch.autograd.grad(plain, G.fc.weight)
    assert not torch.allclose(g_unrolled, g_plain, atol=1e-3)  # the unroll changed G's gradient
    assert torch.equal(D.fc.weight.detach()[0], w0) and D.fc.weight.grad is None  # D untouched


def test_the_unroll_leaves_d_and_its_buffers_as_they_were(tmp_path):
    torch.manual_seed(0)
    cfg = _config(tmp_path, *TINY, "variant.unroll=3", "model.spectral_norm=true")
    v = GAN(cfg)
    nets = v.build_nets((2,), 0)
    before = {k: t.clone() for k, t in nets["D"].state_dict().items()}
    assert any(k.endswith("_u") for k in before)
    batch = Batch(real=torch.randn(8, 2), labels=None, z=torch.randn(8, cfg.model.z_dim), step=0)
    nets["D"].requires_grad_(False)  # as the trainer leaves D in the G phase
    out = v.loss("G", nets, batch)
    out.total.backward()
    for k, t in nets["D"].state_dict().items():
        assert torch.equal(t, before[k]), k
    assert all(p.grad is not None for p in nets["G"].parameters())


def test_unrolled_scores_with_no_steps_are_ds_scores():
    D = _LinearD()
    x = torch.randn(4, 2)
    s = unrolled_scores(D, lambda r, f: f.mean(), x, x, None, 0, 0.1)
    assert_close(s, D(x))


# ---------------------------------------------------------------------------------------------
# exact resume with the remedies on


@pytest.mark.parametrize(
    "extra",
    [
        ["model.spectral_norm=true"],
        ["model.spectral_norm=true", "train.pac=2", "model.mbstd=2", "variant.unroll=2"],
    ],
)
def test_resume_is_bit_exact_with_spectral_norm(tmp_path, extra):
    common = [
        f"out={tmp_path}",
        *QUIET,
        "model.width=16",
        "train.batch_size=32",
        "log.every=5",
        "log.checkpoint_every=10",
        "log.sample_every=100",
        "train.lr_decay=none",
        *extra,
    ]
    whole = gankit.train(None, [*common, "name=whole", "train.steps=30"])
    half = gankit.train(None, [*common, "name=half", "train.steps=10"])
    gankit.resume(half.dir, ["train.steps=30"])
    a = checkpoint.load(checkpoint.latest(whole.dir))
    b = checkpoint.load(checkpoint.latest(half.dir))
    assert any(k.endswith("weight.0._u") for k in a["nets"]["D"])  # the power iteration's state
    for part in ("step", "nets", "opts", "rng"):
        _same(a[part], b[part], part)


# ---------------------------------------------------------------------------------------------
# one step of each remedy with both families, on the ring and on MNIST-shaped images

REMEDIES = {
    "pac": ["train.pac=2"],
    "mbstd": ["model.mbstd=2"],
    "spectral_norm": ["model.spectral_norm=true"],
    "unroll": ["variant.unroll=2"],
}


@pytest.fixture(scope="module")
def mnist(data_root):
    return [f"data.root={data_root}", "data.name=mnist", "data.download=false", "model.z_dim=8"]


def _one_step(tmp_path, *over) -> None:
    run = gankit.train(_config(tmp_path, *TINY, "train.steps=1", *over))
    (row,) = _rows(run.dir)
    for k in ("loss_D", "loss_G", "grad_norm_D", "grad_norm_G"):
        assert math.isfinite(row[k]), (k, row)
    state = checkpoint.load(checkpoint.latest(run.dir))["nets"]
    for player in ("G", "D"):
        for name, t in state[player].items():
            assert torch.isfinite(t.float()).all(), f"{player}.{name}"


@pytest.mark.parametrize("remedy", list(REMEDIES))
@pytest.mark.parametrize("where", ["ring-mlp", "mnist-mlp", "mnist-dcgan"])
def test_each_remedy_takes_a_step_with_both_nets(tmp_path, request, remedy, where):
    data, net = where.split("-")
    over = [*request.getfixturevalue("mnist"), f"model.net={net}"] if data == "mnist" else []
    _one_step(tmp_path, *over, *REMEDIES[remedy])


@pytest.mark.parametrize("variant", ["wgan-gp", "lsgan", "wgan"])
def test_packing_and_spectral_norm_with_other_variants(tmp_path, variant):
    over = ["model.batchnorm=false"] if variant == "wgan-gp" else []
    _one_step(
        tmp_path, f"train.variant={variant}", "train.pac=2", "model.spectral_norm=true", *over
    )


def test_packing_with_stylegan_and_lazy_r1(tmp_path, mnist):
    style = "{w_dim: 8, mapping_layers: 1, channel_base: 32, channel_max: 8}"
    over = [*mnist, "data.size=16", "train.steps=2", "train.batch_size=8", "train.pac=2"]
    over += ["variant.r1_every=1", "variant.pl_every=1", f"model.options={style}", "train.ema=0"]
    run = gankit.train("mnist-stylegan", [f"out={tmp_path}", *QUIET, "log.n_samples=4", *over])
    rows = _rows(run.dir)
    assert rows and all(math.isfinite(r[k]) for r in rows for k in ("loss_D", "loss_G", "r1"))


# ---------------------------------------------------------------------------------------------
# mode coverage: packing keeps the modes a plain GAN drops

# A D five times slower than G (lr_d 2e-4, lr_g 1e-3) lets G collapse: on seed 0 after 1,200
# steps the plain GAN is a streak between two modes (0 of 8 captured, no high-quality sample),
# while the same run with train.pac=2 spreads over the ring (8 of 8, 3 % high quality).
COLLAPSE = ["seed=0", "train.steps=1200", "train.lr_d=2e-4", "log.sample_every=100000"]


def test_packing_captures_modes_that_the_plain_run_drops(tmp_path):
    plain = gankit.train(_config(tmp_path, "name=plain", *COLLAPSE)).summary
    packed = gankit.train(_config(tmp_path, "name=packed", *COLLAPSE, "train.pac=2")).summary
    assert plain["n_modes"] == packed["n_modes"] == 8 and plain["n_samples"] == 2500
    assert plain["modes_captured"] <= 4, plain  # the plain run drops modes ...
    assert packed["modes_captured"] >= max(7, plain["modes_captured"]), packed  # packing keeps them
    assert packed["high_quality"] > plain["high_quality"], (plain, packed)
