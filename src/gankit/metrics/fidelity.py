"""FID, KID, precision/recall and IS of image tensors: gankit's bridge to torch-fidelity.

FID (Heusel et al. 2017) is gankit's float64 ``frechet_distance`` on the extracted features; KID
(Binkowski et al. 2018), precision/recall (Kynkaanniemi et al. 2019) and the Inception Score
(Salimans et al. 2016) are torch-fidelity's own functions on the same features, so each image
set goes through the network once. Images in [-1, 1] become torch-fidelity input, uint8 in
0..255, as ``clamp(round((x + 1) * 127.5), 0, 255)`` (the exact inverse of gankit's
``x / 127.5 - 1``, so real data reaches the network with its original pixel values); one channel is
tiled to three. Both image sets are tensors (a generator's samples, data batches); sample a
generator with ``gankit.api.sample_from`` first.

Speed: on a CPU the images go through Inception in passes of ``CPU_BATCH`` (4) images, one pass
per core side by side (``torch.get_num_threads()`` threads, one intra-op thread each), which ran
faster than one big batch over all cores; on a GPU in batches of ``batch_size`` with TF32 off.
The features equal a plain batched pass to float32 round-off (tests/test_eval_speed.py).

Reference features are cached on disk, in ``<gankit cache>/stats/``, when the caller names them
(``real_key``, e.g. ``reference_key("mnist", "test", 10000)``): one entry per name, image content
(sha256 of the uint8 pixels, so the count is in it), extractor, weights sha256 and protocol
version. Every result carries a ``protocol`` dict saying how it was measured (see
``compute_metrics``).

Several processes (``split``, a ``metrics.split.Split``, as the trainer passes under torchrun):
each passes its share of the generated images, extracts their features and the features are
gathered in rank order; the reference features come from rank 0's cache, or on a miss each rank
extracts its share of them. Rank 0 computes the values (those of one process on the same images,
to float32 round-off of the network) and writes the cache entry; the other ranks get ``None``.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import prc_features_to_metric

from ..cache import cache_dir
from ..errors import UserError
from ..files import atomic_path
from ..registry import METRICS
from .frechet import frechet_distance_features
from .inception import RESIZE, Extractor, load_extractor
from .split import Split

METRIC_NAMES = ("fid", "kid", "pr", "is")
PROTOCOL_VERSION = 1  # bump when the conversion, resize or cache layout changes
CONVERSION = "uint8 = clamp(round((x + 1) * 127.5), 0, 255), 1 channel tiled to 3"
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000  # torch-fidelity's defaults
PRC_NEIGHBORHOOD = 3  # k of the k-NN balls (Kynkaanniemi et al. 2019)
ISC_SPLITS = 10  # Salimans et al. 2016
# images per Inception pass on a CPU: fastest on one core of a shared 2-core CPU (4: 8.0 img/s,
# 32: 6.6 img/s), as a pass of 4 needs no fresh memory from the kernel (no page faults), and one
# core per pass never waits for a busy neighbour at a barrier (benchmarks/eval_speed.py)
CPU_BATCH = 4


def reference_key(dataset: str, split: str, n: int) -> str:
    """The conventional ``real_key`` of ``n`` images of a split, e.g. ``mnist-test-10000``."""
    return f"{dataset}-{split}-{n}"


def to_uint8(images: Tensor) -> Tensor:
    """float ``[N, C, H, W]`` in [-1, 1], C = 1 or 3 -> uint8 ``[N, 3, H, W]`` in 0..255 (CPU)."""
    if images.dim() != 4 or images.shape[1] not in (1, 3) or not images.is_floating_point():
        raise UserError(
            f"images must be float [N, C, H, W] in [-1, 1] with C = 1 or 3, got "
            f"{images.dtype} {tuple(images.shape)}; pass a generator's output or data batches"
        )
    x = ((images.detach().float().cpu() + 1) * 127.5).round_().clamp_(0, 255).to(torch.uint8)
    return x.expand(-1, 3, -1, -1)  # [N, 3, H, W]; a view when C = 1


@contextmanager
def _cpu_threads(n: int):
    """torch's intra-op thread count set to ``n`` inside the block, the caller's restored after."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@contextmanager
