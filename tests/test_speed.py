"""The step without waste: no device reads inside a step, the deferred NaN guard, compiled and
channels-last players that train like the plain ones, bf16 autocast on the CPU."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import gankit
from gankit import config
from gankit.training.speed import Guard
from gankit.training.trainer import Trainer

QUIET = ["log.quiet=true", "threads=1"]
READS = {torch.ops.aten._local_scalar_dense.default, torch.ops.aten.is_nonzero.default}


class CountReads(TorchDispatchMode):
    """Counts the ops that copy a tensor's value to the host (``item``, ``bool``, ``tolist``):
    on a GPU each one waits for the device."""

    def __init__(self):
        super().__init__()
        self.reads, self.paused = 0, False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.reads += func in READS and not self.paused
        return func(*args, **(kwargs or {}))


def _reads_per_phase(preset: str, tmp_path, data_root, defer: bool) -> dict[bool, list[int]]:
    """Host reads in each phase of a 6-step run, by whether the step logs."""
    over = ["train.steps=6", "log.every=3", f"out={tmp_path}", f"data.root={data_root}", *QUIET]
    if preset == "mnist-dcgan":
        over.append("train.batch_size=8")
    t = Trainer(config.load(preset, over))
    t.guard.defer = defer  # True: what it is on a GPU
    counts: dict[bool, list[int]] = {True: [], False: []}
    run_phase, active = t._run_phase, []

    def counted(phase, window, log_now):
        with CountReads() as mode:
            active[:] = [mode]
            run_phase(phase, window, log_now)
        counts[log_now].append(mode.reads)

    def paused(step):  # Adam reads its step counters, which live on the CPU even on a GPU
        def run(*args, **kwargs):
            active[0].paused = True
            try:
                return step(*args, **kwargs)
            finally:
                active[0].paused = False

        return run

    for opt in t.opts.values():
        opt.step = paused(opt.step)
    t._run_phase = counted
    t.fit()
    return counts


@pytest.mark.filterwarnings("ignore:Seems like `optimizer.step")
@pytest.mark.parametrize("preset", ["ring", "ring-wgan-gp", "mnist-dcgan"])
def test_a_step_reads_nothing_back_from_the_device(preset, tmp_path, data_root):
    counts = _reads_per_phase(preset, tmp_path, data_root, defer=True)
    # gradient norms and losses are read at the logging row, outside the phases
    assert counts[False] and counts[True], counts
    assert all(n == 0 for n in counts[False] + counts[True]), counts


@pytest.mark.filterwarnings("ignore:Seems like `optimizer.step")
def test_the_read_counter_sees_the_immediate_guard(tmp_path, data_root):
    counts = _reads_per_phase("ring", tmp_path, data_root, defer=False)
    assert all(n >= 1 for n in counts[False]), counts  # the CPU guard reads each loss


def test_the_deferred_guard_keeps_the_first_bad_step():
    g = Guard(torch.device("cpu"))
    g.defer = True
    assert g.watch("D", torch.tensor(1.0), 0) is None
    assert g.check() is None
    g.watch("D", torch.tensor(float("inf")), 3)
    g.watch("G", torch.tensor(float("nan")), 4)
    g.watch("D", torch.tensor(float("nan")), 5)
    assert g.check() == ("D", pytest.approx(float("nan"), nan_ok=True), 3)


def test_the_immediate_guard_names_value_and_step():
    g = Guard(torch.device("cpu"))
    assert g.watch("G", torch.tensor(2.0), 1) is None
    phase, value, step = g.watch("G", torch.tensor(float("inf")), 2)
    assert (phase, value, step) == ("G", float("inf"), 2)


def _losses(tmp_path, preset: str, extra: list[str], data_root=None) -> list[list[float]]:
    """The logged losses of each of 4 steps (Adam's first steps move a weight by about lr
    whatever the size of its gradient, so weights are compared through the losses they give)."""
    over = ["train.steps=4", "log.every=1", f"out={tmp_path}", *QUIET, *extra]
    if data_root is not None:
        over.append(f"data.root={data_root}")
    run = gankit.train(preset, over)
    rows = gankit.report.read_metrics(run.dir / "metrics.jsonl")
    return [[r["loss_D"], r["loss_G"]] for r in rows]


def test_compiled_players_train_like_eager_ones(tmp_path):
    eager = _losses(tmp_path / "e", "ring", [])
    compiled = _losses(tmp_path / "c", "ring", ["train.compile=true"])
    # the same math in fused kernels: float32 rounding only
    torch.testing.assert_close(torch.tensor(compiled), torch.tensor(eager), rtol=0, atol=1e-4)


def test_compile_with_a_gradient_penalty_is_one_line(tmp_path):
    with pytest.raises(gankit.UserError, match="train.compile cannot train the D phase"):
        gankit.train("ring-wgan-gp", ["train.steps=2", "train.compile=true", f"out={tmp_path}"])


def test_channels_last_computes_what_the_default_layout_does(tmp_path, data_root):
    over = [f"out={tmp_path}", f"data.root={data_root}", "train.batch_size=8"]
    plain = Trainer(config.load("mnist-dcgan", over))
    nhwc = Trainer(config.load("mnist-dcgan", [*over, "train.channels_last=true"]))
    convs = [p for p in nhwc.nets["D"].parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    batch = plain._batch(0)
    cl_batch = nhwc._batch(0)
    assert cl_batch.real.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(cl_batch.real, batch.real, rtol=0, atol=0)
    for phase in ("D", "G"):  # the same losses and gradients from the same weights and batch
        outs = []
        for t, b in ((plain, batch), (nhwc, cl_batch)):
            for name, net in t.nets.items():
                net.requires_grad_(name == phase)
                net.zero_grad(set_to_none=True)
            loss = t.variant.loss(phase, t.nets, b).total
            loss.backward()
            outs.append((loss.detach(), [p.grad for p in t.nets[phase].parameters()]))
        torch.testing.assert_close(outs[1][0], outs[0][0], rtol=1e-5, atol=1e-6)
        for g_cl, g in zip(outs[1][1], outs[0][1], strict=True):
            # oneDNN sums a channels-last weight gradient in another order: measured 3e-4 of
            # the gradient's norm for D's convolutions, 1e-6 elsewhere
            assert (g_cl - g).norm() <= 1e-3 * g.norm()


def test_bf16_autocast_on_the_cpu_computes_the_float32_losses(tmp_path, data_root):
    extra = ["train.batch_size=8", f"data.root={data_root}"]
    full = _losses(tmp_path / "f", "mnist-dcgan", extra)
    bf16 = _losses(tmp_path / "b", "mnist-dcgan", [*extra, "train.amp=true"])
    # bfloat16 keeps 8 bits of mantissa: the losses agree to about 1 %, not to float32's 1e-6
    torch.testing.assert_close(torch.tensor(bf16), torch.tensor(full), rtol=0.05, atol=0.02)
    assert torch.tensor(bf16).ne(torch.tensor(full)).any()  # autocast did run in bfloat16


def test_an_in_memory_sampler_gathers_on_its_device(data_root):
    src = gankit.data.build_source(config.load("mnist-dcgan", [f"data.root={data_root}"]).data)
    host, dev = src.sampler(16, 3), src.sampler(16, 3)
    assert dev.device_bytes() == src.images.numel() + 8 * src.labels.numel()
    dev.to_device(torch.device("cpu"))  # a copy "on the device": the same batches
    for _ in range(3):
        (x1, _), (x2, _) = host.next(), dev.next()
        assert torch.equal(x1, x2)
    meta = src.sampler(16, 3)
    meta.to_device(torch.device("meta"))  # gathered where the copy lives, not on the host
    x, _ = meta.next()
    assert x.device.type == "meta" and x.shape == (16, 1, 28, 28) and x.dtype == torch.float32
