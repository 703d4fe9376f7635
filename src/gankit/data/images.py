"""Image data sets held in memory as uint8, and folders of images.

MNIST and Fashion-MNIST come from their IDX files (``idx.py``) into an ``ImageSource``.
``size`` other than the stored size resizes with antialiased bilinear interpolation
(``resize_uint8``).

A ``folder`` is any folder of PNG/JPEG images cut to a square by ``data.crop`` (``center``:
resize the short side, center crop; ``pad``: pad to a square with black, then resize; ``resize``:
squash); class subfolders become labels. 16-bit images are reduced to 8 bits by keeping the high
byte (``value >> 8``), as PIL itself does with 16-bit RGB(A) PNGs. Batches are float32 in
[-1, 1] via ``x / 127.5 - 1``. How a folder is decoded (DataLoader workers) and held (memory,
a uint8 cache on disk, or streamed from the files) is ``folder.py``'s part.

Every image sampler draws shuffled epochs (``EpochOrder``) and can serve one shard of each batch
to one of several processes (``set_shard``); its state is always the whole stream's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from PIL import Image
from torch import Tensor

from ..config import DataConfig
from ..errors import UserError
from ..registry import DATASETS
from . import Sampler, Source, check_batch_size

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
CROPS = ("center", "pad", "resize")  # data.crop: how a non-square image becomes a square
PAD_VALUE = 0  # crop=pad fills with black (0 in every channel; -1 after to_float)
# what a broken, truncated or hostile image file raises in PIL
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
_EVAL_SEED = 1_000_003  # the fixed draw of ``sample()`` without a generator


def to_float(images: Tensor) -> Tensor:
    """uint8 ``[..., H, W]`` in 0..255 -> float32 in [-1, 1]."""
    return images.to(torch.float32) / 127.5 - 1


class ImageSource(Source):
    """A whole split in memory: ``images`` uint8 ``[N, C, H, W]``, ``labels`` int64 ``[N]``."""

    kind = "image"
    origin: str | None = None  # where the images came from, for messages; None = split and name

    def __init__(
        self,
        name: str,
        images: Tensor,  # uint8 [N, C, H, W]
        labels: Tensor | None,  # int64 [N], or None when unlabelled
        num_classes: int,  # 0 when unlabelled
        split: str = "train",
        class_names: list[str] | None = None,  # display names of the labels 0..num_classes-1
        origin: str | None = None,  # e.g. "image folder /data/cats", for messages
    ):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(
                f"images must be uint8 [N, C, H, W], got {images.dtype} {images.shape}"
            )
        if labels is not None and labels.shape != images.shape[:1]:
            raise ValueError(f"labels must be [{len(images)}], got {tuple(labels.shape)}")
        self.name, self.split = name, split
        self.images, self.labels = images, labels
        self.num_classes = num_classes
        self.class_names = class_names or [str(i) for i in range(num_classes)]
        self.shape = tuple(images.shape[1:])
        self.origin = origin
        self.cache = "memory"  # how the images are held: memory, or (folder.py) disk or none
        self.skipped: list[str] = []  # unreadable files left out (data.skip_bad=true)

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, index: Tensor) -> tuple[Tensor, Tensor | None]:
        """The images at ``index`` ``[B]`` as float32 ``[B, C, H, W]`` in [-1, 1], and labels."""
        y = None if self.labels is None else self.labels[index]  # [B]
        return to_float(self.images[index]), y  # [B, C, H, W]

    def sampler(self, batch_size: int, seed: int) -> ImageSampler:
        check_batch_size(batch_size)
        return ImageSampler(self, batch_size, seed)

    def sample(
        self, n: int, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """``n`` distinct images of the split, in random order."""
        if n > len(self):
            raise UserError(
                f"the {self.split} split of {self.name} has {len(self)} images, {n} were asked for;"
                " ask for fewer samples"
            )
        if generator is None:
            generator = torch.Generator().manual_seed(_EVAL_SEED)
        return self.batch(torch.randperm(len(self), generator=generator)[:n])


class EpochOrder:
    """The index stream of shuffled epochs over ``n`` items: a new permutation each epoch, drawn
    from its own seeded generator; a batch may run on into the next epoch."""

    def __init__(self, n: int, seed: int):
        self.generator = torch.Generator().manual_seed(seed)
        self.perm = torch.randperm(n, generator=self.generator)  # [N]
        self.cursor = 0
        self.epoch = 0

    def take(self, count: int) -> Tensor:
        """The next ``count`` indices ``[count]``. A new epoch makes a new ``perm`` (never changed
        in place), so a ``snapshot`` may share it."""
        parts, need = [], count
        while need > 0:
            if self.cursor == len(self.perm):
                self.perm = torch.randperm(len(self.perm), generator=self.generator)
                self.cursor, self.epoch = 0, self.epoch + 1
            part = self.perm[self.cursor : self.cursor + need]
            parts.append(part)
            self.cursor += len(part)
            need -= len(part)
        return torch.cat(parts)  # [count]

    def snapshot(self) -> tuple[Tensor, Tensor, int, int]:
        return self.generator.get_state(), self.perm, self.cursor, self.epoch

    def restore(self, snap: tuple[Tensor, Tensor, int, int]) -> None:
        state, self.perm, self.cursor, self.epoch = snap
        self.generator.set_state(state)

    def copy(self) -> EpochOrder:
        other = EpochOrder.__new__(EpochOrder)
        other.generator = torch.Generator()
        other.restore(self.snapshot())
        return other

    def order_state(self) -> dict[str, Any]:
        return {
            "kind": "image",
            "generator": self.generator.get_state(),
            "perm": self.perm.clone(),
            "cursor": self.cursor,
            "epoch": self.epoch,
        }

    def load_order_state(self, d: dict[str, Any]) -> None:
        if d.get("kind") != "image" or not {"generator", "perm", "cursor"} <= set(d):
            raise ValueError("not an image sampler state (expected generator, perm and cursor)")
        if len(d["perm"]) != len(self.perm):
            raise ValueError(
                f"sampler state is for {len(d['perm'])} images, this source has {len(self.perm)}"
            )
        self.generator.set_state(d["generator"])
        self.perm = d["perm"].clone().long()
        self.cursor, self.epoch = int(d["cursor"]), int(d.get("epoch", 0))


def check_shard(batch_size: int, rank: int, world: int) -> int:
    """The shard size ``batch_size // world`` of process ``rank`` of ``world``, once checked."""
    if isinstance(world, bool) or not isinstance(world, int) or world < 1:
        raise ValueError(f"world must be a positive number of processes, got {world!r}")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world:
        raise ValueError(f"rank must be in 0..{world - 1}, got {rank!r}")
    if batch_size % world:  # the trainer builds the global batch as world x its batch
        raise ValueError(f"a batch of {batch_size} does not split evenly over {world} processes")
    return batch_size // world