def _ieee_fp32(device: torch.device):
    """True float32 convolutions and matmuls on CUDA (PyTorch's default lets cuDNN use TF32, 10
    mantissa bits, which the fp32 protocol of FID does not allow); nothing to do on a CPU."""
    if device.type != "cuda":
        yield
        return
    flags = torch.backends.cudnn, torch.backends.cuda.matmul
    old = [f.allow_tf32 for f in flags]
    for f in flags:
        f.allow_tf32 = False
    try:
        yield
    finally:
        for f, value in zip(flags, old, strict=True):
            f.allow_tf32 = value


def extract_features(
    images: Tensor,  # uint8 [N, 3, H, W]
    extractor: Extractor,
    *,
    batch_size: int = 64,  # images per forward pass on a GPU; at most CPU_BATCH on a CPU
    device: str | torch.device = "cpu",
    workers: int | None = None,  # CPU only: parallel passes; None = torch.get_num_threads()
) -> dict[str, Tensor]:
    """torch-fidelity feature name -> float32 ``[N, D]`` on the CPU.

    On a CPU, passes of ``CPU_BATCH`` images run side by side on ``workers`` threads, one core
    each; on a GPU, batches of ``batch_size`` run one after the other with TF32 off.
    """
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"want uint8 [N, 3, H, W], got {images.dtype} {tuple(images.shape)}")
    device = torch.device(device)
    cpu = device.type == "cpu"
    step = min(batch_size, CPU_BATCH) if cpu else batch_size
    workers = max(1, (workers or torch.get_num_threads()) if cpu else 1)
    module = extractor.module

    def features(start: int) -> dict[str, Tensor]:  # runs in a worker thread on a CPU
        with torch.inference_mode():  # grad mode is per thread: set it in each worker
            x = images[start : start + step].to(device, non_blocking=True)  # [B, 3, H, W]
            return module.convert_features_tuple_to_dict(module(x))  # name -> [B, D]

    starts = range(0, len(images), step)
    with _ieee_fp32(device):
        if workers > 1 and len(starts) > 1:
            with _cpu_threads(1), ThreadPoolExecutor(workers, initializer=_one_thread) as pool:
                parts = list(pool.map(features, starts))
        else:
            parts = [features(s) for s in starts]
    if not parts:
        raise ValueError("no images to extract features from")
    return {  # one concatenation and one copy to the CPU, not one per batch
        name: torch.cat([p[name] for p in parts]).float().cpu() for name in parts[0]
    }  # [N, D]


def _one_thread() -> None:
    torch.set_num_threads(1)


# ---------------------------------------------------------------------------------------------
# the reference cache


def _content_sha256(images: Tensor) -> str:
    h = hashlib.sha256(str(tuple(images.shape)).encode())
    h.update(images.contiguous().numpy().tobytes())
    return h.hexdigest()


