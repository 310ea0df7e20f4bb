"""Rank agreement read every way: pooled / within concept, endpoints and structural zeros apart."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from benchmark.toy.agreement import (
    agreement_row,
    control_table,
    fidelity_targets,
    is_endpoint,
    partial_spearman,
    spearman,
)


def test_partial_spearman_matches_the_closed_form_on_rank_correlations() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=200)
    x = z + rng.normal(size=200)
    y = 0.5 * z + rng.normal(size=200)
    rxy, rxz, ryz = (spearmanr(a, b).statistic for a, b in ((x, y), (x, z), (y, z)))
    expected = (rxy - rxz * ryz) / math.sqrt((1 - rxz**2) * (1 - ryz**2))
    assert partial_spearman(list(x), list(y), list(z)) == pytest.approx(expected, abs=1e-12)


def test_partial_spearman_removes_a_shared_cause() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(size=400)
    x, y = z + 0.3 * rng.normal(size=400), z + 0.3 * rng.normal(size=400)
    assert spearman(list(x), list(y)) > 0.8
    assert abs(partial_spearman(list(x), list(y), list(z))) < 0.15


def test_spearman_is_nan_for_too_few_pairs_or_a_constant_side() -> None:
    assert math.isnan(spearman([1.0, 2.0], [1.0, 2.0]))
    assert math.isnan(spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert spearman([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) == pytest.approx(-1.0)


def _run(label: str, concept: str, m: float, o: float) -> dict[str, object]:
    return {"label": label, "concept": concept, "metrics": {"m": m}, "oracle": {"o": o}}


def test_agreement_row_reads_endpoints_and_structural_zeros_apart() -> None:
    runs = []
    for c in ("a", "b"):
        runs.append(_run("base", c, 0.0, 0.0))
        runs.append(_run("copy", c, 9.0, 1.0))
        runs.append(_run("control:ideal", c, 8.0, 1.0))
        runs += [
            _run("ti", c, 0.0, 0.3),
            _run("db", c, 2.0, 0.2),
            _run("lora", c, 3.0, 0.5),
            _run("oft", c, 4.0, 0.4),
        ]
    row = agreement_row(runs, "m", lambda r: r["oracle"]["o"])
    assert row["all"]["n"] == 14
    assert row["no_endpoints"]["n"] == 8
    assert row["zeros"] == 2
    kept = row["no_endpoints_no_zeros"]
    assert kept["n"] == 6
    assert kept["pooled"] == pytest.approx(spearmanr([2, 3, 4] * 2, [0.2, 0.5, 0.4] * 2).statistic)
    assert kept["within"] == pytest.approx(0.5)
    assert kept["concepts"] == 2
    assert is_endpoint("control:context-only") and not is_endpoint("dreambooth ×3")


def test_control_table_and_fidelity_targets() -> None:
    runs = []
    values = {
        "x": {"ideal": 0.85, "copy": 1.0, "context-only": 0.51, "base": 0.5},  # both met
        "y": {"ideal": 0.7, "copy": 1.0, "context-only": 0.7, "base": 0.5},  # neither
    }
    for concept, v in values.items():
        runs += [_run(f"control:{k}", concept, val, 0.0) for k, val in v.items()]
    runs.append(_run("dreambooth", "x", 0.4, 0.0))
    table = control_table(runs, ["m", "absent"])
    assert table == {"m": values}
    verdict = fidelity_targets(table["m"])
    assert verdict == {"concepts": 2, "ideal_ok": ["x"], "context_ok": ["x"], "both_ok": ["x"]}


def test_collapse_targets_read_each_control_against_the_copy() -> None:
    from benchmark.toy.agreement import collapse_targets

    table = {
        "x": {"ideal": 0.05, "copy": 1.0, "context-only": 0.8, "base": 0.0},  # all three met
        "y": {"ideal": 0.2, "copy": 1.0, "context-only": 0.6, "base": 0.1},  # base only (0.1 ≤ 0.1)
        "z": {"ideal": 0.0, "copy": -0.1, "context-only": 0.5, "base": 0.0},  # a copy ≤ 0 meets nothing
        "w": {"ideal": 0.0, "copy": 1.0},  # incomplete: left out
    }
    got = collapse_targets(table)
    assert got == {
        "concepts": 3,
        "context_ok": ["x"],
        "ideal_ok": ["x"],
        "base_ok": ["x", "y"],
        "all_ok": ["x"],
    }
