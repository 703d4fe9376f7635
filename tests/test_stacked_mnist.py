"""Stacked MNIST (Metz et al. 2017; Srivastava et al. 2017): the data set (shapes, labels, exact
resume), the mode count and KL of PROTOCOLS.md on real stacks and on a collapsed generator, and a
short run of the DCGAN preset."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn
from torch.testing import assert_close

from conftest import restored
from gankit import config
from gankit.api import Generator, load_generator
from gankit.config import Config, DataConfig
from gankit.data import ImageSource, build_source
from gankit.data.stacked import StackedSource, triple_labels
from gankit.errors import UserError
from gankit.metrics.classifier import DigitClassifier, load_classifier, predict
from gankit.metrics.modes import reverse_kl_uniform
from gankit.metrics.stacked_mnist import PROTOCOL, generator_modes, stacked_mnist_modes
from gankit.registry import METRICS


def stacked(data_root, split: str = "test", **kw) -> StackedSource:
    cfg = DataConfig(name="stacked-mnist", root=str(data_root), download=False, channels=3, **kw)
    return build_source(cfg, split)


def mnist(data_root, split: str = "test") -> ImageSource:
    return build_source(DataConfig(name="mnist", root=str(data_root), download=False), split)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def classifier(data_root) -> DigitClassifier:
    """The cached MNIST classifier, trained (one CPU thread) and cached first if missing."""
    return load_classifier("mnist", str(data_root), train_if_missing=True, quiet=True)


# ---------------------------------------------------------------------------------------------
# the data set


def test_shapes_and_labels(data_root):
    source, digits = stacked(data_root), mnist(data_root)
    assert isinstance(source, ImageSource) and len(source) == len(digits) == 10_000
    assert source.shape == (3, 28, 28) and source.num_classes == 1000 and source.kind == "image"
    x, y = source.sampler(64, seed=0).next()
    assert x.shape == (64, 3, 28, 28) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1 and y.shape == (64,) and y.dtype == torch.int64
    # each channel is the MNIST test digit its triple names, and the label is 100 r + 10 g + b
    idx = torch.tensor([0, 1, 4999, 9999])
    x, y = source.batch(idx)  # [4, 3, 28, 28]
    for k, i in enumerate(idx):
        r, g, b = source.triples[i]
        for c, j in enumerate((r, g, b)):
            assert torch.equal(x[k, c : c + 1], digits.batch(j[None])[0][0])
        assert y[k] == 100 * digits.labels[r] + 10 * digits.labels[g] + digits.labels[b]


def test_triples_cover_all_modes_and_are_fixed(data_root):
    a, b = stacked(data_root), stacked(data_root)
    assert torch.equal(a.triples, b.triples)  # a fixed data set, not a fresh draw per build
    assert len(torch.unique(a.labels)) == 1000  # all 1,000 digit triples occur
    # the R, G and B digits are drawn independently: no channel copies another
    t = a.triples
    assert (t[:, 0] == t[:, 1]).float().mean() < 0.01 and (t[:, 1] == t[:, 2]).float().mean() < 0.01


def test_triple_labels():
    assert triple_labels(torch.tensor([[1, 2, 3], [0, 0, 7], [9, 9, 9]])).tolist() == [123, 7, 999]


def test_sampler_resumes_exactly(data_root):
    source = stacked(data_root)
    s1, s2 = restored(source, 96, skip=3)
    for _ in range(110):  # past the end of an epoch (10,000 stacks / 96)
        (x1, y1), (x2, y2) = s1.next(), s2.next()
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert s1.epoch == 1


def test_resize_and_channel_errors(data_root):
    assert stacked(data_root, size=32).batch(torch.arange(2))[0].shape == (2, 3, 32, 32)
    with pytest.raises(UserError, match="data.channels=3"):
        build_source(DataConfig(name="stacked-mnist", root=str(data_root), download=False))


# ---------------------------------------------------------------------------------------------
# the mode count and KL


def test_real_stacks_cover_about_all_modes(data_root, classifier):
    source = stacked(data_root)
    x, y = source.batch(torch.arange(len(source)))  # [10000, 3, 28, 28], [10000]
    out = stacked_mnist_modes(x, classifier)
    assert out["n"] == 10_000 and out["protocol"] == PROTOCOL
    truth = torch.bincount(y, minlength=1000)
    assert int((truth > 0).sum()) == 1000
    # a 99%+ digit classifier gets ~97% of triples right: a wrong triple can only hide a mode
    # that has no other stack, so nearly all 1,000 stay visible
    assert out["modes"] >= 995
    # the histogram of 10,000 draws from 1,000 modes is KL ~ 999 / 20,000 = 0.05 from uniform
    assert_close(out["kl"], reverse_kl_uniform(truth), atol=0.01, rtol=0)
    assert 0.03 < out["kl"] < 0.1
    # the channels' digits are near uniform (~ 9 / 20,000 each): real stacks prefer no digit
    assert len(out["channel_kl"]) == 3 and max(out["channel_kl"]) < 0.005


class FixedNet(nn.Module):
    """A collapsed G: every sample is the same image."""

    def __init__(self, image: Tensor):  # [3, 28, 28]
        super().__init__()
        self.register_buffer("image", image)
        self.anchor = nn.Parameter(torch.zeros(()))  # sample_from asks for the device
        self.num_classes, self.z_dim = 0, 4

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.image.expand(len(z), -1, -1, -1)  # [N, 3, 28, 28]


def test_collapsed_generator_has_one_mode(data_root, classifier):
    x, _ = stacked(data_root).batch(torch.arange(1))  # [1, 3, 28, 28]
    gen = Generator(FixedNet(x[0]), Config(), (3, 28, 28), 0, "image")
    out = generator_modes(gen, classifier, n=3000, chunk=1000)
    assert out["modes"] == 1 and out["n"] == 3000
    assert_close(out["kl"], math.log(1000))
    assert_close(out["channel_kl"], [math.log(10)] * 3)  # one digit per channel: all of the KL


def test_kl_closed_form(data_root, classifier):
    """Three stacks of one triple and one of another: KL = 3/4 log 750 + 1/4 log 250."""
    digits = mnist(data_root)
    x, y = digits.batch(torch.arange(200))  # [200, 1, 28, 28]
    right = (predict(classifier, x).argmax(1) == y).nonzero()[:, 0]  # correctly classified
    assert not torch.equal(y[right[:3]], y[right[3:6]])  # two different digit triples
    a, b = x[right[:3]].view(1, 3, 28, 28), x[right[3:6]].view(1, 3, 28, 28)
    stacks = torch.cat([a.expand(3, -1, -1, -1), b])  # [4, 3, 28, 28]
    out = stacked_mnist_modes(stacks, classifier)
    assert out["modes"] == 2 and out["n"] == 4
    assert_close(out["kl"], 0.75 * math.log(750) + 0.25 * math.log(250))
    # per channel: the digit of a three times and b's once, or one digit where they agree
    ya, yb = y[right[:3]], y[right[3:6]]
    split = 0.75 * math.log(7.5) + 0.25 * math.log(2.5)
    want = [math.log(10) if ya[c] == yb[c] else split for c in range(3)]
    assert_close(out["channel_kl"], want)


def test_wrong_shape_is_a_user_error():
    with pytest.raises(UserError, match=r"\[N, 3, 28, 28\]"):
        stacked_mnist_modes(torch.zeros(4, 1, 28, 28), DigitClassifier())
    assert METRICS.get("stacked_mnist_modes") is stacked_mnist_modes


# ---------------------------------------------------------------------------------------------
# the preset


def test_dcgan_preset_runs(data_root, tmp_path):
    cfg = config.load(
        "stacked-mnist-dcgan",
        [
            f"data.root={data_root}",
            "data.download=false",
            f"out={tmp_path}",
            "train.steps=2",
            "train.batch_size=8",
            "model.width=8",
            "log.every=1",
            "log.quiet=true",
            "device=cpu",
        ],
    )
    assert cfg.data.name == "stacked-mnist" and cfg.data.channels == 3 and cfg.model.net == "dcgan"
    from gankit.training.trainer import train

    run = train(cfg)
    assert run.summary["steps"] == 2
    assert load_generator(run.dir).sample(4, seed=0).shape == (4, 3, 28, 28)
