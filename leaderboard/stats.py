"""Mean over concepts with a percentile bootstrap interval (deterministic), and the :class:`Interval` the
leaderboard's cells carry. The summary table no longer uses the bootstrap (it under-covers at 8 concepts in
4 clusters; :mod:`leaderboard.clustered`); it stays for callers of the public API."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_RESAMPLES = 10_000
DEFAULT_LEVEL = 0.95
DEFAULT_SEED = 0

# Resamples are drawn in chunks of about this many indices so memory stays bounded for large suites;
# the chunk size depends only on the number of values, so the draw sequence is reproducible.
_CHUNK_ELEMENTS = 2_000_000


@dataclass(frozen=True)
class Interval:
    """A point estimate with a confidence interval ``[low, high]``.

    ``too_few``: there were too few concepts for an interval (the leaderboard's summary table,
    :func:`leaderboard.aggregate.clustered_mean`); ``low`` and ``high`` then equal ``mean`` and are not an
    interval. ``clusters``: the independent units behind it (0 when not counted).
    """

    mean: float
    low: float
    high: float
    too_few: bool = False
    clusters: int = 0


def bootstrap_mean_ci(
    values: Sequence[float],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = DEFAULT_SEED,
) -> Interval:
    """Mean of ``values`` and its percentile-bootstrap confidence interval.

    The values are sorted first, so the result depends only on the multiset of values, not on their
    order. Resamples of size ``len(values)`` are drawn with replacement from
    ``numpy.random.Generator(PCG64(seed))``; the interval is the ``(1 - level)/2`` and
    ``(1 + level)/2`` percentiles (numpy's linear interpolation) of the resampled means.
    One value, or all values equal, gives the degenerate interval ``[v, v]``.

    Returns:
        :class:`Interval` with the sample mean (``math.fsum``, float64) and the interval.

    Raises:
        ValueError: ``values`` is empty or holds NaN/inf, ``resamples < 1`` or ``level`` not in (0, 1).
    """
    if len(values) == 0:
        raise ValueError("bootstrap_mean_ci: no values")
    if resamples < 1:
        raise ValueError(f"bootstrap_mean_ci: resamples must be >= 1, got {resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"bootstrap_mean_ci: level must be in (0, 1), got {level}")
    data = np.sort(np.asarray(values, dtype=np.float64))
    if not np.all(np.isfinite(data)):
        raise ValueError("bootstrap_mean_ci: values must be finite")
    n = data.size
    if data[0] == data[-1]:
        point = float(data[0])
        return Interval(point, point, point)
    mean = math.fsum(data.tolist()) / n

    rng = np.random.Generator(np.random.PCG64(seed))
    chunk = max(1, _CHUNK_ELEMENTS // n)
    means = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, chunk):
        stop = min(start + chunk, resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = data[idx].sum(axis=1) / n
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    # A resampled mean lies in [min, max] exactly; summing can round it just outside, so bring it back.
    low, high = max(float(low), float(data[0])), min(float(high), float(data[-1]))
    return Interval(mean, low, high)
