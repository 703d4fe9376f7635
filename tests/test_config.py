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
        ("train.g_steps=0", "train.g_steps must be positive"),
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


# --- files that are not UTF-8, duplicate keys, folders --------------------------------------


@pytest.mark.parametrize(
    "raw, byte",
    [(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "0x89 at offset 0"), (b"name: caf\xe9\n", "0xe9")],
)
def test_config_file_that_is_not_utf8_is_one_sentence(tmp_path, raw, byte):
    path = tmp_path / "my.yaml"
    path.write_bytes(raw)
    with pytest.raises(UserError, match=rf"config file .*my\.yaml is not UTF-8 text \(byte {byte}"):
        C.load(path)


def test_utf8_file_with_bom_loads(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfseed: 4\n")
    assert C.load(path).seed == 4


@pytest.mark.parametrize(
    "text, key, lines",
    [
        ("seed: 1\nseed: 2\n", "seed", "lines 1 and 2"),
        ("train:\n  steps: 5\n  lr_g: 0.01\n  steps: 6\n", "train.steps", "lines 2 and 4"),
        ("data:\n  root: {a: 1, a: 2}\n", "data.root.a", "line 2"),
        ("train: {steps: 1}\nlog: {every: 1}\ntrain: {steps: 2}\n", "train", "lines 1 and 3"),
    ],
)
def test_duplicate_yaml_keys_name_the_key_and_line(tmp_path, text, key, lines):
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=rf"gives the key {key} twice \({lines}\); keep one"):
        C.load(path)


def test_yaml_merge_key_override_is_not_a_duplicate():
    assert C._yaml_load("a: &x {k: 1, j: 2}\nb:\n  <<: *x\n  k: 3\n")["b"] == {"k": 3, "j": 2}
    with pytest.raises(C.DuplicateKeyError, match="duplicate key b.k"):
        C._yaml_load("a: &x {k: 1}\nb:\n  <<: *x\n  k: 3\n  k: 4\n")


def test_every_preset_is_read_with_the_duplicate_check(monkeypatch, tmp_path):
    (tmp_path / "twice.yaml").write_text("seed: 1\nseed: 2\n")
    monkeypatch.setattr(C, "PRESET_DIR", tmp_path)
    with pytest.raises(UserError, match=r"twice\.yaml gives the key seed twice"):
        C.load("twice")


def test_duplicate_key_in_an_override_value():
    with pytest.raises(UserError, match=r"override 'data=\{a: 1, a: 2\}' gives the key data\.a"):
        C.load(None, ["data={a: 1, a: 2}"])


def test_config_source_that_is_a_folder(tmp_path):
    with pytest.raises(UserError, match="is a folder, not a config file; pass a YAML file or"):
        C.load(tmp_path)
    run = tmp_path / "run.yaml"  # a folder with a YAML-looking name
    run.mkdir()
    (run / "config.yaml").write_text("seed: 1\n")
    with pytest.raises(UserError, match=r"is a folder, not a config file; pass .*config\.yaml"):
        C.load(run)


