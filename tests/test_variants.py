"""Every classic variant: one step updates its players with finite losses, and a short fixed-seed
run on the 8-Gaussian ring measurably learns (energy distance, modes, class obedience)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch.testing import assert_close

import gankit
from gankit.api import sample_from
from gankit.data import build_source
from gankit.errors import UserError
from gankit.metrics.distances import energy_distance
from gankit.metrics.modes import nearest_mode
from gankit.registry import VARIANTS
from gankit.training import checkpoint
from gankit.training.trainer import Trainer
from gankit.variants.ebgan import EBGAN

QUIET = ["log.quiet=true"]
TINY = ["model.width=16", "model.depth=2", "train.batch_size=32"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _config(tmp_path, preset, *over) -> gankit.Config:
    return gankit.load_config(preset, [f"out={tmp_path}", *QUIET, *over])


def _rows(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------------------------------------
# presets and the distance the learning tests use

PRESETS = {
    "ring-wgan": "wgan",
    "ring-wgan-gp": "wgan-gp",
    "ring-lsgan": "lsgan",
    "ring-ebgan": "ebgan",
    "ring-cgan": "cgan",
    "mnist-wgan-gp": "wgan-gp",
    "mnist-cgan": "cgan",
    "mnist-cdcgan": "cgan",
    "fashion-cdcgan": "cgan",
}


@pytest.mark.parametrize("preset", list(PRESETS))
def test_presets_load_and_name_their_variant(preset):
    cfg = gankit.load_config(preset)
    assert cfg.name == preset and cfg.train.variant == PRESETS[preset]
    assert cfg.description and cfg.description != gankit.Config().description
    assert cfg.data.classes == (PRESETS[preset] == "cgan")
    if PRESETS[preset] == "wgan-gp":
        assert not cfg.model.batchnorm and cfg.train.n_critic == 5
        assert (cfg.train.beta1, cfg.train.beta2) == (0.0, 0.9)
    if PRESETS[preset] == "wgan":
        assert cfg.train.optimizer == "rmsprop" and cfg.train.lr_g == cfg.train.lr_d == 5e-5


@pytest.mark.parametrize("preset", ["mnist-wgan-gp", "mnist-cgan", "mnist-cdcgan"])
def test_mnist_presets_take_a_step(tmp_path, data_root, preset):
    run = gankit.train(
        preset,
        [
            f"out={tmp_path}",
            *QUIET,
            f"data.root={data_root}",
            "data.download=false",
            "model.width=8",
            "train.batch_size=16",
            "train.steps=1",
            "log.n_samples=16",
        ],
    )
    (row,) = _rows(run.dir)
    assert math.isfinite(row["loss_D"]) and math.isfinite(row["loss_G"])
    gen = gankit.load_generator(run.dir)
    labels = 7 if gankit.load_config(preset).data.classes else None
    x = gen.sample(4, seed=0, labels=labels)
    assert x.shape == (4, 1, 28, 28) and x.min() >= -1 and x.max() <= 1


def test_energy_distance_closed_form_and_zero_on_one_distribution():
    a, b = torch.tensor([[0.0, 0.0]] * 2), torch.tensor([[3.0, 4.0]] * 3)
    assert energy_distance(a, b) == pytest.approx(2 * 5.0)  # point masses: 2|a - b|
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(2000, 2, generator=g), torch.randn(2000, 2, generator=g)
    assert abs(energy_distance(x, y)) < 0.01
    assert energy_distance(x, y + 1.0) > 0.5
    with pytest.raises(ValueError, match="at least 2"):
        energy_distance(x[:1], y)


# ---------------------------------------------------------------------------------------------
# one step


ONE_STEP = {
    # name: (preset, overrides, keys the D phase must log)
    "gan": (None, [], ["D(x)", "D(G(z))"]),
    "wgan": ("ring-wgan", [], ["D(x)", "D(G(z))"]),
    "wgan-gp": ("ring-wgan-gp", [], ["gp", "wasserstein"]),
    "wgan-gp-conditional": ("ring-wgan-gp", ["data.classes=true"], ["gp"]),
    "lsgan": ("ring-lsgan", [], ["D(x)", "D(G(z))"]),
    "ebgan": ("ring-ebgan", [], ["energy_real", "energy_fake"]),
    "ebgan-pt": ("ring-ebgan", ["variant.pt_weight=0.1"], ["energy_real", "pull_away"]),
    "cgan": ("ring-cgan", [], ["D(x)", "D(G(z))"]),
}
# The critic's output bias cancels in E[D(x)] - E[D(G(z))] and the penalty ignores it: no gradient.
NO_GRADIENT = {"wgan-gp": {"D.head.linear.bias"}, "wgan-gp-conditional": {"D.head.linear.bias"}}


@pytest.mark.parametrize("case", list(ONE_STEP))
def test_one_step_updates_every_player_and_logs_finite_losses(tmp_path, case):
    preset, over, keys = ONE_STEP[case]
    cfg = _config(tmp_path, preset, *TINY, *over, "train.steps=1", "train.n_critic=2")
    nets = Trainer(cfg).nets  # the seed fixes the initial weights of the run below
    init = {k: {n: p.clone() for n, p in net.state_dict().items()} for k, net in nets.items()}
    run = gankit.train(cfg)
    after = checkpoint.load(checkpoint.latest(run.dir))["nets"]
    assert after.keys() == init.keys() == {"G", "D"}
    frozen = NO_GRADIENT.get(case, set())
    for player, state in init.items():
        for name, w0 in state.items():
            w1 = after[player][name]
            assert torch.isfinite(w1).all(), f"{player}.{name}"
            if f"{player}.{name}" in frozen:
                assert torch.equal(w1, w0), f"{player}.{name} changed"
            else:
                assert not torch.equal(w1, w0), f"{player}.{name} did not change"
    (row,) = _rows(run.dir)
    for k in ["loss_D", "loss_G", "grad_norm_D", "grad_norm_G", *keys]:
        assert math.isfinite(row[k]), (k, row)


def test_conditional_wgan_gp_generator_takes_labels(tmp_path):
    cfg = _config(tmp_path, "ring-wgan-gp", *TINY, "data.classes=true", "train.steps=1")
    run = gankit.train(cfg)
    gen = gankit.load_generator(run.dir)
    assert gen.num_classes == 8 and gen.net.num_classes == 8
    assert gen.sample(10, seed=0, labels=3).shape == (10, 2)
    z = torch.randn(4, gen.z_dim)
    with pytest.raises(ValueError, match="pass labels y"):
        gen.net(z)
    a = gen.net(z, torch.full((4,), 1))
    b = gen.net(z, torch.full((4,), 5))
    assert not torch.allclose(a, b)  # the label changes the output for the same z


def test_cgan_insists_on_labels(tmp_path):
    with pytest.raises(UserError, match="data.classes=true"):
        gankit.train(None, [f"out={tmp_path}", *QUIET, "train.variant=cgan", "train.steps=1"])


def test_ebgan_picks_the_autoencoder_d_and_logs_energies(tmp_path):
    cfg = _config(tmp_path, None, *TINY, "train.variant=ebgan", "train.steps=3", "log.every=1")
    assert cfg.model.d_output == "linear"  # the user did not ask for it ...
    nets = EBGAN(cfg).build_nets((2,), 0)
    assert hasattr(nets["D"], "encode") and hasattr(nets["D"], "reconstruct")  # ... EBGAN did
    x = torch.randn(5, 2)
    energy = (nets["D"].reconstruct(x) - x).pow(2).mean(1)  # [5]
    assert_close(nets["D"](x), -energy)
    with pytest.raises(UserError, match="ebgan's autoencoder D is unconditional"):
        EBGAN(cfg).build_nets((2,), 8)  # a conditional D is not on offer, whatever d_output says
    for row in _rows(gankit.train(cfg).dir):
        assert_close(row["energy_real"], -row["D(x)"])
        assert_close(row["energy_fake"], -row["D(G(z))"])
        assert row["energy_real"] >= 0 and row["energy_fake"] >= 0


@pytest.mark.parametrize("variant", ["wgan", "wgan-gp", "lsgan", "ebgan"])
def test_scores_are_logged_raw(tmp_path, variant):
    cfg = _config(tmp_path, None, f"train.variant={variant}")
    v = VARIANTS.get(variant)(cfg)
    real, fake = torch.tensor([-3.0, 5.0]), torch.tensor([2.0, 4.0])
    logs = v.score_logs(real, fake)
    assert not v.probabilities
    assert_close(logs["D(x)"], torch.tensor(1.0))
    assert_close(logs["D(G(z))"], torch.tensor(3.0))


def test_wgan_keeps_every_critic_weight_clipped(tmp_path):
    c = 0.02
    cfg = _config(tmp_path, "ring-wgan", *TINY, f"variant.clip={c}", "train.steps=10")
    t = Trainer(cfg)
    run_phase, seen = t._run_phase, []

    def checked(phase, window, log_now):
        run_phase(phase, window, log_now)
        w = torch.cat([p.detach().flatten() for p in t.nets["D"].parameters()])
        seen.append((phase.name, float(w.abs().max())))

    t._run_phase = checked
    t.fit()
    assert [p for p, _ in seen] == ["D", "G"] * 10
    assert all(m <= c for _, m in seen), seen
    weights = torch.cat(
        [w.flatten() for w in checkpoint.load(checkpoint.latest(t.dir))["nets"]["D"].values()]
    )
    assert weights.abs().max() <= c
    assert (weights.abs() == c).sum() > 0  # clipping was active, not just a no-op bound
    assert (weights.abs() < c).sum() > 0  # and not every weight sits at the bound


# ---------------------------------------------------------------------------------------------
# short runs that learn


RING_RUNS = {
    # variant: (preset, overrides) -- fixed seeds, tuned to pass with margin
    "gan": ("ring", ["train.steps=1500", "model.width=64"]),
    "wgan": ("ring-wgan", ["train.steps=1000", "model.width=64"]),
    "wgan-gp": ("ring-wgan-gp", ["train.steps=1500"]),
    "lsgan": ("ring-lsgan", ["train.steps=1000", "model.width=64"]),
    "ebgan": ("ring-ebgan", ["train.steps=1000", "model.width=64"]),
    "cgan": ("ring-cgan", ["train.steps=1000", "model.width=64"]),
}
N_EVAL = 2000


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    """``ring_run(variant)`` -> (run, energy distance at init, after): each run trains once."""
    cache: dict[str, tuple] = {}

    def get(variant: str):
        if variant not in cache:
            preset, over = RING_RUNS[variant]
            cfg = _config(tmp_path_factory.mktemp(variant), preset, "seed=0", *over)
            real, _ = build_source(cfg.data).sample(N_EVAL, torch.Generator().manual_seed(5))
            g0 = Trainer(cfg).sampling_net  # the initial G of the run below (same seed)
            before = energy_distance(sample_from(g0, N_EVAL, seed=3), real)
            run = gankit.train(cfg)
            after = energy_distance(run.sample(N_EVAL, seed=3), real)
            cache[variant] = (run, before, after)
        return cache[variant]

    return get


@pytest.mark.parametrize("variant", list(RING_RUNS))
def test_short_ring_run_moves_samples_onto_the_data(ring_run, variant):
    run, before, after = ring_run(variant)
    assert run.summary["variant"] == variant and run.summary["steps"] > 0
    assert 0.3 < before < 2.0, before  # G starts as a blob around the origin, far from the ring
    assert abs(after) < 0.25 * before, (after, before)


@pytest.mark.parametrize("variant", ["gan", "wgan-gp", "lsgan"])
def test_short_ring_run_captures_most_modes(ring_run, variant):
    s = ring_run(variant)[0].summary
    assert s["n_modes"] == 8 and s["n_samples"] == 2500
    assert 6 <= s["modes_captured"] <= 8, s


def test_cgan_samples_land_on_the_mode_they_were_asked_for(ring_run):
    run = ring_run("cgan")[0]
    gen = gankit.load_generator(run.dir)
    modes = build_source(run.config.data).modes  # ring: class k is the component at angle 2*pi*k/8
    for k in range(8):
        _, idx = nearest_mode(gen.sample(500, seed=k, labels=k), modes)  # [500]
        share = float((idx == k).double().mean())
        assert share >= 0.9, (k, share)


# ---------------------------------------------------------------------------------------------
# every variant on every kind of data and network


ALL_VARIANTS = ["gan", "cgan", "wgan", "wgan-gp", "lsgan", "ebgan"]


def _variant_overrides(variant: str) -> list[str]:
    over = [f"train.variant={variant}"]
    if variant == "cgan":
        over.append("data.classes=true")
    if variant == "wgan-gp":
        over.append("model.batchnorm=false")  # the per-sample penalty forbids batch norm
    return over


def _step_and_sample(tmp_path, variant: str, data: list[str], shape: tuple[int, ...]) -> None:
    over = [*QUIET, *data, *_variant_overrides(variant), "train.steps=1", "train.batch_size=8"]
    run = gankit.train(_config(tmp_path, None, "model.width=8", "log.n_samples=4", *over))
    (row,) = _rows(run.dir)
    for k in ["loss_D", "loss_G", "grad_norm_D", "grad_norm_G"]:
        assert math.isfinite(row[k]), (k, row)
    gen = gankit.load_generator(run.dir)
    x = gen.sample(3, seed=0, labels=1 if variant == "cgan" else None)
    assert x.shape == (3, *shape) and torch.isfinite(x).all()


@pytest.mark.parametrize("variant", ALL_VARIANTS)
@pytest.mark.parametrize("data", ["ring", "grid"])
def test_every_variant_runs_on_the_2d_mixtures(tmp_path, variant, data):
    _step_and_sample(tmp_path, variant, [f"data.name={data}"], (2,))


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Two classes of small RGB images of different sizes."""
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    g = torch.Generator().manual_seed(0)
    for cls, size in [("a", (40, 30)), ("b", (24, 48))]:
        (root / cls).mkdir()
        for i in range(6):
            pixels = torch.randint(0, 256, (size[1], size[0], 3), generator=g, dtype=torch.uint8)
            Image.fromarray(pixels.numpy()).save(root / cls / f"{i}.png")
    return root


@pytest.mark.parametrize("variant", ALL_VARIANTS)
@pytest.mark.parametrize("net", ["mlp", "dcgan"])
@pytest.mark.parametrize("data", ["mnist", "fashion-mnist", "folder"])
def test_every_variant_runs_on_images_with_both_nets(
    tmp_path, data_root, image_folder, variant, net, data
):
    if data == "folder":
        over = ["data.name=folder", f"data.path={image_folder}", "data.size=32", "data.channels=3"]
        shape = (3, 32, 32)
    else:
        over = [f"data.name={data}", f"data.root={data_root}", "data.download=false"]
        shape = (1, 28, 28)
    _step_and_sample(tmp_path, variant, [*over, f"model.net={net}", "model.z_dim=16"], shape)
