"""W2: closed forms, independent references, golden values, invariances and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy.optimize import linear_sum_assignment

from metrics.wasserstein import (
    gaussian_fit,
    gaussian_wasserstein2,
    gaussian_wasserstein2_from_samples,
    w2_metric,
    wasserstein2,
)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _spd(d: int, seed: int) -> np.ndarray:
    a = _rng(seed).standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


# --- closed forms -------------------------------------------------------------------------------


def test_gaussian_1d_shift_is_mean_difference() -> None:
    # N(0,1) vs N(10,1): W2 = 10 (the POT test case).
    assert gaussian_wasserstein2([0.0], [[1.0]], [10.0], [[1.0]]) == pytest.approx(10.0, abs=1e-12)


def test_gaussian_diagonal_closed_form() -> None:
    # Commuting covariances: W2^2 = |dmu|^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    expected = np.sqrt(np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))
    assert gaussian_wasserstein2(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_gaussian_identical_is_zero_and_singular_ok() -> None:
    c = _spd(6, 1)
    c[:, 0] = c[0, :] = 0.0  # singular PSD covariance is allowed
    assert gaussian_wasserstein2(np.ones(6), c, np.ones(6), c) == pytest.approx(0.0, abs=1e-6)


def test_point_cloud_shift_is_shift_norm() -> None:
    x = _rng(1).standard_normal((40, 5))
    v = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    assert wasserstein2(x, x + v) == pytest.approx(float(np.linalg.norm(v)), rel=1e-9)


def test_identical_sets_are_exactly_zero_and_their_test_does_not_reject() -> None:
    from metrics.wasserstein import paired_permutation_pvalue

    x = _rng(2).standard_normal((30, 512)).astype(np.float32) * 10  # CLIP-sized, large norms
    assert wasserstein2(x, x) == 0.0  # no rounding residue from an expansion of the distance
    assert w2_metric(x, x.copy()).value == 0.0 and w2_metric(x, x.copy()).extra["p_value"] == 1.0
    x, y = _rng(3).standard_normal((30, 8)), _rng(4).standard_normal((30, 8))
    y[:, 0] += 0.8  # a shift: swapping pairs mixes it into both sets and lowers W2
    p = paired_permutation_pvalue(x, y)
    assert p == wasserstein_swap_reference(x, y) and 0.0 < p < 1.0


def wasserstein_swap_reference(x: np.ndarray, y: np.ndarray, n_permutations: int = 199) -> float:
    """The permutation p-value rebuilt from swapped copies of the sets (independent of the pooled matrix)."""
    observed = wasserstein2(x, y)
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(n_permutations):
        swap = (rng.random(x.shape[0]) < 0.5)[:, None]
        hits += int(wasserstein2(np.where(swap, y, x), np.where(swap, x, y)) >= observed - 1e-12)
    return (1 + hits) / (1 + n_permutations)


# --- independent references ---------------------------------------------------------------------


def test_gaussian_matches_scipy_sqrtm() -> None:
    d = 12
    c1, c2 = _spd(d, 3), _spd(d, 4)
    mu1, mu2 = _rng(5).standard_normal(d), _rng(6).standard_normal(d)
    root = scipy.linalg.sqrtm(c1)
    cross = np.real(scipy.linalg.sqrtm(root @ c2 @ root))
    ref = np.sqrt(np.sum((mu1 - mu2) ** 2) + np.trace(c1) + np.trace(c2) - 2 * np.trace(cross))
    assert gaussian_wasserstein2(mu1, c1, mu2, c2) == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equal_size_matches_assignment_solver(seed: int) -> None:
    # With n = m and uniform weights an optimal plan is a permutation (Birkhoff).
    rng = _rng(seed)
    x, y = rng.standard_normal((25, 7)), rng.standard_normal((25, 7)) + 0.3
    cost = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    r, c = linear_sum_assignment(cost)
    assert wasserstein2(x, y) == pytest.approx(np.sqrt(cost[r, c].mean()), rel=1e-9)


def _quantile_w2(u: np.ndarray, wu: np.ndarray, v: np.ndarray, wv: np.ndarray, grid: int = 200_001) -> float:
    # Reference: integrate (F^-1(q) - G^-1(q))^2 on a fine midpoint grid of q.
    q = (np.arange(grid) + 0.5) / grid
    iu, iv = np.argsort(u), np.argsort(v)
    fu = np.searchsorted(np.cumsum(wu[iu]) / wu.sum(), q)
    fv = np.searchsorted(np.cumsum(wv[iv]) / wv.sum(), q)
    return float(
        np.sqrt(np.mean((u[iu][np.minimum(fu, len(u) - 1)] - v[iv][np.minimum(fv, len(v) - 1)]) ** 2))
    )


def test_1d_unequal_weighted_matches_quantile_functions() -> None:
    rng = _rng(7)
    u, v = rng.standard_normal(13), rng.standard_normal(9) * 2 + 1
    wu, wv = rng.uniform(0.1, 1.0, 13), rng.uniform(0.1, 1.0, 9)
    ref = _quantile_w2(u, wu, v, wv)
    # 1e-4 relative: the reference's midpoint grid (2e5 cells) misplaces at most 22 level breaks.
    assert wasserstein2(u, v, weights_x=wu, weights_y=wv) == pytest.approx(ref, rel=1e-4)


def test_w2_metric_is_wasserstein2_with_its_sample_count() -> None:
    rng = _rng(12)
    x, y = rng.standard_normal((30, 4)), rng.standard_normal((30, 4))
    out = w2_metric(x, y)
    assert out.value == wasserstein2(x, y)
    assert out.n == 30
    assert 0.0 < out.extra["p_value"] <= 1.0
    # the sets are paired (same prompts and seeds), so their sizes must agree
    with pytest.raises(ValueError, match="same number of rows, got 30 and 25"):
        w2_metric(x, y[:25])


def test_1d_equal_size_is_sorted_difference() -> None:
    rng = _rng(8)
    u, v = rng.standard_normal(50), rng.standard_normal(50)
    ref = np.sqrt(np.mean((np.sort(u) - np.sort(v)) ** 2))
    assert wasserstein2(u, v) == pytest.approx(ref, rel=1e-10)


def test_gaussian_from_samples_converges_to_closed_form() -> None:
    rng = _rng(10)
    x = rng.standard_normal((20000, 2))
    y = rng.standard_normal((20000, 2)) * 2.0 + 3.0
    expected = np.sqrt(2 * 9 + 2 * (2 - 1) ** 2)
    # 2% tolerance: sampling error of mean/cov estimates with n = 20,000.
    assert gaussian_wasserstein2_from_samples(x, y) == pytest.approx(expected, rel=0.02)
    mu, cov = gaussian_fit(x)
    assert mu.shape == (2,) and cov.shape == (2, 2)


# --- golden values --------------------------------------------------------------------------------


def test_golden_tiny_sets() -> None:
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    y = np.array([[0.0, 1.0], [2.0, 2.0]])
    # By hand: mass 1/3 per x, 1/2 per y. Extra cost of y1 over y0 is 7, 3, 3 for x0, x1, x2, so y1
    # takes x1 (1/3) and half of x2 (1/6): 1/3·1 + 1/3·5 + 1/6·1 + 1/6·4 = 17/6.
    # tolerance 1e-12: the simplex is exact up to float rounding.
    assert wasserstein2(x, y) ** 2 == pytest.approx(17 / 6, abs=1e-12)


# --- invariances ------------------------------------------------------------------------------------


def test_order_type_and_symmetry_invariance() -> None:
    rng = _rng(11)
    x, y = rng.standard_normal((30, 6)), rng.standard_normal((20, 6))
    ref = wasserstein2(x, y)
    assert wasserstein2(x[::-1], y[rng.permutation(20)]) == pytest.approx(ref, rel=1e-12)
    assert wasserstein2(y, x) == pytest.approx(ref, rel=1e-12)
    assert wasserstein2(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(ref, rel=1e-12)
    # float32 input is promoted to float64; only the input rounding differs (1e-6 relative).
    assert wasserstein2(x.astype(np.float32), y.astype(np.float32)) == pytest.approx(ref, rel=1e-6)


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "y", "kwargs", "message"),
    [
        (np.ones((3, 2)), np.ones((3, 3)), {}, "different feature dimensions"),
        (np.ones((0, 2)), np.ones((3, 2)), {}, "empty set"),
        (np.array([[np.nan, 1.0]]), np.ones((3, 2)), {}, "NaN"),
        (np.ones((2, 2)), np.array([[np.inf, 1.0]]), {}, "inf"),
        (np.ones((2, 2)), np.ones((2, 2)), {"weights_x": [1.0, -1.0]}, "negative"),
        (np.ones((2, 2)), np.ones((2, 2)), {"weights_y": [0.0, 0.0]}, "cannot normalise"),
        (np.ones((2, 2)), np.ones((2, 2)), {"weights_x": [1.0]}, "expected shape"),
        (np.ones((2, 2)), np.ones((2, 2)), {"weights_x": [1.0, np.nan]}, "NaN"),
        (np.ones((2, 2, 2)), np.ones((2, 2)), {}, "expected shape"),
    ],
)
def test_bad_input_raises(x: np.ndarray, y: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        wasserstein2(x, y, **kwargs)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([0.0, 0.0], np.eye(2), [0.0], np.eye(1)), "different dimensions"),
        (([0.0, 0.0], np.eye(3), [0.0, 0.0], np.eye(2)), "expected shape"),
        (([0.0, 0.0], np.array([[1.0, 0.5], [0.0, 1.0]]), [0.0, 0.0], np.eye(2)), "not symmetric"),
        (([0.0, 0.0], np.diag([1.0, -1.0]), [0.0, 0.0], np.eye(2)), "positive semi-definite"),
        (([np.nan, 0.0], np.eye(2), [0.0, 0.0], np.eye(2)), "NaN"),
        (([], np.zeros((0, 0)), [], np.zeros((0, 0))), "empty"),
    ],
)
def test_gaussian_bad_input_raises(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        gaussian_wasserstein2(*args)
