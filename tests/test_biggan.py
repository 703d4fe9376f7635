"""BigGAN's blocks (Brock et al. 2019), each usable by any net or variant: the hinge loss, spectral
normalisation of G, conditional batch norm with a shared embedding and the hierarchical latent,
the projection D, self-attention, orthogonal regularisation and truncation; the ``biggan`` family
and its presets. Closed forms on hand values, refusals, exact resume and a short run that learns."""

from __future__ import annotations

import json

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
from gankit.losses import hinge_d, hinge_g, orthogonal_penalty
from gankit.losses.orthogonal import off_diagonal_gram
from gankit.nets import build_discriminator, build_generator
from gankit.nets.biggan_layers import ConditionalBatchNorm2d, SelfAttention
from gankit.registry import VARIANTS
from gankit.training import checkpoint
from gankit.variants import Batch, LossOut, Phase
from test_train import _same  # bit-identical nested state

pytestmark = pytest.mark.usefixtures("one_thread")

QUIET = ["log.quiet=true"]


def tiny(**kw) -> ModelConfig:
    """A small BigGAN config; ``options`` merge into the family's options."""
    opts = {"shared_dim": 4, **kw.pop("options", {})}
    return ModelConfig(
        **{"net": "biggan", "z_dim": 9, "width": 4, "cond": "embed", "options": opts, **kw}
    )


# ---------------------------------------------------------------------------------------------
# hinge loss


def test_hinge_losses_against_closed_forms():
    real = torch.tensor([2.0, 0.5, -1.0])
    fake = torch.tensor([-2.0, 0.0, 1.5])
    # D: relu(1 - real) = (0, 0.5, 2) and relu(1 + fake) = (0, 1, 2.5): means 2.5/3 and 3.5/3
    assert_close(hinge_d(real, fake), torch.tensor(2.0))
    assert_close(hinge_g(fake), torch.tensor(0.5 / 3))  # -mean(-2, 0, 1.5)
    real.requires_grad_(True)
    fake.requires_grad_(True)
    hinge_d(real, fake).backward()
    # past the margin (real 2 > 1, fake -2 < -1) a sample gets no gradient; inside, -1/3 and 1/3
    assert_close(real.grad, torch.tensor([0.0, -1 / 3, -1 / 3]))
    assert_close(fake.grad, torch.tensor([0.0, 1 / 3, 1 / 3]))


