"""Progressive growing (Karras et al. 2018): the fade-in schedule by hand, shapes at every stage,
a fade that starts exactly where the previous stage was, pixel norm, equalized learning rate,
refusals, bit-exact resume mid-fade and a short MNIST run that grows through three stages."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

import gankit
from gankit.config import ModelConfig
from gankit.errors import UserError
from gankit.nets import build_discriminator, build_generator
from gankit.nets.progan import pixel_norm, stage_of
from gankit.nets.style_layers import EqualConv2d, EqualLinear
from gankit.training import checkpoint, distributed
from test_train import _same  # bit-identical nested state

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"stage_images": 100, "fade_images": 50, "channel_base": 64, "channel_max": 16}


def cfg(**options) -> ModelConfig:
    return ModelConfig(net="progan", z_dim=8, batchnorm=False, options={**SMALL, **options})


def nets(shape=(3, 32, 32), **options):
    c = cfg(**options)
    return build_generator(c, shape), build_discriminator(c, shape)


def at(net, images: int):
    net.set_progress(0, images)
    return net


# ---------------------------------------------------------------------------------------------
# the schedule


@pytest.mark.parametrize(
    "images, expected",
    [
        (0, (0, 1.0)),  # 4 px, stable
        (99, (0, 1.0)),
        (100, (1, 0.0)),  # 8 px fades in over 50 images
        (110, (1, 0.2)),
        (125, (1, 0.5)),
        (149, (1, 0.98)),
        (150, (1, 1.0)),  # 8 px stable
        (249, (1, 1.0)),
        (250, (2, 0.0)),  # 16 px fades in
        (280, (2, 0.6)),
        (425, (3, 0.5)),  # 32 px fading in
        (450, (3, 1.0)),  # fully grown, and stays so
        (10**9, (3, 1.0)),
        (-1, (3, 1.0)),  # a net outside training: fully grown
    ],
)
def test_fade_weight_follows_the_schedule(images, expected):
    stage, alpha = stage_of(images, 4, 100, 50)
    assert stage == expected[0] and alpha == pytest.approx(expected[1], abs=1e-12)
    G, D = nets()
    for net in (G, D):
        at(net, images)
        assert net.progress() == (stage, alpha)
        assert net.resolution() == 4 * 2**stage


def test_describe_progress_names_the_resolution_and_the_fade():
    G = nets()[0]  # 4 -> 32 px, stages of 100 images, fades of 50
    at(G, 7)
    got = [G.describe_progress(i) for i in (0, 110, 150, 425, 10_000)]
    assert got == ["4 px", "4 -> 8 px, fade 0.20", "8 px", "16 -> 32 px, fade 0.50", "32 px"]
    assert G.progress() == (0, 1.0) and int(G.images) == 7  # describing moves nothing


def test_schedule_without_fades_and_from_a_later_start():
    assert [stage_of(t, 3, 10, 0) for t in (0, 9, 10, 19, 20, 1000)] == [
        (0, 1.0), (0, 1.0), (1, 1.0), (1, 1.0), (2, 1.0), (2, 1.0)
    ]  # fmt: skip
    G, _ = nets(start_res=8)
    assert [at(G, t).resolution() for t in (0, 100, 150, 250, 300, 400)] == [8, 16, 16, 32, 32, 32]


# ---------------------------------------------------------------------------------------------
# shapes and the fade


@pytest.mark.parametrize("images, res", [(0, 4), (125, 8), (150, 8), (300, 16), (450, 32)])
def test_shapes_at_each_stage_and_g_draws_at_its_resolution(images, res):
    torch.manual_seed(0)
    G, D = (at(n, images) for n in nets())
    x = G(torch.randn(6, 8))
    assert x.shape == (6, 3, 32, 32) and x.abs().max() <= 1
    coarse = F.interpolate(F.avg_pool2d(x, 32 // res), scale_factor=32 // res, mode="nearest")
    assert_close(x, coarse)  # blocks of (32 / res)^2 equal pixels
    if res < 32:  # ... and no coarser
        half = F.interpolate(F.avg_pool2d(x, 64 // res), scale_factor=64 // res, mode="nearest")
        assert (x - half).abs().max() > 1e-3
    s = D(x)
    assert s.shape == (6,) and torch.isfinite(s).all()


@pytest.mark.parametrize("start, fade", [(0, 100), (150, 250), (300, 400)])
def test_a_fade_starts_exactly_where_the_previous_stage_was(start, fade):
    """alpha = 0: the new block contributes nothing, to G's images and to D's scores."""
    torch.manual_seed(1)
    G, D = nets()
    z, x = torch.randn(5, 8), torch.rand(5, 3, 32, 32) * 2 - 1
    before = at(G, start)(z), at(D, start)(x)
    after = at(G, fade)(z), at(D, fade)(x)
    assert G.progress()[1] == 0.0
    assert_close(after[0], before[0])
    assert_close(after[1], before[1])
    # D looks at real images at the current resolution: detail finer than that changes nothing
    at(D, start)
    res = D.resolution()
    blocky = F.interpolate(F.avg_pool2d(x, 32 // res), scale_factor=32 // res, mode="nearest")
    assert_close(D(blocky), D(x))


def test_half_faded_images_are_the_mean_of_both_paths():
    torch.manual_seed(2)
    G, _ = nets()
    z = torch.randn(4, 8)
    start, grown = at(G, 250)(z), at(G, 300)(z)  # 16 px: alpha 0, alpha 1
    pre = {}  # the two pre-tanh images of the half-faded stage
    G.set_progress(0, 275)
    assert G.progress() == (2, 0.5)
    half = G(z)
    G.to_rgb[2].register_forward_hook(lambda m, a, out: pre.setdefault("new", out))
    G.to_rgb[1].register_forward_hook(lambda m, a, out: pre.setdefault("old", out))
    assert_close(G(z), half)
    up = F.interpolate(pre["old"], scale_factor=2, mode="nearest")
    expect = F.interpolate(((up + pre["new"]) / 2).tanh(), scale_factor=2, mode="nearest")
    assert_close(half, expect)
    assert (half - start).abs().max() > 1e-3 and (half - grown).abs().max() > 1e-3


def test_a_compiled_net_is_traced_once_per_stage_and_fade_not_per_step():
    """Under train.compile the fade's weight moves every step: were it a Python number, dynamo
    would compile again each step and, past its recompile limit, leave the net eager. Traced
    with dynamo's eager backend (no code generation), over the whole schedule, 3 to 5 calls
    per fade and per stage: one graph per (stage, fading) and per net, and the compiled net
    gives the eager net's output mid-fade."""
    from torch._dynamo.utils import counters

    from gankit.training import speed

    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(3)
    G, D = nets(shape=(1, 16, 16))  # 4 -> 8 -> 16: 3 stages, 2 fades
    eager = {"G": build_generator(cfg(), (1, 16, 16)), "D": build_discriminator(cfg(), (1, 16, 16))}
    eager["G"].load_state_dict(G.state_dict())
    eager["D"].load_state_dict(D.state_dict())
    limit = torch._dynamo.config.recompile_limit
    try:
        torch._dynamo.config.recompile_limit = 2  # fewer than the 5 graphs: the net raises it
        speed.compile_players({"G": G, "D": D})
        assert torch._dynamo.config.recompile_limit == G.compile_graphs == 5
        for net in (G, D):
            net.compile(backend="eager")  # as compile_players does, but tracing only
        z = torch.randn(4, 8)
        for images in range(0, 400, 12):  # every step of the schedule at batch 12
            for net in (G, D, *eager.values()):
                net.set_progress(0, images)
            D(G(z)).sum().backward()
            if images == 120:  # 8 px fading in, alpha 0.4
                assert_close(G(z), eager["G"](z))
        assert counters["stats"]["unique_graphs"] == 10  # 5 for G, 5 for D
    finally:
        torch._dynamo.config.recompile_limit = limit
        torch._dynamo.reset()


