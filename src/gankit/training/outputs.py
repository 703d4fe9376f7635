"""The trainer's outputs: periodic metrics, the preview samples and their pictures, and the
run's summary and report at the end. A part of ``Trainer`` (a mixin), kept apart so that the
loop itself reads on one screen; every method uses the trainer's own state."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from .. import report
from ..metrics.results import CONSTANT_KEYS
from . import distributed
from .process import cpu_threads, to_device

if TYPE_CHECKING:
    from .logger import Logger

N_POINTS = 2500  # generated points for 2-D scatter plots and the mode-coverage protocol


class RunOutputs:
    # ------------------------------------------------------------------ periodic metrics
    def _check_eval(self) -> None:
        """Fail before the first step, not hours in, when the chosen metrics cannot run."""
        if not self.cfg.eval.every:
            return
        from .. import evaluation

        evaluation.check(self.cfg, self.source.kind, self.cfg.eval.metrics)

    def _evaluate(self, logger: Logger) -> None:
        """Periodic metrics of the sampling net (``gankit.evaluation``), logged by rank 0.

        Every rank calls it. Under torchrun each generates and extracts the features of its share
        of the samples, gathered over the control group (``distributed.all_gather_rows``), and
        rank 0 computes and logs the values one process would get from the same seed; metrics
        that do not split (cacc, ppl, Stacked MNIST modes, 2-D and 1-D metrics) run on rank 0
        alone while the others go on to the next collective."""
        from .. import evaluation
        from ..generator import Generator
        from ..metrics.split import Split

        cfg, d = self.cfg, self.dist
        gen = Generator(
            self.sampling_net, cfg, self.source.shape, self.num_classes, self.source.kind, self.step
        )
        opts = evaluation.Options(
            n=cfg.eval.n,
            seed=cfg.seed,
            device=str(self.device),
            inception_weights=cfg.eval.inception_weights,
        )
        split = None
        if d.enabled:
            split = Split(d.rank, d.world, functools.partial(distributed.all_gather_rows, d=d))
        # metric nets are big enough to use every thread, unless the user chose a count
        with cpu_threads(self.cfg.threads or self._all_threads):
            res = evaluation.evaluate_generator(gen, cfg.eval.metrics, opts, split)
        if res is None:  # a rank other than 0: its shares are in rank 0's numbers
            return
        values = {
            k: v for k, v in res.items() if isinstance(v, (int, float)) and k not in CONSTANT_KEYS
        }
        self.last_eval = {"step": self.step, **values, "protocols": res["protocols"]}
        logger.eval_row({"step": self.step, **{f"eval/{k}": v for k, v in values.items()}})

    # ------------------------------------------------------------------ pictures and summary
    @torch.no_grad()
    def _generate(self) -> Tensor:
        """The variant's preview of the fixed inputs, ``[n, *shape]`` on the CPU, every net in
        eval mode (the sampler's EMA copy in its place)."""
        nets = {**self.nets, self.variant.sampler_player: self.sampling_net}
        modes = {name: net.training for name, net in nets.items()}
        for net in nets.values():
            net.eval()
        try:
            out = self.variant.preview(nets, to_device(self._fixed, self.device))
        finally:
            for name, net in nets.items():
                net.train(modes[name])
        return out.float().cpu()  # [n, *shape]

    @torch.no_grad()
    def _field(self, pts: Tensor) -> Tensor:
        """D's output on points (probabilities for logit-scored variants), for heat maps."""
        D = self.nets["D"]
        was_training = D.training
        D.eval()
        score = getattr(D, "score_points", D)  # a packed D scores a pack of copies of each point
        s = score(pts.to(self.device)).float().cpu()  # [M]
        D.train(was_training)
        return torch.sigmoid(s) if self.variant.probabilities else s

    def _save_samples(self, fake: Tensor, path: Path | None = None) -> Path:
        path = path or self.dir / "samples" / f"step_{self.step:07d}.png"
        if self.source.kind != "toy":
            return report.save_grid(fake, path, nrow=self.variant.preview_nrow(fake.shape[0]))
        real, _ = self.source.sample(N_POINTS, torch.Generator().manual_seed(self.cfg.seed + 7))
        field = self._field if self.num_classes == 0 and "D" in self.nets else None
        label = "D(x)" if self.variant.probabilities else "critic D(x)"
        modes = getattr(self.source, "modes", None) if self.source.shape == (2,) else None
        title = (
            f"step {self.step}" if path.parent.name != "samples" else ""
        )  # timeline titles frames
        return report.plot_points(
            real, fake, path, field=field, field_label=label, title=title, modes=modes
        )

    def _finish(self, interrupted: bool) -> dict[str, Any]:
        cfg = self.cfg
        rows = report.read_metrics(self.dir / "metrics.jsonl")
        summary: dict[str, Any] = {
            "name": self.dir.name,
            "variant": cfg.train.variant,
            "data": cfg.data.name,
            "steps": self.step,
            "interrupted": interrupted,
            "time_limit": self.timed_out,  # stopped by train.minutes before train.steps
            "seconds": round(self.elapsed, 2),
            "device": str(self.device),
            "processes": self.dist.world,
            "global_batch": cfg.train.batch_size * self.dist.world,
        }
        if rows:
            last = rows[-1]
            summary.update(
                {k: last[k] for k in ("loss_D", "loss_G", "D(x)", "D(G(z))") if k in last}
            )
            speeds = [r["img_per_s"] for r in rows if "img_per_s" in r]
            summary["img_per_s"] = round(sum(speeds) / len(speeds), 1) if speeds else None
        skipped = [
            f
            for src in [self.source, *getattr(self.source, "domains", ())]
            for f in getattr(src, "skipped", [])
        ]
        if skipped:  # data.skip_bad=true left these out
            summary["skipped_files"] = {"count": len(skipped), "files": skipped}
        fake = self._generate()
        summary.update(self.diagnostics.final(fake))
        summary["warnings"] = self.diagnostics.warnings
        if self.augment is not None:
            summary["augment"] = self.augment.summary()
        if getattr(self.source, "subset", None):  # data.limit
            summary["data_subset"] = self.source.subset
        if self.last_eval is not None:
            summary["eval"] = self.last_eval
        (self.dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        if rows:
            report.plot_losses(
                rows,
                self.dir / "losses.png",
                title=self.dir.name,
                g_steps=self.cfg.train.g_steps,
            )
        frames = report.find_samples(self.dir / "samples")
        if frames:
            report.plot_timeline(frames, self.dir / "timeline.png", caption=self._caption)
        if self.source.kind == "toy":
            self._save_samples(fake, self.dir / "scatter.png")
        report.write_report(self.dir)
        return summary