def _cache_entry(real_key: str, images: Tensor, extractor: Extractor) -> tuple[Path, str]:
    """The cache file of a reference set and the key stored in it."""
    key = json.dumps(
        {
            "real_key": real_key,
            "n": len(images),
            "content_sha256": _content_sha256(images),
            "extractor": extractor.name,
            "weights_sha256": extractor.sha256,
            "features": sorted(set(extractor.layers.values())),
            "resize": RESIZE,
            "conversion": CONVERSION,
            "protocol_version": PROTOCOL_VERSION,
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", real_key)[:80]
    return cache_dir("stats", f"{slug}-{extractor.name}-{digest}.pt"), key


def _read_entry(path: Path, key: str) -> dict[str, Tensor] | None:
    """The features of the cache entry ``path`` if it holds ``key`` (None: missing or damaged)."""
    if not path.is_file():
        return None
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
        if entry.get("key") == key:
            return entry["features"]
    except (RuntimeError, OSError, EOFError, ValueError, KeyError, pickle.UnpicklingError):
        pass  # a damaged entry is recomputed and overwritten
    return None


def reference_features(
    images: Tensor,  # uint8 [N, 3, H, W]: the whole reference set, on every rank of a split
    extractor: Extractor,
    real_key: str | None,
    *,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    split: Split | None = None,  # several processes: see the module docstring
) -> tuple[dict[str, Tensor] | None, str]:
    """Features of the reference images, from the cache when ``real_key`` names an entry that
    matches; returns them and ``"hit"``, ``"miss"`` (computed and stored) or ``"off"``.

    With ``split`` rank 0 alone reads (and writes) the cache and every rank follows its hit or
    miss; on a miss each rank extracts its share. The features are rank 0's; others get None."""

    def extract() -> dict[str, Tensor]:
        own = images if split is None else split.rows(images)  # [N, ...] or this rank's [N_r, ...]
        feats = extract_features(own, extractor, batch_size=batch_size, device=device)
        return feats if split is None else split.features(feats)  # name -> [N, D]

    if real_key is None:
        feats = extract()
        return (feats if split is None or split.main else None), "off"
    path = key = cached = None
    if split is None or split.main:
        path, key = _cache_entry(real_key, images, extractor)
        cached = _read_entry(path, key)
    hit = cached is not None
    if split is not None:
        hit = split.agree(hit)  # rank 0's cache decides for every rank
    if hit:
        return cached, "hit"
    feats = extract()
    if path is None:  # a rank other than 0: rank 0 stores the entry
        return None, "miss"
    with atomic_path(path) as tmp:  # a reader never sees half an entry
        torch.save({"key": key, "features": feats}, tmp)
    return feats, "miss"


# ---------------------------------------------------------------------------------------------
# metrics


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("torch", "torchvision", "torch-fidelity", "gankit"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def _check_request(metrics: Iterable[str], extractor: Extractor) -> tuple[str, ...]:
    wanted = tuple(dict.fromkeys(metrics))  # de-duplicated, in order
    unknown = [m for m in wanted if m not in METRIC_NAMES]
    if unknown or not wanted:
        what = f"unknown metrics {unknown}" if unknown else "no metrics were asked for"
        raise UserError(f"{what}; choose among {', '.join(METRIC_NAMES)}")
    missing = [m for m in wanted if m not in extractor.layers]
    if missing:
        raise UserError(
            f"extractor {extractor.name} cannot give {', '.join(missing)}; "
            "use an extractor with those features (the complete Inception weights for IS)"
        )
    return wanted


def _check_counts(wanted: tuple[str, ...], n_fake: int, n_real: int | None, kid_size: int) -> None:
    need = {"fid": 2, "kid": max(kid_size, 2), "pr": PRC_NEIGHBORHOOD + 1}
    for m in wanted:
        if m == "is":
            if n_fake < ISC_SPLITS:
                raise UserError(
                    f"the Inception Score averages over {ISC_SPLITS} splits and needs at least "
                    f"{ISC_SPLITS} generated images, got {n_fake}; generate more"
                )
        elif n_real is None or min(n_fake, n_real) < need[m]:
            raise UserError(
                f"{m} needs at least {need[m]} generated and {need[m]} real images, got {n_fake} "
                f"and {n_real or 0}; pass more images"
                + (" or a smaller kid_subset_size" if m == "kid" else "")
            )


def metrics_from_features(
    fake: dict[str, Tensor],  # feature name -> [N_fake, D]
    real: dict[str, Tensor] | None,  # feature name -> [N_real, D]; None when only IS is asked
    wanted: tuple[str, ...],
    layers: dict[str, str],  # metric -> feature name
    *,
    seed: int = 0,
    kid_subset_size: int = KID_SUBSET_SIZE,
) -> dict[str, float]:
    """The metric values: FID by gankit (float64), KID, PR and IS by torch-fidelity."""
    out: dict[str, float] = {}
    if "fid" in wanted:
        out["fid"] = frechet_distance_features(fake[layers["fid"]], real[layers["fid"]])
    if "kid" in wanted:
        kid = kid_features_to_metric(
            fake[layers["kid"]],
            real[layers["kid"]],
            kid_subsets=KID_SUBSETS,
            kid_subset_size=kid_subset_size,
            rng_seed=seed,
            verbose=False,
        )
        out["kid"] = kid["kernel_inception_distance_mean"]
        out["kid_std"] = kid["kernel_inception_distance_std"]
    if "pr" in wanted:  # torch-fidelity's convention: features_1 generated, features_2 real
        pr = prc_features_to_metric(
            fake[layers["pr"]],
            real[layers["pr"]],
            prc_neighborhood=PRC_NEIGHBORHOOD,
            prc_batch_size=10000,
            save_cpu_ram=False,
            verbose=False,
        )
        out.update(precision=pr["precision"], recall=pr["recall"], f_score=pr["f_score"])
    if "is" in wanted:
        isc = isc_features_to_metric(fake[layers["is"]], ISC_SPLITS, True, seed)
        out["is"] = isc["inception_score_mean"]
        out["is_std"] = isc["inception_score_std"]
    return out


def make_protocol(
    extractor: Extractor,
    wanted: Iterable[str],  # the metrics computed
    *,
    n_fake: int,
    n_real: int | None,
    real_key: str | None,
    reference_cache: str,  # "hit", "miss" or "off"
    seed: int,
    kid_subset_size: int | None,
    device: str | torch.device,
) -> dict[str, Any]:
    """How a number was measured, JSON-ready; stored beside every value (``compute_metrics``)."""
    return {
        "protocol_version": PROTOCOL_VERSION,
        "extractor": extractor.name,
        "weights": extractor.weights,
        "weights_sha256": extractor.sha256,
        "feature_layers": {m: extractor.layers[m] for m in wanted},
        "resize": RESIZE,
        "conversion": CONVERSION,
        "n_real": n_real,
        "n_fake": n_fake,
        "real_key": real_key,
        "reference_cache": reference_cache,
        "seed": seed,
        "kid_subsets": KID_SUBSETS,
        "kid_subset_size": kid_subset_size,
        "prc_neighborhood": PRC_NEIGHBORHOOD,
        "isc_splits": ISC_SPLITS,
        "device": str(device),
        "versions": _versions(),
    }


def compute_metrics(
    fake: Tensor,  # float [N, C, H, W] in [-1, 1]: generated images
    real: Tensor | None,  # float [M, C, H, W] in [-1, 1]: reference images (None: IS only)
    extractor: Extractor,
    *,
    metrics: Iterable[str] = ("fid",),  # any of "fid", "kid", "pr", "is"
    real_key: str | None = None,  # names the reference set (data set, split, count); None: no cache
    device: str | torch.device = "cpu",
    batch_size: int = 64,  # images per forward pass of the extractor
    seed: int = 0,  # of KID's subsets and IS's shuffle
    kid_subset_size: int | None = None,  # None: 1000, or fewer when fewer images are given
    split: Split | None = None,  # several processes: ``fake`` is this rank's share; None: one
) -> dict[str, Any] | None:
    """Metrics of ``fake`` against ``real`` with any torch-fidelity extractor.

    Returns the requested values (``fid``; ``kid``, ``kid_std``; ``precision``, ``recall``,
    ``f_score``; ``is``, ``is_std``) and ``protocol``: ``protocol_version``, ``extractor``,
    ``weights``, ``weights_sha256``, ``feature_layers`` (metric -> feature), ``resize``,
    ``conversion``, ``n_real``, ``n_fake``, ``real_key``, ``reference_cache`` ("hit", "miss" or
    "off"), ``seed``, ``kid_subsets``, ``kid_subset_size`` (None without KID),
    ``prc_neighborhood``, ``isc_splits``, ``device`` and ``versions`` (torch, torchvision,
    torch-fidelity, gankit); and ``seconds`` (``fake``, ``real``: feature extraction, ``metrics``).

    With ``split`` (see the module docstring) every rank calls it with its share of ``fake`` and
    the whole ``real``; rank 0 returns the result (its protocol adds ``processes``), the others
    None.
    """
    wanted = _check_request(metrics, extractor)
    if batch_size <= 0:
        raise UserError(f"batch_size must be positive, got {batch_size}")
    fake_u8 = to_uint8(fake)  # [N, 3, H, W]; this rank's [N_r, 3, H, W] under a split
    n_fake = len(fake_u8) if split is None else split.total(len(fake_u8))
    binary = any(m != "is" for m in wanted)
    if binary and real is None:
        raise UserError("fid, kid and pr compare with real images; pass reference images")
    real_u8 = to_uint8(real) if real is not None and binary else None  # [M, 3, H, W]
    n_real = None if real_u8 is None else len(real_u8)
    if kid_subset_size is None and "kid" in wanted:
        kid_subset_size = min(KID_SUBSET_SIZE, n_fake, n_real)
    _check_counts(wanted, n_fake, n_real, kid_subset_size or 0)  # the same on every rank

    t0 = time.perf_counter()
    f_fake = extract_features(fake_u8, extractor, batch_size=batch_size, device=device)
    if split is not None:
        f_fake = split.features(f_fake)  # name -> [N, D], the ranks' shares in rank order
    t1 = time.perf_counter()
    f_real, cache = None, "off"
    if real_u8 is not None:
        f_real, cache = reference_features(
            real_u8, extractor, real_key, batch_size=batch_size, device=device, split=split
        )
    t2 = time.perf_counter()
    if split is not None and not split.main:
        return None
    values = metrics_from_features(
        f_fake,
        f_real,
        wanted,
        extractor.layers,
        seed=seed,
        kid_subset_size=kid_subset_size or KID_SUBSET_SIZE,
    )
    seconds = {"fake": t1 - t0, "real": t2 - t1, "metrics": time.perf_counter() - t2}
    protocol = make_protocol(
        extractor,
        wanted,
        n_fake=n_fake,
        n_real=n_real,
        real_key=real_key,
        reference_cache=cache,
        seed=seed,
        kid_subset_size=kid_subset_size if "kid" in wanted else None,
        device=device,
    )
    if split is not None:  # each extracted its share of the images
        protocol["processes"] = split.world
    return {**values, "protocol": protocol, "seconds": seconds}


@METRICS.register("inception")
def inception_metrics(
    fake: Tensor,  # float [N, C, H, W] in [-1, 1]: generated images
    real: Tensor | None,  # float [M, C, H, W] in [-1, 1]: reference images (None: IS only)
    *,
    metrics: Iterable[str] = ("fid",),  # any of "fid", "kid", "pr", "is"
    real_key: str | None = None,  # names the reference set (data set, split, count); None: no cache
    weights: str | Path | None = None,  # Inception weights file; None: see inception.py
    device: str | torch.device = "cpu",
    batch_size: int = 64,  # images per forward pass of Inception
    seed: int = 0,  # of KID's subsets and IS's shuffle
    kid_subset_size: int | None = None,  # None: 1000, or fewer when fewer images are given
    split: Split | None = None,  # several processes: ``fake`` is this rank's share; None: one
) -> dict[str, Any] | None:
    """FID, KID, precision/recall and IS with the standard Inception-v3 (``compute_metrics``);
    with ``split``, rank 0's result and None on the other ranks."""
    metrics = tuple(metrics)
    extractor = load_extractor(weights, device=device, need_is="is" in metrics)
    return compute_metrics(
        fake,
        real,
        extractor,
        metrics=metrics,
        real_key=real_key,
        device=device,
        batch_size=batch_size,
        seed=seed,
        kid_subset_size=kid_subset_size,
        split=split,
    )