# ---------------------------------------------------------------------------------------------
# pixel norm and equalized learning rate


def test_pixel_norm_gives_each_pixel_unit_rms_and_ignores_scale():
    torch.manual_seed(4)
    x = torch.randn(3, 7, 5, 5) * (torch.rand(3, 1, 5, 5) + 0.1) * 10
    y = pixel_norm(x)
    assert_close(y.square().mean(dim=1), torch.ones(3, 5, 5))
    assert_close(pixel_norm(x * 4.0), y)
    assert_close(pixel_norm(torch.tensor([[3.0, 4.0]])), torch.tensor([[3.0, 4.0]]) / 12.5**0.5)


def test_every_layer_has_equalized_learning_rate():
    torch.manual_seed(3)
    G, D = nets()
    for net in (G, D):
        layers = [m for m in net.modules() if isinstance(m, (EqualConv2d, EqualLinear))]
        assert layers and not any(
            isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) for m in net.modules()
        )
        for m in layers:
            fan_in = m.weight[0].numel()
            assert m.gain == pytest.approx(1 / math.sqrt(fan_in))
            if m.weight.numel() >= 1000:  # stored N(0, 1), scaled at run time
                assert abs(m.weight.std().item() - 1) < 0.1
    conv = G.blocks[
        0
    ].conv0  # the run-time scale is the whole effect: y = conv(x, W / sqrt(fan_in))
    x = torch.randn(2, conv.weight.shape[1], 6, 6)
    expect = F.conv2d(x, conv.weight / math.sqrt(conv.weight[0].numel()), conv.bias, padding=1)
    assert_close(conv(x), expect)