def test_empty_file_is_the_default_but_a_falsy_document_is_refused(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    assert C.load(empty).train == C.load().train
    falsy = tmp_path / "falsy.yaml"
    falsy.write_text("[]\n")
    with pytest.raises(UserError, match="must hold a mapping of keys to values"):
        C.load(falsy)


def test_unknown_keys_of_mixed_types_are_one_sentence(tmp_path):
    path = tmp_path / "mixed.yaml"
    path.write_text("1: a\nfoo: b\n")
    with pytest.raises(UserError, match="unknown config key 1; valid keys here"):
        C.load(path)


# --- finite numbers and value ranges ---------------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "nan", "1e999", "-.inf", ".nan", "1" + "0" * 400])
def test_float_values_must_be_finite(value):
    with pytest.raises(UserError, match="^train.lr_g must be a finite number, got"):
        C.load(None, [f"train.lr_g={value}"])


def test_float_values_in_a_file_must_be_finite(tmp_path):
    path = tmp_path / "inf.yaml"
    path.write_text("model:\n  dropout: .nan\n")
    with pytest.raises(UserError, match="^model.dropout must be a finite number, got nan"):
        C.load(path)


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.clip=0", "train.clip is now variant.clip, an option of its variant"),
        ("train.gp_weight=1", "train.gp_weight is now variant.gp_weight, an option of"),
        ("model.leak=1", "model.leak must be in [0, 1) (0 is a plain ReLU), got 1.0"),
        ("model.leak=-0.2", "model.leak must be in [0, 1)"),
        ("seed=9223372036854775808", "seed must be an integer between -2**63 and 2**63 - 1"),
        ("seed=-1", "seed must be in 0..4294967295, got -1"),
        ("seed=4294967296", "seed must be in 0..4294967295, got 4294967296"),
        ("train.batch_size=1e30", "train.batch_size must be an integer, got '1e30'"),
        ("device=cuda:\u0663", "device must be auto, cpu, cuda, cuda:N or mps"),
    ],
)
def test_range_checks(override, message):
    with pytest.raises(UserError) as e:
        C.load(None, [override])
    assert str(e.value).startswith(message)


@pytest.mark.parametrize(
    "override",
    [
        "variant.gp_weight=0",
        "variant.anything=1",  # a variant's own keys are checked when the variant is built
        "model.leak=0",
        "seed=0",
        "seed=4294967295",
        "device=cuda:1",
    ],
)
def test_boundary_values_are_accepted(override):
    C.load(None, [override])


@pytest.mark.parametrize("key", ["name", "out", "data.root", "data.path", "eval.inception_weights"])
def test_paths_with_a_nul_character_are_refused(key):
    with pytest.raises(UserError, match=rf"^{key} holds a NUL character"):
        C.load(None, {key: "a\0b"})


@pytest.mark.parametrize("override", [".steps=1", "train..steps=1", "train.=1"])
def test_override_key_with_an_empty_part(override):
    with pytest.raises(UserError, match="has an empty part in its key"):
        C.load(None, [override])


# --- the forms of source and overrides -------------------------------------------------------


def test_overrides_as_one_string():
    assert C.load("ring", "train.steps=10").train.steps == 10
    cfg = C.load("grid", "train.steps=10  seed=3\n log.quiet=true")
    assert (cfg.name, cfg.train.steps, cfg.seed, cfg.log.quiet) == ("grid", 10, 3, True)
    assert C.load(None, "") == C.load()
    with pytest.raises(UserError, match="override 'train' must look like key=value"):
        C.load(None, "train.steps=3 train")


def test_overrides_as_a_tuple():
    assert C.load(None, ("train.steps=7", "seed=2")).train.steps == 7


def test_overrides_as_a_dict_nested_dotted_or_both():
    assert C.load(None, {"train": {"steps": 10}}).train.steps == 10
    assert C.load(None, {"train.steps": 10}).train.steps == 10
    cfg = C.load(None, {"train.steps": 11, "train": {"lr_g": 0.5}, "log": {"quiet": True}})
    assert (cfg.train.steps, cfg.train.lr_g, cfg.log.quiet) == (11, 0.5, True)
    assert C.load(None, {"train": {}}) == C.load()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"train": {"steps": 1}, "train.steps": 2}, "overrides give train.steps twice"),
        ({"train": 5, "train.steps": 2}, "conflicts with another override of train"),
        ({1: 2}, "override keys must be non-empty strings such as 'train.steps', got 1"),
        ({"train.stepz": 1}, "unknown config key train.stepz"),
        ({"train": {"steps": "many"}}, "train.steps must be an integer, got 'many'"),
        ({"train..steps": 1}, "has an empty part in its key"),
    ],
)
def test_bad_dict_overrides(overrides, message):
    with pytest.raises(UserError) as e:
        C.load(None, overrides)
    assert message in str(e.value)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (5, "overrides must be a list of key=value strings, one such string or a dict, got int"),
        ({"train.steps=5"}, "overrides must be a list of key=value strings, one such string or"),
        (["train.steps=5", 3], "overrides must be key=value strings, got 3 (int) in the list"),
    ],
)
def test_overrides_of_another_type_are_refused(overrides, message):
    with pytest.raises(UserError) as e:
        C.load(None, overrides)
    assert str(e.value).startswith(message)


