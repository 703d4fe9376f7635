"""The evaluation classifier reads square 1-channel images of any side: sides other than 28 are
resized to 28 with antialiased bilinear interpolation in one place (``classifier_input``), so
32-px StyleGAN/DCGAN runs get cfid, coverage and cacc; wrong channels or non-square images stay
a one-line error."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import gankit
from gankit.errors import UserError
from gankit.metrics import classifier as clf
from gankit.metrics.classifier import DigitClassifier, classifier_input, predict

pytestmark = pytest.mark.usefixtures("one_thread")


def _by_hand(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=(28, 28), mode="bilinear", antialias=True, align_corners=False)


@pytest.fixture(scope="module")
def mnist(data_root):
    """The trained MNIST classifier and 500 test digits at 28 px and at 32 px (the data loader's
    own resize, as a data.size=32 run sees them), with their labels."""
    from gankit.data import build_source

    model = clf.load_classifier("mnist", str(data_root), train_if_missing=True, quiet=True)
    cfg = gankit.DataConfig(name="mnist", root=str(data_root), download=False)
    x28, y = build_source(cfg, "test").batch(torch.arange(500))
    cfg32 = gankit.DataConfig(name="mnist", root=str(data_root), download=False, size=32)
    x32, y32 = build_source(cfg32, "test").batch(torch.arange(500))
    assert torch.equal(y, y32) and x32.shape == (500, 1, 32, 32)
    return model, x28, x32, y


def test_32px_predictions_equal_the_batch_resized_by_hand(mnist):
    model, x28, x32, y = mnist
    logits = predict(model, x32, batch=128)  # [500, 10]; batches of 128 resized one by one
    torch.testing.assert_close(logits, predict(model, _by_hand(x32)), rtol=1e-5, atol=1e-5)
    # not some other resize: plain (non-antialiased) bilinear or nearest give other logits
    for other in ("nearest", "bilinear"):
        kw = {} if other == "nearest" else {"align_corners": False}
        x = F.interpolate(x32, size=(28, 28), mode=other, **kw)
        assert (predict(model, x) - logits).abs().max() > 1e-2, other
    # and it still reads digits: 28 -> 32 -> 28 costs almost nothing
    acc32 = float((logits.argmax(1) == y).double().mean())
    agree = float((logits.argmax(1) == predict(model, x28).argmax(1)).double().mean())
    assert acc32 >= 0.97 and agree >= 0.98, (acc32, agree)


@pytest.mark.parametrize("side", [16, 28, 64])
def test_every_square_side_is_resized_in_the_one_place(side):
    torch.manual_seed(side)
    net = DigitClassifier().eval()
    x = torch.rand(6, 1, side, side) * 2 - 1  # [6, 1, S, S]
    want = x if side == 28 else _by_hand(x)
    assert classifier_input(x).shape == (6, 1, 28, 28)
    torch.testing.assert_close(classifier_input(x), want, rtol=0, atol=0)
    torch.testing.assert_close(predict(net, x), predict(net, want), rtol=1e-5, atol=1e-6)
    feats = clf.extract_features(net, x)  # [6, 128]
    torch.testing.assert_close(feats, clf.extract_features(net, want), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(4, 3, 32, 32), (4, 1, 32, 30), (4, 32, 32)], ids=str)
def test_wrong_channels_or_non_square_stay_a_one_line_error(shape):
    with pytest.raises(UserError) as e:
        predict(DigitClassifier(), torch.zeros(shape))
    msg = str(e.value)
    assert "square 1-channel images" in msg and str(shape) in msg and "\n" not in msg


def test_classifier_metrics_of_a_32px_generator_record_the_resize(mnist, data_root):
    from gankit.api import Generator
    from gankit.evaluation import Options, evaluate_generator

    _, _, x32, _ = mnist

    class Replay(torch.nn.Module):  # hands out real 32-px test digits: a perfect generator
        z_dim, num_classes = 4, 0

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, z, y=None):
            return x32[(z[:, 0].abs() * 1e6).long() % len(x32)]  # [B, 1, 32, 32]

    cfg = gankit.load_config("mnist-gan", ["data.size=32", f"data.root={data_root}"])
    gen = Generator(Replay(), cfg, (1, 32, 32), 0, "image")
    res = evaluate_generator(gen, "cfid,coverage", Options(n=300, data_root=str(data_root)))
    assert res["class_entropy"] > 2.2  # log 10 = 2.303: every digit is read
    assert 0 <= res["cfid"] < 5.0
    for m in ("cfid", "coverage"):
        note = res["protocols"][m]["classifier_input"]
        assert note.startswith("1x32x32 resized to 1x28x28, antialiased bilinear"), note