class _RecordingD(nn.Module):
    """Scores ``x.sum + 10 y``, so that the labels it was given show in its scores."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x, y=None):
        return self.w * x.flatten(1).sum(1) + (10.0 * y if y is not None else 0.0)  # [N]


class _ShiftG(nn.Module):
    def __init__(self):
        super().__init__()
        self.b = nn.Parameter(torch.zeros(()))

    def forward(self, z, y=None):
        return z + self.b + (y[:, None].float() if y is not None else 0.0)  # [N, 2]


def test_hinge_variant_plays_conditionally_with_the_labels_of_the_batch(tmp_path):
    cfg = gankit.load_config(None, [f"out={tmp_path}", "train.variant=hinge", "model.z_dim=2"])
    v = VARIANTS.get("hinge")(cfg)
    assert v.probabilities is False  # raw scores, logged raw
    nets = {"G": _ShiftG(), "D": _RecordingD()}
    real, z, y = torch.randn(4, 2), torch.randn(4, 2), torch.tensor([0, 1, 0, 1])
    batch = Batch(real=real, labels=y, z=z, step=0)
    s_real = real.sum(1) + 10.0 * y
    s_fake = (z + y[:, None]).sum(1) + 10.0 * y  # G and D both saw y
    d = v.loss("D", nets, batch)
    assert_close(d.total, F.relu(1 - s_real).mean() + F.relu(1 + s_fake).mean())
    assert_close(d.logs["D(x)"], s_real.mean())  # raw, no sigmoid
    assert_close(v.loss("G", nets, batch).total, -s_fake.mean())


def test_hinge_trains_conditionally_with_another_family(tmp_path):
    run = gankit.train(
        None,
        [f"out={tmp_path}", *QUIET, "train.variant=hinge", "data.classes=true", "train.steps=3"]
        + ["model.width=8", "train.batch_size=16", "log.every=1", "log.n_samples=4"],
    )
    rows = [json.loads(r) for r in (run.dir / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(r["loss_D"] == r["loss_D"] for r in rows)  # finite, logged
    assert run.generator.num_classes == 8  # the ring's modes are its classes


# ---------------------------------------------------------------------------------------------
# conditional batch norm, the shared embedding and the hierarchical latent


def test_conditional_batch_norm_picks_the_class_gain_and_bias():
    torch.manual_seed(0)
    embed = nn.Embedding(2, 2)
    cbn = ConditionalBatchNorm2d(2, cond_dim=2)
    with torch.no_grad():
        embed.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))  # class 0, class 1
        cbn.gain.weight.copy_(torch.tensor([[0.5, -0.5], [2.0, 1.0]]))
        cbn.gain.bias.copy_(torch.tensor([0.0, 0.5]))
        cbn.bias.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, -3.0]]))
        cbn.bias.bias.copy_(torch.tensor([0.1, 0.2]))
    # by hand: gain = 1 + W_g e + b_g, bias = W_b e + b_b, per class and channel
    gain = {0: torch.tensor([1.5, 3.5]), 1: torch.tensor([0.5, 2.5])}
    bias = {0: torch.tensor([1.1, 0.2]), 1: torch.tensor([0.1, -2.8])}
    x = torch.randn(4, 2, 3, 3) * 3 + 1
    y = torch.tensor([0, 1, 1, 0])
    out = cbn(x, embed(y))
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    xhat = (x - mean) / torch.sqrt(var + cbn.bn.eps)  # the batch's statistics
    for n, c in enumerate(y.tolist()):
        hand = xhat[n] * gain[c][:, None, None] + bias[c][:, None, None]
        assert_close(out[n], hand)


def test_each_g_block_is_conditioned_on_its_z_chunk_and_the_shared_embedding():
    torch.manual_seed(0)
    G = build_generator(tiny(z_dim=10), (1, 32, 32), num_classes=3)  # 3 blocks: 4 chunks
    assert G.z_sizes == [3, 3, 2, 2] and sum(G.z_sizes) == 10
    with torch.no_grad():
        G.shared.weight.copy_(torch.arange(12.0).view(3, 4))
    z, y = torch.randn(2, 10), torch.tensor([2, 0])
    z0, conds = G.conditions(z, y)
    assert_close(z0, z[:, :3])  # the first chunk makes the first map
    starts = [3, 6, 8, 10]
    for i, c in enumerate(conds):
        hand = torch.cat([z[:, starts[i] : starts[i + 1]], G.shared.weight[y]], dim=1)
        assert_close(c, hand)
        assert G.blocks[i].bn1.gain.in_features == hand.shape[1]  # one embedding, every block
    flat = build_generator(tiny(z_dim=10, options={"hier": False}), (1, 32, 32), 3)
    z0, conds = flat.conditions(z, y)
    assert_close(z0, z)
    assert all(torch.equal(c, flat.shared(y)) for c in conds)  # the embedding alone


# ---------------------------------------------------------------------------------------------
# projection discriminator, self-attention


def test_projection_d_score_decomposes_into_linear_and_inner_product():
    torch.manual_seed(0)
    D = build_discriminator(tiny(spectral_norm=True), (3, 32, 32), num_classes=5).eval()
    x, y = torch.randn(6, 3, 32, 32), torch.tensor([0, 1, 2, 3, 4, 0])
    phi = D.features(x)  # [6, 16]
    assert phi.shape == (6, 16)
    linear, embed = D.head.linear, D.head.embed
    hand = linear(phi).squeeze(1) + (embed.weight[y] * phi).sum(1)  # psi(phi) + <e_y, phi>
    score = D(x, y)
    assert_close(score, hand)
    # another label moves the score by exactly <e_y' - e_y, phi>
    y2 = (y + 1) % 5
    assert_close(D(x, y2) - score, ((embed.weight[y2] - embed.weight[y]) * phi).sum(1))


def test_self_attention_keeps_the_shape_and_starts_as_the_identity():
    torch.manual_seed(0)
    attn = SelfAttention(16)
    x = torch.randn(3, 16, 5, 7)
    assert attn.gamma.item() == 0.0
    assert torch.equal(attn(x), x)  # gamma = 0: output = input
    beta = attn.attention(x)
    assert beta.shape == (3, 35, 35)
    assert_close(beta.sum(-1), torch.ones(3, 35))  # each position's weights sum to 1
    with torch.no_grad():
        attn.gamma.fill_(1.0)
    out = attn(x)
    assert out.shape == x.shape and not torch.allclose(out, x)
    G = build_generator(tiny(options={"attn": 16}), (3, 32, 32), 2)
    D = build_discriminator(tiny(options={"attn": 16}), (3, 32, 32), 2)
    assert isinstance(G.attn, SelfAttention) and G.attn_after == 1  # after the 16 px block
    assert isinstance(D.attn, SelfAttention) and D.attn_after == 0  # after D's 16 px block


# ---------------------------------------------------------------------------------------------
# orthogonal regularisation


def test_orthogonal_penalty_against_a_hand_computation():
    wide = torch.tensor([[1.0, 3.0, 0.0], [2.0, 4.0, 1.0]])  # W W^T = [[10, 14], [14, 21]]
    assert_close(off_diagonal_gram(wide), torch.tensor(2 * 14.0**2))
    tall = wide.t()  # W W^T = [[5, 11, 2], [11, 25, 4], [2, 4, 1]]: off-diagonal 11, 2, 4
    assert_close(off_diagonal_gram(tall), torch.tensor(2 * (11.0**2 + 2.0**2 + 4.0**2)))
    conv = wide.view(2, 1, 1, 3)  # a conv's filters are its rows
    assert_close(off_diagonal_gram(conv), torch.tensor(2 * 14.0**2))
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=torch.Generator().manual_seed(0)))
    assert off_diagonal_gram(q).item() < 1e-10  # orthogonal
    scaled = torch.diag(torch.tensor([1.0, 2.0, 3.0, 0.5, 4.0, 1.0])) @ q
    assert off_diagonal_gram(scaled).item() < 1e-8  # filters' norms are free
    assert off_diagonal_gram(scaled[:, :4].t()).item() > 1.0  # columns of a scaled Q are not


def test_orthogonal_penalty_of_a_net_sums_its_layers_raw_weights():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 2), nn.Conv2d(2, 4, 3), nn.ConvTranspose2d(4, 2, 2))
    net.append(nn.Embedding(5, 3))  # left out: BigGAN's shared embedding is not regularised
    lin, conv, tconv = net[0], net[1], net[2]
    hand = (
        off_diagonal_gram(lin.weight)
        + off_diagonal_gram(conv.weight)
        + off_diagonal_gram(tconv.weight.transpose(0, 1))  # [I, O, k, k] -> output dim first
    )
    assert_close(orthogonal_penalty(net), hand)
    nn.utils.parametrizations.spectral_norm(lin)
    assert_close(orthogonal_penalty(net), hand)  # the raw weight, not the normalised one


def test_ortho_reg_is_added_to_gs_loss_by_any_variant(tmp_path):
    torch.manual_seed(0)
    base = [f"out={tmp_path}", "model.net=biggan", "model.z_dim=9", "model.width=4"]
    base += ["data.name=mnist", "data.size=16", "train.variant=lsgan"]
    cfg = gankit.load_config(None, [*base, "train.ortho_reg=0.5"])
    v = VARIANTS.get("lsgan")(cfg)
    nets = v.build_nets((1, 16, 16), 0)
    out = LossOut(torch.tensor(1.0), {"loss_G": torch.tensor(1.0)})
    reg = v.regularize(Phase("G", ("G",)), nets, out)
    penalty = orthogonal_penalty(nets["G"])
    assert penalty.item() > 0
    assert_close(reg.total, 1.0 + 0.5 * penalty)
    assert_close(reg.logs["ortho_G"], penalty)
    assert v.regularize(Phase("D", ("D",)), nets, out) is out  # D is not regularised
    assert v.regularize(Phase("Greg", ("G",), every=4), nets, out) is out  # nor a lazy phase
    (grad,) = torch.autograd.grad(reg.total, nets["G"].linear.weight)
    w = nets["G"].linear.weight.detach()
    off = w @ w.t() * (1 - torch.eye(w.shape[0]))
    assert_close(grad, 0.5 * 4 * off @ w)  # d/dW ||W W^T o (1 - I)||^2 = 4 (W W^T o (1 - I)) W
    with pytest.raises(UserError, match="train.ortho_reg must be 0"):
        gankit.load_config(None, [*base, "train.ortho_reg=-1"])
    style = ["model.net=stylegan", "model.batchnorm=false", "train.ortho_reg=1e-4"]
    with pytest.raises(UserError, match="G of model.net=stylegan has none"):
        VARIANTS.get("gan")(gankit.load_config(None, [*base, *style])).build_nets((1, 16, 16), 0)


# ---------------------------------------------------------------------------------------------
# spectral normalisation of G


def test_spectral_norm_in_g_bounds_every_layer_near_1():
    torch.manual_seed(0)
    assert not any(
        parametrize.is_parametrized(m) for m in build_generator(tiny(), (1, 16, 16), 2).modules()
    )  # off by default: existing configs build the same G
    G = build_generator(tiny(spectral_norm_g=True), (1, 16, 16), 2)
    layers = [m for m in G.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert len(layers) > 10 and all(parametrize.is_parametrized(m, "weight") for m in layers)
    with torch.no_grad():
        for m in layers:
            m.parametrizations.weight.original.mul_(100.0)
        for _ in range(30):  # one power iteration per forward in training mode
            G(torch.randn(4, 9), torch.tensor([0, 1, 0, 1]))
    for m in layers:
        sigma = torch.linalg.svdvals(m.weight.detach().flatten(1))[0]
        assert abs(sigma.item() - 1.0) < 1e-2, (type(m).__name__, sigma.item())
    style = ModelConfig(net="stylegan", z_dim=8, batchnorm=False, spectral_norm_g=True)
    with pytest.raises(UserError, match="model.spectral_norm_g normalises linear"):
        build_generator(style, (1, 16, 16))
    cycle = gankit.load_config("usps-mnist-cyclegan", ["model.spectral_norm_g=true"])
    with pytest.raises(UserError, match="does not use model.spectral_norm_g"):
        VARIANTS.get("cyclegan")(cycle)


# ---------------------------------------------------------------------------------------------
# the family: preset shapes, refusals


@pytest.mark.parametrize(
    "preset, shape", [("cifar10-biggan", (3, 32, 32)), ("mnist-biggan", (1, 28, 28))]
)
def test_preset_nets_have_the_right_shapes(preset, shape):
    torch.manual_seed(0)
    cfg = gankit.load_config(preset)
    assert cfg.train.variant == "hinge" and cfg.data.classes
    assert cfg.model.spectral_norm and cfg.model.spectral_norm_g and cfg.train.ortho_reg == 1e-4
    G = build_generator(cfg.model, shape, 10)
    D = build_discriminator(cfg.model, shape, 10)
    z, y = torch.randn(3, cfg.model.z_dim), torch.tensor([0, 5, 9])
    with torch.no_grad():
        x = G(z, y)
        assert x.shape == (3, *shape) and x.abs().max() <= 1
        assert D(x, y).shape == (3,)
    assert G.attn is not None and D.attn is not None  # the presets use self-attention
    assert len(G.blocks) + 1 == len(G.z_sizes)  # the hierarchical latent: a chunk per block


@pytest.mark.parametrize(
    "kw, shape, classes, message",
    [
        ({"options": {"attn": 12}}, (3, 32, 32), 2, r"attn=12 .* choose one of: 8, 16"),
        ({"options": {"attn": 32}}, (3, 32, 32), 2, "choose one of: 8, 16"),
        ({"cond": "onehot"}, (3, 32, 32), 2, "set model.cond=embed"),
        ({"z_dim": 3}, (3, 32, 32), 0, "cannot be split into the 4 chunks"),
        ({"dropout": 0.3}, (3, 32, 32), 0, "set model.dropout=0"),
        ({"mbstd": 4}, (3, 32, 32), 0, "set model.mbstd=0"),
        ({"batchnorm": False}, (3, 32, 32), 0, "set model.batchnorm=true"),
        ({"d_output": "autoencoder"}, (3, 32, 32), 0, "set model.d_output=linear"),
        ({}, (3, 48, 48), 0, "16, 28, 32 or 64 px"),
        ({"options": {"shared_dim": 0}}, (3, 32, 32), 2, "shared_dim must be at least 1"),
    ],
)
def test_bad_settings_are_one_line(kw, shape, classes, message):
    with pytest.raises(UserError, match=message):
        build_generator(tiny(**kw), shape, classes)


# ---------------------------------------------------------------------------------------------
# training: exact resume, truncation, a short run that learns


def _mnist(data_root, tmp_path, *over) -> list[str]:
    return [
        f"out={tmp_path}",
        f"data.root={data_root}",
        "data.download=false",
        *QUIET,
        "data.size=16",
        "model.z_dim=9",
        "model.width=4",
        "model.options.attn=8",
        "model.options.shared_dim=4",
        "train.batch_size=8",
        "log.n_samples=10",
        "log.sample_every=100",
        *over,
    ]


def test_resume_is_bit_exact_and_truncation_samples(data_root, tmp_path):
    common = ["log.every=2", "log.checkpoint_every=3"]  # the preset: hinge, SN, ortho, EMA
    whole = gankit.train(
        "mnist-biggan", _mnist(data_root, tmp_path, *common, "name=whole") + ["train.steps=6"]
    )
    half = gankit.train(
        "mnist-biggan", _mnist(data_root, tmp_path, *common, "name=half") + ["train.steps=3"]
    )
    gankit.resume(half.dir, ["train.steps=6"])
    a = checkpoint.load(checkpoint.latest(whole.dir))
    b = checkpoint.load(checkpoint.latest(half.dir))
    assert a["step"] == 6 and any(k.endswith("weight.0._u") for k in a["nets"]["G"])
    for part in ("step", "nets", "opts", "sched", "ema", "rng"):
        _same(a[part], b[part], part)
    rows = [json.loads(r) for r in (whole.dir / "metrics.jsonl").read_text().splitlines()]
    assert all(r["ortho_G"] > 0 for r in rows)  # the preset's orthogonal regulariser is on
    # truncation (BigGAN's: z from a normal truncated to |z_i| <= T) samples every class
    out = tmp_path / "trunc.png"
    argv = ["sample", str(whole.dir), "--truncation", "0.5", "--per-class", "2", "--out", str(out)]
    assert main(argv) == 0 and out.is_file()


@pytest.mark.slow
def test_a_short_run_learns_digits_and_updates_every_parameter(data_root, tmp_path):
    """100 steps of batch 16 at 16 px, width 8, one D step per G step at lr 1e-3 (the preset's
    2 D steps at 2e-4 need about 300 steps for the same): the MNIST classifier's FID of 1,000
    samples against 1,000 test digits falls below half its value at step 0 (measured: 710 at
    step 0, 149 after); every parameter of G and D moved."""
    from gankit.data import build_source
    from gankit.metrics.classifier import classifier_fid, load_classifier

    clf = load_classifier("mnist", str(data_root), train_if_missing=True, quiet=True)
    over = ["model.width=8", "model.z_dim=24", "train.batch_size=16", "train.ema=0"]
    over += ["train.n_critic=1", "train.lr_g=0.001", "train.lr_d=0.001", "train.steps=100"]
    over += ["log.every=50", "log.checkpoint_every=100", "name=learn"]
    run = gankit.train("mnist-biggan", _mnist(data_root, tmp_path, *over))
    cfg = run.config
    torch.manual_seed(cfg.seed)
    init = VARIANTS.get("hinge")(cfg).build_nets((1, 16, 16), 10)  # the run's step 0
    after = checkpoint.load(checkpoint.latest(run.dir))["nets"]
    for player, net in init.items():
        for name, p in net.named_parameters():
            assert not torch.equal(p.detach(), after[player][name]), f"{player}.{name} unchanged"
    real, _ = build_source(cfg.data, split="test").sample(1000, torch.Generator().manual_seed(0))

    def cfid(G) -> float:
        with torch.no_grad():
            g = torch.Generator().manual_seed(1)
            x = G.eval()(torch.randn(1000, 24, generator=g), torch.arange(1000) % 10)
        return classifier_fid(x, real, clf)["classifier_fid"]

    before, trained = cfid(init["G"]), cfid(gankit.load_generator(run.dir).net)
    print(f"classifier FID at 16 px: {before:.1f} at step 0, {trained:.1f} after 100 steps")
    assert trained < 0.5 * before, (before, trained)
