"""What goes wrong in GAN training, recognised from logged statistics.

- **The discriminator wins**: D(x) -> 1 and D(G(z)) -> 0 for several logged rows; with the minimax
  loss G's gradient then vanishes (Goodfellow et al. 2014, Sec. 3; Arjovsky and Bottou 2017).
- **Divergence**: losses or gradient norms grow by orders of magnitude over their early values.
- **Mode collapse** (2-D data): the fixed-z samples cover few of the data's modes; images: the
  fixed-z samples are far less diverse than real images.

Each kind is warned about once, with a hint, and listed in ``summary.json`` and the report.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..metrics.modes import mode_coverage, nearest_mode

WIN_STREAK = 3  # consecutive logged rows before "D wins" is declared
IMAGE_MIN_STEP = 500  # before it an image G that has not learned yet is alike across z (its
# untrained outputs are near one grey image) without having collapsed: no verdict on short runs


class Diagnostics:
    def __init__(self, cfg, source, probabilities: bool):
        self.cfg = cfg
        self.source = source
        self.probabilities = probabilities
        self.warnings: list[str] = []
        self.kinds: list[str] = []
        self.streak = 0
        self.early: dict[str, float] = {}  # max |value| over the first rows, per key
        self.rows_seen = 0

    def _warn(self, kind: str, msg: str) -> list[str]:
        if kind in self.kinds:
            return []
        self.kinds.append(kind)
        self.warnings.append(msg)
        return [msg]

    def observe(self, row: dict[str, float]) -> list[str]:
        """Feed one logged row; returns new warnings."""
        out: list[str] = []
        self.rows_seen += 1
        watched = [k for k in row if k.startswith(("loss_", "grad_norm_"))]
        if self.rows_seen <= 5:
            for k in watched:
                self.early[k] = max(self.early.get(k, 0.0), abs(row[k]))
        else:
            for k in watched:
                ref = self.early.get(k)
                if ref is not None and abs(row[k]) > max(50 * ref, 10.0):
                    out += self._warn(
                        "diverging",
                        f"training is diverging at step {row['step']}: {k} = {row[k]:.3g} is over "
                        f"50x its early value {ref:.3g}; lower the learning rates or use wgan-gp",
                    )
        if self.probabilities and "D(x)" in row and "D(G(z))" in row:
            self.streak = self.streak + 1 if row["D(G(z))"] < 0.03 and row["D(x)"] > 0.97 else 0
            if self.streak >= WIN_STREAK:
                g = row.get("grad_norm_G")
                vanishing = g is not None and g < 1e-3
                hint = (
                    "G's gradient is vanishing: use train.g_loss=nonsaturating"
                    if vanishing and self.cfg.train.g_loss == "minimax"
                    else "lower train.lr_d, add train.label_smoothing=0.1 or model.dropout"
                )
                out += self._warn(
                    "d_wins",
                    f"the discriminator is winning at step {row['step']} "
                    f"(D(x)={row['D(x)']:.3f}, D(G(z))={row['D(G(z))']:.3f}"
                    + (f", |grad G|={g:.2g}" if g is not None else "")
                    + f"); {hint}",
                )
        return out

    def check_samples(self, step: int, fake: Tensor) -> list[str]:
        """Look at the fixed-z samples for mode collapse (after the first third of training, and
        for images not before step ``IMAGE_MIN_STEP``)."""
        if step < self.cfg.train.steps // 3:
            return []
        modes = getattr(self.source, "modes", None)
        if self.source.kind == "toy" and modes is not None and modes.shape[1] == fake.shape[1] == 2:
            # Collapse = mass on few modes. Samples spread *between* modes are a quality problem
            # (the high-quality share shows it), not collapse: count nearest modes of all samples.
            _, idx = nearest_mode(fake, modes)  # [N]
            k = modes.shape[0]
            share = torch.bincount(idx, minlength=k).float() / idx.numel()  # [K]
            covered = int((share >= 0.2 / k).sum())
            if covered <= k // 2:
                return self._warn(
                    "mode_collapse",
                    f"mode collapse at step {step}: G's samples cluster near {covered} of {k} "
                    "modes; try packing (train.pac=2, or the ring-pacgan preset's nets), "
                    "train.variant=wgan-gp, a lower train.lr_g, or more D steps (train.n_critic)",
                )
        elif self.source.kind == "image" and fake.shape[0] >= 8 and step >= IMAGE_MIN_STEP:
            real, _ = self.source.sample(fake.shape[0], torch.Generator().manual_seed(0))
            ratio = _spread(fake) / max(_spread(real), 1e-8)
            if ratio < 0.25:
                return self._warn(
                    "mode_collapse",
                    f"mode collapse suspected at step {step}: samples are {ratio:.0%} as diverse "
                    "as real images; try a lower train.lr_g, train.variant=wgan-gp or "
                    "model.dropout in D",
                )
        return []

    def _std(self) -> float:
        stds = self.source.stds
        return float(stds.max()) if isinstance(stds, Tensor) else float(stds)

    def final(self, fake: Tensor) -> dict[str, Any]:
        """Headline quality figures of the finished run, from the fixed-z samples."""
        out: dict[str, Any] = {}
        if self.source.kind != "toy":
            return out
        modes = getattr(self.source, "modes", None)
        if fake.shape[1] == 2 and modes is not None:
            cov = mode_coverage(fake, modes, self._std())
            out.update(
                {
                    k: cov[k]
                    for k in (
                        "modes_captured",
                        "n_modes",
                        "high_quality",
                        "reverse_kl",
                        "n_samples",
                        "protocol",
                    )
                }
            )
        real, _ = self.source.sample(100_000, torch.Generator().manual_seed(1))
        out["fake_mean"] = fake.mean(0).tolist()
        out["fake_std"] = fake.std(0).tolist()
        out["real_mean"] = real.mean(0).tolist()
        out["real_std"] = real.std(0).tolist()
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "warnings": list(self.warnings),
            "kinds": list(self.kinds),
            "streak": self.streak,
            "early": dict(self.early),
            "rows_seen": self.rows_seen,
        }

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.warnings = list(d.get("warnings", []))
        self.kinds = list(d.get("kinds", []))
        self.streak = int(d.get("streak", 0))
        self.early = dict(d.get("early", {}))
        self.rows_seen = int(d.get("rows_seen", 0))


def _spread(x: Tensor) -> float:
    """Mean pairwise L2 distance of a batch of samples."""
    flat = x.flatten(1).float()  # [N, D]
    d = torch.cdist(flat, flat)  # [N, N]
    n = flat.shape[0]
    return float(d.sum() / (n * (n - 1)))
