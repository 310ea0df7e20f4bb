"""CLIP-T, CLIP-I and DINO (SPEC §2): cosine similarities of backbone embeddings.

Functional core on features (:func:`paired_cosine_mean`, :func:`all_pairs_cosine_mean`) and thin
wrappers that extract features with a :class:`~metrics.backbones.Backbone` first. All return raw
cosines; display scales are a leaderboard option.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from metrics._arrays import as_float64, check_finite
from metrics.spec import MetricValue


@dataclass(frozen=True)
class SimilarityResult:
    """A similarity score with its sample count, truncation count and backbone identity."""

    value: float
    n: int
    n_truncated: int = 0
    backbone: dict[str, str] = field(default_factory=dict)


def _features(x: Any, name: str) -> np.ndarray:
    arr = as_float64(x, name)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected features of shape (n, d), got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: empty set (0 feature rows)")
    check_finite(arr, name)
    norms = np.linalg.norm(arr, axis=1)
    if (norms == 0).any():
        raise ValueError(f"{name}: {int((norms == 0).sum())} zero-norm feature rows; cosine undefined")
    return arr / norms[:, None]


def paired_cosine_mean(a: Any, b: Any) -> float:
    """Mean of cos(a_i, b_i) over rows (CLIP-T's image/prompt pairs), in float64."""
    fa, fb = _features(a, "a"), _features(b, "b")
    if fa.shape != fb.shape:
        raise ValueError(f"paired features need equal shapes, got {fa.shape} and {fb.shape}")
    return float(np.mean(np.sum(fa * fb, axis=1)))


def all_pairs_cosine_mean(a: Any, b: Any) -> float:
    """Mean of cos(a_i, b_j) over all (i, j) pairs (CLIP-I and DINO), in float64."""
    fa, fb = _features(a, "a"), _features(b, "b")
    if fa.shape[1] != fb.shape[1]:
        raise ValueError(f"feature dimensions differ: {fa.shape[1]} vs {fb.shape[1]}")
    # mean_ij <a_i, b_j> = <mean_i a_i, mean_j b_j>; an elementwise product and numpy's sum, not a BLAS
    # dot, so the reduction order (hence the last bits) is the same on every machine
    return float(np.sum(fa.mean(axis=0) * fb.mean(axis=0)))


def leave_one_out_cosine_mean(a: Any) -> float:
    """Mean cosine over ordered pairs (i, j), i != j, within one set (the ``real`` reference row)."""
    fa = _features(a, "a")
    n = fa.shape[0]
    if n < 2:
        raise ValueError("need at least 2 reference images for a leave-one-out similarity")
    # sum_{i != j} <a_i, a_j> = |sum_i a_i|^2 - sum_i |a_i|^2, without a BLAS product (machine-independent
    # reduction order)
    total = fa.sum(axis=0)
    return float((np.sum(total * total) - np.sum(fa * fa)) / (n * (n - 1)))


def render_slot(template: str, text: str) -> str:
    """Fill the ``{concept}`` slot of a suite prompt template.

    Raises:
        ValueError: the template has no ``{concept}`` slot or other unknown fields.
    """
    if "{concept}" not in template:
        raise ValueError(f"prompt template has no {{concept}} slot: {template!r}")
    try:
        return template.format(concept=text)
    except (KeyError, IndexError) as err:
        raise ValueError(f"prompt template {template!r} has an unknown field: {err}") from err


def clip_t(
    images: Any,
    prompts: Sequence[str],
    backbone: Any,
    *,
    allow_truncation: bool = False,
    batch_size: int = 32,
    device: Any = None,
) -> SimilarityResult:
    """CLIP-T: mean cos(CLIP_img(x_i), CLIP_txt(p_i)).

    ``prompts[i]`` must already have the concept slot rendered as the class noun (see
    :func:`render_slot`); identifier tokens do not belong in CLIP-T text.

    Raises:
        ValueError: a different number of images and prompts, a prompt longer than the context
            (unless ``allow_truncation``), unreadable images.
    """
    from metrics.backbones import extract_image_features, extract_text_features

    prompts = list(prompts)
    n_img = images.shape[0] if hasattr(images, "shape") else len(images)
    if n_img != len(prompts):
        raise ValueError(f"CLIP-T needs one prompt per image: {n_img} images, {len(prompts)} prompts")
    img = extract_image_features(backbone, images, batch_size=batch_size, device=device)
    txt, n_trunc = extract_text_features(backbone, prompts, allow_truncation=allow_truncation, device=device)
    return SimilarityResult(paired_cosine_mean(img, txt), len(prompts), n_trunc, backbone.identity())


def image_similarity(
    images: Any, references: Any, backbone: Any, *, batch_size: int = 32, device: Any = None
) -> SimilarityResult:
    """Mean cosine over all (generated, reference) pairs: CLIP-I with a CLIP backbone, DINO with DINO."""
    from metrics.backbones import extract_image_features

    gen = extract_image_features(backbone, images, batch_size=batch_size, device=device)
    ref = extract_image_features(backbone, references, batch_size=batch_size, device=device)
    return SimilarityResult(
        all_pairs_cosine_mean(gen, ref), gen.shape[0] * ref.shape[0], 0, backbone.identity()
    )


def clip_i(images: Any, references: Any, backbone: Any, **kwargs: Any) -> SimilarityResult:
    """CLIP-I (subject fidelity); ``backbone`` must be a CLIP backbone."""
    if backbone.kind != "clip":
        raise ValueError(f"CLIP-I needs a CLIP backbone, got {backbone.kind!r}")
    return image_similarity(images, references, backbone, **kwargs)


def dino(images: Any, references: Any, backbone: Any, **kwargs: Any) -> SimilarityResult:
    """DINO (subject fidelity); ``backbone`` must be a DINO backbone."""
    if backbone.kind != "dino":
        raise ValueError(f"DINO needs a DINO backbone, got {backbone.kind!r}")
    return image_similarity(images, references, backbone, **kwargs)


# ----------------------------------------------------------------------------------------------------
# Compute functions named by the metric specs (metrics.spec): named feature inputs in, MetricValue out.


def clip_t_metric(generated_clip: Any, prompt_clip: Any, prompt_truncations: int = 0) -> MetricValue:
    """``clip_t@1`` from CLIP image features and each image's class-rendered prompt's text features."""
    return MetricValue(
        paired_cosine_mean(generated_clip, prompt_clip),
        _count(generated_clip),
        {"truncated": int(prompt_truncations)},
    )


def clip_i_metric(generated_clip: Any, reference_clip: Any) -> MetricValue:
    """``clip_i@1`` from CLIP image features of the generated images and of the reference photos."""
    return MetricValue(all_pairs_cosine_mean(generated_clip, reference_clip), _count(generated_clip))


def dino_metric(generated_dino: Any, reference_dino: Any) -> MetricValue:
    """``dino@1`` from DINO image features of the generated images and of the reference photos."""
    return MetricValue(all_pairs_cosine_mean(generated_dino, reference_dino), _count(generated_dino))


def subject_similarity_metric(generated: Any, reference: Any) -> MetricValue:
    """``subject_dino@1`` / ``subject_clip_i@1``: the mean over generated images of each one's mean cosine
    to the reference photos (features of the subject alone), with ``se``, the standard error of that mean
    over the generated images (0 for a single image)."""
    fa = _features(generated, "generated")
    fb = _features(reference, "reference")
    per_image = fa @ fb.mean(axis=0)
    n = int(per_image.size)
    se = float(per_image.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
    return MetricValue(float(per_image.mean()), n, {"se": se})


def _count(features: Any) -> int:
    return int(features.shape[0]) if hasattr(features, "shape") else len(features)


def identity_metric(generated_identity: Any) -> MetricValue:
    """``identity@1``: the mean of per-image identity scores (a suite's ground-truth scorer)."""
    scores = as_float64(generated_identity, "generated_identity").reshape(-1)
    if scores.size == 0:
        raise ValueError("identity: no scores")
    return MetricValue(float(scores.mean()), int(scores.size))


def leave_one_out_metric(reference: Any) -> MetricValue:
    """The ``real`` row of a subject-fidelity metric: the reference photos scored against each other,
    leave-one-out (:func:`leave_one_out_cosine_mean`), over the n·(n-1) ordered pairs."""
    n = _count(reference)
    return MetricValue(leave_one_out_cosine_mean(reference), n * (n - 1))
