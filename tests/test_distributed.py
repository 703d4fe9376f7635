"""torchrun training on the CPU (gloo, 2 processes): the ranks agree, match one process with the
same global batch, stop together and resume exactly.

Each test launches ``python -m torch.distributed.run`` (torchrun) with ``--standalone`` (a free
port); ``tests/helpers/dist_train.py`` saves every rank's players so the ranks can be compared.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import gankit
from gankit.training import checkpoint

REPO = Path(__file__).resolve().parents[1]
HELPER = REPO / "tests" / "helpers" / "dist_train.py"
QUIET = ["log.quiet=true", "log.every=10", "threads=1"]


def torchrun(args: list[str], env: dict | None = None, **kw) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.Popen(
        cmd + args, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw
    )


def run_helper(dump: Path, args: list[str], env: dict | None = None, timeout: int = 240) -> str:
    dump.mkdir(parents=True, exist_ok=True)
    p = torchrun([str(HELPER), str(dump), *args], env)
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, err[-3000:]
    return out + err


def ranks(dump: Path) -> tuple[dict, dict]:
    return (torch.load(dump / "rank0.pt"), torch.load(dump / "rank1.pt"))


def read_summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        for k in a[name]:
            assert torch.equal(a[name][k], b[name][k]), f"{name}.{k} differs"


@pytest.fixture(scope="module")
def ring_pair(tmp_path_factory) -> Path:
    """A 2-process ring run, batch 64 per process, 30 steps; returns its dump folder."""
    base = tmp_path_factory.mktemp("ring2")
    run_helper(
        base / "dump",
        ["ring", "train.steps=30", "train.batch_size=64", f"out={base / 'runs'}", *QUIET],
    )
    return base


def test_two_ranks_hold_identical_weights_and_match_one_process(ring_pair, tmp_path):
    a, b = ranks(ring_pair / "dump")
    assert_same(a, b)  # DDP averaged every gradient: the ranks never drift apart
    # one process with the global batch (2 x 64) sees the same batches and latents
    gankit.train("ring", ["train.steps=30", "train.batch_size=128", f"out={tmp_path}", *QUIET])
    ck = checkpoint.load(checkpoint.checkpoints(tmp_path / "ring")[-1])
    for name in a:
        for k, v in a[name].items():
            # float32 sums in another order, through 30 Adam steps: stated tolerance 1e-5
            torch.testing.assert_close(v, ck["nets"][name][k], rtol=0, atol=1e-5)
    summary = read_summary(ring_pair / "runs" / "ring")
    assert summary["processes"] == 2 and summary["global_batch"] == 128


def test_checkpoint_holds_every_rank_and_resumes_on_one_process(ring_pair, capsys):
    run_dir = ring_pair / "runs" / "ring"
    ck = checkpoint.load(checkpoint.checkpoints(run_dir)[-1])
    assert len(ck["ranks"]) == 2
    assert not torch.equal(ck["ranks"][0]["rng"]["torch"], ck["ranks"][1]["rng"]["torch"])
    run = gankit.resume(run_dir, ["train.steps=40", "log.quiet=true"])
    assert run.summary["steps"] == 40
    err = capsys.readouterr().err
    assert "written by 2 process(es) (global batch 128) and this run has 1" in err


def test_stylegan_with_r1_and_path_length_and_cyclegan_run_distributed(tmp_path, data_root):
    env = {"GANKIT_DATA": str(data_root)}
    sg = [
        "mnist-stylegan",
        "train.steps=2",
        "train.batch_size=4",
        "variant.r1_every=1",  # R1 (double backward) and path length on both steps
        "variant.pl_every=1",
        "data.classes=true",
        f"out={tmp_path / 'runs'}",
        "log.sample_every=2",
        *QUIET,
    ]
    out = run_helper(tmp_path / "sg", sg, env)
    assert "2 processes (gloo)" in out
    assert_same(*ranks(tmp_path / "sg"))
    cg = ["usps-mnist-cyclegan", "train.steps=2", "train.batch_size=1", f"out={tmp_path / 'r'}"]
    run_helper(tmp_path / "cg", [*cg, "log.sample_every=2", *QUIET], env)
    a, b = ranks(tmp_path / "cg")
    assert set(a) == {"G_AB", "G_BA", "D_A", "D_B"}
    assert_same(a, b)


@pytest.mark.parametrize("preset", ["ring-wgan", "ring-wgan-gp"])
def test_clipping_and_gradient_penalty_keep_the_ranks_identical(preset, tmp_path):
    # ring-wgan: 5 critic steps per G step, weights clipped after each; ring-wgan-gp: the
    # penalty's double backward inside the critic's phase
    args = [preset, "train.steps=5", "train.batch_size=32", f"out={tmp_path / 'runs'}", *QUIET]
    run_helper(tmp_path / "dump", args)
    assert_same(*ranks(tmp_path / "dump"))


def _wait_for(path_fn, timeout: float = 120.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        found = path_fn()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def test_a_killed_rank_leaves_a_good_checkpoint_and_resume_is_exact(tmp_path):
    common = ["ring", "train.steps=400", "train.batch_size=64", "log.checkpoint_every=20"]
    ref = tmp_path / "ref"
    run_helper(ref / "dump", [*common, f"out={ref}", *QUIET])
    cut = tmp_path / "cut"
    (cut / "dump").mkdir(parents=True)
    p = torchrun([str(HELPER), str(cut / "dump"), *common, f"out={cut}", *QUIET])
    run_dir = cut / "ring"
    _wait_for(lambda: checkpoint.checkpoints(run_dir))
    os.kill(int((cut / "dump" / "pid1").read_text()), signal.SIGKILL)
    p.communicate(timeout=120)
    assert p.returncode != 0
    done = checkpoint.checkpoints(run_dir)
    assert done and checkpoint.step_path(run_dir, 400) not in done
    step = int(checkpoint.load(done[-1])["step"])  # intact: it loads
    assert 0 < step < 400
    run_helper(cut / "dump2", ["--resume", str(run_dir), *QUIET])
    assert_same(ranks(ref / "dump")[0], ranks(cut / "dump2")[0])


def test_ctrl_c_stops_every_rank_with_a_checkpoint(tmp_path):
    args = ["-m", "gankit", "train", "-c", "ring", "train.steps=100000", f"out={tmp_path}"]
    p = torchrun([*args, "log.checkpoint_every=50", *QUIET], start_new_session=True)
    run_dir = tmp_path / "ring"
    _wait_for(lambda: checkpoint.checkpoints(run_dir))
    os.killpg(p.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
    _, err = p.communicate(timeout=120)
    summary = read_summary(run_dir)
    assert summary["interrupted"], err[-2000:]
    last = checkpoint.load(checkpoint.checkpoints(run_dir)[-1])
    assert int(last["step"]) == summary["steps"] > 0
    assert err.count("interrupted: checkpoint at step") == 1  # rank 0 alone speaks


def test_sync_bn_on_the_cpu_is_one_line():
    p = torchrun(["-m", "gankit", "train", "-c", "ring", "train.sync_bn=true", "train.steps=1"])
    _, err = p.communicate(timeout=120)
    assert p.returncode != 0
    lines = [ln for ln in err.splitlines() if ln.startswith("gankit: error:")]
    assert lines == [
        "gankit: error: train.sync_bn needs CUDA devices (torch's SyncBatchNorm has no CPU "
        "kernel); drop it, or train on GPUs"
    ]


def test_a_successful_command_leaves_the_process_group_and_a_failed_one_does_not(tmp_path):
    """At the end of a command that succeeded, the CLI leaves torchrun's process group (NCCL
    warns when its communicators are freed in destructors); after an error other ranks may
    still wait in a collective, so the group is left alone."""
    import torch.distributed as dist

    from gankit.cli import main

    store = f"file://{tmp_path / 'store'}"
    dist.init_process_group("gloo", init_method=store, rank=0, world_size=1)
    try:
        assert main(["presets"]) == 0
        assert not dist.is_initialized()
        dist.init_process_group("gloo", init_method=f"{store}-2", rank=0, world_size=1)
        assert main(["sample", str(tmp_path / "no-such-run")]) == 2
        assert dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
