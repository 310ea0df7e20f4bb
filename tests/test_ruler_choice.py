"""The rule that decides whether a retrained SSL ruler replaces the shipped one (docs/DECISIONS.md,
2026-12-08)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark.settings import settings_for
from benchmark.toy.ruler_choice import CANDIDATE, SHIPPED, choose, main, ruler_score, with_dino


def _table(subject_ctx: float, leak_ideal: float) -> dict[str, dict[str, dict[str, float]]]:
    return {
        "subject_dino": {"a": {"ideal": 0.9, "copy": 1.0, "context-only": subject_ctx, "base": 0.3}},
        "leakage": {"a": {"ideal": leak_ideal, "copy": 1.0, "context-only": 0.9, "base": 0.0}},
    }


def test_a_rulers_score_is_the_smaller_of_the_two_control_scores() -> None:
    got = ruler_score(_table(subject_ctx=0.4, leak_ideal=0.0))
    # subject: min(0.9 - 0.8, 0.3 + 0.07 - 0.4) = -0.03; leakage: min(0.2, 0.1, 0.1) = 0.1
    assert np.isclose(got["subject_dino"], -0.03) and np.isclose(got["leakage"], 0.1)
    assert got["score"] == got["subject_dino"]
    worse_leak = ruler_score(_table(subject_ctx=0.3, leak_ideal=0.25))
    assert np.isclose(worse_leak["score"], -0.15)  # leakage's ideal margin 0.1 - 0.25


def test_the_candidate_replaces_the_shipped_ruler_only_with_a_strictly_higher_score() -> None:
    assert choose({SHIPPED: {"score": -0.03}, CANDIDATE: {"score": -0.02}}) == {
        "adopt": True,
        "winner": CANDIDATE,
    }
    assert choose({SHIPPED: {"score": -0.03}, CANDIDATE: {"score": -0.03}})["winner"] == SHIPPED
    assert choose({SHIPPED: {"score": 0.1}, CANDIDATE: {"score": 0.05}})["adopt"] is False


def test_only_the_dino_slot_changes() -> None:
    settings = settings_for("toy-tuning")
    swapped = with_dino(settings, "/some/ruler")
    assert swapped.extractor("dino").weights == "/some/ruler"
    assert swapped.extractor("dino").name == settings.extractor("dino").name
    assert swapped.extractor("clip") == settings.extractor("clip")
    assert swapped.replace(extractors=settings.extractors) == settings


def test_a_missing_candidate_is_one_clear_line(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--candidate", str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ruler_checkpoint.pt" in err and "train" in err


def test_the_candidates_training_summary_keeps_its_length_time_and_curve(tmp_path) -> None:
    from benchmark.toy.ruler_choice import training_summary

    assert training_summary(tmp_path) is None
    record = {
        "name": "toy-ssl",
        "steps_done": 3,
        "total_steps": 3,
        "wall_s": 1.5,
        "loss_curve": [[3, 0.5]],
        "pending": [0.1],
        "world": {"big": True},
    }
    (tmp_path / "training_record.json").write_text(json.dumps(record))
    got = training_summary(tmp_path)
    assert got == {
        "name": "toy-ssl",
        "steps_done": 3,
        "total_steps": 3,
        "wall_s": 1.5,
        "loss_curve": [[3, 0.5]],
    }
