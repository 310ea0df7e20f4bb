"""The rule that chooses heldout_gap's held-out views on the toy suite (docs/DECISIONS.md, 2026-12-08)."""

from __future__ import annotations

from benchmark.toy.column_choice import render
from benchmark.toy.heldout_choice import CANDIDATE, CURRENT, LOADERS, RULE, TITLE, analyse, choose
from tests.test_column_choice import noisy_evidence


def test_the_candidate_replaces_the_current_views_only_with_a_strictly_higher_score() -> None:
    assert list(LOADERS) == [CURRENT, CANDIDATE]
    assert choose({CURRENT: 5, CANDIDATE: 5}) == CURRENT
    assert choose({CURRENT: 5, CANDIDATE: 6}) == CANDIDATE
    assert choose({CURRENT: 5, CANDIDATE: 2}) == CURRENT
    assert LOADERS[CANDIDATE].endswith(":heldout_views_at_training_position")


def test_both_views_are_scored_by_the_column_rules_eight_targets_on_the_same_runs() -> None:
    runs = noisy_evidence()
    for r in runs:
        r["metrics"] = {CURRENT: -r["metrics"]["m"], CANDIDATE: r["metrics"]["m"]}
    result = analyse(runs)
    assert result["n_tuning_runs"] == 60
    assert result["scores"][CANDIDATE]["score"] > result["scores"][CURRENT]["score"]
    assert result["chosen"] == CANDIDATE
    text = render(result, "cmd", title=TITLE, rule=RULE)
    assert text.startswith(f"# {TITLE}") and RULE in text
    assert "(a tie keeps `heldout_gap, toy-heldout@1 views`)" in text


def test_render_only_rewrites_the_report_from_the_saved_result(tmp_path) -> None:
    import json

    from benchmark.toy.heldout_choice import main

    runs = noisy_evidence()
    for r in runs:
        r["metrics"] = {CURRENT: r["metrics"]["m"], CANDIDATE: r["metrics"]["m"]}
    (tmp_path / "heldout_choice.json").write_text(json.dumps({**analyse(runs), "runs": runs}))
    assert main(["--out", str(tmp_path), "--render"]) == 0
    text = (tmp_path / "heldout_choice.md").read_text()
    assert text.startswith(f"# {TITLE}") and "Chosen: **`heldout_gap, toy-heldout@1 views`**" in text
