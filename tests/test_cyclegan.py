"""CycleGAN (Zhu et al. 2017) on the one trainer: two domains, four players, image pools.

What must hold: the pair config is strict; one step changes all four nets; a run resumed from a
checkpoint ends bit-identical to one that never stopped (pools, samplers, every RNG); the sample
grid shows source, translation and reconstruction of fixed test images; and a short run *learns*
a known mapping (B = the negative of A) while keeping each digit's class.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.errors import UserError
from gankit.training import checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = [
    "train.batch_size=4",
    "variant.ngf=4",
    "variant.n_blocks=1",
    "variant.ndf=8",
    "variant.pool_size=6",
    "log.quiet=true",
    "log.every=1",
    "log.n_samples=4",
]


def _digits(data_root, **over):
    base = [f"data.root={data_root}", "data.download=false", *TINY]
    return base + [f"{k.replace('__', '.')}={v}" for k, v in over.items()]


def _train(data_root, tmp_path, *extra):
    return gankit.train("usps-mnist-cyclegan", _digits(data_root) + [f"out={tmp_path}", *extra])


# ------------------------------------------------------------------------------- configuration
@pytest.mark.parametrize(
    "over, words",
    [
        (["data.name=mnist", "data.a=null", "data.b=null"], "translates between two domains"),
        (["data.b=null"], "data.b.name is not set"),
        (["data.a.size=16"], "both domains share data.size"),
        (["data.a.nme=usps"], "domain data.a has no option data.a.nme"),
        (["data.a.name=nope"], "nope"),
        (["data.path=/x"], "not both"),
        (["train.ema=0.99"], "does not use train.ema"),
        (["train.n_critic=2"], "does not use train.n_critic"),
        (["train.g_steps=2"], "does not use train.g_steps"),
        (["data.classes=true"], "does not use data.classes"),
        (["variant.lambda_cycle=-1"], "variant.lambda_cycle must be 0 (off) or positive"),
        (["variant.gan_loss=wgan"], "variant.gan_loss must be one of lsgan, bce"),
        (["variant.n_down=4"], "multiples of 16"),
        (["train.lr_decay_start=1"], "train.lr_decay_start must be in [0, 1)"),
        (["eval.every=1", "eval.metrics=fid"], "translates between two domains"),
    ],
)
def test_bad_pair_and_variant_settings_are_one_sentence(data_root, tmp_path, over, words):
    with pytest.raises(UserError, match=None) as e:
        _train(data_root, tmp_path, "train.steps=1", *over)
    assert words in str(e.value)
    assert not (tmp_path / "usps-mnist-cyclegan").exists()  # refused before the folder


def test_a_gd_variant_refuses_two_domains(data_root, tmp_path):
    with pytest.raises(UserError, match="plays on one data set"):
        _train(data_root, tmp_path, "train.steps=1", "train.variant=lsgan", "variant=null")


def test_domains_belong_to_a_pair():
    with pytest.raises(UserError, match="data.a is a domain of data.name=pair"):
        gankit.load_config(None, ["data.a.name=usps"])


def test_constant_then_linear_learning_rate(data_root, tmp_path):
    run = _train(data_root, tmp_path, "train.steps=4", "train.lr_decay_start=0.5")
    rows = [json.loads(line) for line in (run.dir / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr_G"] for r in rows if "lr_G" in r]
    assert lrs == pytest.approx([2e-4, 2e-4, 1e-4, 0.0])


# ------------------------------------------------------------------------------- the 4-player step
def test_one_step_changes_all_four_nets_and_fills_the_pools(data_root, tmp_path):
    run0 = _train(data_root, tmp_path, "train.steps=1", "name=s0", "log.checkpoint_every=1")
    ck = checkpoint.load(checkpoint.checkpoints(run0.dir)[-1])
    assert set(ck["nets"]) == {"G_AB", "G_BA", "D_A", "D_B"}
    from gankit.registry import VARIANTS

    cfg = gankit.load_config(ck["config"])
    torch.manual_seed(cfg.seed)
    fresh = VARIANTS.get("cyclegan")(cfg).build_nets((1, 28, 28), 0)  # the nets before step 1
    for name, net in fresh.items():
        before, after = net.state_dict(), ck["nets"][name]
        changed = [k for k in before if not torch.equal(before[k], after[k])]
        assert changed, f"{name} did not change in one step"
    pools = ck["variant"]
    assert int(pools["pool_A"]["count"]) == 4 and int(pools["pool_B"]["count"]) == 4
    row = json.loads((run0.dir / "metrics.jsonl").read_text().split("\n")[0])
    for key in ("loss_G", "loss_D", "cycle_A", "cycle_B", "grad_norm_G_AB", "grad_norm_D_B"):
        assert key in row and np.isfinite(row[key])


def test_resume_is_bit_identical_with_pools(data_root, tmp_path):
    # pool_size 6 with batch 4: the pools are full after two steps, so the rest swaps images;
    # a constant lr, so that the first half's own train.steps=3 does not change its schedule
    const = "train.lr_decay=none"
    whole = _train(data_root, tmp_path, "train.steps=6", "name=whole", const)
    half = _train(data_root, tmp_path, "train.steps=3", "name=half", const)
    resumed = gankit.resume(half.dir, ["train.steps=6"])
    a = checkpoint.load(checkpoint.checkpoints(whole.dir)[-1])
    b = checkpoint.load(checkpoint.checkpoints(resumed.dir)[-1])
    for name in a["nets"]:
        for k, v in a["nets"][name].items():
            assert torch.equal(v, b["nets"][name][k]), f"{name}.{k} differs after resume"
    for pool in ("pool_A", "pool_B"):
        assert torch.equal(a["variant"][pool]["images"], b["variant"][pool]["images"])
    assert a["variant"]["pool_A"]["count"] == 6


def test_sample_grid_shows_source_translation_and_reconstruction(data_root, tmp_path):
    run = _train(data_root, tmp_path, "train.steps=2", "log.sample_every=1", "name=grid")
    frames = sorted((run.dir / "samples").glob("step_*.png"))
    assert len(frames) == 2
    img = np.asarray(Image.open(frames[-1]))
    # 4 test images per domain: 6 rows (a, G_AB(a), G_BA(G_AB(a)), b, ...) of 4 columns, 2 px pad
    assert img.shape[:2] == (2 + 6 * 30, 2 + 4 * 30)
    assert (run.dir / "timeline.png").is_file() and (run.dir / "losses.png").is_file()
    assert (run.dir / "report.html").is_file()
    # the grid's first row is the fixed test images of domain A: the same at every step
    first = [np.asarray(Image.open(f))[2:30, :] for f in frames]
    assert np.array_equal(first[0], first[1])


# ------------------------------------------------------------------------------- it learns
def _write_digits(folder, images):
    folder.mkdir(parents=True)
    for i, x in enumerate(images):
        Image.fromarray(x).save(folder / f"{i:04d}.png")


@pytest.fixture(scope="module")
def negation_pair(tmp_path_factory, data_root):
    """A CycleGAN folder: A = MNIST digits, B = *other* MNIST digits, negated (255 - x)."""
    from gankit.config import DataConfig
    from gankit.data import build_source

    root = tmp_path_factory.mktemp("negation")
    train = build_source(DataConfig(name="mnist", root=str(data_root), download=False), "train")
    test = build_source(DataConfig(name="mnist", root=str(data_root), download=False), "test")
    x, _ = train.batch(torch.arange(2000))
    t, ty = test.batch(torch.arange(200))
    as_u8 = lambda v: ((v[:, 0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()  # noqa: E731
    _write_digits(root / "trainA", as_u8(x[:1000]))
    _write_digits(root / "trainB", 255 - as_u8(x[1000:]))  # unpaired: different digits
    _write_digits(root / "testA", as_u8(t[:100]))
    _write_digits(root / "testB", 255 - as_u8(t[100:]))
    return root, t[:100], ty[:100]


def test_a_short_run_learns_the_negation_and_keeps_classes(negation_pair, data_root, tmp_path):
    from gankit.metrics.classifier import load_classifier, predict
    from gankit.nets.resnet import ResnetGenerator

    root, x_test, y_test = negation_pair
    run = gankit.train(
        "usps-mnist-cyclegan",
        [
            "data.a=null",
            "data.b=null",
            f"data.path={root}",
            "train.steps=150",
            "train.batch_size=8",
            "train.lr_g=0.001",
            "train.lr_d=0.001",
            "variant.ngf=8",
            "variant.n_blocks=2",
            "variant.ndf=16",
            "log.quiet=true",
            "log.every=50",
            f"out={tmp_path}",
            "name=neg",
        ],
    )
    ck = checkpoint.load(checkpoint.checkpoints(run.dir)[-1])
    g = ResnetGenerator(1, 1, ngf=8, n_blocks=2)
    g.load_state_dict(ck["nets"]["G_AB"])
    with torch.no_grad():
        out = g.eval()(x_test)  # held-out digits of A -> B
    err = (out - (-x_test)).abs().mean().item()  # the exact answer is the negative, -x in [-1, 1]
    start = (x_test - (-x_test)).abs().mean().item()  # the error of doing nothing
    assert err < 0.15 * start, f"G_AB is not the negation: L1 {err:.3f} vs {start:.3f} untouched"
    clf = load_classifier("mnist", str(data_root), train_if_missing=True, quiet=True)
    acc = (predict(clf, (-out).clamp(-1, 1)).argmax(1) == y_test).float().mean().item()
    assert acc >= 0.9, f"classes not kept: {acc:.0%} of negated translations classified right"


def test_the_nan_guard_stops_a_four_player_run(data_root, tmp_path):
    from gankit.training.trainer import TrainingDiverged

    # a cycle weight beyond float32 makes the G loss infinite at the first step
    with pytest.raises(TrainingDiverged, match="the G loss became inf at step 0"):
        _train(data_root, tmp_path, "train.steps=3", "variant.lambda_cycle=1e39")


def test_ctrl_c_then_resume_is_bit_identical_with_the_decaying_rate(data_root, tmp_path):
    from gankit.training.trainer import Trainer

    # the preset's schedule: constant for half the steps, then linear to 0 at step 6
    whole = _train(data_root, tmp_path, "train.steps=6", "name=whole")
    over = _digits(data_root) + [f"out={tmp_path}", "name=half", "train.steps=6"]
    t = Trainer(gankit.load_config("usps-mnist-cyclegan", over))
    run_phase = t._run_phase

    def stop_after_step_3(phase, window, log_now):
        run_phase(phase, window, log_now)
        if t.step == 2 and phase.name == "D":  # the step's last phase
            t._stop.set()  # what the Ctrl-C handler does

    t._run_phase = stop_after_step_3
    half = t.fit()
    assert half.interrupted and checkpoint.load(checkpoint.checkpoints(half.dir)[-1])["step"] == 3
    gankit.resume(half.dir)
    a = checkpoint.load(checkpoint.checkpoints(whole.dir)[-1])
    b = checkpoint.load(checkpoint.checkpoints(half.dir)[-1])
    assert a["step"] == b["step"] == 6
    for name in a["nets"]:
        for k, v in a["nets"][name].items():
            assert torch.equal(v, b["nets"][name][k]), f"{name}.{k} differs after Ctrl-C + resume"
    for pool in ("pool_A", "pool_B"):
        assert torch.equal(a["variant"][pool]["images"], b["variant"][pool]["images"])
