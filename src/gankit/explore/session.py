"""What the explorer computes: sample grids, truncation, interpolation, classifier-guided edits,
style mixing, translation and the 2-D picture of a step, for one run, as PNG data URLs.

The explorer never loads by path: ``Loaders`` (built above, in ``gankit.api.explore_loaders``)
hand it the run's newest generator or translators, a 2-D run's G and D at a saved step, and the
classifier that edits need. The generator is loaded again when the run writes a newer checkpoint,
so a page watching a training run steers its latest G. Every method takes validated arguments
(``app.py`` checks the requests) and holds one lock: torch on a small CPU runs one job at a time.

Picks: a sample is ``(seed, n, index)``, row ``index`` of ``sample_latents(z_dim, n, seed)``,
the latents ``gankit sample RUN --seed S --n N`` draws, with an optional class for conditional
models (the per-class grid's rows), so every picture of the page can be redrawn from the CLI.
"""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..control import (
    edit_direction,
    edit_optimize,
    fit_direction,
    group_indices,
    has_mapping,
    interpolation_images,
    label_latents,
    latent_space,
    mix_ws,
    sample_latents,
    synthesize,
    truncated_images,
    w_space,
)
from ..control.latent import check_labels
from ..control.translate import to_pil
from ..errors import UserError
from ..training.checkpoint import checkpoints
from ..training.rundir import step_of

RELOAD_EVERY = 5.0  # seconds between looks for a newer checkpoint
EDIT_FIT_N = 1000  # direction mode: labelled draws the direction is fit on
TOY_POINTS = 1000  # real and generated points of the 2-D picture
TOY_GRID = 64  # heat-map cells per side


@dataclass
class Pick:
    """One sample: row ``index`` of the ``n`` latents of ``seed``; ``klass`` overrides its class."""

    seed: int
    n: int
    index: int
    klass: int | None = None


@dataclass
class Loaders:
    """How the explorer gets what it shows; each may raise ``UserError`` (shown on the page)."""

    generator: Callable[[], Any] | None = None  # the newest Generator (``.net``, ``.shape``)
    translators: Callable[[], dict[str, Any]] | None = None  # direction -> Translator
    toy_step: Callable[[Path], tuple[nn.Module, Callable[[Tensor], Tensor], str]] | None = None
    classifier: Callable[[], nn.Module] | None = None  # images -> logits, for edits
    test_images: Callable[[str, int], Tensor] | None = None  # domain ("A"/"B"), n -> [n, C, H, W]
    real_points: Callable[[int], Tensor] | None = None  # n -> [n, D] real toy data
    recheck: Callable[[], Session] | None = None  # before the first checkpoint: look again


def data_url(image: Tensor) -> str:
    """One image ``[C, H, W]`` in [-1, 1] -> a ``data:image/png;base64,...`` URL."""
    buf = io.BytesIO()
    to_pil(image).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def urls(images: Tensor) -> list[str]:
    return [data_url(x) for x in images]


