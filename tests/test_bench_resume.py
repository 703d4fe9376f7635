"""The benchmarks' resumable machinery (benchmarks/_common.py): a finished run is skipped, an
interrupted one resumes exactly, a folder of another experiment is refused, measurements are
cached under their settings, and the CPU account survives a killed session."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import _common  # noqa: E402

TINY = ["train.batch_size=32", "model.width=16", "log.every=5", "log.checkpoint_every=5"]


def test_results_cache_is_keyed_by_settings(tmp_path):
    path = tmp_path / "results.json"
    res = _common.Results(path)
    res.put("a", {"n": 10, "pair": (1, 2)}, {"fid": 3.5})
    again = _common.Results(path)  # a later session
    assert again.get("a", {"n": 10, "pair": [1, 2]}) == {"fid": 3.5}
    assert again.get("a", {"n": 20, "pair": [1, 2]}) is None
    res.put("b", {}, 1)  # merged with what is on disk, not overwriting it
    assert set(json.loads(path.read_text())) == {"a", "b"}


def test_train_skip_resume_and_refuse(tmp_path):
    notes = []
    run, s, how = _common.train_or_resume("ring", tmp_path, "r", 12, TINY, notes.append)
    assert how == "trained" and s["steps"] == 12 and not s["interrupted"]
    assert _common.train_or_resume("ring", tmp_path, "r", 12, TINY)[2] == "done"
    # a session killed after step 10: its newest checkpoint and summary are gone
    (run / "checkpoints" / "step_0000012.pt").unlink()
    (run / "summary.json").write_text('{"steps": 1')  # half written
    _, s2, how = _common.train_or_resume("ring", tmp_path, "r", 12, TINY, notes.append)
    assert how == "resumed" and notes[-1] == "r: resuming from step 10 to 12"
    assert s2["high_quality"] == s["high_quality"] and s2["loss_D"] == s["loss_D"]
    cpu, complete = _common.cpu_seconds(run, 12)
    assert cpu > 0 and complete
    with pytest.raises(SystemExit, match="train.lr_g"):
        _common.train_or_resume("ring", tmp_path, "r", 12, [*TINY, "train.lr_g=0.01"])


def test_cpu_account_estimates_a_killed_session(tmp_path):
    segs = [{"from": 0, "to": 40, "cpu_s": 4.0}, {"from": 60, "to": 100, "cpu_s": 4.0}]
    (tmp_path / _common.LEDGER).write_text(json.dumps(segs))
    cpu, complete = _common.cpu_seconds(tmp_path, 100)  # steps 40-60 ran in a killed session
    assert cpu == pytest.approx(10.0) and not complete


def test_ring_pacgan_preset_is_the_modes_benchmark_row() -> None:
    """The preset a user trains is the row the README's table measured: same config."""
    import dataclasses

    import modes
    from gankit import config

    row = [*modes.remedy_overrides("veegan+pac2"), "train.steps=6000"]
    preset, bench = config.load("ring-pacgan"), config.load("ring", row)
    drop = {"name": None, "description": None}
    assert {**dataclasses.asdict(preset), **drop} == {**dataclasses.asdict(bench), **drop}
    assert preset.train.pac == 2 and preset.model.options["d_maxout"] == 5


def test_grid_pacgan_preset_is_the_modes_benchmark_row() -> None:
    """grid-pacgan is the grid row the README's table measured (the veegan nets, an 8-d latent)."""
    import dataclasses

    import modes
    from gankit import config

    row = ["data.name=grid", *modes.remedy_overrides("veegan+pac2"), "model.z_dim=8"]
    row += ["train.lr_g=0.00025", "train.lr_d=0.00025", "train.lr_decay_start=0.5"]
    row += ["train.steps=40000"]
    preset, bench = config.load("grid-pacgan"), config.load("ring", row)
    drop = {"name": None, "description": None}
    assert {**dataclasses.asdict(preset), **drop} == {**dataclasses.asdict(bench), **drop}
    assert preset.data.name == "grid" and preset.model.z_dim == 8 and preset.train.pac == 2


