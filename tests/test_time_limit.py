"""train.minutes: a run stops at its time budget with a checkpoint, and resumes past it."""

from __future__ import annotations

import pytest

import gankit
from gankit.errors import UserError
from gankit.training import checkpoint
from gankit.training.rundir import step_of

FAST = ["log.quiet=true", "log.every=10", "log.sample_every=100000", "train.batch_size=32"]


def test_time_limit_stops_with_a_checkpoint_and_resumes(tmp_path):
    budget_s = 0.6
    run = gankit.train(
        None,
        [f"out={tmp_path}", "name=budget", "train.steps=1000000", f"train.minutes={budget_s / 60}",
         "log.checkpoint_every=1000000", *FAST],
    )  # fmt: skip
    s = run.summary
    assert s["time_limit"] is True and s["interrupted"] is False
    assert 0 < s["steps"] < 1_000_000
    assert budget_s <= s["seconds"] < budget_s + 30  # stopped at the first step past the budget
    assert step_of(checkpoint.latest(run.dir)) == s["steps"]  # the stop wrote its checkpoint

    # the budget is counted over resumes: resuming without more time takes no step
    again = gankit.resume(run.dir, ["log.quiet=true"])
    assert again.summary["steps"] == s["steps"] and again.summary["time_limit"] is True

    # train.minutes=0 lifts the limit: the run goes on to train.steps
    more = gankit.resume(run.dir, ["train.minutes=0", f"train.steps={s['steps'] + 5}"])
    assert more.summary["steps"] == s["steps"] + 5 and more.summary["time_limit"] is False


@pytest.mark.parametrize("value", ["-1", "nan"])
def test_time_limit_refuses_a_negative_or_non_finite_budget(tmp_path, value):
    with pytest.raises(UserError, match="train.minutes"):
        gankit.train(None, [f"out={tmp_path}", f"train.minutes={value}", *FAST])
