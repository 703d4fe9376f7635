"""A training step without waste: compiled players, channels-last layout, a NaN guard that never
stalls the device, and Adam fused into one kernel where the device has it.

- ``train.compile=true`` compiles each player's ``forward`` with ``torch.compile`` in place (its
  ``state_dict`` keys do not change), and the methods a net lists in ``compile_methods``
  (StyleGAN's ``mapping`` and ``synthesis``, which its variant calls instead of ``forward``).
  torch.compile cannot differentiate twice, so a gradient penalty or R1 is refused in one line.
- ``train.channels_last=true`` stores 4-D weights and image batches channels-last (NHWC), the
  layout cuDNN and oneDNN convolutions prefer.
- In-memory data sets (MNIST, CIFAR-10, a folder held in memory) are copied to the GPU once,
  as uint8, when they take at most a quarter of its free memory: batches are gathered there.
- ``Guard`` checks the losses for NaN or infinity: at once on the CPU (free), and on a GPU only
  at logging and checkpoint steps, from flags kept on the device, so a step never waits for the
  device; the step at which a loss first went bad is kept exactly.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..errors import UserError


def compile_players(nets: dict[str, nn.Module]) -> None:
    """Compile each player in place. A net whose structure follows a schedule (progressive
    growing) says how many graphs it needs in ``compile_graphs``; dynamo's recompile limit is
    raised to that; past the limit, dynamo would leave the net eager."""
    import torch._dynamo

    mods = [m for net in nets.values() for m in net.modules()]
    need = max(getattr(m, "compile_graphs", 1) for m in mods)
    limit = torch._dynamo.config.recompile_limit
    torch._dynamo.config.recompile_limit = max(limit, need)
    for net in nets.values():
        net.compile()
        for name in getattr(net, "compile_methods", ()):
            setattr(net, name, torch.compile(getattr(net, name)))


def double_backward_error(e: RuntimeError, phase: str) -> UserError | None:
    """The one-line answer to torch.compile's refusal to differentiate twice, else None."""
    text = str(e)
    if "double backward" not in text and "create_graph=False" not in text:
        return None
    return UserError(
        f"train.compile cannot train the {phase} phase: it differentiates twice (a gradient "
        "penalty or R1), which torch.compile does not support; set train.compile=false"
    )


def to_channels_last(nets: dict[str, nn.Module]) -> None:
    for net in nets.values():
        net.to(memory_format=torch.channels_last)


def channels_last(x):
    """4-D tensors (and tuples of them) in channels-last layout; others unchanged."""
    if isinstance(x, Tensor):
        return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
    if isinstance(x, tuple):
        return tuple(channels_last(t) for t in x)
    return x


def data_on_device(sampler, device: torch.device) -> bool:
    """Move an in-memory sampler's images to ``device`` when they fit (a quarter of the free
    memory); True when it did. Samplers that stream from disk have no ``to_device``."""
    inner = getattr(sampler, "inner", sampler)  # under torchrun: the Shard's sampler
    if not hasattr(inner, "to_device"):
        return False
    need = inner.device_bytes()
    free, _ = torch.cuda.mem_get_info(device)
    if need > free / 4:
        return False
    inner.to_device(device)
    return True


class Guard:
    """Non-finite losses, seen at once (CPU) or at the next check (elsewhere, no sync)."""

    def __init__(self, device: torch.device):
        self.defer = device.type != "cpu"
        self.first_bad: dict[str, Tensor] = {}  # phase -> first step its loss was bad (-1: none)

    def watch(self, phase: str, loss: Tensor, step: int) -> tuple[str, float, int] | None:
        """(phase, value, step) when the loss is bad and the guard is immediate, else None."""
        loss = loss.detach()
        if not self.defer:
            value = float(loss)  # on the CPU: no device to wait for
            return None if math.isfinite(value) else (phase, value, step)
        prev = self.first_bad.get(phase)
        if prev is None:
            prev = torch.full((), -1, dtype=torch.long, device=loss.device)
        bad = ~torch.isfinite(loss)
        self.first_bad[phase] = torch.where(bad & (prev < 0), step, prev)
        return None

    def check(self) -> tuple[str, float, int] | None:
        """(phase, nan, step) of the earliest bad loss so far, reading the device flags once."""
        if not self.first_bad:
            return None
        names = list(self.first_bad)
        steps = torch.stack([self.first_bad[n] for n in names]).tolist()  # one sync
        bad = [(s, n) for s, n in zip(steps, names, strict=True) if s >= 0]
        if not bad:
            return None
        step, name = min(bad)
        return name, float("nan"), step
