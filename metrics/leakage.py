"""``leakage@2``: how often a generated image's context is one of the training images' contexts, calibrated
against the base model.

Every image is masked with *its own* subject mask (``benchmark.masks``, noise-difference@1, grown by 1/16 of
the side and filled to its bounding box, so that no rim or part of the subject is left) and that region
painted grey, so its features (the suite's DINO slot) describe the context: background and layout around
the subject. (``leakage@1`` painted the grown mask itself and read the CLIP slot; docs/DECISIONS.md says
how the change was chosen.) The features arrive computed; this module only compares them. For each
image its *context match* is the highest cosine to any training image's context,

    s(x) = max_j cos(c(x), c(r_j)).

The base model's images for the same prompts on a disjoint seed set give the null: how close an image
drawn without the concept comes to a training context by chance. ``leakage@2`` is

    2 · AUROC − 1,   AUROC = P(s(g) > s(b)) + ½ P(s(g) = s(b))

over every (generated, base) pair (the Mann–Whitney statistic, ``scipy.stats.mannwhitneyu``): 0 when the
generated contexts are as close to the training contexts as the base model's (a model that changed
nothing, or one that learned the subject and kept the asked contexts), 1 when every generated context is
closer than every base one (a copy of the training images). A method that learned only the subject's look
changes pixels inside the masks, which the features do not see. Rows carry ``auroc`` and ``se``, the
Hanley–McNeil standard error of 2·AUROC − 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from metrics._arrays import as_float64, check_finite
from metrics.spec import MetricValue


def _unit(x: Any, name: str) -> np.ndarray:
    arr = as_float64(x, name)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"{name}: expected features of shape (n, d) with n > 0, got {arr.shape}")
    check_finite(arr, name)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"{name}: {int((norms == 0).sum())} zero-norm feature rows; cosine undefined")
    return np.asarray(arr / norms)


def context_match(contexts: Any, reference: Any, name: str = "contexts") -> np.ndarray:
    """Per image, the highest cosine of its context features to any training image's, float64 [N].

    Raises:
        ValueError: empty, non-finite or zero-norm features, or different feature sizes.
    """
    c, r = _unit(contexts, name), _unit(reference, "reference")
    if c.shape[1] != r.shape[1]:
        raise ValueError(f"{name} and reference have different feature sizes ({c.shape[1]}, {r.shape[1]})")
    return np.asarray((c @ r.T).max(axis=1))


def auroc(scores: np.ndarray, null: np.ndarray) -> float:
    """P(score > null) + ½ P(score = null) over every pair (Mann–Whitney U / (n·m))."""
    from scipy.stats import mannwhitneyu

    u = mannwhitneyu(scores, null, alternative="two-sided").statistic
    return float(u) / (len(scores) * len(null))


def hanley_mcneil_se(a: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil (1982) standard error of an AUROC ``a`` from ``n_pos`` and ``n_neg`` scores."""
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (n_pos * n_neg)
    return float(np.sqrt(max(var, 0.0)))


def leakage_metric(generated: Any, reference: Any, base: Any) -> MetricValue:
    """``leakage@2`` from context features of the generated images, the training images and the base
    model's images on disjoint seeds (see the module docstring)."""
    s_gen = context_match(generated, reference, "generated")
    s_base = context_match(base, reference, "base")
    a = auroc(s_gen, s_base)
    se = 2 * hanley_mcneil_se(a, len(s_gen), len(s_base))
    return MetricValue(
        2 * a - 1,
        len(s_gen),
        {"auroc": a, "se": se, "match_generated": float(s_gen.mean()), "match_base": float(s_base.mean())},
    )
