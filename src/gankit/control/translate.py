"""Translating images with a trained unpaired image-to-image translator: CycleGAN's G_AB and G_BA
(Zhu et al. 2017).

A ``Translator`` is one direction of a translation run (``AtoB`` runs G_AB) with the image shape
it was trained on; calling it on float images ``[N, C, H, W]`` in [-1, 1] checks them and returns
their translations, CPU float32 of the same shape. ``write_translations`` writes each translation
as an 8-bit PNG and a grid of sources above their translations. Loading one by path lives above,
in ``gankit.api.load_translator``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from ..config import Config
from ..errors import UserError
from ..report import save_grid

BATCH = 256  # images per forward pass
SLACK = 1e-3  # how far outside [-1, 1] an input may stray (rounding of x / 127.5 - 1)
GRID_COLUMNS = 8  # inputs per row pair of the grid: a row of sources, a row of translations
GRID_MAX = 64  # inputs the grid shows at most (the first ones)


@dataclass
class Translator:
    """One direction of a trained translator and what it was trained with."""

    net: nn.Module  # images [N, C, H, W] in [-1, 1] -> images [N, C, H, W] in [-1, 1]
    direction: str  # e.g. "AtoB"
    shape: tuple[int, int, int]  # (C, H, W) of the images it was trained on
    config: Config
    step: int | None = None  # G updates it was trained for (checkpoints; None for exports)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def check(self, images: Any) -> Tensor:
        """``images`` as they are if they fit this translator, else a one-sentence ``UserError``."""
        c, h, w = self.shape
        if not isinstance(images, Tensor):
            raise UserError(
                f"images must be a torch.Tensor [N, {c}, {h}, {w}], got {type(images).__name__}"
            )
        if images.dim() != 4:
            raise UserError(
                f"images must be 4-D [N, {c}, {h}, {w}], got shape {list(images.shape)}; "
                "add the batch dimension (images[None]) for one image"
            )
        if not images.is_floating_point():
            raise UserError(
                f"images must be float in [-1, 1], got {images.dtype}; convert 0..255 images "
                "with x / 127.5 - 1"
            )
        if images.shape[0] == 0:
            raise UserError("images is empty (N = 0); pass at least one image")
        if images.shape[1] != c:
            raise UserError(
                f"this translator takes {c}-channel images, got {images.shape[1]} channels; "
                f"convert them to {'grayscale' if c == 1 else f'{c} channels'}"
            )
        if tuple(images.shape[2:]) != (h, w):
            raise UserError(
                f"this translator takes {h}x{w} images, got {images.shape[2]}x{images.shape[3]}; "
                f"resize them to {h}x{w}"
            )
        if not torch.isfinite(images).all():
            raise UserError("images hold NaN or infinite values; pass finite values in [-1, 1]")
        low, high = float(images.min()), float(images.max())
        if low < -1 - SLACK or high > 1 + SLACK:
            raise UserError(
                f"images must be in [-1, 1], got values in [{low:.4g}, {high:.4g}]; scale "
                "0..255 images with x / 127.5 - 1 and 0..1 images with 2 x - 1"
            )
        return images

    @torch.no_grad()
    def __call__(self, images: Tensor) -> Tensor:
        """The translations of ``images`` ``[N, C, H, W]``: CPU float32 ``[N, C, H, W]``."""
        images = self.check(images)
        device, was_training = self.device, self.net.training
        self.net.eval()
        try:
            out = [
                self.net(images[i : i + BATCH].to(device, torch.float32)).float().cpu()
                for i in range(0, images.shape[0], BATCH)
            ]
        finally:
            self.net.train(was_training)
        return torch.cat(out)  # [N, C, H, W]

    def to(self, device: str | torch.device) -> Translator:
        self.net.to(device)
        return self


def check_names(names: Sequence[str]) -> None:
    """``names`` can be the file names ``<name>.png`` of one folder beside ``grid.png``."""
    seen: set[str] = set()
    for name in names:
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise UserError(f"the output name {name!r} is not a file name; give plain names")
        if name == "grid":
            raise UserError(
                "an image named grid would overwrite grid.png, the grid of all translations; "
                "rename that input"
            )
        if name in seen:
            raise UserError(f"two inputs would both be written as {name}.png; rename one of them")
        seen.add(name)


def to_pil(image: Tensor) -> Image.Image:
    """One image ``[C, H, W]`` in [-1, 1] -> an 8-bit PIL image (mode L for 1 channel, else RGB)."""
    x = ((image.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    arr = x.permute(1, 2, 0).numpy()  # [H, W, C]
    return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else np.ascontiguousarray(arr))


def grid_rows(sources: Tensor, translated: Tensor, columns: int = GRID_COLUMNS) -> Tensor:
    """For each chunk of ``columns`` inputs a row of sources, then a row of their translations;
    a short last chunk is padded with black cells so that the rows stay aligned."""
    cells = []
    for i in range(0, sources.shape[0], columns):
        for part in (sources[i : i + columns], translated[i : i + columns]):
            pad = torch.full((columns - part.shape[0], *part.shape[1:]), -1.0)
            cells += [part.float(), pad]
    return torch.cat(cells)  # [2 * ceil(N / columns) * columns, C, H, W]


def write_translations(
    translator: Translator,
    images: Tensor,  # [N, C, H, W] in [-1, 1]
    names: Sequence[str],  # one file name (no suffix) per image
    out_dir: str | Path,
) -> dict[str, Any]:
    """Translate ``images`` and write ``out_dir/<name>.png`` for each (8-bit, grayscale for one
    channel) and ``out_dir/grid.png``: the first 64 inputs, 8 per row, each row of sources above
    the row of their translations. Returns ``{"n", "out", "grid"}``."""
    if len(names) != len(images):
        raise UserError(f"want one name per image, got {len(names)} names for {len(images)}")
    check_names(names)
    translated = translator(images)  # [N, C, H, W], checks the images
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, image in zip(names, translated, strict=True):
        to_pil(image).save(out / f"{name}.png")
    k = min(GRID_MAX, len(images))
    columns = min(GRID_COLUMNS, k)
    grid = grid_rows(images[:k].cpu(), translated[:k], columns)  # [2 * rows * columns, C, H, W]
    save_grid(grid, out / "grid.png", nrow=columns)
    return {"n": len(images), "out": out, "grid": out / "grid.png"}
