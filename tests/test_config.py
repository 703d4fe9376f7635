"""Config: strict overrides, presets, and the YAML round trip."""

import pytest

from gankit import UserError
from gankit import config as C


def test_default_is_the_embedded_ring_gan():
    cfg = C.load()
    assert cfg.data.name == "ring"
    assert cfg.train.variant == "gan" and cfg.train.g_loss == "nonsaturating"


def test_overrides_are_typed():
    cfg = C.load(None, ["train.steps=12", "train.lr_g=1e-4", "model.dropout=0.3", "log.quiet=true"])
    assert cfg.train.steps == 12 and isinstance(cfg.train.steps, int)
    assert cfg.train.lr_g == pytest.approx(1e-4)
    assert cfg.model.dropout == pytest.approx(0.3)
    assert cfg.log.quiet is True


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("train.stepz=3", "unknown config key train.stepz"),
        ("nope=1", "unknown config key nope"),
        ("train.steps=abc", "train.steps must be an integer"),
        ("train.steps=1.5", "train.steps must be an integer"),
        ("train.g_loss=hinge", "train.g_loss must be one of"),
        ("train.steps=0", "train.steps must be positive"),
        ("train.label_smoothing=0.7", "label_smoothing"),
        ("log.quiet=maybe", "log.quiet must be true or false"),
        ("device=gpu", "device must be"),
        ("train", "must look like key=value"),
    ],
)
def test_bad_overrides_name_the_key(override, fragment):
    with pytest.raises(UserError, match=fragment.replace("(", r"\(")):
        C.load(None, [override])


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(UserError, match="unknown preset 'mnits'.*mnist-gan"):
        C.load("mnits")


def test_every_preset_loads_and_round_trips(tmp_path):
    names = list(C.presets())
    assert {"ring", "grid", "gauss1d", "mnist-gan", "mnist-dcgan"} <= set(names)
    for name in names:
        cfg = C.load(name)
        assert cfg.name == name
        path = tmp_path / f"{name}.yaml"
        path.write_text(cfg.to_yaml())
        assert C.load(path) == cfg


def test_ring_preset_equals_embedded_default():
    assert C.load("ring") == C.load()


def test_yaml_file_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        C.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2")
    with pytest.raises(UserError, match="not valid YAML"):
        C.load(bad)
    nested = tmp_path / "nested.yaml"
    nested.write_text("train: 5\n")
    with pytest.raises(UserError, match="train must be a mapping"):
        C.load(nested)
