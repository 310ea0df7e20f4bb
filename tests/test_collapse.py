"""collapse@1, W2's floor and permutation test, and subject masks from cross-attention."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from metrics.collapse import collapse_metric, context_shift
from metrics.wasserstein import paired_permutation_pvalue, w2_floor_metric, wasserstein2


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_collapse_is_zero_for_the_base_model_and_closed_form_otherwise() -> None:
    rng = np.random.default_rng(0)
    ref = _unit(rng.normal(size=(5, 8)))
    base = _unit(rng.normal(size=(12, 8)))
    assert collapse_metric(base, base, ref).value == 0.0
    mu = ref.mean(axis=0)
    mu /= np.linalg.norm(mu)
    # generations that become the training contexts exactly: shift_i = 1 - cos(b_i, mu)
    gen = np.repeat(mu[None], 12, axis=0)
    expected = float(np.mean(1.0 - base @ mu))
    assert collapse_metric(gen, base, ref).value == pytest.approx(expected)
    assert collapse_metric(gen, base, ref).value > 0.5


def test_collapse_ignores_changes_orthogonal_to_the_training_contexts() -> None:
    rng = np.random.default_rng(1)
    ref = _unit(rng.normal(size=(4, 6)))
    mu = _unit(ref.mean(axis=0, keepdims=True))[0]
    base = rng.normal(size=(10, 6))
    # move each image orthogonally to mu and keep its norm: cos to mu scales by the norm change only
    ortho = rng.normal(size=(10, 6))
    ortho -= np.outer(ortho @ mu, mu)
    moved = base + 0.0 * ortho
    assert np.allclose(context_shift(moved, base, ref), 0.0)
    # scaling a feature vector changes nothing (features are compared as directions)
    assert np.allclose(context_shift(3.0 * base, base, ref), 0.0)
    with pytest.raises(ValueError, match="paired"):
        context_shift(base[:5], base, ref)
    with pytest.raises(ValueError, match="reference"):
        context_shift(base, base, ref[:, :3])


def test_paired_permutation_test() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(32, 5))
    assert paired_permutation_pvalue(x, x) == 1.0
    far = x + 5.0
    assert paired_permutation_pvalue(x, far) == pytest.approx(1 / 200)  # every swap lowers W2
    near = x + rng.normal(scale=0.01, size=x.shape)
    p = paired_permutation_pvalue(x, near)
    assert p == paired_permutation_pvalue(x, near)  # fixed seed: deterministic
    assert p > 0.05  # a jitter of each pair is no evidence of a different distribution
    with pytest.raises(ValueError, match="same number of rows"):
        paired_permutation_pvalue(x, x[:3])


def test_w2_floor_is_w2_between_the_two_base_sets() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(20, 4)), rng.normal(size=(20, 4))
    out = w2_floor_metric(a, b)
    assert out.value == wasserstein2(a, b) and out.n == 20


def test_masks_dilate_and_blank_paints_grey() -> None:
    from benchmark.masks import NEUTRAL_GREY, blank, masks_from_maps

    maps = np.zeros((1, 32, 32), dtype=np.float32)
    maps[0, 10, 20] = 1.0
    mask = masks_from_maps(maps)[0]  # one pixel, dilated by 32/16 = 2 on each side
    assert mask.sum() == 25 and mask[8:13, 18:23].all()
    image = Image.fromarray(np.full((32, 32, 3), 200, dtype=np.uint8))
    out = np.asarray(blank(image, mask))
    assert (out[mask] == NEUTRAL_GREY).all() and (out[~mask] == 200).all()
    big = np.asarray(blank(image.resize((64, 64)), mask))  # a mask is resized to the image
    assert (big == NEUTRAL_GREY).all(axis=-1).sum() == 25 * 4


def test_subject_maps_on_the_tiny_pipeline_are_normalised_per_image() -> None:
    from baselines.pipeline import CustomizedPipeline
    from baselines.tiny import make_tiny_pipeline
    from benchmark.masks import subject_maps

    pipe = CustomizedPipeline(make_tiny_pipeline())
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(3)]
    maps = subject_maps(pipe, images, "dog", size=64, batch_size=2)
    assert maps.shape == (3, 64, 64) and maps.dtype == np.float32
    assert np.allclose(maps.min(axis=(1, 2)), 0.0) and np.allclose(maps.max(axis=(1, 2)), 1.0)
    again = subject_maps(pipe, images[:1], "dog", size=64)
    assert np.allclose(again[0], maps[0], atol=1e-5)  # batching does not change a map
    with pytest.raises(ValueError, match="no images"):
        subject_maps(pipe, [], "dog", size=64)
