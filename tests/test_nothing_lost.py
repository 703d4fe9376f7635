"""Nothing is lost: evaluations merge, a run folder is locked while it is written, a run stopped
before its first checkpoint restarts in place, an unreadable newest checkpoint is skipped, a
damaged export is refused, and every failure names a checkpoint that exists."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from torch.testing import assert_close

import gankit
from gankit.api import evaluate
from gankit.errors import UserError
from gankit.training import checkpoint
from gankit.training.trainer import Trainer
from gankit.variants.gan import GAN

QUIET = ["log.quiet=true", "log.every=5"]


def _train(tmp_path, *over):
    return gankit.train(None, [f"out={tmp_path}", *QUIET, *over])


# --------------------------------------------------------------------------------- evaluation
def test_eval_of_the_same_step_with_other_metrics_merges(tmp_path):
    run = _train(tmp_path, "train.steps=20")
    first = evaluate(run.dir, "modes", seed=1)
    path = run.dir / "eval" / "step_0000020.json"
    second = evaluate(run.dir, "energy", n=300, seed=1)
    assert second["kept"] == ["modes"]
    merged = json.loads(path.read_text())
    for key in ("modes_captured", "high_quality", "reverse_kl"):
        assert merged[key] == first[key], key  # the first evaluation survives
    assert merged["energy_distance"] == second["energy_distance"]
    assert set(merged["protocols"]) == {"modes", "energy"}
    assert merged["protocols"]["energy"]["n_fake"] == 300
    # the same metric again replaces only its own value and protocol
    third = evaluate(run.dir, "energy", n=200, seed=2)
    merged = json.loads(path.read_text())
    assert merged["energy_distance"] == third["energy_distance"] != second["energy_distance"]
    assert merged["protocols"]["energy"]["n_fake"] == 200
    assert merged["modes_captured"] == first["modes_captured"]


def test_eval_never_overwrites_results_of_another_step(tmp_path):
    run = _train(tmp_path, "train.steps=20", "log.checkpoint_every=10")
    out = tmp_path / "e.json"
    evaluate(run.dir, "modes", out=out)
    before = out.read_bytes()
    with pytest.raises(UserError, match="holds results of another evaluation"):
        evaluate(run.dir / "checkpoints" / "step_0000010.pt", "modes", out=out)
    assert out.read_bytes() == before


# ------------------------------------------------------------------------------------- lock
def test_a_run_being_trained_is_locked(tmp_path):
    run = _train(tmp_path, "train.steps=10")
    holder = Trainer(gankit.load_config(run.dir / "config.yaml"), run_dir=run.dir, resume=True)
    rows = (run.dir / "metrics.jsonl").read_text()
    try:
        with pytest.raises(UserError, match="is being trained by another gankit process"):
            gankit.resume(run.dir, ["train.steps=20"])
        # a fresh run of the same name does not wait for it: it takes the next folder
        other = _train(tmp_path, "train.steps=3")
        assert other.dir.name == "ring-2"
    finally:
        holder.lock.release()
    assert (run.dir / "metrics.jsonl").read_text() == rows
    assert gankit.resume(run.dir, ["train.steps=15"]).summary["steps"] == 15  # free again


def test_the_lock_is_released_when_training_fails(tmp_path, monkeypatch):
    real_loss = GAN.loss

    def poisoned(self, phase, nets, batch):
        out = real_loss(self, phase, nets, batch)
        out.total = out.total * float("nan")
        return out

    monkeypatch.setattr(GAN, "loss", poisoned)
    with pytest.raises(gankit.TrainingDiverged, match="no checkpoint was written yet"):
        _train(tmp_path, "train.steps=10")
    monkeypatch.setattr(GAN, "loss", real_loss)
    # the corrected retry reuses the folder (no checkpoint in it) and is not locked out
    run = _train(tmp_path, "train.steps=10")
    assert run.dir.name == "ring" and run.summary["steps"] == 10


# --------------------------------------------------------------------- stopped before step 1
def _kill_before_first_checkpoint(tmp_path) -> None:
    """Start a CLI run whose first checkpoint is far away, wait for logged rows, kill -9 it."""
    cmd = [sys.executable, "-m", "gankit.cli", "train", f"out={tmp_path}", "--quiet"]
    cmd += ["train.steps=100000", "log.every=5", "log.checkpoint_every=100000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = tmp_path / "ring" / "metrics.jsonl"
    deadline = time.time() + 90
    while time.time() < deadline and not (metrics.exists() and metrics.stat().st_size > 0):
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert metrics.stat().st_size > 0 and not checkpoint.checkpoints(tmp_path / "ring")


def test_a_run_killed_before_its_first_checkpoint_restarts_in_place(tmp_path):
    _kill_before_first_checkpoint(tmp_path)
    run = gankit.resume(tmp_path / "ring", ["train.steps=10"])  # from step 0, its own config
    assert run.dir == tmp_path / "ring" and run.summary["steps"] == 10
    rows = [json.loads(line) for line in (run.dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [5, 10]  # the killed run's rows are gone
    # and equals a run trained from scratch: the restart really began at step 0
    fresh = _train(tmp_path / "b", "train.steps=10")
    a, b = (
        checkpoint.load(checkpoint.latest(run.dir)),
        checkpoint.load(checkpoint.latest(fresh.dir)),
    )
    for k in a["nets"]["G"]:
        assert_close(a["nets"]["G"][k], b["nets"]["G"][k], rtol=0, atol=0)


def test_a_fresh_run_reuses_a_folder_killed_before_its_first_checkpoint(tmp_path):
    _kill_before_first_checkpoint(tmp_path)
    run = _train(tmp_path, "train.steps=10")
    assert run.dir.name == "ring" and not (tmp_path / "ring-2").exists()


def test_a_failed_start_leaves_no_folder_in_the_way(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("no tensorboard")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(UserError, match="pip install tensorboard"):
        _train(tmp_path, "train.steps=3", "log.tensorboard=true")
    assert not (tmp_path / "ring").exists()
    monkeypatch.setattr(builtins, "__import__", real_import)
    assert _train(tmp_path, "train.steps=3").dir.name == "ring"


# -------------------------------------------------------------------------------- checkpoints
def test_resume_skips_an_unreadable_newest_checkpoint(tmp_path, capsys):
    run = _train(tmp_path, "train.steps=20", "log.checkpoint_every=10")
    newest = checkpoint.latest(run.dir)
    newest.write_bytes(newest.read_bytes()[:1000])  # a crash mid-copy, a full disk
    (run.dir / "checkpoints" / f".step_0000030.pt.{2**22 + 7}.tmp").write_bytes(b"half")
    capsys.readouterr()
    resumed = gankit.resume(run.dir, ["train.steps=30"])
    err = capsys.readouterr().err
    assert "skipped the unreadable checkpoint" in err and "step_0000020.pt" in err
    assert "using step_0000010.pt" in err
    assert "removed 1 temporary file" in err
    assert not list((run.dir / "checkpoints").glob(".*.tmp"))
    assert resumed.summary["steps"] == 30
    # it continued from step 10: the same weights as a run that resumes from that checkpoint
    ref = _train(tmp_path / "ref", "train.steps=20", "log.checkpoint_every=10")
    ref = gankit.resume(ref.dir / "checkpoints" / "step_0000010.pt", ["train.steps=30"])
    a, b = (checkpoint.load(checkpoint.latest(r.dir))["nets"]["G"] for r in (resumed, ref))
    for k in a:
        assert_close(a[k], b[k], rtol=0, atol=0)


def test_load_generator_falls_back_with_a_warning(tmp_path):
    run = _train(tmp_path, "train.steps=20", "log.checkpoint_every=10")
    newest = checkpoint.latest(run.dir)
    newest.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="skipped the unreadable checkpoint"):
        gen = gankit.load_generator(run.dir)
    assert gen.step == 10


def test_resume_from_a_checkpoint_file_moves_newer_ones_aside(tmp_path):
    run = _train(tmp_path, "train.steps=20", "log.checkpoint_every=10")
    ten = run.dir / "checkpoints" / "step_0000010.pt"
    twenty = (run.dir / "checkpoints" / "step_0000020.pt").read_bytes()
    resumed = gankit.resume(ten, ["train.steps=15"])
    assert resumed.summary["steps"] == 15
    assert (run.dir / "checkpoints" / "superseded" / "step_0000020.pt").read_bytes() == twenty
    assert [p.name for p in checkpoint.checkpoints(run.dir)] == [
        "step_0000010.pt",
        "step_0000015.pt",
    ]


def test_resume_below_the_steps_done_is_refused(tmp_path):
    run = _train(tmp_path, "train.steps=20")
    config = (run.dir / "config.yaml").read_text()
    with pytest.raises(UserError, match="beyond train.steps=10; resume with train.steps=20"):
        gankit.resume(run.dir, ["train.steps=10"])
    assert (run.dir / "config.yaml").read_text() == config  # not rewritten


def test_resume_names_an_unknown_key_as_unknown(tmp_path):
    run = _train(tmp_path, "train.steps=5")
    with pytest.raises(UserError, match="unknown config key trian"):
        gankit.resume(run.dir, ["trian.steps=10"])
    with pytest.raises(UserError, match="cannot change seed when resuming"):
        gankit.resume(run.dir, "seed=3")  # one string works too


def test_ctrl_c_during_a_save_names_the_checkpoint_that_survived(tmp_path, monkeypatch, capsys):
    run = _train(tmp_path, "train.steps=10", "log.checkpoint_every=10")
    real_save = checkpoint.save_atomic

    def interrupted_save(obj, path):  # the second Ctrl-C arrives in the middle of the write
        with checkpoint.atomic_path(path) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "save_atomic", interrupted_save)
    capsys.readouterr()
    with pytest.raises(KeyboardInterrupt):
        gankit.resume(run.dir, ["train.steps=20"])
    err = capsys.readouterr().err
    assert f"the last good checkpoint is {run.dir / 'checkpoints' / 'step_0000010.pt'}" in err
    monkeypatch.setattr(checkpoint, "save_atomic", real_save)
    assert [p.name for p in checkpoint.checkpoints(run.dir)] == ["step_0000010.pt"]
    assert not list((run.dir / "checkpoints").glob(".*.tmp"))
    assert gankit.resume(run.dir, ["train.steps=20"]).summary["steps"] == 20  # lock released


# ------------------------------------------------------------------------------------- exports
def test_a_flipped_bit_in_an_export_is_refused(tmp_path):
    run = _train(tmp_path, "train.steps=5")
    out = gankit.export(run.dir, tmp_path / "G.safetensors")
    x = gankit.load_generator(out).sample(4, seed=0)
    assert_close(x, gankit.load_generator(run.dir).sample(4, seed=0), rtol=0, atol=0)
    data = bytearray(out.read_bytes())
    header = int.from_bytes(data[:8], "little")
    data[8 + header + 5] ^= 0x10  # one bit of one weight
    out.write_bytes(bytes(data))
    with pytest.raises(UserError, match="is damaged"):
        gankit.load_generator(out)


def test_tensor_checksum_sees_dtype_shape_and_every_byte():
    from gankit.api import tensors_sha256

    a = {"w": torch.arange(6, dtype=torch.float32)}
    assert tensors_sha256(a) == tensors_sha256({"w": torch.arange(6, dtype=torch.float32)})
    assert tensors_sha256(a) != tensors_sha256({"w": a["w"].reshape(2, 3)})
    assert tensors_sha256(a) != tensors_sha256({"w": a["w"].double()})
    b = a["w"].clone()
    b.view(torch.int32)[3] ^= 1  # the lowest bit of one float
    assert tensors_sha256(a) != tensors_sha256({"w": b})
    assert tensors_sha256({"x": torch.ones(1, dtype=torch.bfloat16)})  # no numpy dtype needed


def test_stale_temporaries_of_live_writers_are_kept(tmp_path):
    from gankit.files import remove_stale_temporaries

    live = tmp_path / f".a.pt.{os.getpid()}.tmp"
    dead = tmp_path / f".b.pt.{2**22 + 11}.tmp"
    other = tmp_path / "c.tmp"
    for p in (live, dead, other):
        p.write_bytes(b"x")
    assert remove_stale_temporaries([tmp_path]) == [dead]
    assert live.exists() and other.exists() and not dead.exists()
