"""Shared pytest fixtures: the shared data folder and a writable data root built from it.

Tests never write into the shared folder: ``data_root`` links its files into a temporary root laid
out the way torchvision expects (``<root>/MNIST/raw/``, ``<root>/FashionMNIST/raw/``,
``<root>/usps/``).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# shared/datasets/<folder> -> <data root>/<torchvision folder>/raw
IDX_DATASETS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
IDX_FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]
USPS_FILES = ["usps.h5", "usps.t.bz2"]  # shared/datasets/usps/ -> <data root>/usps/


def require(path: Path, what: str) -> None:
    """Skip the test when ``path`` is missing, or fail on CI (``$CI`` set), where it must exist."""
    if path.exists():
        return
    reason = f"{what} not found at {path}; set GANKIT_SHARED to the shared folder"
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared folder (data sets, weights): ``$GANKIT_SHARED``, else ``<repo>/../shared``."""
    path = Path(os.environ.get("GANKIT_SHARED") or REPO.parent / "shared").resolve()
    require(path, "the shared folder")
    return path


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Path:
    """A temporary data root whose ``MNIST/raw`` and ``FashionMNIST/raw`` link the shared .gz files
    and whose ``usps/`` links the shared ``usps.h5`` and ``usps.t.bz2``.

    Pass it as ``DataConfig(root=str(data_root), download=False)``.
    """
    root = tmp_path_factory.mktemp("data")
    for src_name, tv_name in IDX_DATASETS.items():
        raw = root / tv_name / "raw"
        raw.mkdir(parents=True)
        for name in IDX_FILES:
            src = shared_dir / "datasets" / src_name / name
            require(src, f"{src_name} file {name}")
            (raw / name).symlink_to(src)
    usps = root / "usps"  # both files: usps.h5 takes precedence; usps.t.bz2 is the cross-check
    usps.mkdir()
    for name in USPS_FILES:
        src = shared_dir / "datasets" / "usps" / name
        require(src, f"usps file {name}")
        (usps / name).symlink_to(src)
    return root


@pytest.fixture(scope="module")
def one_thread():
    """One CPU thread for a module of small-tensor tests: on a busy 2-core machine two spinning
    threads ran them up to 40x slower. Use with ``pytestmark = pytest.mark.usefixtures(...)``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def restored(source, batch_size: int, skip: int = 3):
    """``(s1, s2)``: a sampler of ``source`` after ``skip`` batches, and a differently seeded one
    given its state through ``torch.save`` / ``torch.load(weights_only=True)``, as a checkpoint
    would."""
    s1 = source.sampler(batch_size, seed=7)
    for _ in range(skip):
        s1.next()
    buf = io.BytesIO()
    torch.save(s1.state_dict(), buf)
    buf.seek(0)
    s2 = source.sampler(batch_size, seed=12345)
    s2.load_state_dict(torch.load(buf, weights_only=True))
    return s1, s2


def assert_resumes(source, batch_size: int, skip: int = 3, check: int = 5) -> None:
    """A sampler restored from a checkpointed state continues with bit-identical batches."""
    s1, s2 = restored(source, batch_size, skip)
    for _ in range(check):
        (x1, y1), (x2, y2) = s1.next(), s2.next()
        assert torch.equal(x1, x2)
        assert (y1 is None and y2 is None) or torch.equal(y1, y2)
