"""One run, many processes: torch.distributed launched by torchrun (Li et al. 2020, PyTorch
Distributed: Experiences on Accelerating Data Parallel Training).

``torchrun --nproc_per_node=N -m gankit train ...`` starts N copies of gankit; each finds its
rank in the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), joins the process group
(NCCL on CUDA, gloo on the CPU) and trains one shard of every global batch. Without torchrun
(``WORLD_SIZE`` unset or 1) nothing here does anything.

- **Data and latents.** Every rank draws the *global* batch order and the global latents from
  the same seeded streams and keeps its own slice (``Shard``), so N processes with
  ``train.batch_size=B`` see exactly the batches of one process with batch N*B, and the streams'
  checkpointed state is the same on every rank.
- **Players** are wrapped in ``DistributedDataParallel``. A variant sees a ``Player``: calling it,
  or calling a method of the net (StyleGAN's ``mapping``, ``synthesis``), runs through DDP's
  forward, so the gradients of every phase are averaged; frozen players are handed over
  unwrapped. ``touch`` gives every parameter of the updated players a (zero) gradient, so a phase
  whose loss misses some of them (lazy R1 never reaches D's last bias; Karras et al. 2020 add
  ``0 * D(x)`` for the same reason) still completes DDP's all-reduce.
- **Buffers** (batch-norm statistics, StyleGAN's ``w_avg``) are broadcast from rank 0 once per
  step, not at each forward: a variant may call a net a different number of times on each rank.
- **Control** (stop flags, logged means, per-rank checkpoint parts) goes over a gloo group, so it
  never costs a device synchronisation; so do the features of a periodic evaluation, which every
  rank extracts for its share of the samples (``all_gather_rows``, ``gankit.evaluation``).
"""

from __future__ import annotations

import datetime
import functools
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import UserError

# a collective waits this long for a slow rank (rank 0 alone writes pictures and runs the metrics
# that do not split) before torch.distributed gives up; a rank that dies closes its sockets and is
# noticed at once
TIMEOUT = datetime.timedelta(hours=2)


@dataclass
class Dist:
    """Where this process stands: rank, world size, local rank and the control group."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None
    control: Any = None  # a gloo process group for CPU-side messages

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


SINGLE = Dist()


def env_world() -> int:
    """The world size torchrun announced (1 without torchrun)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def setup(device: torch.device) -> tuple[Dist, torch.device]:
    """Join the process group torchrun set up (once per process) and pick this rank's device:
    ``cuda:LOCAL_RANK`` on CUDA, the CPU otherwise."""
    import torch.distributed as dist

    world = env_world()
    if world <= 1:
        return SINGLE, device
    if not dist.is_available():
        raise UserError("this torch build has no torch.distributed; install the standard wheel")
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if device.index is not None and device.index != local:
            raise UserError(
                f"under torchrun each process uses cuda:LOCAL_RANK, not {device}; "
                "set device=cuda or device=auto"
            )
        if local >= torch.cuda.device_count():
            raise UserError(
                f"LOCAL_RANK {local} has no GPU: this machine has {torch.cuda.device_count()}; "
                "set torchrun's --nproc_per_node to at most that"
            )
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise UserError(f"torchrun training runs on CUDA or the CPU, not {device}; set device=cpu")
    if not dist.is_initialized():
        kw = {"device_id": device} if backend == "nccl" else {}
        dist.init_process_group(backend, timeout=TIMEOUT, **kw)
    control = dist.new_group(backend="gloo", timeout=TIMEOUT) if backend == "nccl" else None
    return Dist(rank, dist.get_world_size(), local, backend, control), device


def leave_group() -> None:
    """Leave the process group at the end of a command that succeeded on this rank, so NCCL's
    communicators are freed before exit instead of in destructors (PyTorch warns then). Not
    after an error: the other ranks may still wait in a collective. A collection first frees
    the trainer's DDP wrappers, which hold the group: gloo's threads torn down at interpreter
    exit instead can abort the process after a good run."""
    import gc

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