class ImageSampler(EpochOrder, Sampler):
    """Shuffled epochs of an in-memory source; ``set_shard(rank, world)`` serves one process its
    positions ``[rank * b, (rank + 1) * b)`` of each batch (``b = batch_size // world``)."""

    def __init__(self, source: ImageSource, batch_size: int, seed: int):
        super().__init__(len(source), seed)
        self.source, self.batch_size = source, batch_size
        self.rank, self.world = 0, 1
        self.device_copy: tuple[Tensor, Tensor | None] | None = None  # (images, labels)

    def device_bytes(self) -> int:
        """Bytes that ``to_device`` copies."""
        labels = self.source.labels
        return self.source.images.numel() + (labels.numel() * 8 if labels is not None else 0)

    def to_device(self, device: torch.device) -> None:
        """Keep a copy of the uint8 images (and labels) on ``device``: batches are then gathered
        and scaled there, with no copy from the host per step (the source stays on the CPU for
        metrics and pictures)."""
        labels = self.source.labels
        self.device_copy = (
            self.source.images.to(device),
            labels.to(device) if labels is not None else None,
        )

    def set_shard(self, rank: int, world: int) -> None:
        """From now on ``next()`` gathers only this process's part of each (global) batch; the
        state stays the global stream's, identical on every process."""
        check_shard(self.batch_size, rank, world)
        self.rank, self.world = rank, world

    def _indices(self) -> Tensor:
        index = self.take(self.batch_size)  # [B], the global batch
        b = self.batch_size // self.world
        return index[self.rank * b : (self.rank + 1) * b]  # [b]

    def next(self) -> tuple[Tensor, Tensor | None]:
        if self.device_copy is None:
            return self.source.batch(self._indices())
        images, labels = self.device_copy
        index = self._indices().to(images.device, non_blocking=True)  # [B]
        return to_float(images[index]), labels[index] if labels is not None else None

    def state_dict(self) -> dict[str, Any]:
        return self.order_state()

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.load_order_state(d)


