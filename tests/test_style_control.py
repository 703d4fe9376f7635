"""Control in W (Karras et al. 2019): truncation towards w_avg, style mixing, stochastic variation,
interpolation and classifier-guided editing of w, on a tiny StyleGAN2 generator; then the CLI on
tiny exports of it (and of an MLP, which has no mapping network)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from torch import nn
from torch.testing import assert_close

import gankit
from gankit import api, config
from gankit.cli import main
from gankit.config import ModelConfig
from gankit.control import (
    crossover_ws,
    edit,
    edit_direction,
    fit_direction,
    generate,
    interpolation_images,
    label_latents,
    latent_space,
    mix_ws,
    mixing_figure,
    noise_variation,
    sample_latents,
    synthesize,
    truncate_to_mean,
    truncated_images,
    truncation_strip,
    w_space,
    z_space,
)
from gankit.nets import build_generator

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(w_dim=16, channel_base=64, channel_max=16)


def tiny_g(num_classes: int = 0, noise: float = 0.2, seed: int = 0) -> nn.Module:
    """A 16 px StyleGAN2 G (num_ws 6) in eval mode, with a nonzero w_avg (the mean of 256 draws'
    w, as training leaves it) and every noise strength set to ``noise``."""
    torch.manual_seed(seed)
    cfg = ModelConfig(net="stylegan", z_dim=16, batchnorm=False, options=TINY)
    G = build_generator(cfg, (1, 16, 16), num_classes)
    with torch.no_grad():
        z, y = sample_latents(16, 256, 99, num_classes)
        G.mapping_net.w_avg.copy_(G.mapping(z, y).mean(0))
        for m in G.modules():
            if hasattr(m, "noise_strength"):
                m.noise_strength.fill_(noise)
    return G.eval()


def set_noise(G: nn.Module, strength: float, only_last: bool = False) -> None:
    convs = [m for m in G.modules() if hasattr(m, "noise_strength")]
    with torch.no_grad():
        for i, m in enumerate(convs):
            m.noise_strength.fill_(strength if (i == len(convs) - 1 or not only_last) else 0.0)


# ------------------------------------------------------------------------------------ truncation
def test_psi_zero_gives_the_w_avg_image_for_any_z():
    G = tiny_g()
    z = torch.randn(5, 16, generator=torch.Generator().manual_seed(1)) * 3  # far-apart codes
    x = truncated_images(G, z, psi=0.0)  # [5, 1, 16, 16]
    want = synthesize(G, G.w_avg[None])  # [1, 1, 16, 16]
    assert_close(x, want.expand_as(x), atol=1e-5, rtol=0)
    assert (generate(G, z) - want).abs().amax((1, 2, 3)).min() > 1e-2  # psi 1 differs
    with pytest.raises(gankit.UserError, match=r"psi must be in \[0, 1\]"):
        truncated_images(G, z, psi=1.5)


def test_truncation_in_w_is_not_truncation_in_z():
    G = tiny_g()
    z, _ = sample_latents(16, 6, 3)
    x_w = truncated_images(G, z, psi=0.5)
    w = G.mapping(z)
    assert_close(x_w, synthesize(G, G.w_avg + 0.5 * (w - G.w_avg)), atol=1e-5, rtol=0)
    x_z = generate(G, truncate_to_mean(z, 0.5))  # what sample --psi did before W existed
    assert (x_w - x_z).abs().max() > 1e-2
    # a net without a mapping network keeps z truncation, exactly as before
    mlp = build_generator(ModelConfig(net="mlp", z_dim=16, width=8, depth=1), (1, 8, 8)).eval()
    assert_close(truncated_images(mlp, z, psi=0.5), generate(mlp, 0.5 * z), atol=0, rtol=0)


def test_truncation_strip_runs_from_psi_1_to_the_average():
    G = tiny_g()
    z, _ = sample_latents(16, 3, 0)
    x, psis = truncation_strip(G, z, steps=5)  # [3, 5, 1, 16, 16]
    assert x.shape == (3, 5, 1, 16, 16)
    assert_close(psis, torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]))
    assert_close(x[:, 0], generate(G, z), atol=1e-5, rtol=0)  # psi 1: the samples
    assert_close(x[:, -1], synthesize(G, G.w_avg[None]).expand(3, -1, -1, -1), atol=1e-5, rtol=0)


# -------------------------------------------------------------------------------- style mixing
def test_crossover_takes_w1_below_and_w2_from_the_index_on():
    w1, w2 = torch.randn(2, 16), torch.randn(2, 16)
    ws = crossover_ws(w1, w2, 2, 6)  # [2, 6, 16]
    assert_close(ws[:, :2], w1[:, None].expand(-1, 2, -1), atol=0, rtol=0)
    assert_close(ws[:, 2:], w2[:, None].expand(-1, 4, -1), atol=0, rtol=0)
    for bad in (0, 6):
        with pytest.raises(gankit.UserError, match=r"crossover index must be in 1\.\.5"):
            crossover_ws(w1, w2, bad, 6)
    assert_close(mix_ws(w1, w2, [4, 5], 6)[:, 4:], w2[:, None].expand(-1, 2, -1), atol=0, rtol=0)


def _fed(G: nn.Module, fn) -> list[torch.Tensor]:
    """The ``ws`` of every ``G.synthesis`` call while ``fn`` runs (a forward pre-hook)."""
    seen: list[torch.Tensor] = []
    h = G.synthesis.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    try:
        fn()
    finally:
        h.remove()
    return seen


def test_mixing_feeds_synthesis_b_below_the_crossover_and_a_above():
    G = tiny_g()
    k, i = 3, 2
    seen = _fed(G, lambda: mixing_figure(G, n_sources=k, seed=4, crossover=i))
    z, _ = sample_latents(16, 2 * k, 4)  # the first k are the sources B, the next k A
    w = G.mapping(z).detach()
    mixed = next(s for s in seen if s.dim() == 3)  # [rows * k, num_ws, w_dim], row-major
    assert mixed.shape == (k * k, G.num_ws, 16)
    for r in range(k):
        for c in range(k):
            cell = mixed[r * k + c]
            assert_close(cell[:i], w[c].expand(i, -1), atol=1e-5, rtol=0)  # B = the column's
            assert_close(cell[i:], w[k + r].expand(G.num_ws - i, -1), atol=1e-5, rtol=0)


def test_mix_grid_shape_and_its_row_groups():
    G = tiny_g()
    groups = G.layer_groups()  # {"coarse": [0, 1], "middle": [2, 3], "fine": [4, 5]}
    grid = mixing_figure(G, ["coarse", "fine"], n_sources=3, seed=1)
    assert grid.images.shape == (3, 4, 1, 16, 16)  # 1 + 2 rows, 1 + 3 columns
    assert grid.ws.shape == (2, 3, G.num_ws, 16)
    assert grid.names == ["sources B", "coarse from B (ws 0-1)", "fine from B (ws 4-5)"]
    assert (grid.images[0, 0] == -1).all()  # the blank corner
    z, _ = sample_latents(16, 5, 1)  # the first 3 are the sources B, the next 2 A
    w_b, w_a = G.mapping(z[:3]).detach(), G.mapping(z[3:]).detach()
    assert_close(grid.images[0, 1:], synthesize(G, w_b), atol=1e-5, rtol=0)
    assert_close(grid.images[1:, 0], synthesize(G, w_a), atol=1e-5, rtol=0)
    for r, name in enumerate(["coarse", "fine"]):
        rest = [j for j in range(G.num_ws) if j not in groups[name]]
        assert_close(grid.ws[r][:, groups[name]], w_b[:, None].expand(-1, 2, -1), atol=0, rtol=0)
        assert_close(grid.ws[r][:, rest], w_a[r].expand(3, 4, -1), atol=0, rtol=0)
    with pytest.raises(gankit.UserError, match="unknown layer group 'huge'"):
        mixing_figure(G, ["huge"])
    with pytest.raises(gankit.UserError, match="one, not both"):
        mixing_figure(G, ["coarse"], crossover=2)


# --------------------------------------------------------------------------- stochastic variation
def test_variation_std_is_zero_without_noise_and_positive_with_it():
    G = tiny_g(noise=0.0)  # StyleGAN2 starts with every noise strength 0
    z, _ = sample_latents(16, 2, 0)
    v = noise_variation(G, z, k=3, n_draws=16, seed=0)
    assert v.draws.shape == (2, 3, 1, 16, 16) and v.std.shape == (2, 16, 16)
    assert v.figure().shape == (2, 5, 1, 16, 16)
    assert torch.equal(v.std, torch.zeros(2, 16, 16))
    set_noise(G, 0.3, only_last=True)  # only the 16 px layer's noise
    v = noise_variation(G, z, k=3, n_draws=16, seed=0)
    assert (v.std > 0).float().mean() > 0.9 and v.std.max() > 1e-2
    assert_close(noise_variation(G, z, k=3, n_draws=16, seed=0).draws, v.draws)  # seeded
    assert (v.draws[:, 0] - v.draws[:, 1]).abs().max() > 1e-3  # the draws differ
    assert_close(v.const, synthesize(G, G.mapping(z)), atol=1e-5, rtol=0)  # w fixed
    # the map is the per-pixel std over the draws: check it against torch.std on the same draws
    gen = torch.Generator().manual_seed(0)
    xs = torch.stack([synthesize(G, G.mapping(z), "random", gen) for _ in range(16)])
    assert_close(v.std, xs.double().std(0).mean(1).float(), atol=1e-5, rtol=1e-4)


# --------------------------------------------------------------------------------- interpolation
def test_interpolation_in_w_ends_at_the_samples_and_lerps_w():
    G = tiny_g()
    z, _ = sample_latents(16, 2, 5)
    x = interpolation_images(G, z[0], z[1], 5, space="w")  # [5, 1, 16, 16]
    assert_close(x[[0, -1]], generate(G, z), atol=1e-5, rtol=0)
    w = G.mapping(z).detach()
    assert_close(x[2], synthesize(G, (w[:1] + w[1:]) / 2)[0], atol=1e-5, rtol=0)
    xz = interpolation_images(G, z[0], z[1], 5, mode="lerp", space="z")
    assert_close(xz[[0, -1]], x[[0, -1]], atol=1e-5, rtol=0)
    assert (xz[2] - x[2]).abs().max() > 1e-3  # the middle of a line in Z is not that in W
    with pytest.raises(gankit.UserError, match="interpolate W with lerp"):
        interpolation_images(G, z[0], z[1], 5, mode="slerp", space="w")
    mlp = build_generator(ModelConfig(net="mlp", z_dim=16, width=8, depth=1), (1, 8, 8))
    with pytest.raises(gankit.UserError, match="needs a generator with a mapping network"):
        interpolation_images(mlp, z[0], z[1], 5, space="w")


# ---------------------------------------------------------------------------------------- editing
def test_w_space_prior_is_the_moment_matched_gaussian_of_prior_draws():
    G = tiny_g()
    sp = w_space(G, n_prior=500, seed=3)
    w = G.mapping(sample_latents(16, 500, 3)[0]).detach().double()
    assert_close(sp.center, w.mean(0).float(), atol=1e-5, rtol=0)
    assert sp.spread == pytest.approx((w - w.mean(0)).pow(2).mean().sqrt().item(), rel=1e-6)
    assert sp.scale == pytest.approx(sp.spread * 4.0)  # sqrt(w_dim = 16)
    assert_close(sp.prior_penalty(sp.center[None]), torch.zeros(1))
    c = sp.center + sp.spread * torch.tensor([3.0] + [0.0] * 15)
    assert_close(sp.prior_penalty(c[None]), torch.tensor([4.5]))  # 3 spreads away: 3^2 / 2
    zs = z_space(G)  # the z prior is N(0, I): ||z||^2 / 2 and sqrt(z_dim)
    z = torch.randn(3, 16)
    assert_close(zs.prior_penalty(z), 0.5 * z.pow(2).sum(1))
    assert zs.scale == 4.0


class Bright(nn.Module):
    """A fake 3-class classifier of 16 px images: the logits are three fixed random projections
    of the pixels (a differentiable stand-in for the MNIST CNN)."""

    def __init__(self, seed: int = 0):
        super().__init__()
        self.lin = nn.Linear(256, 3)
        with torch.no_grad():
            g = torch.Generator().manual_seed(seed)
            self.lin.weight.copy_(torch.randn(3, 256, generator=g) / 4)
            self.lin.bias.zero_()

    def forward(self, x):
        return self.lin(x.flatten(1))  # [N, 3]


def test_editing_in_w_raises_the_target_probability():
    G, clf = tiny_g(), Bright()
    opts = dict(steps=15, lr=0.1, restarts=0, shifts=0, stop_prob=None)
    res = edit(G, clf, 2, n=4, seed=0, space="w", **opts)
    s = res.summary()
    assert s["space"] == "w" and res.z_before.shape == (4, 16)
    assert_close(res.z_before, G.mapping(sample_latents(16, 4, 0)[0]).detach())  # the samples' w
    assert s["p_target_after"] > s["p_target_before"] + 0.05
    radius = 0.8 * w_space(G).scale  # the default ball in W
    assert (res.distance <= radius + 1e-4).all() and res.distance.max() > 0
    assert_close(res.images_after, synthesize(G, res.z_after), atol=1e-5, rtol=0)
    assert res.entanglement.shape == (4,) and 0 <= s["entanglement_mean"] <= 1
    # a second classifier's agreement is read off the same result, as the benchmark does
    assert torch.equal(res.agrees(clf), res.success) and res.agrees(Bright(seed=1)).shape == (4,)
    # the same call in Z moves z, not w
    rz = edit(G, clf, 2, n=4, seed=0, space="z", **opts)
    assert rz.summary()["space"] == "z" and rz.z_before.shape == (4, 16)
    assert_close(rz.z_before, sample_latents(16, 4, 0)[0])
    # direction mode: one direction in W, fit on labelled w (3 of these 64 are class 0)
    wf, lf = label_latents(G, clf, 64, seed=1, space="w")
    assert_close(wf, G.mapping(sample_latents(16, 64, 1)[0]).detach())
    d = fit_direction(wf, lf, 0)
    rd = edit_direction(G, clf, res.z_before, 0, d, space="w", max_distance=radius)
    assert rd.summary()["p_target_after"] > rd.summary()["p_target_before"] + 0.05
    assert latent_space(G, "w").name == "w"


def test_editing_in_w_refuses_a_net_without_mapping():
    mlp = build_generator(ModelConfig(net="mlp", z_dim=16, width=8, depth=1), (1, 16, 16))
    clf = Bright()
    with pytest.raises(gankit.UserError, match="mapping network"):
        edit(mlp, clf, 1, n=2, space="w", steps=1, restarts=0)


# ------------------------------------------------------------------------------------- the CLI
def _export(path, preset: str, overrides: list[str], net: nn.Module | None = None):
    """A gankit export of a freshly built G of ``preset`` (with ``net``'s weights if given)."""
    cfg = config.load(preset, [*overrides, "data.download=false"])
    G = net if net is not None else build_generator(cfg.model, (1, 16, 16), 0)
    state = {k: v.contiguous() for k, v in G.state_dict().items()}
    meta = {"shape": [1, 16, 16], "num_classes": 0, "kind": "image", "sampler_player": "G"}
    md = {
        "format": api.EXPORT_FORMAT,
        "meta": json.dumps(meta),
        "config": json.dumps(cfg.to_dict()),
        "sha256": api.tensors_sha256(state),
    }
    save_file(state, str(path), metadata=md)
    return path


STYLE = [
    "data.size=16",
    "model.z_dim=16",
    "model.options.w_dim=16",
    "model.options.channel_base=64",
    "model.options.channel_max=16",
    "model.options.mapping_layers=2",
]


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    d = tmp_path_factory.mktemp("style-exports")
    G = tiny_g(noise=0.2)
    style = _export(d / "style.safetensors", "mnist-stylegan", STYLE, G)
    mlp = ["data.size=16", "model.z_dim=16", "model.width=8", "model.depth=1"]
    return style, _export(d / "mlp.safetensors", "mnist-gan", mlp), G


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gankit: error: "), err
    return err


def test_cli_commands_write_their_figures(exports, tmp_path, capsys):
    style, mlp, G = exports
    out = tmp_path / "s.png"
    assert main(["sample", str(style), "--psi", "0", "--n", "4", "--out", str(out)]) == 0
    with Image.open(out) as im:  # psi 0: four copies of the w_avg image
        px = torch.from_numpy(np.asarray(im.convert("L")).copy())  # [H, W]
    tiles = [px[2:18, 2 + 18 * j : 18 + 18 * j] for j in range(2)]
    assert torch.equal(tiles[0], tiles[1]) and tiles[0].float().std() > 0
    assert main(["sample", str(style), "--psi-strip", "4", "--n", "2", "--out", str(out)]) == 0
    assert "2 rows, psi from 1 to 0 in 4 steps" in capsys.readouterr().out
    assert main(["sample", str(mlp), "--psi-strip", "3", "--out", str(out)]) == 0  # Z strip
    assert main(["mix", str(style), "--n-sources", "2", "--out", str(out)]) == 0
    assert "3 rows of 2 mixes" in capsys.readouterr().out
    assert main(["mix", str(style), "--crossover", "3", "--n-sources", "2", "--out", str(out)]) == 0
    argv = ["variation", str(style), "--n", "2", "--k", "2", "--draws", "8"]
    assert main([*argv, "--out", str(out)]) == 0
    top = float(capsys.readouterr().out.split("per-pixel std is ")[1].split()[0])
    assert top > 0  # the export's noise strengths are 0.2
    i = tmp_path / "i.png"
    argv = ["interpolate", str(style), "--from", "0", "--to", "1", "--space", "w"]
    assert main([*argv, "--out", str(i)]) == 0
    assert i.with_suffix(".gif").stat().st_size > 0


def test_cli_bad_inputs_exit_2_with_one_line(exports, tmp_path, capsys):
    style, mlp, _ = exports
    out = str(tmp_path / "x.png")
    bad = [
        (["sample", style, "--psi", "1.5"], "argument --psi: must be in [0, 1], got 1.5"),
        (["sample", style, "--psi", "-0.1"], "argument --psi: must be in [0, 1], got -0.1"),
        (["sample", style, "--psi-strip", "1"], "argument --psi-strip: must be at least 2"),
        (["sample", style, "--psi-strip", "--psi", "0.5"], "drop --psi/--per-class"),
        (["mix", style, "--crossover", "0"], "crossover index must be in 1..5"),
        (["mix", style, "--crossover", "6"], "crossover index must be in 1..5"),
        (["mix", style, "--rows", "coarse,tiny"], "unknown layer group 'tiny'"),
        (["mix", style, "--rows", "coarse", "--crossover", "2"], "one, not both"),
        (["mix", mlp], "mix needs a generator with a mapping network"),
        (["variation", mlp], "variation needs a generator with a mapping network"),
        (["variation", style, "--k", "9", "--draws", "8"], "lower --k"),
        (
            ["interpolate", style, "--from", "0", "--to", "1", "--space", "w", "--mode", "slerp"],
            "interpolate W with lerp",
        ),  # fmt: skip
        (
            ["interpolate", mlp, "--from", "0", "--to", "1", "--space", "w"],
            "--space w needs a generator with a mapping network",
        ),  # fmt: skip
        (
            ["interpolate", style, "--from", "0", "--to", "1", "--space", "q"],
            "argument --space: invalid choice",
        ),  # fmt: skip
    ]
    for argv, message in bad:
        argv = [str(a) for a in argv]
        assert main([*argv, "--out", out]) == 2, argv
        assert message in _error_line(capsys), argv
    edit_out = str(tmp_path / "e")
    assert main(["edit", str(mlp), "--target", "1", "--space", "w", "--out", edit_out]) == 2
    assert "--space w needs a generator with a mapping network" in _error_line(capsys)
    assert not (tmp_path / "x.png").exists()
