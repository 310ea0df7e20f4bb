"""layout@1: the subject's layout nearer the training images' than the asked one, calibrated on the base
model; benchmark.masks.layout."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.masks import layout
from metrics.layout import layout_metric, split_asked
from metrics.spec import get_metric


def test_layout_of_a_rectangle_is_its_centre_and_root_area() -> None:
    masks = np.zeros((2, 10, 20), dtype=bool)
    masks[0, 2:4, 5:10] = True  # rows 2-3, columns 5-9: centre (7.5/20, 3/10), area 10/200
    got = layout(masks)
    assert got[0] == pytest.approx([7.5 / 20, 3.0 / 10, np.sqrt(10 / 200)])
    assert got[1] == pytest.approx([0.5, 0.5, 0.0])  # an empty mask: a centred subject of size 0
    with pytest.raises(ValueError, match="expected shape"):
        layout(np.zeros((3, 3)))


def test_split_alternates_within_each_prompt() -> None:
    prompts = np.array([0, 0, 0, 0, 1, 1])
    assert split_asked(prompts).tolist() == [True, False, True, False, True, False]
    with pytest.raises(ValueError, match="at least 2"):
        split_asked(np.array([0, 0, 1]))


def _world(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    prompts = np.repeat(np.arange(8), 4)
    centres = rng.uniform(0.3, 0.7, size=(8, 2))  # where each prompt puts the subject

    def draw() -> np.ndarray:
        xy = centres[prompts] + rng.normal(scale=0.05, size=(32, 2))
        return np.column_stack([xy, rng.uniform(0.3, 0.5, 32)])

    reference = np.column_stack([rng.uniform(0.05, 0.15, (5, 2)), np.full(5, 0.2)])  # training: a corner
    return prompts, reference, draw(), draw()


def test_copied_layouts_read_one_and_an_unchanged_model_reads_about_zero() -> None:
    prompts, reference, base_alt, fresh_base = _world(0)
    copy = reference[np.arange(32) % 5]
    out = layout_metric(copy, reference, base_alt, prompts)
    assert out.value == pytest.approx(1.0) and out.extra["d_train_generated"] == pytest.approx(0.0)
    values = []
    for seed in range(40):  # a model that changed nothing: another draw of the base model's layouts
        prompts, reference, base_alt, fresh_base = _world(seed)
        values.append(layout_metric(fresh_base, reference, base_alt, prompts).value)
    v = np.asarray(values)
    assert abs(v.mean()) < 3 * v.std(ddof=1) / np.sqrt(len(v))
    assert np.count_nonzero(v) > 30  # measured, not zero by construction


def test_mismatched_inputs_name_the_problem_and_the_spec_is_apart_from_the_headline() -> None:
    prompts, reference, base_alt, _ = _world(1)
    with pytest.raises(ValueError, match="must match"):
        layout_metric(base_alt[:10], reference, base_alt, prompts)
    with pytest.raises(ValueError, match="must match"):
        layout_metric(base_alt, reference, base_alt, prompts[:10])
    one_each = layout_metric(base_alt[:8], reference, base_alt[:8], np.arange(8))  # one seed per prompt
    assert one_each.extra["asked"] == "any prompt" and -1.0 <= one_each.value <= 1.0
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        layout_metric(base_alt[:, :2], reference, base_alt, prompts)
    spec = get_metric("layout@1")
    assert spec.role == "overfitting" and spec.headline is None and spec.row_backbone == "masks"
