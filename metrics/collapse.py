"""``collapse@1``: the shift of generations towards the training images' context, with the subject masked.

Inputs are image features of *subject-masked* images (the subject region painted neutral grey, the
masks derived from the images themselves; see ``benchmark.masks``): the generated images (each masked
with the subject mask of the base model's image for the same prompt and seed, i.e. the asked layout),
the base model's images (their own masks) and the reference photos (their own masks). With μ the mean
direction of the masked reference photos — their contexts: backgrounds and layouts — each generated
image i scores

    shift_i = cos(g_i, μ) − cos(b_i, μ),

how much closer its context is to the training contexts than the base model's image for the same prompt
and seed is. ``collapse@1`` is the mean over images (0 for the base model itself, positive when
generations drift onto the training backgrounds or layouts). Changing only the subject's look changes
pixels inside the masks, which the features do not see.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from metrics._arrays import as_float64
from metrics.spec import MetricValue


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def context_shift(masked_generated: Any, masked_base: Any, masked_reference: Any) -> np.ndarray:
    """Per-image shift towards the training contexts, float64 [N] (see the module docstring).

    Raises:
        ValueError: sets of different sizes, mismatched feature sizes, empty or non-finite input.
    """
    g = as_float64(masked_generated, "masked_generated")
    b = as_float64(masked_base, "masked_base")
    r = as_float64(masked_reference, "masked_reference")
    if g.ndim != 2 or b.shape != g.shape:
        raise ValueError(f"paired [N, d] sets needed, got {g.shape} and {b.shape}")
    if r.ndim != 2 or r.shape[1] != g.shape[1] or r.shape[0] < 1 or g.shape[0] < 1:
        raise ValueError(f"reference features [R, {g.shape[1]}] needed, got {r.shape}")
    mu = _unit(_unit(r).mean(axis=0, keepdims=True))[0]
    # elementwise products and numpy sums rather than BLAS products: the same last bits on every machine
    return np.asarray(np.sum(_unit(g) * mu, axis=1) - np.sum(_unit(b) * mu, axis=1))


def collapse_metric(
    masked_generated_clip: Any, masked_base_clip: Any, masked_reference_clip: Any
) -> MetricValue:
    """``collapse@1`` (the compute function its spec names): the mean of :func:`context_shift`; the
    row's extra holds its standard error over images ``se``."""
    shift = context_shift(masked_generated_clip, masked_base_clip, masked_reference_clip)
    se = float(shift.std(ddof=1) / np.sqrt(len(shift))) if len(shift) > 1 else 0.0
    return MetricValue(float(shift.mean()), len(shift), {"se": se})