@dataclass
class Session:
    """One run as the page sees it."""

    run_dir: Path
    loaders: Loaders
    kind: str = "none"  # "image", "toy", "translation" or "none" (no checkpoint yet)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _loading: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _gen: Any = field(default=None, repr=False)
    _gen_ckpt: Path | None = field(default=None, repr=False)
    _looked: float = field(default=0.0, repr=False)
    _translators: dict[str, Any] | None = field(default=None, repr=False)
    _classifier: nn.Module | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ what the run holds
    def newest_checkpoint(self) -> Path | None:
        found = checkpoints(self.run_dir)
        return found[-1] if found else None

    def generator(self) -> Any:
        """The newest generator, loaded again when a newer checkpoint appeared."""
        if self.loaders.generator is None:
            raise UserError("this run has no generator to sample (a translation run?)")
        with self._loading:
            now = time.monotonic()
            if self._gen is None or now - self._looked > RELOAD_EVERY:
                self._looked = now
                newest = self.newest_checkpoint()
                if newest is not None and (newest != self._gen_ckpt or self._gen is None):
                    self._gen, self._gen_ckpt = self.loaders.generator(), newest
            if self._gen is None:
                raise UserError("the run has no checkpoint yet; wait for its first one")
            return self._gen

    def translators(self) -> dict[str, Any]:
        if self.loaders.translators is None:
            raise UserError("this run is not a translation run; it has no translators")
        if self._translators is None:
            self._translators = self.loaders.translators()
        return self._translators

    def classifier(self) -> nn.Module:
        if self.loaders.classifier is None:
            raise UserError("no classifier reads this generator's images; editing is off")
        if self._classifier is None:
            self._classifier = self.loaders.classifier()
        return self._classifier

    def describe(self) -> dict[str, Any]:
        """Which panels the page shows, and what they need to know (classes, groups, spaces)."""
        if self.kind == "none" and self.loaders.recheck is not None:
            fresh = self.loaders.recheck()
            self.kind, self.loaders = fresh.kind, fresh.loaders
        out: dict[str, Any] = {"kind": self.kind, "step": None}
        if self.kind in ("image", "toy"):
            try:
                g = self.generator()
            except UserError as e:
                out["generator_error"] = str(e)
                return out
            net = g.net
            out.update(
                step=g.step,
                shape=list(g.shape),
                num_classes=int(g.num_classes),
                z_dim=int(net.z_dim),
                mapping=has_mapping(net),
                groups=list(net.layer_groups()) if has_mapping(net) else [],
                editable=self.loaders.classifier is not None,
            )
            if self.kind == "toy":
                ckpts = checkpoints(self.run_dir)
                out["toy_steps"] = [step_of(p) for p in ckpts]
        elif self.kind == "translation":
            out["directions"] = sorted(self.translators())
            out["test_images"] = self.loaders.test_images is not None
        return out

    # ------------------------------------------------------------------ latents of picks
    def _latent(self, net: nn.Module, pick: Pick) -> tuple[Tensor, int | None]:
        """``(z [z_dim], class or None)`` of a pick."""
        k = int(getattr(net, "num_classes", 0))
        z, y = sample_latents(net.z_dim, pick.n, pick.seed, k)
        if pick.index >= pick.n:
            raise UserError(f"index must be in 0..{pick.n - 1}, got {pick.index}")
        klass = None
        if k:
            klass = int(y[pick.index]) if pick.klass is None else pick.klass
        elif pick.klass is not None:
            raise UserError("this generator is unconditional; drop the class")
        return z[pick.index], klass

    # ------------------------------------------------------------------ panels
    def grid(self, seed: int, n: int, psi: float, klass: int | None, per_class: bool) -> dict:
        """``n`` samples of ``seed`` truncated by ``psi``; conditional: one class for all, or
        (``per_class``) one row per class of the same ``n`` latents."""
        with self.lock:
            g = self.generator()
            net = g.net
            k = int(g.num_classes)
            if (klass is not None or per_class) and not k:
                raise UserError("this generator is unconditional; per-class rows need classes")
            z, y = sample_latents(net.z_dim, n, seed, k)  # [n, z_dim], [n] or None
            if per_class:
                zz = z.repeat(k, 1)  # [k * n, z_dim], row c = class c
                yy = torch.arange(k).repeat_interleave(n)  # [k * n]
                images = truncated_images(net, zz, yy, psi)
                rows = [{"class": c, "images": urls(images[c * n : (c + 1) * n])} for c in range(k)]
                return {"seed": seed, "n": n, "psi": psi, "rows": rows}
            if klass is not None:
                y = check_labels(net, n, klass)
            images = truncated_images(net, z, y, psi)  # [n, *shape]
            klasses = None if y is None else [int(c) for c in y]
            return {
                "seed": seed,
                "n": n,
                "psi": psi,
                "rows": [{"class": klass, "images": urls(images), "classes": klasses}],
            }

    def interpolate(self, a: Pick, b: Pick, steps: int, mode: str, space: str) -> dict:
        with self.lock:
            net = self.generator().net
            za, ca = self._latent(net, a)
            zb, _ = self._latent(net, b)
            if space == "w" and mode == "slerp":
                mode = "lerp"  # W is no Gaussian shell: the control module refuses slerp there
            images = interpolation_images(net, za, zb, steps, mode, space, ca)
            return {"images": urls(images), "mode": mode, "space": space, "class": ca}

    def edit(self, pick: Pick, target: int, mode: str, space: str, steps: int) -> dict:
        """Classifier-guided edit of one pick (``gankit.control.editing``)."""
        with self.lock:
            net = self.generator().net
            clf = self.classifier()
            z, klass = self._latent(net, pick)
            sp = latent_space(net, space)
            y = None if klass is None else torch.tensor([klass])
            code = sp.codes(z[None], y)  # [1, dim]
            if mode == "optimize":
                res = edit_optimize(
                    net,
                    clf,
                    code,
                    target,
                    space=sp,
                    labels=y,
                    steps=steps,
                    restarts=2,
                    seed=pick.seed,
                )
            else:
                fit_y = None if klass is None else klass
                zf, lf = label_latents(net, clf, EDIT_FIT_N, pick.seed + 1, fit_y, space=sp)
                direction = fit_direction(zf, lf, target)
                res = edit_direction(net, clf, code, target, direction, space=sp, labels=y)
            s = res.summary()
            p0 = res.logits_before.softmax(1)[0]
            p1 = res.logits_after.softmax(1)[0]
            return {
                "before": data_url(res.images_before[0]),
                "after": data_url(res.images_after[0]),
                "success": bool(res.success[0]),
                "entanglement": s["entanglement_mean"],
                "distance": s["distance_mean"],
                "p_target_before": s["p_target_before"],
                "p_target_after": s["p_target_after"],
                "label_before": int(p0.argmax()),
                "label_after": int(p1.argmax()),
                "target": target,
                "mode": mode,
                "space": sp.name,
            }

    def mix(self, a: Pick, b: Pick, group: str, noise_seed: int | None) -> dict:
        """Style mixing: A's styles everywhere but ``group``'s layers, which take B's; with
        ``noise_seed``, the per-pixel noise drawn from that seed instead of the fixed maps."""
        with self.lock:
            net = self.generator().net
            za, ca = self._latent(net, a)
            zb, cb = self._latent(net, b)
            sp = w_space(net)
            wa = sp.codes(za[None], None if ca is None else torch.tensor([ca]))  # [1, w_dim]
            wb = sp.codes(zb[None], None if cb is None else torch.tensor([cb]))
            (idx,) = group_indices(net, [group])
            ws = mix_ws(wa, wb, idx, net.num_ws)  # [1, num_ws, w_dim]
            fixed = synthesize(
                net, torch.cat([mix_ws(wa, wa, [], net.num_ws), mix_ws(wb, wb, [], net.num_ws), ws])
            )
            out = {
                "a": data_url(fixed[0]),
                "b": data_url(fixed[1]),
                "mix": data_url(fixed[2]),
                "layers": idx,
                "group": group,
            }
            if noise_seed is not None:
                gen = torch.Generator().manual_seed(noise_seed)
                draws = synthesize(net, ws.repeat(4, 1, 1), "random", gen)  # [4, *shape]
                out["noise"] = urls(draws)
                out["noise_seed"] = noise_seed
            return out

    def test_images(self, domain: str, n: int) -> dict:
        if self.loaders.test_images is None:
            raise UserError("this run has no test images to show")
        with self.lock:
            return {"domain": domain, "images": urls(self.loaders.test_images(domain, n))}

    def translate(self, direction: str, image: Tensor) -> dict:
        """``image [C, H, W]`` translated by ``direction`` and back by the other direction."""
        with self.lock:
            trs = self.translators()
            if direction not in trs:
                raise UserError(f"direction must be one of {', '.join(sorted(trs))}")
            fwd = trs[direction]
            x = fwd.check(image[None])  # [1, C, H, W]
            y = fwd(x)
            back = [t for d, t in trs.items() if d != direction]
            out = {"source": data_url(x[0]), "translated": data_url(y[0]), "direction": direction}
            if back:
                out["reconstructed"] = data_url(back[0](y)[0])
                out["cycle_l1"] = float((back[0](y) - x).abs().mean())
            return out

    def toy(self, step: int) -> dict:
        """The 2-D picture of a saved step, live: D over a grid, real and generated points."""
        if self.loaders.toy_step is None or self.loaders.real_points is None:
            raise UserError("this run is not a 2-D run")
        found = {step_of(p): p for p in checkpoints(self.run_dir)}
        if step not in found:
            have = ", ".join(map(str, sorted(found))) or "none"
            raise UserError(f"step {step} has no checkpoint; saved steps: {have}")
        with self.lock:
            G, field_fn, label = self.loaders.toy_step(found[step])
            z = sample_latents(G.z_dim, TOY_POINTS, 0)[0]
            with torch.no_grad():
                fake = G.eval()(z, None).float()  # [n, 2]
            if fake.shape[1:] != (2,):
                raise UserError("the live picture is drawn for 2-D data only")
            real = self.loaders.real_points(TOY_POINTS)  # [n, 2]
            both = torch.cat([real, fake])
            lo, hi = both.min(0).values, both.max(0).values
            pad = ((hi - lo) * 0.15).clamp_min(0.5)
            lo, hi = lo - pad, hi + pad
            xs = torch.linspace(float(lo[0]), float(hi[0]), TOY_GRID)
            ys = torch.linspace(float(lo[1]), float(hi[1]), TOY_GRID)
            gy, gx = torch.meshgrid(ys, xs, indexing="ij")  # [grid, grid], rows follow y
            with torch.no_grad():
                heat = field_fn(torch.stack([gx.reshape(-1), gy.reshape(-1)], 1))
            return {
                "step": step,
                "bounds": [float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])],
                "heat": heat.reshape(TOY_GRID, TOY_GRID).tolist(),
                "real": real.tolist(),
                "fake": fake.tolist(),
                "label": label,
            }
