"""The memorisation metric: a generator that copies its training images scores a ratio near 0
and is nearer a training image for every sample; one that draws unseen images of the same
distribution scores about 1 and is nearer a training image about half the time. Through
``gankit.evaluate`` it compares with the run's own ``data.limit`` subset."""

from __future__ import annotations

import pytest
import torch

import gankit
from gankit.api import Generator, evaluate
from gankit.data import build_source
from gankit.errors import UserError
from gankit.evaluation import Options, evaluate_generator
from gankit.metrics.distances import nearest_distance
from gankit.metrics.memorisation import memorisation

pytestmark = pytest.mark.usefixtures("one_thread")


def test_nearest_distance_matches_a_brute_force_minimum():
    g = torch.Generator().manual_seed(0)
    x, ref = torch.randn(300, 7, generator=g), torch.randn(50, 7, generator=g)
    want = torch.stack([(ref - row).norm(dim=1).min() for row in x])  # [300]
    assert torch.allclose(nearest_distance(x, ref), want, atol=1e-4)


def test_copies_score_near_zero_and_fresh_draws_about_one():
    g = torch.Generator().manual_seed(0)
    train, test = torch.randn(400, 3, 8, 8, generator=g), torch.randn(400, 3, 8, 8, generator=g)
    copies = train[:300] + 0.01 * torch.randn(300, 3, 8, 8, generator=g)
    res = memorisation(copies, train, test)
    assert res["memorisation_ratio"] < 0.05 and res["nearer_train"] == 1.0
    assert abs(res["nn_dist_train"] - 0.01 * 192**0.5) < 0.02  # the noise's norm, 0.139
    assert res["nn_dist_test"] > 10
    fresh = memorisation(torch.randn(1000, 3, 8, 8, generator=g), train, test)
    assert 0.95 < fresh["memorisation_ratio"] < 1.05 and 0.4 < fresh["nearer_train"] < 0.6
    with pytest.raises(ValueError, match="the same size"):
        memorisation(copies, train, test[:10])


class Replay(torch.nn.Module):
    """Hands out rows of a fixed image tensor: a seeded draw per latent."""

    z_dim, num_classes = 4, 0

    def __init__(self, images):
        super().__init__()
        self.images = images
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, z, y=None):
        idx = (z[:, 0].abs() * 1e6).long() % len(self.images)  # [B]
        return self.images[idx]


def test_evaluate_tells_a_copying_generator_from_one_that_is_not(data_root):
    cfg = gankit.load_config("mnist-gan", [f"data.root={data_root}", "data.limit=200"])
    subset = build_source(cfg.data, "train").sample(200)[0]  # [200, 1, 28, 28]: what it trained on
    full = build_source(gankit.DataConfig(name="mnist", root=str(data_root)), "train")
    unseen = full.batch(torch.arange(len(full) - 2000, len(full)))[0]  # [2000, ...]
    keep = torch.cdist(unseen.flatten(1), subset.flatten(1)).amin(1) > 0  # not one of the 200
    opts = Options(n=400, data_root=str(data_root))

    def score(images):
        gen = Generator(Replay(images), cfg, (1, 28, 28), 0, "image")
        return evaluate_generator(gen, ["memorisation"], opts)

    copier, honest = score(subset), score(unseen[keep])
    assert copier["memorisation_ratio"] < 0.01 and copier["nearer_train"] == 1.0
    assert 0.85 < honest["memorisation_ratio"] < 1.15 and 0.3 < honest["nearer_train"] < 0.7
    p = copier["protocols"]["memorisation"]
    assert (p["n_fake"], p["n_train"], p["n_test"]) == (400, 200, 200)
    assert "200 images" in p["train"]


def test_memorisation_refuses_what_it_cannot_measure(tmp_path):
    run = gankit.train(None, [f"out={tmp_path}", "log.quiet=true", "train.steps=2"])
    with pytest.raises(UserError, match="memorisation needs an image generator"):
        evaluate(run.dir, "memorisation")
    cfg = gankit.load_config("mnist-gan", ["data.name=folder", f"data.path={tmp_path}"])
    gen = Generator(Replay(torch.zeros(1, 1, 28, 28)), cfg, (1, 28, 28), 0, "image")
    with pytest.raises(UserError, match="a folder has no test split"):
        evaluate_generator(gen, ["memorisation"])
