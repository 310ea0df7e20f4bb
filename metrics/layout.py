"""``layout@1``: does the subject stand where (and as large as) it stood in the training images, rather
than where the prompt puts it? The layout companion of ``leakage``, reported apart from it.

Every image's layout is read off its own subject mask (``benchmark.masks.layout``: centroid x, y and the
square root of the area share). For an image x of prompt p,

    u(x) = d_asked(x) − d_train(x),
    d_train(x) = min_j ||L(x) − L(r_j)||            (nearest training image),
    d_asked(x) = min_{a ∈ A_p} ||L(x) − L(a)||       (nearest base-model image of the same prompt).

The asked layout is what the base model draws for the prompt. Its images on the disjoint seed set (seed +
10000) are split within each prompt, alternately in seed order: A_p (the asked layouts) and N_p (the
null). ``layout@1`` is 2 · AUROC − 1 of u over the generated images against u over the null images, both
read against the same A_p (as ``leakage``). A model that changed nothing draws the suite's seeds, a
different draw from N_p, so it reads 0 in expectation — measured, not zero by construction; every
generated subject nearer a training layout than any null image reads 1. A model that learned the subject
and keeps the asked layouts reads 0. A suite with one image per prompt has no same-prompt null: there the
split runs over all images and the asked layout is the base model's for any prompt (``asked`` in the row). Rows carry auroc, se (Hanley–McNeil) and the mean d_train of both sets.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from metrics._arrays import as_float64, check_finite
from metrics.leakage import auroc, hanley_mcneil_se
from metrics.spec import MetricValue


def _layouts(x: Any, name: str) -> np.ndarray:
    arr = as_float64(x, name)
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] == 0:
        raise ValueError(f"{name}: expected layouts of shape (n, 3) with n > 0, got {arr.shape}")
    check_finite(arr, name)
    return arr


def _nearest(points: np.ndarray, others: np.ndarray) -> np.ndarray:
    return np.asarray(np.linalg.norm(points[:, None, :] - others[None, :, :], axis=2).min(axis=1))


def split_asked(prompts: np.ndarray) -> np.ndarray:
    """Boolean [N]: True for the rows that serve as asked layouts (the 1st, 3rd, ... row of each prompt),
    False for the null rows (2nd, 4th, ...).

    Raises:
        ValueError: a prompt with fewer than two rows (no null left).
    """
    asked = np.zeros(len(prompts), dtype=bool)
    for g in np.unique(prompts):
        rows = np.flatnonzero(prompts == g)
        if len(rows) < 2:
            raise ValueError(f"prompt {g} has {len(rows)} base image(s); the layout null needs at least 2")
        asked[rows[::2]] = True
    return asked


def _groups(prompts: Any, n: int) -> tuple[np.ndarray, str]:
    """The prompt index of each row, or one group for all rows when some prompt has a single image (a
    suite with one seed per prompt): then the asked layout is the base model's for any prompt."""
    groups = np.asarray(prompts).reshape(-1)
    if len(groups) != n:
        raise ValueError(f"generated and base layouts ({n}) and prompt indices ({len(groups)}) must match")
    if np.unique(groups, return_counts=True)[1].min() < 2:
        if n < 2:
            raise ValueError("the layout null needs at least 2 base images")
        return np.zeros(n, dtype=np.int64), "any prompt"
    return groups, "same prompt"


def layout_metric(generated: Any, reference: Any, base_alt: Any, prompts: Any) -> MetricValue:
    """``layout@1`` from the layouts of the generated images, the training images and the base model's
    images on disjoint seeds, all generated images and base images in the plan's prompt order
    (``prompts``: the prompt index of each row; see the module docstring).

    Raises:
        ValueError: shapes that do not match, or a prompt with fewer than two base images.
    """
    g, r, b = (
        _layouts(generated, "generated"),
        _layouts(reference, "reference"),
        _layouts(base_alt, "base_alt"),
    )
    if len(g) != len(b):
        raise ValueError(f"generated ({len(g)}) and base ({len(b)}) layouts must match")
    groups, asked_from = _groups(prompts, len(g))
    asked = split_asked(groups)

    def asked_distance(points: np.ndarray, point_groups: np.ndarray) -> np.ndarray:
        d_asked = np.empty(len(points))
        for p in np.unique(point_groups):
            rows = point_groups == p
            d_asked[rows] = _nearest(points[rows], b[asked & (groups == p)])
        return d_asked

    null = b[~asked]
    train_gen, train_null = _nearest(g, r), _nearest(null, r)
    u_gen = asked_distance(g, groups) - train_gen
    u_null = asked_distance(null, groups[~asked]) - train_null
    a = auroc(u_gen, u_null)
    return MetricValue(
        2 * a - 1,
        len(u_gen),
        {
            "auroc": a,
            "asked": asked_from,
            "se": 2 * hanley_mcneil_se(a, len(u_gen), len(u_null)),
            "d_train_generated": float(train_gen.mean()),
            "d_train_base": float(train_null.mean()),
        },
    )
