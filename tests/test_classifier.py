"""The evaluation classifier: its accuracy on the real test splits, the cache, and the metrics it
powers (class coverage, conditional accuracy, classifier FID) against exact expected values.

The accuracy test trains the MNIST and Fashion-MNIST classifiers once (about a minute each on a
CPU core) when they are not in gankit's cache yet, and reuses them afterwards.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn
from torch.testing import assert_close

from gankit.api import Generator
from gankit.cli import main
from gankit.config import Config, DataConfig
from gankit.data import build_source
from gankit.errors import UserError
from gankit.metrics import classifier as clf
from gankit.metrics.classifier import (
    DigitClassifier,
    class_coverage,
    classifier_fid,
    conditional_accuracy,
    load_classifier,
    random_shift,
    save_classifier,
)
from gankit.registry import METRICS

MIN_ACCURACY = {"mnist": 0.99, "fashion-mnist": 0.90}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained(data_root) -> dict[str, DigitClassifier]:
    """Both classifiers from the cache, trained (one CPU thread) and cached first if missing."""
    return {
        data: load_classifier(data, str(data_root), train_if_missing=True, quiet=True)
        for data in MIN_ACCURACY
    }


@pytest.fixture(scope="module")
def mnist_test(data_root) -> tuple[Tensor, Tensor]:
    source = build_source(DataConfig(name="mnist", root=str(data_root), download=False), "test")
    return source.batch(torch.arange(len(source)))  # [10000, 1, 28, 28], [10000]


def test_real_digits_cover_all_classes(trained, mnist_test):
    out = class_coverage(clf.predict(trained["mnist"], mnist_test[0]))
    assert math.log(10) - 0.01 < out["class_entropy"] <= math.log(10)


def test_network_shapes():
    net = DigitClassifier()
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    assert net(x).shape == (5, 10)
    assert net.features(x).shape == (5, clf.FEATURE_DIM)


@pytest.mark.parametrize("data", list(MIN_ACCURACY))
def test_accuracy_on_the_real_test_split(trained, data_root, data):
    model = trained[data]
    assert not model.training
    source = build_source(DataConfig(name=data, root=str(data_root), download=False), "test")
    x, y = source.batch(torch.arange(len(source)))  # [10000, 1, 28, 28], [10000]
    with torch.no_grad():
        pred = torch.cat([model(x[i : i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
    accuracy = (pred == y).double().mean().item()
    assert accuracy >= MIN_ACCURACY[data]
    # the number stored with the model is the one it really has
    assert abs(model.info["test_accuracy"] - accuracy) < 1e-4
    assert model.info["data"] == data and model.info["format"] == clf.FORMAT


# ---------------------------------------------------------------------------------------------
# class coverage


def test_class_coverage_uniform_is_log10():
    out = class_coverage(torch.arange(1000) % 10)
    assert_close(out["class_entropy"], math.log(10))
    assert_close(out["class_entropy_max"], math.log(10))
    hist = torch.tensor(out["class_histogram"], dtype=torch.float64)
    assert_close(hist, torch.full((10,), 0.1, dtype=torch.float64))
    assert out["n"] == 1000


def test_class_coverage_one_class_is_zero():
    out = class_coverage(torch.full((50,), 3))
    assert out["class_entropy"] == 0.0 and str(out["class_entropy"]) == "0.0"
    assert out["class_histogram"][3] == 1.0 and sum(out["class_histogram"]) == 1.0


def test_class_coverage_from_logits():
    labels = torch.tensor([0, 0, 0, 1])  # p = (3/4, 1/4)
    logits = torch.nn.functional.one_hot(labels, 10).float() * 5 - 1  # [4, 10]
    out = class_coverage(logits)
    assert_close(out["class_entropy"], -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))


@pytest.mark.parametrize(
    "bad", [torch.tensor([0, 10]), torch.tensor([-1, 2]), torch.rand(4, 7), torch.rand(3)]
)
def test_class_coverage_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        class_coverage(bad)


# ---------------------------------------------------------------------------------------------
# conditional accuracy


class BankNet(nn.Module):
    """A stand-in conditional G: for class c it returns stored images ``bank[c]`` in turn."""

    def __init__(self, bank: Tensor):  # [K, M, 1, 28, 28]
        super().__init__()
        self.register_buffer("bank", bank)
        self.anchor = nn.Parameter(torch.zeros(()))  # sample_from asks for the device
        self.num_classes, self.z_dim = bank.shape[0], 4

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        i = torch.arange(len(z)) % self.bank.shape[1]  # [N]
        return self.bank[y, i]  # [N, 1, 28, 28]


def bank_generator(bank: Tensor) -> Generator:
    return Generator(BankNet(bank), Config(), (1, 28, 28), bank.shape[0], "image")


@pytest.fixture(scope="module")
def correct_bank(trained, mnist_test) -> Tensor:
    """20 test images per digit that the MNIST classifier gets right: ``[10, 20, 1, 28, 28]``."""
    x, y = mnist_test
    right = clf.predict(trained["mnist"], x).argmax(1) == y  # [10000]
    return torch.stack([x[(y == c) & right][:20] for c in range(10)])


def test_conditional_accuracy_exact(trained, correct_bank):
    model = trained["mnist"]
    out = conditional_accuracy(bank_generator(correct_bank), model, n_per_class=40)
    assert out["conditional_accuracy"] == 1.0 and out["per_class_accuracy"] == [1.0] * 10
    assert out["n_per_class"] == 40
    shifted = correct_bank.roll(1, dims=0)  # class c gets images of digit c - 1
    out = conditional_accuracy(bank_generator(shifted), model, n_per_class=40)
    assert out["conditional_accuracy"] == 0.0
    half = correct_bank.clone()
    half[:, 10:] = shifted[:, 10:]  # 10 right, 10 wrong per class
    out = conditional_accuracy(bank_generator(half), model, n_per_class=20)
    assert out["per_class_accuracy"] == [0.5] * 10


def test_conditional_accuracy_needs_a_conditional_generator():
    bank = torch.zeros(10, 1, 1, 28, 28)
    gen = bank_generator(bank)
    gen.num_classes = 0
    with pytest.raises(UserError, match="unconditional"):
        conditional_accuracy(gen, DigitClassifier(), n_per_class=5)
    with pytest.raises(UserError, match="3 classes"):
        conditional_accuracy(bank_generator(bank[:3]), DigitClassifier(), n_per_class=5)


# ---------------------------------------------------------------------------------------------
# classifier FID and input checks


def test_classifier_fid(trained, mnist_test):
    model = trained["mnist"]
    x = mnist_test[0][:4000]
    same = classifier_fid(x[:2000], x[:2000], model)
    assert same["classifier_fid"] < 1e-6 and same["n_fake"] == same["n_real"] == 2000
    halves = classifier_fid(x[:2000], x[2000:], model)["classifier_fid"]  # two real samples
    g = torch.Generator().manual_seed(0)
    noisy = (x[:2000] + 0.5 * torch.randn(x[:2000].shape, generator=g)).clamp(-1, 1)
    degraded = classifier_fid(noisy, x[2000:], model)["classifier_fid"]
    assert 0 < halves < degraded / 10


@pytest.mark.parametrize(
    "shape", [(4, 3, 28, 28), (4, 3, 32, 32), (4, 28, 28), (4, 1, 28, 27)], ids=str
)
def test_wrong_image_shape_is_a_user_error(shape):
    with pytest.raises(UserError, match=r"\[N, 1, 28, 28\]"):
        classifier_fid(torch.zeros(shape), torch.zeros(4, 1, 28, 28), DigitClassifier())


def test_images_outside_the_range_are_a_user_error():
    with pytest.raises(UserError, match=r"127\.5"):
        clf.predict(DigitClassifier(), torch.full((2, 1, 28, 28), 255.0))
    with pytest.raises(UserError, match="float"):
        clf.predict(DigitClassifier(), torch.zeros(2, 1, 28, 28, dtype=torch.uint8))


def test_metrics_are_registered():
    assert METRICS.get("class_coverage") is class_coverage
    assert METRICS.get("conditional_accuracy") is conditional_accuracy
    assert METRICS.get("classifier_fid") is classifier_fid


def test_random_shift_translates_each_image():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 1, 28, 28, generator=g) * 2 - 1
    out = random_shift(x, 2, g)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), value=-1.0)  # [16, 1, 32, 32]
    for n in range(len(x)):
        crops = [padded[n, :, i : i + 28, j : j + 28] for i in range(5) for j in range(5)]
        assert any(torch.equal(out[n], c) for c in crops)
    assert not torch.equal(out, x)  # 16 images all at offset 0 has probability 25^-16


# ---------------------------------------------------------------------------------------------
# the cache and the command line


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_save_load_round_trip(tmp_cache):
    torch.manual_seed(3)
    net = DigitClassifier().eval()
    info = {"test_accuracy": 0.5, "epochs": 1, "seed": 3}
    path = save_classifier(net, "mnist", info)
    assert path == tmp_cache / "classifiers" / "mnist.safetensors"
    assert [p.name for p in path.parent.iterdir()] == ["mnist.safetensors"]  # no temp file left
    loaded = load_classifier("mnist")
    assert not loaded.training and loaded.info["test_accuracy"] == 0.5
    assert loaded.info["format"] == clf.FORMAT and loaded.info["seed"] == 3
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    assert_close(loaded(x), net(x))


def test_missing_classifier_says_how_to_train(tmp_cache):
    with pytest.raises(UserError, match="gankit classifier train --data fashion-mnist"):
        load_classifier("fashion-mnist")


def test_outdated_classifier_asks_for_force(tmp_cache):
    path = tmp_cache / "classifiers" / "mnist.safetensors"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a safetensors file")
    assert clf.cached_info("mnist") is None
    with pytest.raises(UserError, match="--force"):
        load_classifier("mnist")


def test_unknown_data_lists_the_supported_ones():
    with pytest.raises(UserError, match="mnist, fashion-mnist, usps, cifar10"):
        load_classifier("svhn")


def test_cli_unknown_data_is_one_line(capsys):
    assert main(["classifier", "train", "--data", "svhn"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gankit: error: ") and "fashion-mnist" in err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
        (["--device", "gpu0"], "cuda:N"),
    ],
)
def test_cli_bad_flags(tmp_cache, data_root, capsys, flags, message):
    argv = ["classifier", "train", "--data", "mnist", "--data-dir", str(data_root), *flags]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_cli_keeps_a_cached_classifier(tmp_cache, monkeypatch, capsys):
    save_classifier(DigitClassifier(), "mnist", {"test_accuracy": 0.9912})

    def fake_training(data, root, epochs=None, device="cpu"):
        if not force:
            raise AssertionError("a cached classifier must not be trained again")
        return DigitClassifier(), {"test_accuracy": 0.125, "epochs": epochs, "seconds": 1.0}

    monkeypatch.setattr(clf, "train_classifier", fake_training)
    force = False
    assert main(["classifier", "train", "--data", "mnist"]) == 0
    out = capsys.readouterr().out
    assert "already cached (test accuracy 99.12%)" in out and "--force" in out
    force = True
    assert main(["classifier", "train", "--data", "mnist", "--force", "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy 12.50% after 2 epochs" in out
    assert f"saved {tmp_cache / 'classifiers' / 'mnist.safetensors'}" in out
    assert clf.cached_info("mnist")["test_accuracy"] == 0.125
