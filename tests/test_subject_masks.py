"""Own subject masks (noise difference), the subject crop, and the subject-fidelity metric."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from benchmark.masks import NEUTRAL_GREY, own_masks, subject_crop
from metrics.similarity import subject_similarity_metric


def test_subject_crop_keeps_only_the_subject_and_removes_its_place() -> None:
    arr = np.full((32, 32, 3), 30, dtype=np.uint8)  # a dark background
    arr[2:10, 20:28] = (200, 10, 10)  # a red 8×8 subject in the top right
    mask = np.zeros((32, 32), dtype=bool)
    mask[2:10, 20:28] = True
    out = np.asarray(subject_crop(Image.fromarray(arr), mask, 32))
    assert out.shape == (32, 32, 3)
    assert (out == (200, 10, 10)).all(axis=-1).mean() > 0.9  # the subject fills the crop
    # the same subject elsewhere, on another background, gives the same picture
    other = np.full((32, 32, 3), 240, dtype=np.uint8)
    other[20:28, 3:11] = (200, 10, 10)
    mask2 = np.zeros((32, 32), dtype=bool)
    mask2[20:28, 3:11] = True
    assert np.array_equal(np.asarray(subject_crop(Image.fromarray(other), mask2, 32)), out)


def test_subject_crop_paints_outside_the_mask_grey_and_an_empty_mask_gives_grey() -> None:
    arr = np.full((16, 16, 3), 250, dtype=np.uint8)
    mask = np.zeros((16, 16), dtype=bool)
    mask[4:12, 4:12] = True
    mask[4, 4] = False  # a hole inside the box: painted grey, not kept
    out = np.asarray(subject_crop(Image.fromarray(arr), mask, 8))
    assert out.shape == (8, 8, 3) and out[0, 0, 0] < 250 and out[4, 4, 0] == 250
    empty = np.asarray(subject_crop(Image.fromarray(arr), np.zeros((16, 16), dtype=bool), 8))
    assert (empty == NEUTRAL_GREY).all()


def test_own_masks_cut_the_map_at_the_threshold() -> None:
    maps = np.array([[[0.0, 0.29], [0.3, 1.0]]], dtype=np.float32)
    assert own_masks(maps).tolist() == [[[False, False], [True, True]]]
    assert own_masks(maps, threshold=0.2).sum() == 3


def test_noise_difference_maps_on_the_tiny_pipeline() -> None:
    from baselines.pipeline import CustomizedPipeline
    from baselines.tiny import make_tiny_pipeline
    from benchmark.masks import noise_difference_maps

    pipe = CustomizedPipeline(make_tiny_pipeline())
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(3)]
    maps = noise_difference_maps(pipe, images, "dog", size=64, batch_size=2)
    assert maps.shape == (3, 64, 64) and maps.dtype == np.float32
    assert np.allclose(maps.min(axis=(1, 2)), 0.0) and np.allclose(maps.max(axis=(1, 2)), 1.0)
    again = noise_difference_maps(pipe, images[1:2], "dog", size=64)
    assert np.allclose(again[0], maps[1], atol=1e-5)  # batching does not change a map
    with pytest.raises(ValueError, match="no images"):
        noise_difference_maps(pipe, [], "dog", size=64)


def test_subject_similarity_is_the_mean_per_image_cosine_with_its_standard_error() -> None:
    gen = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    ref = np.array([[1.0, 0.0], [2.0, 0.0]])  # both point along x
    out = subject_similarity_metric(gen, ref)
    per = np.array([1.0, 0.0, 1 / np.sqrt(2)])
    assert out.value == pytest.approx(per.mean())
    assert out.n == 3
    assert out.extra["se"] == pytest.approx(per.std(ddof=1) / np.sqrt(3))


def test_bounding_boxes_fill_each_mask_to_its_box_and_leave_an_empty_mask_empty() -> None:
    # leakage@2 paints the grown mask's bounding box grey: an L-shaped subject leaves no corner behind
    from benchmark.masks import bounding_boxes, dilate

    masks = np.zeros((2, 8, 8), dtype=bool)
    masks[0, 2:6, 2] = True  # an L: a column and a row
    masks[0, 5, 2:5] = True
    boxes = bounding_boxes(masks)
    expected = np.zeros((8, 8), dtype=bool)
    expected[2:6, 2:5] = True
    assert np.array_equal(boxes[0], expected) and not boxes[1].any()
    assert np.array_equal(bounding_boxes(boxes), boxes)  # a box is its own box
    grown = bounding_boxes(dilate(masks, 1 / 8))  # grown by one pixel first, then boxed: rows 1-6, cols 1-5
    assert grown[0].sum() == 6 * 5 and grown[0, 1, 1] and grown[0, 6, 5] and not grown[0, 0, 0]
