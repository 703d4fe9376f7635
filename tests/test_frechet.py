"""The float64 Frechet distance against independent computations: scipy's ``sqrtm``, numpy's
eigenvalues of S1 S2 (torch-fidelity's formula) and closed forms for commuting, singular and
rank-deficient covariances; and its shape errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from torch.testing import assert_close
from torch_fidelity.metric_fid import fid_statistics_to_metric

from gankit.metrics.frechet import (
    frechet_distance,
    frechet_distance_features,
    gaussian_stats,
    trace_sqrt_product,
)


def random_gaussian(d: int, seed: int, cond: float = 10.0) -> tuple[torch.Tensor, torch.Tensor]:
    """A mean ``[d]`` and a covariance ``[d, d]`` with condition number ``cond``, float64."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))  # [d, d]
    vals = torch.logspace(0, float(np.log10(cond)), d, dtype=torch.float64)  # [d]
    return torch.randn(d, generator=g, dtype=torch.float64), (q * vals) @ q.T


def scipy_frechet(mu1, s1, mu2, s2) -> float:
    """The textbook formula with scipy's general matrix square root (Heusel et al.'s code)."""
    covmean = scipy.linalg.sqrtm(s1.numpy() @ s2.numpy())
    diff = (mu1 - mu2).numpy()
    return float(
        diff @ diff + np.trace(s1.numpy()) + np.trace(s2.numpy()) - 2 * covmean.real.trace()
    )


@pytest.mark.parametrize("d", [1, 5, 32])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_scipy_sqrtm_on_well_conditioned_covariances(d: int, seed: int) -> None:
    mu1, s1 = random_gaussian(d, seed)
    mu2, s2 = random_gaussian(d, seed + 100)
    ours = frechet_distance(mu1, s1, mu2, s2)
    assert_close(ours, scipy_frechet(mu1, s1, mu2, s2), rtol=1e-9, atol=1e-9)
    assert_close(frechet_distance(mu2, s2, mu1, s1), ours, rtol=1e-10, atol=1e-10)  # symmetric


def test_matches_torch_fidelity_formula_on_features() -> None:
    g = torch.Generator().manual_seed(3)
    f1 = torch.randn(500, 20, generator=g, dtype=torch.float64) * 2 + 0.5  # [500, 20]
    mix = torch.randn(20, 20, generator=g, dtype=torch.float64)  # [20, 20]
    f2 = torch.randn(400, 20, generator=g, dtype=torch.float64) @ mix  # [400, 20]
    stats = [{"mu": m.numpy(), "sigma": s.numpy()} for m, s in map(gaussian_stats, (f1, f2))]
    theirs = fid_statistics_to_metric(*stats, verbose=False)["frechet_inception_distance"]
    assert_close(frechet_distance_features(f1, f2), theirs, rtol=1e-9, atol=1e-9)


def test_gaussian_stats_equal_numpy_mean_and_cov() -> None:
    g = torch.Generator().manual_seed(4)
    f = torch.randn(50, 7, generator=g) * 3 + 10  # float32 [50, 7]
    mu, sigma = gaussian_stats(f)
    assert mu.dtype == sigma.dtype == torch.float64
    assert_close(mu.numpy(), f.double().numpy().mean(0), rtol=1e-12, atol=1e-12)
    assert_close(sigma.numpy(), np.cov(f.double().numpy(), rowvar=False), rtol=1e-12, atol=1e-12)


def test_diagonal_covariances_with_zeros_match_the_closed_form() -> None:
    # commuting covariances: d^2 = |mu1 - mu2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2
    a = torch.tensor([4.0, 0.0, 1.0, 0.0, 9.0, 1e-12], dtype=torch.float64)
    b = torch.tensor([1.0, 0.0, 0.0, 2.0, 9.0, 0.0], dtype=torch.float64)
    mu1 = torch.tensor([1.0, 2.0, 0.0, 0.0, -1.0, 0.0], dtype=torch.float64)
    mu2 = torch.zeros(6, dtype=torch.float64)
    expected = float((mu1 - mu2).square().sum() + (a.sqrt() - b.sqrt()).square().sum())
    assert_close(frechet_distance(mu1, a.diag(), mu2, b.diag()), expected, rtol=1e-12, atol=1e-12)


