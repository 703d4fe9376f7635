"""A pool of past generated images for the discriminator (Shrivastava et al. 2017), as CycleGAN
uses it (Zhu et al. 2017, 50 images).

D is updated on a history of fakes rather than only the latest generator's, which damps the
oscillation between G and D. ``query`` passes images through while the pool fills; once it is
full, each image is, with probability 1/2, swapped for a random stored one (which is returned and
replaced by the new image), else returned as it is.

The pool is variant state: its coin flips come from its own seeded ``torch.Generator`` and
``state_dict`` holds the stored images and the generator's state, so a resumed run draws exactly
what the uninterrupted run would have.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import UserError


class ImagePool:
    """Up to ``size`` past images; ``size=0`` turns the pool off (``query`` returns its input)."""

    def __init__(
        self,
        size: int = 50,  # images kept; 0 = no pool
        seed: int = 0,  # seeds the pool's own generator (coin flips and slot choices)
    ):
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise UserError(f"the image pool size must be an integer >= 0, got {size!r}")
        self.size = size
        self.seed = int(seed)
        self.generator = torch.Generator().manual_seed(self.seed)  # CPU: draws never sync a GPU
        self.count = 0  # slots filled, 0..size
        self.images: Tensor | None = None  # [size, *image] once the first image arrived

    def __len__(self) -> int:
        return self.count

    def _storage_for(self, images: Tensor) -> Tensor:
        """The storage, allocated on the first query and moved to the images' device and dtype
        (after ``load_state_dict`` it sits on the CPU)."""
        if self.images is None:
            self.images = images.new_empty((self.size, *images.shape[1:]))  # [size, *image]
        elif self.images.shape[1:] != images.shape[1:]:
            raise ValueError(
                f"the image pool holds images of shape {tuple(self.images.shape[1:])}, "
                f"got a batch of shape {tuple(images.shape)}"
            )
        if self.images.device != images.device or self.images.dtype != images.dtype:
            self.images = self.images.to(images.device, images.dtype)
        return self.images

    def query(self, images: Tensor) -> Tensor:
        """A batch ``[B, *image]`` -> a batch of the same shape, detached, mixing the new images
        with stored ones as the module docstring says; stores the new images it keeps."""
        if self.size == 0:
            return images
        if not isinstance(images, Tensor) or images.dim() < 1:
            raise ValueError("the image pool takes a batch tensor of shape [B, ...]")
        images = images.detach()
        pool = self._storage_for(images)
        # Plan the batch on the CPU, image by image, then apply it with a few index copies.
        # holder[j] = index i in this batch of the image now in slot j (slots written this call).
        holder: dict[int, int] = {}
        from_pool: list[tuple[int, int]] = []  # (output i, slot j) holding an older image
        from_batch: list[tuple[int, int]] = []  # (output i, batch i') stored earlier this call
        for i in range(images.shape[0]):
            if self.count < self.size:  # filling: keep it and pass it through
                holder[self.count] = i
                self.count += 1
            elif torch.rand(1, generator=self.generator).item() < 0.5:
                j = int(torch.randint(self.size, (1,), generator=self.generator).item())
                if j in holder:
                    from_batch.append((i, holder[j]))
                else:
                    from_pool.append((i, j))
                holder[j] = i
        if not holder:
            return images
        out = images.clone() if from_pool or from_batch else images
        dev = images.device
        if from_pool:  # read the old images before their slots are overwritten below
            dst, src = torch.tensor(from_pool, device=dev).unbind(1)
            out[dst] = pool[src]
        if from_batch:
            dst, src = torch.tensor(from_batch, device=dev).unbind(1)
            out[dst] = images[src]
        slots, srcs = torch.tensor(list(holder.items()), device=dev).unbind(1)
        pool[slots] = images[srcs]
        return out

    def state_dict(self) -> dict:
        """Tensors and ints only (``torch.load(weights_only=True)`` reads it); images on the CPU."""
        stored = torch.zeros(0) if self.images is None else self.images[: self.count]
        return {
            "size": self.size,
            "seed": self.seed,
            "count": self.count,
            "images": stored.detach().to("cpu", copy=True),  # [count, *image], not a view
            "rng": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned; the images move to the device of the next
        query."""
        if state["size"] != self.size:
            raise UserError(
                f"the checkpoint's image pool holds {state['size']} images but this pool holds "
                f"{self.size}; resume with the pool size the run was started with"
            )
        count, stored = int(state["count"]), state["images"]
        if not 0 <= count <= self.size or (count and stored.shape[0] != count):
            raise ValueError(
                f"inconsistent image pool state: count {count}, images {tuple(stored.shape)}"
            )
        self.seed, self.count = int(state["seed"]), count
        self.generator.set_state(state["rng"])
        if count == 0:
            self.images = None
        else:
            self.images = stored.new_empty((self.size, *stored.shape[1:]))  # [size, *image]
            self.images[:count] = stored
