"""Input checks shared by the numeric metrics. Every failure is a ``ValueError`` naming the input."""

from __future__ import annotations

from typing import Any

import numpy as np


def as_float64(x: Any, name: str) -> np.ndarray:
    """Convert a numpy array, torch tensor or nested sequence to a float64 numpy array."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensor, without importing torch
        x = x.detach().cpu().double().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: cannot convert to a float array ({err})") from err
    return arr


def check_finite(arr: np.ndarray, name: str) -> None:
    """Raise if ``arr`` holds NaN or inf, saying how many."""
    bad = ~np.isfinite(arr)
    if bad.any():
        n_nan = int(np.isnan(arr).sum())
        n_inf = int(bad.sum()) - n_nan
        raise ValueError(f"{name}: contains {n_nan} NaN and {n_inf} inf values")


def point_cloud(x: Any, name: str) -> np.ndarray:
    """A non-empty, finite (n, d) float64 array; 1-D input is read as n points in one dimension."""
    arr = as_float64(x, name)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected shape (n, d), got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: empty set (0 points)")
    if arr.shape[1] == 0:
        raise ValueError(f"{name}: points have dimension 0")
    check_finite(arr, name)
    return arr


def probability_weights(w: Any, n: int, name: str) -> np.ndarray:
    """Uniform weights when ``w`` is None, else ``w`` checked and normalised to sum 1."""
    if w is None:
        return np.full(n, 1.0 / n)
    arr = as_float64(w, name)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name}: expected shape ({n},) to match the points, got {arr.shape}")
    check_finite(arr, name)
    if (arr < 0).any():
        raise ValueError(f"{name}: {int((arr < 0).sum())} negative weights")
    total = float(arr.sum())
    if total <= 0.0:
        raise ValueError(f"{name}: weights sum to {total}; cannot normalise")
    return arr / total