def test_unused_blocks_get_a_gradient_under_torchrun_through_touch():
    G, D = (at(n, 0) for n in nets())  # 4 px: most blocks idle
    loss = D(G(torch.randn(4, 8))).mean()
    loss = loss + distributed.touch([G, D])
    loss.backward()
    idle = [n for n, p in G.named_parameters() if p.grad is None]
    assert not idle
    assert G.blocks[2].conv1.weight.grad.abs().sum() == 0  # idle: a zero gradient, nothing more


@pytest.mark.parametrize(
    "options, extra, fragment",
    [
        ({"start_res": 6}, {}, "model.options.start_res must be a power of two"),
        ({"start_res": 64}, {}, "larger than the images"),
        ({"stage_images": 0}, {}, "model.options.stage_images must be at least 1"),
        ({"fade_images": -1}, {}, "model.options.fade_images must be 0 or more"),
        ({"lod": 1}, {}, "has no option model.options.lod"),
        ({}, {"batchnorm": True}, "set model.batchnorm=false"),
        ({}, {"mbstd": 4}, "model.options.mbstd_group"),
    ],
)
def test_bad_options_are_one_sentence(options, extra, fragment):
    c = ModelConfig(net="progan", batchnorm=False, options=options)
    c = ModelConfig(**{**c.__dict__, **extra})
    with pytest.raises(UserError, match=fragment):
        build_generator(c, (1, 32, 32))
    with pytest.raises(UserError, match="power of two"):
        build_generator(cfg(), (1, 28, 28))
    with pytest.raises(UserError, match="unconditional"):
        build_generator(cfg(), (1, 32, 32), num_classes=10)


# ---------------------------------------------------------------------------------------------
# training: the trainer's schedule hook, exact resume mid-fade, growth through stages


def _over(tmp_path, data_root, *more):
    # batch 8: a stage is 5 steps, a fade 5 steps; 16 px = three stages, grown at step 20
    return [
        f"out={tmp_path}",
        "log.quiet=true",
        f"data.root={data_root}",
        "data.download=false",
        "data.size=16",
        "train.batch_size=8",
        "log.n_samples=4",
        "log.every=1",
        "log.sample_every=1000",
        "model.options.stage_images=40",
        "model.options.fade_images=40",
        "model.options.channel_base=64",
        "model.options.channel_max=16",
        *more,
    ]


