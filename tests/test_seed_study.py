"""The training-seed study's variance components (issue 24, item 5): closed forms on small tables."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.toy.seed_study import components, table


def test_components_are_the_one_way_moments() -> None:
    got = components({"a": [1.0, 2.0], "b": [3.0, 5.0], "c": [0.0, 0.0]})
    seed = np.mean([0.5, 2.0, 0.0])
    concept = np.var([1.5, 4.0, 0.0], ddof=1) - seed / 2
    assert got["seed_var"] == pytest.approx(seed) and got["concept_var"] == pytest.approx(concept)
    assert got["seed_share"] == pytest.approx(seed / (seed + concept))
    same = components({"a": [1.0, 1.0], "b": [2.0, 2.0]})
    assert same["seed_var"] == 0.0 and same["seed_share"] == 0.0  # the seed changes nothing
    noise = components({"a": [0.0, 2.0], "b": [2.0, 0.0]})
    assert noise["concept_var"] == 0.0 and noise["seed_share"] == 1.0  # floored at 0: all seed


def _row(method: str, concept: str, metric: str, value: float, seed: int | None) -> dict:
    extra = {} if seed is None else {"fit_seed": seed}
    return {
        "method": method,
        "concept": concept,
        "metric": metric,
        "value": value,
        "rung": None,
        "extra": extra,
    }


def test_table_pairs_rows_by_seed_and_leaves_structural_zeros_out() -> None:
    rows = [
        _row("m", "a", "w2", 1.0, None),
        _row("m", "a", "w2", 2.0, 1),
        _row("m", "b", "w2", 3.0, 0),
        _row("m", "b", "w2", 5.0, 1),
        _row("ti", "a", "lfd", 0.0, None),
        _row("ti", "a", "lfd", 0.0, 1),
        _row("ti", "b", "lfd", 0.0, None),
        _row("ti", "b", "lfd", 0.0, 1),
        _row("base", "a", "w2", 9.0, None),  # not a trained method
    ]
    got = table(rows)
    assert set(got) == {"w2"}  # ti's LFD is zero by construction on both seeds
    assert got["w2"]["methods"]["m"] == components({"a": [1.0, 2.0], "b": [3.0, 5.0]})
    assert got["w2"]["pooled"]["methods"] == 1


def test_lfd_uncertainty_puts_the_three_errors_on_one_scale() -> None:
    from benchmark.toy.seed_study import lfd_uncertainty, render

    rows = [
        _row("m", "a", "lfd", 1.0, None),
        _row("m", "a", "lfd", 2.0, 1),
        _row("m", "b", "lfd", 3.0, 0),
        _row("m", "b", "lfd", 5.0, 1),
    ]
    second = [r for r in rows if r["extra"].get("fit_seed") == 1]
    second[0]["extra"].update(se=0.3, se_prompt=0.6)
    second[1]["extra"].update(se=0.4, se_prompt=0.8)
    result = table(rows)
    got = lfd_uncertainty(result, second)["lfd"]["m"]
    assert got["se"] == pytest.approx(np.sqrt((0.09 + 0.16) / 2))
    assert got["se_prompt"] == pytest.approx(np.sqrt((0.36 + 0.64) / 2))
    assert got["seed_sd"] == pytest.approx(np.sqrt(np.mean([0.5, 2.0])))  # (1-2)^2/2, (3-5)^2/2
    text = render(result, "cmd", {"lfd": {"m": got}})
    assert "prompt ⊕ seed" in text and "| lfd | m |" in text