def test_near_singular_rotated_covariances_match_the_closed_form() -> None:
    # S1 = Q diag(lam) Q^T and S2 = Q diag(nu) Q^T commute; eigenvalues down to 1e-14 and 0
    d = 40
    g = torch.Generator().manual_seed(5)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))  # [d, d]
    lam = torch.logspace(0, -14, d, dtype=torch.float64)  # [d]
    nu = torch.rand(d, generator=g, dtype=torch.float64) * lam  # [d]
    lam[-5:], nu[:3] = 0.0, 0.0
    s1, s2 = (q * lam) @ q.T, (q * nu) @ q.T  # [d, d]
    expected = float((lam.sqrt() - nu.sqrt()).square().sum())
    zero = torch.zeros(d, dtype=torch.float64)
    assert_close(frechet_distance(zero, s1, zero, s2), expected, rtol=1e-7, atol=1e-9)


def test_rank_deficient_covariances_fewer_samples_than_dimensions() -> None:
    # N < D: singular covariances; the same covariance shifted differs only by the mean
    g = torch.Generator().manual_seed(6)
    f = torch.randn(10, 64, generator=g, dtype=torch.float64) * 5  # [10, 64], rank 9 covariance
    shift = torch.randn(64, generator=g, dtype=torch.float64)  # [64]
    assert frechet_distance_features(f, f) == pytest.approx(0.0, abs=1e-9)
    assert_close(
        frechet_distance_features(f + shift, f), float(shift @ shift), rtol=1e-12, atol=1e-9
    )
    _, s = gaussian_stats(f)
    assert_close(float(trace_sqrt_product(s, s)), float(s.trace()), rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("n1,n2", [(10, 16), (16, 300)])
def test_rank_deficient_against_the_small_matrix_identity(n1: int, n2: int) -> None:
    # with centred X1 [n1, D], X2 [n2, D]: the nonzero eigenvalues of S1 S2 are those of
    # (X1 X2^T)(X1 X2^T)^T / ((n1-1)(n2-1)), so tr((S1 S2)^(1/2)) is the nuclear norm of the small
    # X1 X2^T over sqrt((n1-1)(n2-1)): an SVD of [n1, n2], no square root of a D x D matrix
    g = torch.Generator().manual_seed(n1 + n2)
    f1 = torch.randn(n1, 128, generator=g, dtype=torch.float64) * 3 + 1  # [n1, 128]
    f2 = torch.randn(n2, 128, generator=g, dtype=torch.float64).exp()  # [n2, 128], skewed
    x1, x2 = f1 - f1.mean(0), f2 - f2.mean(0)
    tr_sqrt = torch.linalg.svdvals(x1 @ x2.T).sum() / ((n1 - 1) * (n2 - 1)) ** 0.5
    diff = f1.mean(0) - f2.mean(0)  # [128]
    expected = diff @ diff + x1.square().sum() / (n1 - 1) + x2.square().sum() / (n2 - 1)
    expected = float(expected - 2 * tr_sqrt)
    assert_close(frechet_distance_features(f1, f2), expected, rtol=1e-10, atol=1e-9)


def test_float32_features_far_from_the_origin_lose_no_precision() -> None:
    g = torch.Generator().manual_seed(7)
    f1 = torch.randn(200, 8, generator=g, dtype=torch.float64)  # [200, 8]
    f2 = torch.randn(200, 8, generator=g, dtype=torch.float64) * 1.5  # [200, 8]
    ref = frechet_distance_features(f1, f2)
    moved = frechet_distance_features((f1 + 1000).float(), (f2 + 1000).float())
    assert_close(moved, ref, rtol=1e-3, atol=1e-3)  # float32 storage of 1000 + x: ~1e-4 error


def test_shape_errors() -> None:
    mu, s = random_gaussian(4, 0)
    with pytest.raises(ValueError, match="mu \\[D\\] and sigma \\[D, D\\]"):
        frechet_distance(mu, s, mu[:3], s[:3, :3])
    with pytest.raises(ValueError, match="mu \\[D\\] and sigma \\[D, D\\]"):
        frechet_distance(mu, s[:, :3], mu, s)
    with pytest.raises(ValueError, match="N >= 2"):
        gaussian_stats(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="\\[N, D\\]"):
        gaussian_stats(torch.zeros(8))
    with pytest.raises(ValueError, match="mu \\[D\\] and sigma \\[D, D\\]"):
        frechet_distance_features(torch.zeros(5, 3), torch.randn(5, 4))