def test_resume_mid_fade_is_bit_exact(tmp_path, data_root):
    common = _over(tmp_path, data_root, "log.checkpoint_every=7")  # step 7: 56 images, alpha 0.4
    whole = gankit.train("mnist-progan", [*common, "name=whole", "train.steps=14"])
    half = gankit.train("mnist-progan", [*common, "name=half", "train.steps=7"])
    mid = checkpoint.load(checkpoint.latest(half.dir))
    assert int(mid["nets"]["G"]["images"]) == 56 and int(mid["ema"]["images"]) == 56
    G = gankit.load_generator(half.dir).net  # the export samples where training was
    assert G.progress() == (1, 0.4)
    gankit.resume(half.dir, ["train.steps=14"])
    a = checkpoint.load(checkpoint.latest(whole.dir))
    b = checkpoint.load(checkpoint.latest(half.dir))
    for part in ("step", "nets", "opts", "ema", "rng"):
        _same(a[part], b[part], part)


def test_a_short_run_grows_through_three_stages_and_learns(tmp_path, data_root):
    fast = ["train.lr_g=0.003", "train.lr_d=0.003", "train.ema=0"]
    run = gankit.train("mnist-progan", _over(tmp_path, data_root, "train.steps=40", *fast))
    G = run.generator
    assert G.resolution() == 16 and G.progress() == (2, 1.0) and int(G.images) == 320
    x = run.sample(64, seed=0)
    assert x.shape == (64, 1, 16, 16)
    # MNIST is mostly black (mean pixel -0.74); G learned the data's brightness and mean image
    # (measured: mean-image error 0.47 fresh, 0.31 trained)
    real = run_real_mean(run)  # [16, 16]
    fresh = at(build_generator(run.config.model, (1, 16, 16)), 320)
    with torch.no_grad():
        start = fresh(torch.randn(64, run.config.model.z_dim))
    err = lambda imgs: (imgs.mean(dim=(0, 1)) - real).abs().mean().item()  # noqa: E731
    assert abs(x.mean() - real.mean()) < 0.15 < abs(start.mean() - real.mean())
    assert err(x) < 0.75 * err(start)
    assert (x - x.mean(dim=0)).abs().mean() > 0.05  # not one image


def run_real_mean(run) -> torch.Tensor:
    from gankit import data

    source = data.build_source(run.config.data)
    real, _ = source.sample(512, torch.Generator().manual_seed(0))  # [512, 1, 16, 16]
    return real.mean(dim=(0, 1))


@pytest.mark.parametrize("preset, channels", [("mnist-progan", 1), ("cifar10-progan", 3)])
def test_presets_grow_to_32_px_by_step_3000(preset, channels):
    c = gankit.load_config(preset)
    assert c.data.size == 32 and c.model.net == "progan"
    G = build_generator(c.model, (channels, 32, 32))
    per_step = c.train.batch_size
    assert at(G, 2999 * per_step).progress()[1] < 1  # 32 px still fading in
    assert at(G, 3000 * per_step).progress() == (3, 1.0)  # grown
    assert 3000 < c.train.steps


def test_spectral_norm_is_refused_by_progan_d():
    """model.spectral_norm would find no nn.Linear or nn.Conv2d to normalise in D's equalized
    layers: one sentence, not a silent no-op."""
    cfg = ModelConfig(net="progan", z_dim=8, batchnorm=False, spectral_norm=True)
    with pytest.raises(UserError, match="D of model.net=progan has none") as e:
        build_discriminator(cfg, (1, 16, 16))
    assert "set model.spectral_norm=false" in str(e.value) and "\n" not in str(e.value)
    cfg = ModelConfig(net="progan", z_dim=8, batchnorm=False)
    assert build_discriminator(cfg, (1, 16, 16))(torch.zeros(2, 1, 16, 16)).shape == (2,)