# ---------------------------------------------------------------------------------- messages
def broadcast(obj: Any, d: Dist) -> Any:
    """Rank 0's ``obj`` on every rank (pickled: only for gankit's own state)."""
    if not d.enabled:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0, group=d.control)
    return box[0]


def gather(obj: Any, d: Dist) -> list[Any] | None:
    """Every rank's ``obj`` as a list on rank 0 (None elsewhere)."""
    if not d.enabled:
        return [obj]
    import torch.distributed as dist

    out = [None] * d.world if d.main else None
    dist.gather_object(obj, out, dst=0, group=d.control)
    return out


def all_gather_rows(rows: Tensor, d: Dist) -> Tensor:
    """Every rank's ``rows`` ``[n_r, ...]`` concatenated in rank order, on every rank:
    ``[n_0 + ... + n_{world-1}, ...]`` on the CPU (a distributed evaluation's features).

    The counts may differ by rank: each rank's rows are padded to the largest count for the
    collective and cut back after. It runs on the CPU over the control group (gloo under NCCL
    too): features are small next to the network passes that made them, and a CPU collective
    needs no device synchronisation and no NCCL-specific device placement."""
    rows = rows.detach().cpu()
    if not d.enabled:
        return rows
    import torch.distributed as dist

    count = torch.tensor([rows.shape[0]], dtype=torch.int64)
    counts = [torch.zeros_like(count) for _ in range(d.world)]
    dist.all_gather(counts, count, group=d.control)
    sizes = [int(c) for c in counts]
    padded = rows.new_zeros((max(sizes), *rows.shape[1:]))  # [max n_r, ...]
    padded[: rows.shape[0]] = rows
    parts = [torch.empty_like(padded) for _ in range(d.world)]
    dist.all_gather(parts, padded, group=d.control)
    return torch.cat([p[:k] for p, k in zip(parts, sizes, strict=True)])  # [sum n_r, ...]


def any_true(flag: bool, d: Dist) -> bool:
    """True on every rank when it is true on one (a CPU all-reduce: no device sync)."""
    if not d.enabled:
        return flag
    import torch.distributed as dist

    t = torch.tensor([1 if flag else 0], dtype=torch.int32)
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=d.control)
    return bool(t.item())


def mean_values(values: dict[str, float], d: Dist) -> dict[str, float]:
    """Each logged number averaged over the ranks (the keys are the same on every rank)."""
    if not d.enabled or not values:
        return values
    import torch.distributed as dist

    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    dist.all_reduce(t, group=d.control)
    return dict(zip(keys, (t / d.world).tolist(), strict=True))


def sync_buffers(nets: Iterable[nn.Module], d: Dist) -> None:
    """Rank 0's buffers on every rank (DDP's ``broadcast_buffers``, once per step)."""
    if not d.enabled:
        return
    import torch.distributed as dist

    for net in nets:
        for b in net.buffers():
            dist.broadcast(b, src=0)


# ---------------------------------------------------------------------------------- data
class Shard:
    """This rank's slice of a sampler built for the global batch: positions
    ``[rank * b, (rank + 1) * b)`` of each batch (``b = global // world``). A sampler that can
    slice before it decodes has ``set_shard``; others are sliced after. The state is the global
    stream's, the same on every rank."""

    def __init__(self, sampler: Any, d: Dist, batch_size: int):
        self.inner, self.d, self.b = sampler, d, batch_size
        self.native = hasattr(sampler, "set_shard")
        if self.native:
            sampler.set_shard(d.rank, d.world)

    def next(self):
        x, y = self.inner.next()
        if self.native:
            return x, y
        return _slice(x, self.d.rank, self.b), _slice(y, self.d.rank, self.b)

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state)

    def close(self) -> None:
        if hasattr(self.inner, "close"):
            self.inner.close()