def resize_uint8(images: Tensor, size: int, chunk: int = 4096) -> Tensor:
    """uint8 ``[N, C, h, w]`` -> uint8 ``[N, C, size, size]``, antialiased bilinear, in chunks."""
    out = torch.empty(*images.shape[:2], size, size, dtype=torch.uint8)
    for i in range(0, len(images), chunk):
        x = images[i : i + chunk].float()
        x = F.interpolate(
            x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
        out[i : i + chunk] = x.round_().clamp_(0, 255).to(torch.uint8)  # [n, C, size, size]
    return out


# ---------------------------------------------------------------------------------------------
# a folder of PNG/JPEG images


def list_images(folder: Path) -> list[Path]:
    """PNG/JPEG files under ``folder`` (recursive, any case), sorted; hidden entries skipped."""
    found = []
    for p in folder.rglob("*"):
        rel = p.relative_to(folder).parts
        if p.suffix.lower() in IMAGE_EXTENSIONS and not any(s.startswith(".") for s in rel):
            if p.is_file():
                found.append(p)
    return sorted(found)


def to_8bit(img: Image.Image) -> Image.Image:
    """A 16-bit grayscale image (PIL modes "I;16", "I;16B", "I;16L", or "I", as which older PIL
    reads 16-bit PNGs) -> mode "L" holding ``value >> 8`` (0..65535 -> 0..255, the high byte, as
    PIL reads 16-bit RGB(A) PNGs); ``convert("L")`` would clip every value above 255 to white.
    Other modes come back as they are."""
    if img.mode != "I" and not img.mode.startswith("I;16"):
        return img
    values = np.asarray(img).astype(np.int64)  # [H, W], uint16 or int32 in the file
    high = (np.clip(values, 0, 65535) >> 8).astype(np.uint8)  # [H, W]
    return Image.fromarray(high)  # mode "L"


def square(img: Image.Image, size: int, crop: str = "center") -> Image.Image:
    """A PIL image -> ``size`` x ``size`` by ``crop`` (see ``CROPS``), antialiased."""
    if crop == "center":  # short side to size, then the middle
        return TF.center_crop(TF.resize(img, size), [size, size])
    if crop == "pad":  # the whole image, centred on a black square
        w, h = img.size
        side = max(w, h)
        fill = PAD_VALUE if img.mode == "L" else (PAD_VALUE,) * len(img.getbands())
        canvas = Image.new(img.mode, (side, side), fill)
        canvas.paste(img, ((side - w) // 2, (side - h) // 2))
        img = canvas
    elif crop != "resize":
        raise ValueError(f"crop must be one of {', '.join(CROPS)}, got {crop!r}")
    return TF.resize(img, [size, size])  # squash (a padded image is already square)


def decode_image(path: Path, size: int, channels: int, crop: str = "center") -> Tensor:
    """One image file -> uint8 ``[C, size, size]``; a broken file raises one of
    ``DECODE_ERRORS``."""
    with Image.open(path) as img:
        img = to_8bit(img).convert("L" if channels == 1 else "RGB")
    return TF.pil_to_tensor(square(img, size, crop))  # [C, size, size]


def decode_reason(e: BaseException) -> str:
    """A decoding error as a short phrase for a one-line message."""
    return " ".join(str(e).split())[:120] or type(e).__name__


def load_image(path: Path, size: int, channels: int, crop: str = "center") -> Tensor:
    """One image file -> uint8 ``[C, size, size]`` (``crop``: see ``square``); a file that
    cannot be read is a ``UserError`` naming it."""
    try:
        return decode_image(path, size, channels, crop)
    except DECODE_ERRORS as e:
        reason = decode_reason(e)
        raise UserError(
            f"cannot read image {path} ({reason}); delete or replace it, it may be corrupt"
        ) from None


def folder_labels(folder: Path, files: list[Path]) -> tuple[Tensor | None, list[str]]:
    """Labels from the first subfolder of each file, or None when all files sit at the top."""
    tops = [f.relative_to(folder).parts[0] if f.parent != folder else None for f in files]
    if all(t is None for t in tops):
        return None, []
    if any(t is None for t in tops):
        raise UserError(
            f"{folder} holds images both at the top and in subfolders; put all of them in class "
            "subfolders (labels) or all at the top level (no labels)"
        )
    names = sorted(set(tops))
    index = {n: i for i, n in enumerate(names)}
    return torch.tensor([index[t] for t in tops], dtype=torch.long), names


def image_folder(cfg: DataConfig) -> Path:
    if not cfg.path:
        raise UserError("data set 'folder' needs data.path=<a folder of PNG/JPEG images>")
    folder = Path(cfg.path).expanduser()
    if not folder.exists():
        raise UserError(
            f"image folder {folder} does not exist; set data.path to a folder of images"
        )
    if not folder.is_dir():
        raise UserError(
            f"data.path {folder} is not a folder; set it to a folder of PNG/JPEG images"
        )
    return folder


def load_folder(
    root: Path, size: int, channels: int, crop: str = "center", workers: int | None = None
) -> tuple[Tensor, Tensor | None, list[str]]:
    """Every image under ``root``: uint8 ``[N, C, size, size]``, int64 labels ``[N]`` from the
    class subfolders in sorted order (None without subfolders), and the class names. Decoded by
    ``workers`` DataLoader processes (None: ``folder.default_workers()``); an unreadable file is
    a ``UserError`` naming it."""
    from .folder import decode_folder  # folder.py builds on this module

    return decode_folder(root, size, channels, crop, workers)


@DATASETS.register("folder")
def folder(cfg: DataConfig, split: str = "train") -> ImageSource:
    """All images under ``cfg.path``; the "test" split is the same images (there is no split).
    Held in memory, in a uint8 cache on disk or streamed from the files (``data.cache``): see
    ``folder.py``."""
    from .folder import build_folder  # folder.py builds on this module

    return build_folder(image_folder(cfg), cfg, split)
