"""Intervals for a mean over concepts when concepts come in clusters that share base images.

Concepts with the same class noun share the base model's images (same class prompts, same seeds), so their
values are not independent: 8 toy concepts are 4 pairs. Two intervals for the mean over concepts:

- :func:`cluster_t_interval` — studentized: the concept-weighted mean, its cluster-robust standard error
  (the spread of the cluster totals around it) and Student's t with G − 1 degrees of freedom (G clusters);
- :func:`cluster_bca_interval` — BCa bootstrap that resamples whole clusters (``scipy.stats.bootstrap`` on
  the paired per-cluster (sum, count), statistic sum / count; acceleration from the cluster jackknife).

:func:`coverage` simulates both at a given design (``python -m leaderboard.coverage``); docs/METRICS.md
quotes the result for the toy suite's n = 8 in 4 clusters and docs/DECISIONS.md says which one the
leaderboard uses and why. Fewer than :data:`MIN_UNITS` concepts give no interval ("n too small").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

MIN_UNITS = 5  # no interval from fewer concepts than this


@dataclass(frozen=True)
class ClusteredMean:
    """A mean over concepts with its interval (None when there are too few units for one)."""

    mean: float
    low: float | None
    high: float | None
    n: int
    clusters: int


def _totals(values: Mapping[str, float], clusters: Mapping[str, str]) -> tuple[np.ndarray, np.ndarray]:
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for concept, v in values.items():
        key = clusters.get(concept, concept)
        sums[key] = sums.get(key, 0.0) + float(v)
        counts[key] = counts.get(key, 0) + 1
    keys = sorted(sums)
    return np.array([sums[k] for k in keys]), np.array([counts[k] for k in keys], dtype=np.float64)


def cluster_t_interval(
    values: Mapping[str, float], clusters: Mapping[str, str], level: float = 0.95
) -> ClusteredMean:
    """The concept-weighted mean with a cluster-robust Student-t interval (G − 1 degrees of freedom).

    Raises:
        ValueError: no values, or a value that is not finite.
    """
    from scipy.stats import t as student_t

    if not values:
        raise ValueError("cluster_t_interval: no values")
    if not all(math.isfinite(float(v)) for v in values.values()):
        raise ValueError("cluster_t_interval: values must be finite")
    sums, counts = _totals(values, clusters)
    n, g = int(counts.sum()), len(sums)
    mean = float(sums.sum() / counts.sum())
    if n < MIN_UNITS or g < 2:
        return ClusteredMean(mean, None, None, n, g)
    # cluster-robust (CR1-type) standard error of a ratio mean: residual totals per cluster
    resid = sums - mean * counts
    se = math.sqrt(g / (g - 1) * float((resid**2).sum())) / float(counts.sum())
    half = float(student_t.ppf(0.5 + level / 2, g - 1)) * se
    return ClusteredMean(mean, mean - half, mean + half, n, g)


def cluster_bca_interval(
    values: Mapping[str, float],
    clusters: Mapping[str, str],
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> ClusteredMean:
    """The concept-weighted mean with a BCa interval from resampling whole clusters."""
    from scipy.stats import bootstrap

    sums, counts = _totals(values, clusters)
    n, g = int(counts.sum()), len(sums)
    mean = float(sums.sum() / counts.sum())
    if n < MIN_UNITS or g < 2:
        return ClusteredMean(mean, None, None, n, g)
    if np.ptp(sums / counts) == 0:  # every cluster alike: the bootstrap has no spread to read
        return ClusteredMean(mean, mean, mean, n, g)

    def ratio(s: np.ndarray, c: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.asarray(s.sum(axis=axis) / c.sum(axis=axis))

    res = bootstrap(
        (sums, counts),
        ratio,
        paired=True,
        vectorized=True,
        confidence_level=level,
        n_resamples=resamples,
        method="BCa",
        random_state=np.random.default_rng(seed),
    )
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):
        return ClusteredMean(mean, None, None, n, g)
    return ClusteredMean(mean, low, high, n, g)


def coverage(
    method: str,
    *,
    n_clusters: int = 4,
    per_cluster: int = 2,
    within: float = 0.5,
    skewed: bool = False,
    trials: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> float:
    """Share of simulated designs whose interval covers the true mean: ``n_clusters`` clusters of
    ``per_cluster`` concepts, a cluster effect carrying ``within`` of the variance, normal or (``skewed``)
    centred log-normal effects.

    Raises:
        ValueError: unknown method (``t`` or ``bca``).
    """
    if method not in ("t", "bca"):
        raise ValueError(f"unknown interval method {method!r}: use 't' or 'bca'")
    rng = np.random.default_rng(seed)
    hits = 0

    def draw(size: int | tuple[int, ...], scale: float) -> np.ndarray:
        if skewed:
            x = rng.lognormal(0.0, 1.0, size)
            return np.asarray((x - math.exp(0.5)) / math.sqrt((math.e - 1) * math.e) * scale)
        return np.asarray(rng.normal(0.0, scale, size))

    clusters = {f"c{i}": f"g{i // per_cluster}" for i in range(n_clusters * per_cluster)}
    for trial in range(trials):
        effect = np.repeat(draw(n_clusters, math.sqrt(within)), per_cluster)
        values = effect + draw(n_clusters * per_cluster, math.sqrt(1 - within))
        data = {f"c{i}": float(v) for i, v in enumerate(values)}
        if method == "t":
            got = cluster_t_interval(data, clusters, level)
        else:
            got = cluster_bca_interval(data, clusters, level, resamples=999, seed=trial)
        if got.low is not None and got.high is not None and got.low <= 0.0 <= got.high:
            hits += 1
    return hits / trials
