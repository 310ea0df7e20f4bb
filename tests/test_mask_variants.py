"""The rule that chooses leakage's context and subject fidelity's crop (docs/DECISIONS.md, 2026-12-07)."""

from __future__ import annotations

import numpy as np

from benchmark.toy.mask_variants import (
    CURRENT_LEAKAGE,
    LEAKAGE_CANDIDATES,
    SUBJECT_CANDIDATES,
    choose,
    leakage_score,
    shrink,
    subject_score,
)


def test_the_candidates_are_the_rules_and_the_current_one_comes_first() -> None:
    assert LEAKAGE_CANDIDATES[0] == CURRENT_LEAKAGE and len(LEAKAGE_CANDIDATES) == 12
    assert len(set(LEAKAGE_CANDIDATES)) == 12
    assert [c.shrink for c in SUBJECT_CANDIDATES] == [0.0, 1 / 32, 1 / 16]


def test_scores_are_the_smallest_control_margin_over_concepts() -> None:
    good = {"ideal": 0.0, "copy": 1.0, "context-only": 0.9, "base": 0.05}
    bad_ideal = {"ideal": 0.3, "copy": 1.0, "context-only": 0.9, "base": 0.0}
    assert np.isclose(leakage_score({"a": good}), 0.05)  # min(0.9 - 0.7, 0.1 - 0, 0.1 - 0.05)
    assert np.isclose(leakage_score({"a": good, "b": bad_ideal}), -0.2)
    assert leakage_score({"a": {**good, "copy": 0.0}}) == -np.inf  # a copy at 0 meets nothing
    fid = {"ideal": 0.85, "copy": 1.0, "context-only": 0.3, "base": 0.3}
    # min(0.85 - 0.8, 0.3 + 0.1 * 0.7 - 0.3)
    assert np.isclose(subject_score({"a": fid}), 0.05)


def test_choice_adopts_only_a_positive_score_above_the_current_and_ties_go_to_the_smaller_change() -> None:
    order = ["current", "small", "large"]
    assert choose({"current": -0.1, "small": 0.2, "large": 0.2}, order) == {
        "best": "small",
        "current": "current",
        "adopt": True,
        "scores": {"current": -0.1, "small": 0.2, "large": 0.2},
    }
    assert not choose({"current": -0.3, "small": -0.1, "large": -0.2}, order)["adopt"]  # nothing meets all
    assert choose({"current": 0.2, "small": 0.2, "large": 0.1}, order)["best"] == "current"


def test_shrink_erodes_and_keeps_a_mask_that_would_vanish() -> None:
    masks = np.zeros((2, 16, 16), dtype=bool)
    masks[0, 4:12, 4:12] = True  # 8 x 8: one pixel off each side leaves 6 x 6
    masks[1, 7, 7] = True  # a single pixel would vanish: kept as it was
    out = shrink(masks, 1 / 16)
    assert out[0].sum() == 36 and out[0, 5:11, 5:11].all()
    assert np.array_equal(out[1], masks[1])
    assert shrink(masks, 0.0) is masks
