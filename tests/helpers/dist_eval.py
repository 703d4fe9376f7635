"""Run by torchrun in tests/test_distributed_eval.py: ``dist_train.py`` (train, save every rank's
players) with counters on everything a periodic evaluation sends through a network, so the test
can see that each rank handled only its share of the samples.

    torchrun --nproc_per_node=2 tests/helpers/dist_eval.py DUMP PRESET [key=value ...]

Each rank writes ``<dump>/counts<R>.json``: ``generate`` (the ``[n, start, stop]`` of every
``sample_from`` call), ``classifier`` and ``inception`` (the number of images of every call of
the digit classifier's batching and of Inception's feature extraction), in call order.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import dist_train  # tests/helpers/, this script's folder

from gankit import generator
from gankit.metrics import classifier, fidelity

COUNTS: dict[str, list] = {"generate": [], "classifier": [], "inception": []}


def _count(module, name: str, key: str, record) -> None:
    inner = getattr(module, name)

    @functools.wraps(inner)
    def counted(*args, **kwargs):
        COUNTS[key].append(record(*args, **kwargs))
        return inner(*args, **kwargs)

    setattr(module, name, counted)  # the module's callers look the name up at call time


def main() -> int:
    dump = Path(sys.argv[1])
    _count(
        generator,
        "sample_from",
        "generate",
        lambda net, n, seed=None, labels=None, batch=1024, rows=None: [n, *(rows or (0, n))],
    )
    _count(classifier, "_batched", "classifier", lambda clf, fn, images, batch: len(images))
    _count(fidelity, "extract_features", "inception", lambda images, *a, **kw: len(images))
    code = dist_train.main()
    rank = int(os.environ.get("RANK", "0"))
    (dump / f"counts{rank}.json").write_text(json.dumps(COUNTS))
    return code


if __name__ == "__main__":
    sys.exit(main())
