"""Device names, checked once for every command and API call.

``check_name`` is pure string work (config validation calls it before torch loads); ``resolve``
turns a name into a ``torch.device`` that exists on this machine, or raises a one-sentence
``UserError`` that names the flag the user typed. ``auto`` picks CUDA, then MPS, then the CPU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import UserError

if TYPE_CHECKING:
    import torch

NAMES = "auto, cpu, cuda, cuda:N or mps"


def check_name(name: object, flag: str = "device") -> str:
    """``name`` as a device string, or a ``UserError`` when it cannot name a device."""
    text = str(name)
    if text in ("auto", "cpu", "cuda", "mps") or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise UserError(f"{flag} must be {NAMES}, got {text!r}")


def resolve(name: str | torch.device, flag: str = "device") -> torch.device:
    """A ``torch.device`` that this machine has; ``flag`` names the option in messages."""
    import torch

    if isinstance(name, torch.device):
        name = str(name)
    name = check_name(name, flag)
    has_mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if has_mps else torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"{flag} {name} was asked for but CUDA is not available; use cpu")
        count = torch.cuda.device_count()
        if ":" in name and int(name[5:]) >= count:
            raise UserError(
                f"{flag} {name} does not exist: this machine has {count} CUDA device(s), "
                f"cuda:0 to cuda:{count - 1}"
            )
    if name == "mps" and not has_mps:
        raise UserError(f"{flag} mps was asked for but MPS is not available; use cpu")
    return torch.device(name)
