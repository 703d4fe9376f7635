"""The variant contract grows without the trainer naming a variant: a variant's options live in
its own file and are read from the config's ``variant`` section as strictly as any key, its
training state is checkpointed and restored, and configs stored by an earlier gankit (options
under ``train``) still load and resume."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
import torch
import yaml

import gankit
from gankit.errors import UserError
from gankit.registry import VARIANTS
from gankit.training import checkpoint
from gankit.variants import upgrade_stored
from gankit.variants.gan import GAN

QUIET = ["log.quiet=true", "log.every=5"]


@dataclass
class CountingOptions:
    bump: int = 1  # added to the counter after every G step

    def __post_init__(self) -> None:
        if self.bump < 0:
            raise UserError(f"variant.bump must be >= 0, got {self.bump}")


@VARIANTS.register("counting-gan")
class CountingGAN(GAN):
    """A GAN whose state (a count of G steps times bump) must survive checkpoints."""

    Options = CountingOptions

    def __init__(self, cfg):
        super().__init__(cfg)
        self.count = torch.zeros((), dtype=torch.long)

    def after_step(self, phase, nets):
        if phase == "G":
            self.count += self.opts.bump

    def state_dict(self):
        return {"count": self.count.clone()}

    def load_state_dict(self, state):
        self.count = state["count"].clone()


def _train(tmp_path, *over):
    return gankit.train(None, [f"out={tmp_path}", *QUIET, *over])


def test_variant_options_are_resolved_into_the_saved_config(tmp_path):
    run = _train(tmp_path, "train.variant=counting-gan", "variant.bump=3", "train.steps=4")
    saved = yaml.safe_load((run.dir / "config.yaml").read_text())
    assert saved["variant"] == {"bump": 3}
    assert "gp_weight" not in saved["train"]  # TrainConfig keeps only what every variant shares
    run = _train(tmp_path, "train.variant=counting-gan", "train.steps=2", "name=d")
    assert yaml.safe_load((run.dir / "config.yaml").read_text())["variant"] == {"bump": 1}
    with pytest.raises(UserError, match="variant counting-gan has no option variant.bmp"):
        _train(tmp_path, "train.variant=counting-gan", "variant.bmp=3")
    with pytest.raises(UserError, match="variant.bump must be an integer, got 'x'"):
        _train(tmp_path, "train.variant=counting-gan", "variant.bump=x")
    with pytest.raises(UserError, match="variant.bump must be >= 0"):
        _train(tmp_path, "train.variant=counting-gan", "variant.bump=-1")


def test_variant_state_is_checkpointed_and_resumed(tmp_path):
    over = ["train.variant=counting-gan", "variant.bump=2", "log.checkpoint_every=3"]
    half = _train(tmp_path, *over, "train.steps=3")
    assert checkpoint.load(checkpoint.latest(half.dir))["variant"]["count"] == 6
    whole = gankit.resume(half.dir, ["train.steps=7"])
    assert checkpoint.load(checkpoint.latest(whole.dir))["variant"]["count"] == 14  # 6 + 4 * 2


def test_configs_stored_with_options_under_train_still_load_and_resume(tmp_path):
    run = gankit.train("ring-wgan-gp", [f"out={tmp_path}", *QUIET, "train.steps=4"])
    old = yaml.safe_load((run.dir / "config.yaml").read_text())
    old["train"].update(clip=0.01, gp_weight=7.0, margin=1.0, pt_weight=0.0)  # the old layout
    del old["variant"]
    (run.dir / "config.yaml").write_text(yaml.safe_dump(old))
    path = checkpoint.latest(run.dir)
    ck = checkpoint.load(path)
    ck["config"] = old
    torch.save(ck, path)
    gen = gankit.load_generator(run.dir)
    assert gen.config.variant == {"gp_weight": 7.0}
    resumed = gankit.resume(run.dir, ["train.steps=6"])
    assert resumed.config.variant == {"gp_weight": 7.0} and resumed.summary["steps"] == 6
    saved = yaml.safe_load((run.dir / "config.yaml").read_text())
    assert saved["variant"] == {"gp_weight": 7.0} and "clip" not in saved["train"]


def test_upgrade_stored_moves_only_the_variants_own_options():
    old = {"train": {"variant": "ebgan", "clip": 0.01, "gp_weight": 10.0, "margin": 0.1}}
    new = upgrade_stored(old)
    assert new["train"] == {"variant": "ebgan"} and new["variant"] == {"margin": 0.1}
    assert old["train"]["clip"] == 0.01  # the stored mapping is not changed in place
    plain = {"train": {"variant": "gan"}, "variant": {}}
    assert upgrade_stored(plain) is plain


def test_every_variant_declares_its_options_as_a_dataclass():
    for name in VARIANTS.names():
        opts = VARIANTS.get(name).Options
        assert dataclasses.is_dataclass(opts), name
        opts()  # the defaults are valid
