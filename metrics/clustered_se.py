"""The cluster-robust standard error of a mean, for metrics whose rows come in clusters.

A mean over units that come in clusters (rows of one prompt, concepts that share base images) is a ratio
Σ S_g / Σ n_g of cluster totals S_g and sizes n_g. Its CR1-type standard error treats the cluster as the
independent unit:

    se = √( G / (G − 1) · Σ_g (S_g − mean · n_g)² ) / Σ_g n_g      (G clusters)

With one unit per cluster it is the usual standard deviation / √n. The leaderboard's cluster interval
(leaderboard/clustered.py) uses the same form on concept clusters in its own three lines: the leaderboard
reads rows only and imports no metric code (tests/test_architecture.py). No library fits this small case without
a regression model (statsmodels' cluster covariance needs an OLS fit and is not a dependency); see
docs/DECISIONS.md.
"""

from __future__ import annotations

import math

import numpy as np


def cluster_robust_se(sums: np.ndarray, counts: np.ndarray) -> float:
    """CR1 standard error of ``sums.sum() / counts.sum()`` from per-cluster totals and sizes.

    Returns NaN for fewer than two clusters (no spread between clusters to read).
    """
    sums = np.asarray(sums, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    if sums.shape != counts.shape or sums.ndim != 1:
        raise ValueError(
            f"sums and counts must be 1-D and of one length, got {sums.shape} and {counts.shape}"
        )
    g = len(sums)
    if g < 2:
        return float("nan")
    total = float(counts.sum())
    mean = float(sums.sum()) / total
    resid = sums - mean * counts
    return math.sqrt(g / (g - 1) * float((resid**2).sum())) / total
