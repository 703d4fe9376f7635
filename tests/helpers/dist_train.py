"""Run by torchrun in tests/test_distributed.py: train (or resume) one run, then each rank saves
its players' weights to ``<dump>/rank<R>.pt`` so that the test can compare the ranks.

    torchrun --nproc_per_node=2 tests/helpers/dist_train.py DUMP PRESET [key=value ...]
    torchrun --nproc_per_node=2 tests/helpers/dist_train.py DUMP --resume RUN [key=value ...]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

import gankit
from gankit.training import trainer as trainer_mod
from gankit.training.distributed import leave_group

_seen: dict = {}
_fit = trainer_mod.Trainer.fit


def _keep(self):  # remember the trainer, so its players can be saved after fit
    _seen["trainer"] = self
    return _fit(self)


def main() -> int:
    dump, args = Path(sys.argv[1]), sys.argv[2:]
    rank = int(os.environ.get("RANK", "0"))
    (dump / f"pid{rank}").write_text(str(os.getpid()))
    trainer_mod.Trainer.fit = _keep
    if args[0] == "--resume":
        gankit.resume(args[1], args[2:])
    else:
        gankit.train(args[0], args[1:])
    nets = _seen["trainer"].nets
    state = {n: {k: v.cpu() for k, v in net.state_dict().items()} for n, net in nets.items()}
    torch.save(state, dump / f"rank{rank}.pt")
    # Free the trainer (its DDP wrappers hold the process group) while the interpreter is whole:
    # gloo's threads torn down at interpreter exit instead aborted rank 0 about once in 12 runs
    # ("terminate called without an active exception", after both ranks had saved).
    _seen.clear()
    del nets, state
    if torch.distributed.is_initialized():  # leave together, as the gankit command does after a
        torch.distributed.barrier()  # run (collect, then destroy): a rank that tore down while
        leave_group()  # the other was still in gloo aborted once on a loaded CPU
    return 0


if __name__ == "__main__":
    sys.exit(main())
