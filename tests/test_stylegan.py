"""StyleGAN2's nets and training: layers against reference computations, the lazy
regularisation schedule and its optimizer arithmetic, R1 in closed form, style mixing,
truncation, exact resume, bad settings, and a short run that learns digits."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

import gankit
from gankit.config import ModelConfig
from gankit.errors import UserError
from gankit.losses import path_lengths, r1_penalty
from gankit.nets import build_discriminator, build_generator
from gankit.nets.style_layers import (
    EqualConv2d,
    EqualLinear,
    downsample2d,
    minibatch_std,
    modulated_conv2d,
    upsample2d,
)
from gankit.training import checkpoint
from gankit.variants.stylegan import lazy_adam_settings

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(w_dim=16, channel_base=64, channel_max=16)


def tiny_cfg(**options) -> ModelConfig:
    return ModelConfig(net="stylegan", z_dim=16, batchnorm=False, options={**TINY, **options})


# ------------------------------------------------------------------------------------ layers
def test_modulated_conv_matches_per_sample_weights():
    torch.manual_seed(0)
    x, w, s = torch.randn(3, 4, 6, 6), torch.randn(5, 4, 3, 3), torch.randn(3, 4)
    out = modulated_conv2d(x, w, s)
    for i in range(3):
        wi = w * s[i][None, :, None, None]  # [O, I, 3, 3]: this sample's modulated weight
        wi = wi / wi.square().sum(dim=[1, 2, 3], keepdim=True).add(1e-8).sqrt()
        # demodulated: unit norm per output channel
        assert torch.allclose(wi.flatten(1).norm(dim=1), torch.ones(5), atol=1e-5)
        ref = F.conv2d(x[i : i + 1], wi, padding=1)
        assert torch.allclose(out[i : i + 1], ref, atol=1e-5)
    plain = modulated_conv2d(x, w, s, demodulate=False)
    ref0 = F.conv2d(x[:1], w * s[0][None, :, None, None], padding=1)
    assert torch.allclose(plain[:1], ref0, atol=1e-5)


def test_equalized_lr_gains():
    torch.manual_seed(0)
    fc = EqualLinear(400, 300, bias_init=1.0, lr_mul=0.01)
    # stored N(0, 1) / lr_mul, used as W * lr_mul / sqrt(in): effective std 1 / sqrt(in)
    assert fc.weight.std().item() == pytest.approx(100.0, rel=0.02)
    assert (fc.weight * fc.gain).std().item() == pytest.approx(1 / 20, rel=0.02)
    x = torch.randn(2, 400)
    ref = x @ (fc.weight * 0.01 / 20).t() + fc.bias * 0.01
    assert torch.allclose(fc(x), ref, atol=1e-5)
    assert torch.allclose(fc.bias * fc.lr_mul, torch.ones(300))  # bias_init, unscaled
    conv = EqualConv2d(8, 4, 3)
    assert conv.gain == pytest.approx(1 / math.sqrt(8 * 9))
    # the gradient reaching the stored weight is scaled by the gain: Adam then steps each layer
    # by about lr in effective units, whatever its fan-in
    fc.weight.grad = None
    fc(x).sum().backward()
    g_eff = torch.ones(2, 300).t() @ x  # d sum / d W_effective
    assert torch.allclose(fc.weight.grad, g_eff * fc.gain, atol=1e-6)


@pytest.mark.parametrize("side", [4, 8, 16])
def test_filtered_resampling_keeps_a_constant_image(side):
    x = torch.full((2, 3, side, side), 0.7)
    up, down = upsample2d(x), downsample2d(x)
    assert up.shape == (2, 3, 2 * side, 2 * side) and down.shape == (2, 3, side // 2, side // 2)
    assert torch.allclose(up, torch.full_like(up, 0.7), atol=1e-6)
    assert torch.allclose(down, torch.full_like(down, 0.7), atol=1e-6)
    # [1, 3, 3, 1] up-sampling is bilinear (half-pixel centres); down-sampling the antialiased
    # bilinear filter [1, 3, 3, 1] / 8 (away from the edge, where the two handle borders apart)
    x = torch.randn(2, 3, side, side)
    assert torch.allclose(
        upsample2d(x), F.interpolate(x, scale_factor=2, mode="bilinear"), atol=1e-5
    )
    ref = F.interpolate(x, scale_factor=0.5, mode="bilinear", antialias=True)
    assert torch.allclose(downsample2d(x)[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-5)


def test_minibatch_std_layer():
    x = torch.randn(8, 3, 4, 4)
    out = minibatch_std(x, 4)
    assert out.shape == (8, 4, 4, 4)
    group = x[[1, 3, 5, 7]]  # samples i, i + N/G, ... of group 1
    expected = group.var(dim=0, unbiased=False).add(1e-8).sqrt().mean()
    assert out[1, 3, 0, 0].item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.equal(out[:, :3], x)
    assert minibatch_std(torch.randn(6, 2, 4, 4), 4).shape == (6, 3, 4, 4)  # group gcd(4, 6)


# ------------------------------------------------------------------------------------ nets
@pytest.mark.parametrize("side, num_ws", [(16, 6), (32, 8), (64, 10)])
def test_generator_and_discriminator_shapes(side, num_ws):
    G = build_generator(tiny_cfg(), (3, side, side), 4)
    D = build_discriminator(tiny_cfg(), (3, side, side), 4)
    z, y = torch.randn(4, 16), torch.tensor([0, 1, 2, 3])
    x = G(z, y)
    assert x.shape == (4, 3, side, side) and x.abs().max() <= 1
    assert D(x, y).shape == (4,)
    assert G.num_ws == num_ws
    groups = G.layer_groups()
    assert sorted(sum(groups.values(), [])) == list(range(num_ws))
    assert all(groups[k] for k in ("coarse", "middle", "fine"))


def test_psi_zero_gives_the_w_avg_image_and_eval_noise_is_constant():
    torch.manual_seed(0)
    G = build_generator(tiny_cfg(), (1, 16, 16)).eval()
    for conv in G.synthesis.convs:
        conv.noise_strength.data.fill_(0.5)
    G.mapping_net.w_avg.normal_()
    z = torch.randn(5, 16)
    x0 = G(z, psi=0.0)
    ref = G.synthesis(G.w_avg[None].expand(5, -1), "const")
    assert torch.allclose(x0, ref, atol=1e-6)
    assert torch.equal(G(z), G(z))  # eval mode: const noise, one image per z
    assert not torch.equal(G(z, noise="random"), G(z, noise="random"))
    with pytest.raises(UserError, match="psi"):
        G(z, psi=1.5)


def test_mapping_normalises_z_and_tracks_w_avg():
    G = build_generator(tiny_cfg(), (1, 16, 16))
    z = torch.randn(7, 16)
    assert torch.allclose(G.mapping(z), G.mapping(3 * z), atol=1e-5)  # second-moment norm
    assert torch.equal(G.w_avg, torch.zeros(16))
    w = G.mapping(z, update_w_avg=True)
    assert torch.allclose(G.w_avg, 0.005 * w.mean(0), atol=1e-6)  # decay 0.995


def test_r1_against_the_closed_form_on_a_linear_d():
    a = torch.randn(1, 2, 3, 3)
    x = torch.randn(5, 1, 2, 3, 3)[:, 0]
    r1 = r1_penalty(lambda v: (v * a).flatten(1).sum(1) + 4.0, x)
    assert torch.allclose(r1, a.square().sum().expand(5))


def test_path_lengths_of_a_linear_synthesis():
    ws = torch.randn(4, 3, 5, requires_grad=True)
    A = torch.randn(5, 1 * 2 * 2)
    images = (ws.mean(1) @ A).view(4, 1, 2, 2)
    y = torch.randn(4, 1, 2, 2)
    got = path_lengths(images, ws, y)
    # J^T y for each of the 3 style inputs is (A y) / 3; the square sum is averaged over them
    per = (y.flatten(1) @ A.t()) / 3  # [4, 5]
    assert torch.allclose(got, per.square().sum(1).sqrt(), atol=1e-5)


# ------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "overrides, message",
    [
        (["data.size=28"], "power of two from 16 to 64"),
        (["model.net=dcgan"], "set model.net=stylegan"),
        (["train.n_critic=2"], "train.n_critic"),
        (["train.g_steps=2"], "train.g_steps"),
        (["model.options.w_dimm=3"], "has no option model.options.w_dimm"),
        (["model.options.channel_max=0"], "channel_max must be at least 1"),
        (["model.batchnorm=true"], "model.batchnorm=false"),
        (["variant.mixing=1.5"], "variant.mixing must be in"),
        (["variant.r1_every=0"], "variant.r1_every"),
    ],
)
def test_bad_settings_are_refused_before_training(data_root, tmp_path, overrides, message):
    with pytest.raises(UserError, match=message):
        gankit.train(
            "mnist-stylegan",
            [*overrides, f"data.root={data_root}", f"out={tmp_path}", "train.steps=1"],
        )
    assert not (tmp_path / "mnist-stylegan").exists()


def test_other_families_refuse_net_options(data_root, tmp_path):
    with pytest.raises(UserError, match="model.net=dcgan has no options"):
        gankit.train(
            "mnist-dcgan", [f"data.root={data_root}", f"out={tmp_path}", "model.options.w_dim=3"]
        )


# ------------------------------------------------------------------------------------ training
def _train(data_root, tmp_path, *extra):
    return gankit.train(
        "mnist-stylegan",
        [
            f"data.root={data_root}",
            "data.download=false",
            "data.size=16",
            "model.z_dim=16",
            *[f"model.options.{k}={v}" for k, v in TINY.items()],
            "train.batch_size=8",
            "log.quiet=true",
            "log.every=1",
            "log.n_samples=8",
            f"out={tmp_path}",
            *extra,
        ],
    )


def test_lazy_regularisation_schedule_and_adam_correction(data_root, tmp_path):
    lr, betas = lazy_adam_settings(0.0025, (0.0, 0.99), 16)
    assert lr == pytest.approx(0.0025 * 16 / 17) and betas == pytest.approx(
        (0.0, 0.99 ** (16 / 17))
    )
    assert lazy_adam_settings(0.002, (0.5, 0.9), 0) == (0.002, (0.5, 0.9))
    run = _train(
        data_root,
        tmp_path,
        "train.steps=9",
        "variant.r1_every=4",
        "variant.pl_every=3",
        "name=lazy",
    )
    rows = [json.loads(line) for line in (run.dir / "metrics.jsonl").read_text().splitlines()]
    r1_steps = [r["step"] - 1 for r in rows if "r1" in r]  # the step a row's phases ran at
    pl_steps = [r["step"] - 1 for r in rows if "pl_length" in r]
    assert r1_steps == [0, 4, 8] and pl_steps == [0, 3, 6]
    ck = checkpoint.load(checkpoint.checkpoints(run.dir)[-1])
    g_group, d_group = ck["opts"]["G"]["param_groups"][0], ck["opts"]["D"]["param_groups"][0]
    assert g_group["lr"] == pytest.approx(0.0025 * 3 / 4)
    assert g_group["betas"] == pytest.approx((0.0, 0.99 ** (3 / 4)))
    assert d_group["lr"] == pytest.approx(0.0025 * 4 / 5)
    assert float(ck["variant"]["pl_mean"]) > 0  # the running mean moved and was checkpointed
    assert ck["nets"]["G"]["mapping_net.w_avg"].abs().sum() > 0
    assert torch.equal(ck["ema"]["mapping_net.w_avg"], ck["nets"]["G"]["mapping_net.w_avg"])


def test_style_mixing_takes_w2_from_the_crossover_on(monkeypatch):
    from gankit.config import from_dict
    from gankit.registry import VARIANTS

    cfg = from_dict(
        {
            "model": {"net": "stylegan", "z_dim": 16, "batchnorm": False, "options": TINY},
            "train": {"variant": "stylegan"},
            "variant": {"mixing": 1.0},
        }
    )
    variant = VARIANTS.get("stylegan")(cfg)
    G = build_generator(cfg.model, (1, 16, 16))
    torch.manual_seed(3)
    z = torch.randn(4, 16)
    ws = variant.styles(G, z, None)
    w1 = G.mapping(z)
    same = [bool(torch.allclose(ws[:, i], w1)) for i in range(G.num_ws)]
    cut = same.index(False)
    assert 1 <= cut < G.num_ws and all(same[:cut]) and not any(same[cut:])
    assert torch.equal(ws[:, cut:], ws[:, cut : cut + 1].expand(-1, G.num_ws - cut, -1))


def test_resume_is_bit_identical(data_root, tmp_path):
    common = ("variant.r1_every=2", "variant.pl_every=3", "log.checkpoint_every=3")
    full = _train(data_root, tmp_path, "train.steps=6", "name=full", *common)
    half = _train(data_root, tmp_path, "train.steps=3", "name=half", *common)
    gankit.resume(half.dir, ["train.steps=6"])
    a = checkpoint.load(checkpoint.checkpoints(full.dir)[-1])
    b = checkpoint.load(checkpoint.checkpoints(half.dir)[-1])
    assert a["step"] == b["step"] == 6
    for part in ("nets", "ema"):
        sd_a, sd_b = (a[part], b[part]) if part == "ema" else (a[part]["G"], b[part]["G"])
        for k in sd_a:
            assert torch.equal(sd_a[k], sd_b[k]), f"{part} {k} differs after resume"
    for k in a["nets"]["D"]:
        assert torch.equal(a["nets"]["D"][k], b["nets"]["D"][k])
    assert torch.equal(a["variant"]["pl_mean"], b["variant"]["pl_mean"])


@pytest.mark.slow
def test_a_short_run_learns_digits(data_root, tmp_path):
    """300 steps of batch 16 at 16 px (channels 32/32/16): the MNIST classifier's FID of 1,000
    samples against 1,000 test digits falls below half its value at step 0 (measured with the
    preset's 8-layer mapping: 275 at step 0, 108 after; with 4 layers 440 and 168; with 16
    channels at most it only fell to 186 of 279)."""
    from gankit.data import build_source
    from gankit.metrics.classifier import classifier_fid, load_classifier
    from gankit.registry import VARIANTS

    clf = load_classifier("mnist", str(data_root), train_if_missing=True, quiet=True)
    run = _train(
        data_root,
        tmp_path,
        "train.steps=300",
        "train.batch_size=16",
        "train.ema=0",  # the live G: an average over 300 steps still holds the initial weights
        "model.options.channel_base=256",
        "model.options.channel_max=32",
        "log.every=50",
        "log.checkpoint_every=300",
        "name=learn",
    )
    cfg = gankit.load_config(run.dir / "config.yaml")
    torch.manual_seed(cfg.seed)
    G0 = VARIANTS.get("stylegan")(cfg).build_nets((1, 16, 16), 0)["G"].eval()  # step 0
    G1 = gankit.load_generator(run.dir).net
    real, _ = build_source(cfg.data, split="test").sample(1000, torch.Generator().manual_seed(0))

    def cfid(G) -> float:  # the classifier resizes the 16 px digits to its 28 px
        with torch.no_grad():
            x = G(torch.randn(1000, 16, generator=torch.Generator().manual_seed(1)))
        return classifier_fid(x, real, clf)["classifier_fid"]

    before, after = cfid(G0), cfid(G1)
    print(f"classifier FID at 16 px: {before:.1f} at step 0, {after:.1f} after 300 steps")
    assert after < 0.5 * before, (before, after)


def test_cli_refuses_a_side_that_is_not_a_power_of_two(data_root, tmp_path, capsys):
    from gankit.cli import main

    argv = ["train", "-c", "mnist-stylegan", f"data.root={data_root}", f"out={tmp_path}"]
    assert main([*argv, "data.size=28"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "power of two from 16 to 64, got 28x28" in err[0]
    assert "Traceback" not in err[0] and not any(tmp_path.iterdir())
