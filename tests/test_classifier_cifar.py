"""The CIFAR-10 evaluation classifier: the recipe builds, reads 3-channel images of any side,
learns on a toy set in a few steps, round-trips through the cache and is what cfid, coverage and
cacc use for cifar10 runs. No full training here (the README states its measured accuracy)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.testing import assert_close

from gankit import data as data_module
from gankit.cli import main
from gankit.config import Config
from gankit.data.images import ImageSource
from gankit.errors import UserError
from gankit.evaluation import CLASSIFIER_FOR, check
from gankit.metrics import classifier as clf
from gankit.metrics.classifier import CifarClassifier, DigitClassifier

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_cifar_recipe_builds_the_rgb_network():
    torch.manual_seed(0)
    net = clf.build_classifier("cifar10")
    assert isinstance(net, CifarClassifier) and net.image_shape == (3, 32, 32)
    assert isinstance(clf.build_classifier("mnist"), DigitClassifier)
    x = torch.rand(5, 3, 32, 32) * 2 - 1
    assert net(x).shape == (5, 10)
    assert net.features(x).shape == (5, clf.FEATURE_DIM)
    x64 = torch.rand(2, 3, 64, 64) * 2 - 1  # other sides are resized to 32
    assert net.eval()(x64).shape == (2, 10)
    assert "resized to 3x32x32" in clf.input_protocol((3, 64, 64), net.image_shape)
    assert clf.input_protocol((3, 32, 32), net.image_shape) == "3x32x32 as is"


@pytest.mark.parametrize("shape", [(4, 1, 32, 32), (4, 3, 32, 31), (4, 32, 32)], ids=str)
def test_cifar_classifier_wants_square_rgb(shape):
    with pytest.raises(UserError, match=r"3-channel images for the CIFAR-10 classifier"):
        clf.predict(CifarClassifier(), torch.zeros(shape))
    with pytest.raises(UserError, match=r"\[N, 1, 28, 28\]"):  # and the MNIST one 1-channel
        clf.predict(DigitClassifier(), torch.zeros(4, 3, 32, 32))


def _toy_source(n: int, split: str) -> ImageSource:
    """``n`` noisy 32-px RGB images of two classes: 0 is reddish, 1 bluish."""
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    y = torch.arange(n) % 2  # [n]
    x = torch.randint(0, 100, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    x[torch.arange(n), 2 * y] += 100  # class 0: red channel brighter; class 1: blue
    return ImageSource("cifar10", x, y, 2, split)


def test_cifar_recipe_trains_on_a_toy_set(monkeypatch):
    recipe = dataclasses.replace(clf.RECIPES["cifar10"], batch_size=16)  # 10 steps an epoch
    monkeypatch.setitem(clf.RECIPES, "cifar10", recipe)
    monkeypatch.setattr(clf, "_source", lambda data, root, split, download: _toy_source(160, split))
    model, info = clf.train_classifier("cifar10", epochs=2, quiet=True)
    assert isinstance(model, CifarClassifier) and not model.training and model.num_classes == 2
    assert info["data"] == "cifar10" and info["epochs"] == 2
    assert info["test_accuracy"] >= 0.95  # chance is 0.5


def test_cifar_recipe_reads_rgb_32px_data(monkeypatch):
    seen = []
    monkeypatch.setattr(data_module, "build_source", lambda cfg, split: seen.append(cfg) or 0)
    clf._source("cifar10", "/data", "test", False)
    clf._source("mnist", "/data", "test", False)
    assert [(c.name, c.channels, c.size) for c in seen] == [("cifar10", 3, 32), ("mnist", 1, 28)]


def test_cifar_classifier_round_trips_through_the_cache(tmp_cache):
    torch.manual_seed(1)
    net = CifarClassifier().eval()
    path = clf.save_classifier(net, "cifar10", {"test_accuracy": 0.8, "epochs": 3, "seed": 0})
    assert path == tmp_cache / "classifiers" / "cifar10.safetensors"
    loaded = clf.load_classifier("cifar10")
    assert isinstance(loaded, CifarClassifier) and loaded.info["test_accuracy"] == 0.8
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    assert_close(loaded(x), net(x))


def test_cli_accepts_cifar10(tmp_cache, tmp_path, capsys):
    argv = ["classifier", "train", "--data", "cifar10", "--data-dir", str(tmp_path)]
    assert main(argv) == 2  # accepted: it fails only on the missing tarball
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cifar10-jpg-train.tar.gz" in err


def test_cifar10_runs_use_it(tmp_cache):
    assert CLASSIFIER_FOR["cifar10"] == "cifar10"
    cfg = Config()
    cfg.data.name, cfg.data.channels, cfg.data.classes = "cifar10", 3, True
    with pytest.raises(UserError, match="gankit classifier train --data cifar10"):
        check(cfg, "image", "cacc")  # the pre-flight looks for the cached CIFAR-10 classifier
    cfg.data.channels = 1
    with pytest.raises(UserError, match="data.channels=3"):
        check(cfg, "image", "cfid")
