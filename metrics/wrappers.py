"""Stateful accumulators over the functional metrics, for features that arrive in batches."""

from __future__ import annotations

from typing import Any

import numpy as np

from metrics._arrays import as_float64
from metrics.wasserstein import wasserstein2


class W2Accumulator:
    """Collects feature batches for the two sets, then computes exact :func:`wasserstein2`."""

    def __init__(self) -> None:
        self._x: list[np.ndarray] = []
        self._y: list[np.ndarray] = []

    def update(self, x: Any = None, y: Any = None) -> None:
        """Add rows to set x (customized generations) and/or set y (base class generations)."""
        if x is not None:
            self._x.append(np.atleast_2d(as_float64(x, "x")))
        if y is not None:
            self._y.append(np.atleast_2d(as_float64(y, "y")))

    def compute(self) -> float:
        """W2 between everything added so far. Raises ValueError when a set is empty."""
        if not self._x or not self._y:
            raise ValueError("W2Accumulator: both sets need at least one batch before compute()")
        return wasserstein2(np.concatenate(self._x), np.concatenate(self._y))

    def reset(self) -> None:
        self._x.clear()
        self._y.clear()
