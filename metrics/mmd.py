"""``mmd_base@1``: W2's calibrated companion — how far the customized model's images are from the base
model's, on *disjoint* seeds, with a null mean of exactly 0 at any sample size.

``w2@1`` pairs each customized image with the base image of the same prompt and seed, so an unchanged model
scores 0 by construction, while its floor (base vs base on seeds + 10,000) is unpaired: the two cannot be
compared. This metric compares the customized images with the base model's images for the same prompts on
the disjoint seed set, both unpaired, by the unbiased squared maximum mean discrepancy (Gretton et al.
2012) with KID's kernel (Bińkowski et al. 2018), k(x, y) = (x·y / d + 1)³ on L2-normalised features:

    MMD²_u = mean_{i≠j} k(x_i, x_j) + mean_{i≠j} k(y_i, y_j) − 2 mean_{i,j} k(x_i, y_j).

Its expectation is 0 whenever both sets come from one distribution, at any n and m (the diagonal terms
that bias a plug-in distance are left out), so a model that changed nothing reads 0 up to sampling noise
— measured, not zero by construction — and the excess over "the same as base" needs no floor.

Each row carries a label-permutation test on the pooled sets (:data:`PERMUTATIONS` draws, fixed seed;
the kernel matrix is computed once, so the draws are cheap): ``p_value`` = (1 + #{permuted ≥ observed}) /
(1 + draws), and ``z`` = (observed − mean of the permuted values) / their standard deviation, which does
not saturate where the p-value reaches its smallest value 1 / (1 + draws); ``null_sd`` is the standard
deviation of the permuted values (the statistic's spread under "same as base", not a standard error of the
value under the alternative).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from metrics._arrays import point_cloud
from metrics.spec import MetricValue

PERMUTATIONS = 9_999


def _unit(x: np.ndarray, name: str) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"{name}: {int((norms == 0).sum())} zero-norm feature rows; cannot L2-normalise")
    return np.asarray(x / norms)


def kid_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """KID's cubic polynomial kernel (x·y / d + 1)³ between the rows of ``x`` and ``y``."""
    return np.asarray((x @ y.T / x.shape[1] + 1.0) ** 3)


def _sets(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    xa, ya = point_cloud(x, "x"), point_cloud(y, "y")
    if xa.shape[1] != ya.shape[1]:
        raise ValueError(f"x and y have different feature dimensions: {xa.shape[1]} vs {ya.shape[1]}")
    if xa.shape[0] < 2 or ya.shape[0] < 2:
        raise ValueError(
            f"unbiased MMD² needs at least 2 points per set, got {xa.shape[0]} and {ya.shape[0]}"
        )
    return _unit(xa, "x"), _unit(ya, "y")


def _statistics(gram: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """MMD²_u for each row of ``labels`` ([B, n + m] booleans, True = the first set) from the pooled
    Gram matrix with its diagonal zeroed."""
    m = gram.shape[0] - n
    a = labels.astype(np.float64)
    b = 1.0 - a
    ka, kb = a @ gram, b @ gram
    within_x = np.einsum("ij,ij->i", ka, a) / (n * (n - 1))
    within_y = np.einsum("ij,ij->i", kb, b) / (m * (m - 1))
    across = np.einsum("ij,ij->i", ka, b) / (n * m)
    return np.asarray(within_x + within_y - 2.0 * across)


def _observed(x: Any, y: Any) -> tuple[np.ndarray, int, float]:
    """The pooled Gram matrix (diagonal zeroed), the size of the first set and the observed MMD²_u."""
    xa, ya = _sets(x, y)
    pooled = np.vstack([xa, ya])
    gram = kid_kernel(pooled, pooled)
    np.fill_diagonal(gram, 0.0)
    labels = np.zeros((1, len(pooled)), dtype=bool)
    labels[0, : len(xa)] = True
    return gram, len(xa), float(_statistics(gram, labels, len(xa))[0])


def mmd2_unbiased(x: Any, y: Any) -> float:
    """Unbiased MMD² with KID's kernel between two point clouds (rows L2-normalised first).

    Raises:
        ValueError: fewer than 2 points in a set, different dimensions, NaN/inf or zero-norm rows.
    """
    return _observed(x, y)[2]


def mmd_permutation(
    x: Any, y: Any, *, n_permutations: int = PERMUTATIONS, seed: int = 0
) -> tuple[float, float, float, float]:
    """Observed MMD²_u and its label-permutation test on the pooled sets.

    Returns:
        ``(mmd2, p_value, z, null_sd)``: p = (1 + #{permuted ≥ observed}) / (1 + draws); z = (observed −
        permuted mean) / permuted standard deviation (0 when that is 0); null_sd the permuted standard
        deviation.
    """
    gram, n, observed = _observed(x, y)
    rng = np.random.Generator(np.random.PCG64(seed))
    keys = rng.random((n_permutations, len(gram)))
    labels = np.argsort(keys, axis=1) < n  # each row: a uniformly random set of n of the pooled points
    null = _statistics(gram, labels, n)
    hits = int(np.sum(null >= observed - 1e-15))
    sd = float(null.std(ddof=1)) if n_permutations > 1 else 0.0
    z = (observed - float(null.mean())) / sd if sd > 0 else 0.0
    return observed, (1 + hits) / (1 + n_permutations), z, sd


def mmd_base_metric(generated: Any, base: Any) -> MetricValue:
    """``mmd_base@1`` from features of the generated images and of the base model's images for the same
    prompts on disjoint seeds (see the module docstring)."""
    value, p_value, z, sd = mmd_permutation(generated, base)
    return MetricValue(
        value, int(np.asarray(generated).shape[0]), {"p_value": p_value, "z": z, "null_sd": sd}
    )


def w2_squared_excess(generated: Any, base: Any, base_alt: Any) -> float:
    """W2²(generated, base_alt) − W2²(base, base_alt): the alternative calibration the issue offers, kept
    for the comparison in docs/DECISIONS.md (it is exactly 0 for the base model by construction)."""
    from metrics.wasserstein import wasserstein2

    return float(wasserstein2(generated, base_alt) ** 2 - wasserstein2(base, base_alt) ** 2)
