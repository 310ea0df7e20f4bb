"""``heldout_gap@1``: is a generated image closer to the training images than to the same concept in
other contexts — more than the base model's images are?

For an image x, its *training pull* is

    gap(x) = max_j cos(f(x), f(r_j)) − max_k cos(f(x), f(h_k)),

r the training images, h held-out views of the same concept in contexts the training images never show
(suites whose profile names ``heldout_views``; a rendered world can draw them), f the CLIP-slot features of the
whole image. ``heldout_gap@1`` is the mean gap over the generated images minus the mean gap over the base
model's images for the same prompts on disjoint seeds (seed + 10000): 0 in expectation for a model that
changed nothing (two different draws), positive when the generated images sit nearer the training
contexts than the concept's other contexts. A model that learned the concept and puts it where the prompt
asks moves towards the training images and the held-out views alike, so its gap stays near the base
model's. Rows carry the two mean gaps and ``se`` (the two means' standard errors combined).

Real suites have no held-out views of their subjects: DreamBench and CustomConcept101 give 3–6 photos a
concept, and the methods train on all of them. A split (train on some, hold the rest out) would serve, at
the cost of training on fewer photos; it is not built (docs/DECISIONS.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from metrics.leakage import context_match
from metrics.spec import MetricValue


def training_pull(images: Any, reference: Any, heldout: Any, name: str) -> np.ndarray:
    """gap(x) per image: highest cosine to a training image minus highest cosine to a held-out view.

    Raises:
        ValueError: empty, non-finite or zero-norm features, or different feature sizes.
    """
    return np.asarray(context_match(images, reference, name) - context_match(images, heldout, name))


def heldout_gap_metric(generated: Any, reference: Any, heldout: Any, base: Any) -> MetricValue:
    """``heldout_gap@1`` from CLIP-slot features of the generated images, the training images, the
    held-out views and the base model's images on disjoint seeds (see the module docstring)."""
    g = training_pull(generated, reference, heldout, "generated")
    b = training_pull(base, reference, heldout, "base")
    se = float(np.sqrt(g.var(ddof=1) / len(g) + b.var(ddof=1) / len(b))) if min(len(g), len(b)) > 1 else 0.0
    return MetricValue(
        float(g.mean() - b.mean()),
        len(g),
        {"gap_generated": float(g.mean()), "gap_base": float(b.mean()), "se": se},
    )
