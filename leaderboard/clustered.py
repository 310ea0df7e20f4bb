"""Intervals for a mean over concepts when concepts come in clusters that share base images.

Concepts with the same class noun share the base model's images (same class prompts, same seeds), so their
values are not independent: 8 toy concepts are 4 pairs. Three intervals for the mean over concepts:

- :func:`cluster_t_interval` — the leaderboard's: the concept-weighted mean, its cluster-robust standard
  error (the spread of the cluster totals around it) and Student's t with G − 1 degrees of freedom (G
  clusters);
- :func:`cluster_boot_t_interval` — a symmetric studentized bootstrap (bootstrap-t) that resamples whole
  clusters, every ordered resample when there are few clusters (:func:`cluster_draws`), the cluster-robust
  standard error in the data and in each resample. A candidate, measured and not used: it covers skewed
  data at 4 clusters, but resamples that draw one cluster three or four times have a tiny standard error,
  and on the toy rows its intervals run to ±5 where every concept agrees (docs/DECISIONS.md);
- :func:`cluster_bca_interval` — BCa bootstrap that resamples whole clusters (``scipy.stats.bootstrap`` on
  the paired per-cluster (sum, count), statistic sum / count; acceleration from the cluster jackknife).

:func:`coverage` simulates each at a given design (``python -m leaderboard.coverage``); docs/METRICS.md
quotes the result for the toy suite's n = 8 in 4 clusters and docs/DECISIONS.md says which one the
leaderboard uses and why. Fewer than :data:`MIN_UNITS` concepts give no interval ("n too small").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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

    sums, counts, mean = _checked_totals(values, clusters, "cluster_t_interval")
    n, g = int(counts.sum()), len(sums)
    if n < MIN_UNITS or g < 2:
        return ClusteredMean(mean, None, None, n, g)
    se = float(_mean_se(sums[None], counts[None])[1][0])
    half = float(student_t.ppf(0.5 + level / 2, g - 1)) * se
    return ClusteredMean(mean, mean - half, mean + half, n, g)


def _checked_totals(
    values: Mapping[str, float], clusters: Mapping[str, str], name: str
) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-cluster totals and sizes of ``values`` and their concept-weighted mean (ValueError, naming
    ``name``, on no values or a value that is not finite)."""
    if not values:
        raise ValueError(f"{name}: no values")
    if not all(math.isfinite(float(v)) for v in values.values()):
        raise ValueError(f"{name}: values must be finite")
    sums, counts = _totals(values, clusters)
    return sums, counts, float(sums.sum() / counts.sum())


def _mean_se(sums: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of cluster totals and sizes [..., G]: each row's ratio mean and its cluster-robust (CR1-type)
    standard error, √(G/(G−1) · Σ_g (S_g − mean·n_g)²) / n."""
    g = sums.shape[-1]
    m = sums.sum(axis=-1) / counts.sum(axis=-1)
    resid = sums - m[..., None] * counts
    return m, np.sqrt(g / (g - 1) * (resid**2).sum(axis=-1)) / counts.sum(axis=-1)


EXACT_DRAWS = 4096  # every ordered resample of G clusters when G**G is at most this (G = 4: 256)
RANDOM_DRAWS = 1999  # otherwise this many, from a fixed seed


def cluster_draws(g: int, *, seed: int = 0) -> np.ndarray:
    """Resamples of ``g`` clusters with replacement, one row of cluster indices each: all ``g**g`` ordered
    draws when that is at most :data:`EXACT_DRAWS` (the bootstrap distribution itself, no Monte-Carlo
    error), else :data:`RANDOM_DRAWS` draws from ``seed``."""
    import itertools

    if g**g <= EXACT_DRAWS:
        return np.array(list(itertools.product(range(g), repeat=g)), dtype=np.int64).reshape(-1, g)
    return np.random.default_rng(seed).integers(0, g, size=(RANDOM_DRAWS, g))


def _symmetric(
    theta: float, se: float, stars: np.ndarray, star_se: np.ndarray, level: float
) -> tuple[float | None, float | None, str]:
    """θ ± q·se, q the ``level`` quantile of |θ* − θ| / se* (NaN θ*, or se* 0 with θ* ≠ θ: infinite)."""
    gap = np.abs(stars - theta)
    tied = gap <= 1e-12 * max(1.0, abs(theta))
    with np.errstate(divide="ignore", invalid="ignore"):
        far = np.where(star_se > 0, gap / star_se, np.where(tied, 0.0, np.inf))
    far = np.where(np.isnan(stars), np.inf, far)
    q = float(np.sort(far)[math.ceil(level * len(far)) - 1])
    if not math.isfinite(q):
        return None, None, f"the statistic is undefined in more than {1 - level:.0%} of cluster resamples"
    return theta - q * se, theta + q * se, ""


def cluster_boot_t_interval(
    values: Mapping[str, float], clusters: Mapping[str, str], level: float = 0.95
) -> ClusteredMean:
    """The concept-weighted mean with a symmetric studentized bootstrap interval over clusters: the
    cluster-robust standard error of :func:`cluster_t_interval` in the data and in every resample of whole
    clusters: θ ± q·se, q the ``level`` quantile of |θ* − θ| / se* (coverage in docs/METRICS.md).

    Raises:
        ValueError: no values, or a value that is not finite.
    """
    sums, counts, mean = _checked_totals(values, clusters, "cluster_boot_t_interval")
    n, g = int(counts.sum()), len(sums)
    if n < MIN_UNITS or g < 2:
        return ClusteredMean(mean, None, None, n, g)
    theta, se = _mean_se(sums[None], counts[None])
    draws = cluster_draws(g)
    stars, star_se = _mean_se(sums[draws], counts[draws])  # every resample at once
    low, high, _ = _symmetric(float(theta[0]), float(se[0]), stars, star_se, level)
    return ClusteredMean(mean, low, high, n, g)


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


def coverage(method: str, **design: Any) -> float:
    """Share of simulated designs whose interval covers the true mean (:func:`coverage_and_width`)."""
    return coverage_and_width(method, **design)[0]


def coverage_and_width(
    method: str,
    *,
    n_clusters: int = 4,
    per_cluster: int = 2,
    within: float = 0.5,
    skewed: bool = False,
    trials: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Share of simulated designs whose interval covers the true mean, and the intervals' median width (no
    interval: infinite width), at ``n_clusters`` clusters of
    ``per_cluster`` concepts, a cluster effect carrying ``within`` of the variance, normal or (``skewed``)
    centred log-normal effects.

    Raises:
        ValueError: unknown method (``t``, ``boot-t`` or ``bca``).
    """
    if method not in ("t", "boot-t", "bca"):
        raise ValueError(f"unknown interval method {method!r}: use 't', 'boot-t' or 'bca'")
    rng = np.random.default_rng(seed)
    hits = 0
    widths = []

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
        elif method == "boot-t":
            got = cluster_boot_t_interval(data, clusters, level)
        else:
            got = cluster_bca_interval(data, clusters, level, resamples=999, seed=trial)
        if got.low is not None and got.high is not None and got.low <= 0.0 <= got.high:
            hits += 1
        widths.append(math.inf if got.low is None or got.high is None else got.high - got.low)
    return hits / trials, float(np.median(widths))
