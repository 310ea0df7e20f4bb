"""The toy suite's headline levels: the rule in closed form, the profile's values reproduced from the
committed control rows (no method rows), and levels that change no row."""

from __future__ import annotations

import pytest

from benchmark.profile_schema import ProfileError, validate_profile
from benchmark.settings import settings_for
from benchmark.toy import levels as lv


def test_rule_closed_form() -> None:
    assert lv.levels_from_means(0.4, 0.8) == (0.5, 0.6, 0.7)
    assert lv.levels_from_means(0.2, 0.2) == (0.2, 0.2, 0.2)


def test_profile_levels_are_the_rule_on_the_committed_controls() -> None:
    rows = lv.read_rows(lv.VALIDITY_JSON)
    concepts = sorted({r["concept"] for r in rows if r["label"] == lv.IDEAL})
    assert len(concepts) == 8
    settings = settings_for("toy")
    assert settings.headline_levels == lv.levels_from_rows(rows, concepts)
    assert settings.headline_levels_rule == lv.RULE
    # only the two controls are read: dropping every method run changes nothing
    controls_only = [r for r in rows if r["label"] in (lv.BASE, lv.IDEAL)]
    assert lv.levels_from_rows(controls_only, concepts) == settings.headline_levels


def test_missing_control_is_one_clear_error() -> None:
    rows = [{"label": lv.BASE, "concept": "a", "metrics": {lv.FIDELITY: 0.3}}]
    with pytest.raises(lv.LevelsError, match="control:ideal has no subject_dino"):
        lv.levels_from_rows(rows, ["a"])


def test_levels_change_no_row() -> None:
    settings = settings_for("toy")
    assert settings.headline_levels
    assert settings.identity() == settings.replace(headline_levels=(), headline_levels_rule="").identity()


@pytest.mark.parametrize("bad", [[0.6, 0.5], [0.5, 0.5], ["x"], 0.5, [float("inf")]])
def test_schema_refuses_levels_out_of_order(bad: object) -> None:
    profile = {"model": "tiny", "extractors": {"clip": {"kind": "clip", "name": "x", "weights": None}},
               "resolution": 32, "steps": 2, "guidance": 1.0, "headline_levels": bad}  # fmt: skip
    with pytest.raises(ProfileError, match="headline_levels: expected a list of strictly increasing"):
        validate_profile(profile, "p")
