"""What an evaluation writes: the keys each metric puts into a result, and how a result file is
read and a later evaluation of the same generator merged into it (``gankit eval --out``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import UserError

CONSTANT_KEYS = {"n_modes", "class_entropy_max"}  # context, not a curve to plot
VALUE_KEYS = {  # what each metric puts into a result, so a later evaluation can merge into it
    "fid": ("fid",),
    "kid": ("kid", "kid_std"),
    "pr": ("precision", "recall", "f_score"),
    "is": ("is", "is_std"),
    "cfid": ("cfid",),
    "coverage": ("class_entropy", "class_entropy_max", "class_histogram"),
    "cacc": ("conditional_accuracy", "conditional_accuracy_per_class"),
    "modes": (
        "modes_captured",
        "n_modes",
        "high_quality",
        "reverse_kl",
        "stacked_modes",
        "stacked_kl",
        "stacked_channel_kl",
    ),
    "energy": ("energy_distance",),
    "ppl": ("ppl_z", "ppl_w"),
    "memorisation": ("memorisation_ratio", "nearer_train", "nn_dist_train", "nn_dist_test"),
}


def read_result(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        raise UserError(
            f"{path} exists but is not an evaluation result (not readable JSON); move it away or "
            "pass another --out"
        ) from None
    return old if isinstance(old, dict) else None


def merge_results(
    old: dict[str, Any] | None, new: dict[str, Any], names: list[str], path: Path | str = "out"
) -> dict:
    """``new`` (computed for ``names``) merged into the earlier result ``old`` of the same file:
    a metric computed again replaces its values and protocol, every other one is kept. Results
    of another generator or step are not merged: they are refused, never overwritten."""
    if old is None:
        return new
    if old.get("step") != new.get("step") or "protocols" not in old:
        raise UserError(
            f"{path} holds results of another evaluation "
            f"(step {old.get('step')}, not {new.get('step')}); pass another --out"
        )
    merged = {k: v for k, v in old.items() if k not in {k for n in names for k in VALUE_KEYS[n]}}
    protocols = {m: p for m, p in old["protocols"].items() if m not in names}
    merged.update({k: v for k, v in new.items() if k != "protocols"})
    merged["protocols"] = {**protocols, **new["protocols"]}
    return merged