def _slice(obj: Any, rank: int, b: int) -> Any:
    if isinstance(obj, Tensor):
        return obj[rank * b : (rank + 1) * b]
    if isinstance(obj, (tuple, list)):
        return type(obj)(_slice(o, rank, b) for o in obj)
    return obj


def shard_latents(z: Tensor, d: Dist, batch_size: int) -> Tensor:
    """This rank's rows of the global latents ``[world * B, z_dim] -> [B, z_dim]``."""
    return z if not d.enabled else z[d.rank * batch_size : (d.rank + 1) * batch_size]


# ---------------------------------------------------------------------------------- players
class _Dispatch(nn.Module):
    """The module DDP wraps: ``forward(..., _method=name)`` calls ``net.name(...)``, so every
    method of a player (not only ``forward``) runs inside DDP's forward."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, *args, _method: str = "forward", **kwargs):
        if _method == "forward":
            return self.net(*args, **kwargs)
        return getattr(self.net, _method)(*args, **kwargs)


def _own_methods(net: nn.Module) -> set[str]:
    """Methods the net's classes define themselves (not nn.Module's own machinery)."""
    names: set[str] = set()
    for cls in type(net).__mro__:
        if cls is nn.Module or not issubclass(cls, nn.Module):
            break
        names.update(k for k, v in vars(cls).items() if callable(v) and not k.startswith("_"))
    return names


class Player:
    """What a variant holds of a DDP-wrapped player: ``P(x)`` and ``P.method(x)`` run through
    DDP; other attributes (``num_ws``, buffers, ``parameters``) are the net's own."""

    def __init__(self, ddp: nn.Module, net: nn.Module):
        self._ddp, self._net, self._methods = ddp, net, _own_methods(net)

    def __call__(self, *args, **kwargs):
        return self._ddp(*args, **kwargs)

    def __getattr__(self, name: str):
        if name in self._methods:
            return functools.partial(self._ddp, _method=name)
        return getattr(self._net, name)


def wrap(nets: dict[str, nn.Module], d: Dist, device: torch.device) -> dict:
    """``{name: Player}`` for every net (the nets themselves when not distributed)."""
    if not d.enabled:
        return dict(nets)
    from torch.nn.parallel import DistributedDataParallel as DDP

    out = {}
    for name, net in nets.items():
        net.requires_grad_(True)  # DDP hooks the parameters that want gradients when wrapped
        ids = [device.index] if device.type == "cuda" else None
        ddp = DDP(_Dispatch(net), device_ids=ids, forward_sync_buffers=False)
        out[name] = Player(ddp, net)
    return out


def convert_sync_bn(nets: dict[str, nn.Module], d: Dist, device: torch.device) -> None:
    """Batch norm synchronised across the ranks (``train.sync_bn``); torch's SyncBatchNorm runs
    on CUDA only."""
    if not d.enabled:
        return
    if device.type != "cuda":
        raise UserError(
            "train.sync_bn needs CUDA devices (torch's SyncBatchNorm has no CPU kernel); "
            "drop it, or train on GPUs"
        )
    for name, net in nets.items():
        nets[name] = nn.SyncBatchNorm.convert_sync_batchnorm(net)


def touch(nets: Iterable[nn.Module]) -> Tensor:
    """Zero that depends on every parameter: added to a phase's loss, it gives each parameter a
    gradient, so DDP's all-reduce completes even when the loss misses some of them."""
    terms = [p.flatten()[0] for net in nets for p in net.parameters() if p.numel()]
    return torch.stack(terms).sum() * 0 if terms else torch.zeros(())


def is_comm_error(e: BaseException) -> bool:
    """Whether ``e`` is torch.distributed reporting a peer that went away or timed out."""
    import torch.distributed as dist

    if isinstance(e, getattr(dist, "DistError", ())):
        return True
    text = str(e).lower()
    return any(k in text for k in ("gloo", "nccl", "connection", "socket", "peer"))
