"""mmd_base@1: unbiased MMD² with KID's kernel against the base model on disjoint seeds, and its test."""

from __future__ import annotations

import numpy as np
import pytest

from metrics.mmd import PERMUTATIONS, mmd2_unbiased, mmd_base_metric, mmd_permutation, w2_squared_excess
from metrics.spec import get_metric


def _brute_force(x: np.ndarray, y: np.ndarray) -> float:
    """The textbook U-statistic, one pair at a time (an independent reference for the vectorised form)."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    y = y / np.linalg.norm(y, axis=1, keepdims=True)
    d = x.shape[1]

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return float((a @ b / d + 1.0) ** 3)

    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy


def test_matches_the_pairwise_u_statistic() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 5)), rng.normal(loc=0.3, size=(9, 5))
    assert mmd2_unbiased(x, y) == pytest.approx(_brute_force(x, y), rel=1e-12, abs=1e-15)
    observed, _, _, _ = mmd_permutation(x, y, n_permutations=10)
    assert observed == pytest.approx(_brute_force(x, y), rel=1e-12, abs=1e-15)


def test_null_mean_is_zero_at_small_n_where_the_plug_in_distance_is_not() -> None:
    # 600 draws of two sets of 8 points from one distribution: the unbiased estimate averages 0 (within
    # 4 standard errors of the mean); the squared W2 between the same sets is far above 0.
    rng = np.random.default_rng(1)
    values, w2_sq = [], []
    from metrics.wasserstein import wasserstein2

    for _ in range(600):
        x, y = rng.normal(size=(8, 6)), rng.normal(size=(8, 6))
        values.append(mmd2_unbiased(x, y))
        w2_sq.append(wasserstein2(x, y) ** 2)
    v = np.asarray(values)
    assert abs(v.mean()) < 4 * v.std(ddof=1) / np.sqrt(len(v))
    assert np.mean(w2_sq) > 10 * v.std(ddof=1)


def test_permutation_test_separates_shifted_sets_and_does_not_saturate_in_z() -> None:
    rng = np.random.default_rng(2)
    base = rng.normal(size=(32, 16))
    near = rng.normal(loc=0.15, size=(32, 16))
    far = rng.normal(loc=1.0, size=(32, 16))
    same = rng.normal(size=(32, 16))
    v_far, p_far, z_far, _ = mmd_permutation(far, base)
    v_near, _, z_near, _ = mmd_permutation(near, base)
    _, p_same, z_same, sd = mmd_permutation(same, base)
    assert p_far == pytest.approx(1 / (1 + PERMUTATIONS))  # the smallest p a permutation test can give ...
    assert z_far > z_near > z_same and v_far > v_near  # ... while z still orders the effects
    assert p_same > 0.05 and abs(z_same) < 3 and sd > 0
    again = mmd_permutation(same, base)
    assert again[1] == p_same  # fixed seed: the same draws


def test_metric_row_and_its_spec() -> None:
    rng = np.random.default_rng(3)
    out = mmd_base_metric(rng.normal(size=(12, 4)), rng.normal(size=(10, 4)))
    assert out.n == 12 and set(out.extra) == {"p_value", "z", "null_sd"}
    spec = get_metric("mmd_base@1")
    assert spec.refs == ("generated:clip", "base_alt:clip") and spec.role == "overfitting"
    assert not spec.higher_is_better and spec.significance == "p_value"


def test_bad_input_names_the_problem() -> None:
    with pytest.raises(ValueError, match="at least 2 points per set"):
        mmd2_unbiased(np.ones((1, 3)), np.ones((4, 3)))
    with pytest.raises(ValueError, match="different feature dimensions"):
        mmd2_unbiased(np.ones((3, 3)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="zero-norm"):
        mmd2_unbiased(np.zeros((3, 3)), np.ones((4, 3)))


def test_w2_squared_excess_is_zero_for_the_base_model_by_construction() -> None:
    rng = np.random.default_rng(4)
    base, alt = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    assert w2_squared_excess(base, base, alt) == 0.0
    assert w2_squared_excess(base + 2.0, base, alt) > 0
