"""The LFD weighting study's pieces (issue 24, item 2): candidate values from per-timestep terms, the damage
drop and its standard error, and the rule fixed before the study ran."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmark.toy.lfd_weighting import (
    CURRENT,
    MARGIN,
    candidate_timesteps,
    candidate_value,
    candidates,
    choose,
    damage_prompts,
    drops,
    grids,
    weight,
)


def test_weights_are_the_closed_forms() -> None:
    abar = 0.8
    assert weight("eps", abar) == 1.0
    assert weight("score", abar) == pytest.approx(1 / 0.2)
    assert weight("snr", abar) == pytest.approx(0.8 / 0.2)
    assert weight("sigma2", abar) == pytest.approx(0.2)


def test_todays_candidate_is_lfd_at_its_ten_timesteps() -> None:
    """(eps, all, 10) is the plain mean of the ε-weighted terms on lfd@2's own grid."""
    grid = grids()
    assert grid[10] == [91, 182, 272, 363, 454, 545, 636, 727, 817, 908]
    rng = np.random.default_rng(0)
    per_t = {t: float(rng.random()) for ts in grid.values() for t in ts}
    alphas = np.linspace(0.999, 0.001, 1000)
    assert candidate_value(per_t, alphas, CURRENT, grid) == pytest.approx(
        np.mean([per_t[t] for t in grid[10]])
    )
    high = candidate_value(per_t, alphas, ("score", "high", 5), grid)
    ts = candidate_timesteps("high", 5, grid)
    assert ts == [500, 666, 832]
    assert high == pytest.approx(np.mean([per_t[t] / (1 - alphas[t]) for t in ts]))
    assert len(candidates()) == 36 and candidates().index(CURRENT) < len(candidates())


def test_drop_and_its_standard_error_take_the_prompt_as_the_unit() -> None:
    # 3 prompts x 2 seeds, 4 attributes (NaN where the caption does not name one)
    base = np.array([[1, 1, 1, np.nan]] * 6, dtype=float)
    run = base.copy()
    run[0, 0] = 0.0  # prompt 0, seed 0 loses its shape: pooled 2/3 for that image
    run[4, :3] = 0.0  # prompt 2, seed 0 loses everything
    got = drops(base, run, n_prompts=3)
    per_prompt = np.array([(1 / 3) / 2, 0.0, 1.0 / 2])
    assert got["drop"] == pytest.approx(per_prompt.mean())
    assert got["drop_se"] == pytest.approx(per_prompt.std(ddof=1) / math.sqrt(3))
    assert got["drop_shape"] == pytest.approx(2 / 6) and got["drop_colour"] == pytest.approx(1 / 6)


def test_the_rule_keeps_todays_weighting_unless_the_best_clears_the_margin() -> None:
    def table(best_pooled: float, best_within: float) -> dict:
        out = {c: {"pooled": 0.1, "within": 0.1} for c in candidates()}
        out[CURRENT] = {"pooled": 0.5, "within": 0.5}
        out[("sigma2", "high", 10)] = {"pooled": best_pooled, "within": best_within}
        return out

    assert choose(table(0.5 + MARGIN, 0.5))["switch"] is True
    assert choose(table(0.5 + MARGIN, 0.5))["ships"] == ["sigma2", "high", 10]
    assert choose(table(0.59, 0.9))["ships"] == list(CURRENT)  # below the margin
    assert choose(table(0.9, 0.4))["ships"] == list(CURRENT)  # worse within concept
    tied = table(0.9, 0.9)
    tied[("sigma2", "high", 5)] = {"pooled": 0.9, "within": 0.9}
    assert choose(tied)["best"] == ["sigma2", "high", 5]  # ties go to fewer timesteps


def test_damage_prompts_never_name_the_concepts_shape() -> None:
    prompts = damage_prompts("heart")
    assert len(prompts) == len(set(prompts)) == 48
    assert not any("heart" in p for p in prompts)
    assert prompts == damage_prompts("heart")  # a fixed draw


def test_the_validity_study_reads_drops_and_their_power_from_the_damage_readout() -> None:
    from benchmark.toy.damage import drop_se, readout
    from benchmark.toy.validity_report import _oracle_reader, damage_power

    table = np.array(
        [[1, 1, np.nan, 1], [1, 0, np.nan, 1], [0, 0, np.nan, 0], [1, 1, np.nan, 1]], dtype=float
    )
    got = readout(table, n_prompts=2)
    assert got["nonconcept_acc"] == pytest.approx(np.mean([1, 2 / 3, 0, 1]))
    assert got["nonconcept_per_prompt"] == pytest.approx([(1 + 2 / 3) / 2, 0.5])
    assert got["nonconcept_colour_acc"] == pytest.approx(0.5) and math.isnan(got["nonconcept_background_acc"])
    base = {"label": "base", "concept": "c", "oracle": {"nonconcept_acc": 0.9, "nonconcept_shape_acc": 1.0}}
    base["oracle"]["nonconcept_per_prompt"] = [0.9, 0.9, 0.9]
    runs = [base]
    for label, per_prompt in (("a", [0.8, 0.9, 0.7]), ("b", [0.5, 0.4, 0.6])):
        oracle = {"nonconcept_acc": float(np.mean(per_prompt)), "nonconcept_shape_acc": 0.5}
        runs.append(
            {"label": label, "concept": "c", "oracle": {**oracle, "nonconcept_per_prompt": per_prompt}}
        )
    assert _oracle_reader(runs, "nonconcept_drop")(runs[2]) == pytest.approx(0.9 - 0.5)
    assert _oracle_reader(runs, "nonconcept_drop_shape")(runs[1]) == pytest.approx(0.5)
    power = damage_power(runs, ["base", "a", "b"])
    ses = [drop_se([0.9] * 3, [0.8, 0.9, 0.7]), drop_se([0.9] * 3, [0.5, 0.4, 0.6])]
    assert power["median_se"] == pytest.approx(np.median(ses)) and power["n_methods"] == 2
    assert power["spread_methods_sd"] == pytest.approx(np.std([0.1, 0.4], ddof=1))
    assert power["met"] is bool(np.median(ses) < power["spread_methods_sd"] / 4)