def test_modes_no_plain_keeps_only_the_remedy_rows() -> None:
    import argparse

    import modes

    args = argparse.Namespace(variants=["gan", "lsgan"], remedies=["pac2"], extra=["train.pac=4"])
    both = modes._rows(argparse.Namespace(**vars(args), no_plain=False))
    only = modes._rows(argparse.Namespace(**vars(args), no_plain=True))
    assert [r["remedy"] for r in both] == ["", "pac2", "train.pac=4"] * 2
    assert [r["remedy"] for r in only] == ["pac2", "train.pac=4"] * 2
    assert only[0]["extra"] == ["train.pac=2"] and only[1]["extra"] == ["train.pac=4"]


def test_modes_run_names_fit_a_file_name() -> None:
    import argparse

    import modes

    long = " ".join(f"model.options.option_{i}=value_{i}" for i in range(14))  # 441 characters
    other = long.replace("value_13", "value_14")  # differs only past the cut
    args = argparse.Namespace(variants=["gan"], remedies=[], extra=[long, other, "train.pac=2"])
    rows = modes._rows(argparse.Namespace(**vars(args), no_plain=True))
    assert all(len(r["slug"]) <= modes.MAX_SLUG for r in rows)
    assert rows[0]["slug"] != rows[1]["slug"] and rows[2]["slug"] == "train.pac=2"
    assert rows[0]["slug"].startswith("model.options.option_0=value_0,")


def test_a_benchmark_answers_bad_input_in_one_line(tmp_path):
    env = {**os.environ, "GANKIT_DATA": str(tmp_path / "nowhere")}
    args = ["--presets", "mnist-gan", "--steps", "2", "--n", "10", "--no-floor"]
    out = tmp_path / "q"
    script = str(REPO / "benchmarks" / "quality.py")
    p = subprocess.run(
        [sys.executable, script, *args, "--out", str(out)], env=env, capture_output=True, text=True
    )
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("quality.py: error: data root "), p.stderr


@pytest.mark.parametrize(
    "bad, says",
    [(["--data", "nope"], "unknown data set 'nope'"), (["model.nope=3"], "unknown config key")],
)
def test_modes_refusing_every_row_is_one_line(tmp_path, bad, says):
    """A mistake that refuses every row (a data set, a key) is one line and status 2, not the same
    reason once per variant and an empty table."""
    script = str(REPO / "benchmarks" / "modes.py")
    p = subprocess.run(
        [sys.executable, script, *bad, "--seeds", "1", "--out", str(tmp_path / "m")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert p.returncode == 2 and "Traceback" not in p.stderr and not p.stdout.strip(), p.stdout
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("modes.py: error: ") and says in lines[0]
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


def test_a_benchmark_in_the_background_still_takes_ctrl_c(tmp_path):
    """Started with SIGINT ignored (a script's `cmd &`), run_main restores it, so `kill -INT`
    still asks the trainings to checkpoint and stop."""
    import signal

    code = (
        "import signal, sys; sys.path.insert(0, sys.argv[1]); import _common; "
        "_common.run_main(lambda: 0 if signal.getsignal(signal.SIGINT) is "
        "signal.default_int_handler else 3)"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "benchmarks")],
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert p.returncode == 0


@pytest.mark.parametrize(
    "preset, base, steps",
    [
        ("mnist-cdcgan-ema", "mnist-cdcgan", 15000),  # the MNIST FID row (5.69)
        ("mnist-cgan-ema", "mnist-cgan", 40000),  # the conditional-accuracy row (98.1 %)
        ("fashion-cdcgan-ema", "fashion-cdcgan", 15000),  # the Fashion-MNIST FID row (12.47)
    ],
)
def test_ema_preset_is_the_measured_row(preset, base, steps) -> None:
    """Each *-ema preset is the row the README measured: its base preset for ``steps`` steps,
    sampled from the moving average of G (``benchmarks/quality.py --steps N train.ema=0.999
    train.ema_warmup=true``)."""
    import dataclasses

    from gankit import config

    row = [f"train.steps={steps}", "train.ema=0.999", "train.ema_warmup=true"]
    got, bench = config.load(preset), config.load(base, row)
    drop = {"name": None, "description": None}
    assert {**dataclasses.asdict(got), **drop} == {**dataclasses.asdict(bench), **drop}