def test_mapping_value_override_merges_with_earlier_dotted_ones():
    cfg = C.load(None, ["train.steps=3", "train={lr_g: 0.5}"])
    assert (cfg.train.steps, cfg.train.lr_g) == (3, 0.5)
    assert C.load(None, ["train.steps=3", "train.steps=4"]).train.steps == 4  # last one wins


def test_dict_source_is_a_whole_config_checked_strictly():
    cfg = C.load({"data": {"name": "grid"}, "train": {"steps": 4}}, ["seed=2"])
    assert (cfg.name, cfg.data.name, cfg.train.steps, cfg.seed) == ("ring", "grid", 4, 2)
    assert C.load({"name": "mine"}).name == "mine"
    assert C.load(C.load("grid").to_dict()) == C.load("grid")  # a dict round trip
    assert C.load(C.load("grid")) == C.load("grid")  # a Config is a source too
    with pytest.raises(UserError, match="unknown config key train.steps; valid keys here"):
        C.load({"train.steps": 4})  # dotted keys are for overrides, not for a config
    with pytest.raises(UserError, match="train.steps must be positive"):
        C.load({"train": {"steps": 0}})


@pytest.mark.parametrize("source, kind", [(3, "int"), (b"ring", "bytes"), (["ring"], "list")])
def test_config_source_of_another_type_is_refused(source, kind):
    with pytest.raises(
        UserError,
        match=rf"config source must be a preset name, a YAML path, a dict, a Config or None, "
        rf"got {kind}$",
    ):
        C.load(source)


def test_empty_config_source():
    with pytest.raises(UserError, match="the config source is empty"):
        C.load("")


def test_normalize_overrides_gives_one_nested_dict():
    want = {"train": {"steps": 10, "lr_g": 0.5}, "seed": 1}
    assert C.normalize_overrides(["train.steps=10", "train.lr_g=0.5", "seed=1"]) == want
    assert C.normalize_overrides("train.steps=10 train.lr_g=0.5 seed=1") == want
    assert C.normalize_overrides({"train.steps": 10, "train": {"lr_g": 0.5}, "seed": 1}) == want
    assert C.normalize_overrides(None) == {}


def test_with_overrides_applies_to_a_config_and_keeps_it():
    base = C.load("grid")
    cfg = C.with_overrides(base, ["train.steps=3"])
    assert (cfg.name, cfg.train.steps, base.train.steps) == ("grid", 3, C.load("grid").train.steps)
    assert C.with_overrides(base, {"train.steps": 3}) == C.with_overrides(base, "train.steps=3")
    assert C.with_overrides(base, None) == base
    with pytest.raises(UserError, match="train.lr_g must be a finite number"):
        C.with_overrides(base, "train.lr_g=inf")
    with pytest.raises(UserError, match="with_overrides takes a Config, got str; use load"):
        C.with_overrides("grid", [])


def test_check_keys_refuses_unknown_keys_and_lists_the_set_ones():
    got = C.check_keys(["train.steps=3", "log={every: 3, quiet: true}", "device=cpu"])
    assert got == ["train.steps", "log.every", "log.quiet", "device"]
    assert C.check_keys({"train": {"steps": 5}}) == ["train.steps"]
    assert C.check_keys("train.steps=bad") == ["train.steps"]  # keys only; values are load's
    assert C.check_keys(None) == []
    with pytest.raises(UserError, match="^unknown config key trian; valid keys here: data,"):
        C.check_keys(["trian.steps=5"])
    with pytest.raises(
        UserError, match="^unknown config key log.evry; valid keys here: checkpoint_every, every,"
    ):
        C.check_keys("log.evry=5")
