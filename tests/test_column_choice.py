"""The rule that chooses the toy headline's concept-specific measure (docs/DECISIONS.md, 2026-12-07)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from benchmark.toy.column_choice import CANDIDATES, TARGETS, analyse, choose, ladder_ok, render, score

CONCEPTS = ("a", "b")
LADDER = (25, 50, 100, 200, 400)


def _control(concept: str, control: str, value: float) -> dict[str, Any]:
    return {
        "label": f"control:{control}",
        "concept": concept,
        "metrics": {"m": value},
        "oracle": {"train_background": 0.0, "identity": 0.0},
    }


def _controls(ideal: float = 0.0, context: float = 0.9, base: float = 0.0) -> list[dict[str, Any]]:
    vals = {"ideal": ideal, "copy": 1.0, "context-only": context, "base": base}
    return [_control(c, k, v) for c in CONCEPTS for k, v in vals.items()]


def _runs(value, share, identity, tuned: int = 100) -> list[dict[str, Any]]:
    """Six methods × five rungs × two concepts; ``value``, ``share`` and ``identity`` map
    (method index, rung index, concept index) to numbers."""
    out = []
    for (mi, method), (ri, steps), (ci, concept) in itertools.product(
        enumerate(("dreambooth", "m1", "m2", "m3", "m4", "m5")), enumerate(LADDER), enumerate(CONCEPTS)
    ):
        out.append(
            {
                "label": f"{method} {steps / 100:g}×",
                "method": method,
                "steps": steps,
                "tuned": steps == tuned,
                "concept": concept,
                "metrics": {"m": float(value(mi, ri, ci))},
                "oracle": {
                    "train_background": float(share(mi, ri, ci)),
                    "identity": float(identity(mi, ri, ci)),
                },
            }
        )
    return out


def test_a_measure_that_is_the_share_meets_every_target_but_the_one_with_too_few_zero_share_runs() -> None:
    # share rises with the rung; identity independent of share (a different ordering by method)
    share = lambda m, r, c: 0.1 * r + 0.01 * m  # noqa: E731
    identity = lambda m, r, c: (m * 7 + r * 3 + c) % 5  # noqa: E731
    s = score(_controls() + _runs(share, share, identity), "m")
    assert s["values"]["agreement"]["no_endpoints"]["pooled"] == pytest.approx(1.0)
    assert s["values"]["agreement"]["no_endpoints"]["within"] == pytest.approx(1.0)
    assert s["met"]["partial_rho"] and s["values"]["partial_rho"] > 0.7
    # only rung 0 of method 0 has share exactly 0: 2 runs < 10, so not met
    assert s["values"]["identity_at_zero_share"]["n"] == 2
    assert not s["met"]["identity_at_zero_share"]
    assert s["met"]["ladder"]
    assert s["values"]["ladder"] == {"a": pytest.approx([0.2, 0.3, 0.4]), "b": pytest.approx([0.2, 0.3, 0.4])}
    assert s["score"] == 7 and set(s["met"]) == set(TARGETS)


def test_zero_share_runs_count_only_from_ten_and_identity_must_not_move_the_measure() -> None:
    # 3 of 5 rungs at share 0 for every method: 36 zero-share runs
    share = lambda m, r, c: max(0, r - 2) * 0.2  # noqa: E731
    identity = lambda m, r, c: r + m  # noqa: E731
    flat = lambda m, r, c: share(m, r, c) + (0.0 if r > 2 else 0.001 * ((m * 5 + c * 3) % 7))  # noqa: E731
    moving = lambda m, r, c: share(m, r, c) + (0.0 if r > 2 else 0.001 * identity(m, r, c))  # noqa: E731
    ok = score(_controls() + _runs(flat, share, identity), "m")
    bad = score(_controls() + _runs(moving, share, identity), "m")
    assert ok["values"]["identity_at_zero_share"]["n"] == 36
    assert abs(ok["values"]["identity_at_zero_share"]["rho"]) <= 0.2 and ok["met"]["identity_at_zero_share"]
    assert bad["values"]["identity_at_zero_share"]["rho"] > 0.9 and not bad["met"]["identity_at_zero_share"]


def test_control_targets_must_hold_on_both_concepts() -> None:
    runs = _controls()
    runs[0]["metrics"]["m"] = 0.5  # concept a's ideal at 0.5 × copy
    share = lambda m, r, c: r  # noqa: E731
    s = score(runs + _runs(share, share, share), "m")
    assert not s["met"]["ideal"] and s["met"]["context_only"] and s["met"]["base"]
    weak = score(_controls(context=0.6) + _runs(share, share, share), "m")
    assert not weak["met"]["context_only"]


def test_the_ladder_reads_from_the_tuned_rung_up_and_a_single_rung_is_non_decreasing() -> None:
    down = lambda m, r, c: -r  # noqa: E731
    runs = _runs(down, down, down, tuned=400)
    assert ladder_ok(runs, "m") == {"concepts": {"a": [-4.0], "b": [-4.0]}, "met": True}
    assert ladder_ok(_runs(down, down, down, tuned=100), "m")["met"] is False
    assert ladder_ok(_runs(down, down, down, tuned=999), "m")["met"] is False  # no tuned rung


def test_choice_takes_the_higher_score_and_a_tie_keeps_leakage() -> None:
    assert CANDIDATES == ("leakage", "heldout_gap")
    assert choose({"leakage": 4, "heldout_gap": 4}) == "leakage"
    assert choose({"leakage": 3, "heldout_gap": 5}) == "heldout_gap"
    assert choose({"leakage": 6, "heldout_gap": 5}) == "leakage"
    with pytest.raises(ValueError, match="no score for heldout_gap"):
        choose({"leakage": 1})


def noisy_evidence() -> list[dict]:
    """Controls and 60 tuning runs whose metric ``m`` is the training-background share (the rung) and
    whose identity is noise (a fixed seed)."""
    share = lambda m, r, c: r  # noqa: E731
    rng = np.random.default_rng(0)
    noise = {k: float(rng.normal()) for k in itertools.product(range(6), range(5), range(2))}
    return _controls() + _runs(share, share, lambda m, r, c: noise[(m, r, c)])


def test_analyse_and_render_name_the_choice_and_every_agreement_part() -> None:
    runs = noisy_evidence()
    for r in runs:
        r["metrics"] = {"leakage": r["metrics"]["m"], "heldout_gap": -r["metrics"]["m"]}
    result = analyse(runs)
    assert result["n_tuning_runs"] == 60
    assert result["scores"]["leakage"]["score"] > result["scores"]["heldout_gap"]["score"]
    assert result["chosen"] == "leakage"
    text = render(result)
    assert "Chosen: **`leakage@2`**" in text
    assert "exact zeros left out" in text and "with endpoints (controls)" in text
