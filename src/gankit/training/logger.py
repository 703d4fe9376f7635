"""What a run writes while it trains: metrics.jsonl rows, the progress bar or plain log lines,
TensorBoard event files when asked."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from ..config import Config


class Logger:
    """metrics.jsonl, the progress bar (or plain lines with log.quiet), TensorBoard if asked."""

    def __init__(self, run_dir: Path, cfg: Config, start: int, total: int):
        self.path = run_dir / "metrics.jsonl"
        _truncate_rows(self.path, start)  # a resumed run rewrites the steps after its checkpoint
        self.file = open(self.path, "a")  # noqa: SIM115 - closed in __exit__
        self.quiet = cfg.log.quiet
        self.tb = None
        if cfg.log.tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # checked by the Trainer

            self.tb = SummaryWriter(str(run_dir / "tensorboard"))
        self.bar = None
        if not self.quiet:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=total,
                initial=start,
                desc=run_dir.name,
                unit="step",
                dynamic_ncols=True,
                file=sys.stderr,
            )
        self.last = start

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
        if self.tb is not None:
            self.tb.close()
        self.file.close()

    def _record(self, row: dict[str, Any]) -> None:
        """One row to metrics.jsonl (flushed) and its numbers to TensorBoard."""
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()
        if self.tb is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)):
                    self.tb.add_scalar(k, v, row["step"])

    def row(self, row: dict[str, Any]) -> None:
        self._record(row)
        step = row["step"]
        short = {k: row[k] for k in ("loss_D", "loss_G", "D(x)", "D(G(z))") if k in row}
        if self.bar is not None:
            self.bar.update(step - self.last)
            self.bar.set_postfix({k: f"{v:.3f}" for k, v in short.items()}, refresh=False)
        else:
            parts = " ".join(f"{k}={v:.4f}" for k, v in short.items())
            print(f"step {step} {parts} img/s={row.get('img_per_s', 0):.0f}", flush=True)
        self.last = step

    def eval_row(self, row: dict[str, Any]) -> None:
        """A row of periodic metrics: to metrics.jsonl and TensorBoard, and one printed line."""
        self._record(row)
        values = " ".join(f"{k[5:]}={v:.4g}" for k, v in row.items() if k != "step")
        self.note(f"eval at step {row['step']}: {values}")

    def warn(self, msg: str) -> None:
        self.note(f"warning: {msg}")

    def note(self, msg: str) -> None:
        if self.bar is not None:
            self.bar.write(msg, file=sys.stderr)
        else:
            print(msg, file=sys.stderr, flush=True)

    def done(self, summary: dict[str, Any]) -> None:
        pass


def _truncate_rows(path: Path, step: int) -> None:
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", math.inf) <= step:
                keep.append(line)
        except json.JSONDecodeError:
            continue  # a half-written last line from a crash
    path.write_text("".join(f"{line}\n" for line in keep))
