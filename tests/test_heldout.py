"""heldout_gap@1 and the toy suite's held-out views."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.toy.heldout import heldout_scenes, heldout_views
from metrics.heldout import heldout_gap_metric, training_pull
from metrics.spec import get_metric

CONCEPT = {
    "shape": "heart",
    "colour": "red",
    "pattern": "stripes",
    "backgrounds": ["grass"],
    "position": "center",
}


def test_views_show_the_concept_only_in_contexts_the_training_images_never_do() -> None:
    scenes = heldout_scenes(CONCEPT)
    assert len(scenes) == 8
    assert all(s.shape == "heart" and s.pattern == "stripes" and s.colour == "red" for s in scenes)
    assert all(s.background != "grass" and s.position != "center" for s in scenes)
    assert len({s.background for s in scenes}) > 4  # cycles through the other backgrounds
    assert heldout_scenes(CONCEPT) == scenes  # deterministic
    images = heldout_views(CONCEPT, 16)
    assert len(images) == 8 and images[0].size == (16, 16)


def test_training_pull_is_the_difference_of_the_nearest_cosines() -> None:
    ref = np.array([[1.0, 0.0, 0.0]])
    held = np.array([[0.0, 1.0, 0.0]])
    x = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert training_pull(x, ref, held, "x") == pytest.approx([1.0, 0.0, 0.0])


def test_a_copy_is_pulled_and_a_fresh_base_draw_is_not() -> None:
    rng = np.random.default_rng(0)
    reference, heldout = rng.normal(size=(5, 16)), rng.normal(size=(8, 16))
    base = rng.normal(size=(32, 16))
    copy = reference[np.arange(32) % 5]
    out = heldout_gap_metric(copy, reference, heldout, base)
    assert out.value > 0.5 and out.extra["gap_generated"] > out.extra["gap_base"] and out.n == 32
    values = [
        heldout_gap_metric(rng.normal(size=(32, 16)), reference, heldout, rng.normal(size=(32, 16))).value
        for _ in range(200)
    ]
    v = np.asarray(values)
    assert abs(v.mean()) < 4 * v.std(ddof=1) / np.sqrt(len(v)) and np.count_nonzero(v) == len(v)


def test_spec_reads_held_out_views_and_the_base_on_disjoint_seeds() -> None:
    spec = get_metric("heldout_gap@1")
    assert spec.refs == ("generated:clip", "reference:clip", "heldout:clip", "base_alt:clip")
    assert spec.role == "overfitting" and spec.headline is None


def test_the_candidate_views_are_the_same_draws_at_the_training_position() -> None:
    from benchmark.toy.heldout import heldout_views_at_training_position

    current = heldout_scenes(CONCEPT)
    moved = heldout_scenes(CONCEPT, at_training_position=True)
    assert all(s.position == "center" for s in moved)
    # everything but the position is the current views' (the position is still drawn, then not used)
    assert [s.__class__(**{**vars(s), "position": "center"}) for s in current] == moved
    assert len(heldout_views_at_training_position(CONCEPT, 16)) == 8


def test_the_current_views_did_not_move() -> None:
    # the scenes of toy-heldout@1 as the committed rows were made from them (pinned before the candidate
    # views were added): the first two views' background, position, size and jitter
    scenes = heldout_scenes(CONCEPT)
    assert [(s.background, s.position) for s in scenes[:2]] == [("sand", "top left"), ("snow", "bottom left")]
    assert scenes[0].seed == 1224600778 and scenes[0].size == pytest.approx(0.46762793771915206, abs=0)
