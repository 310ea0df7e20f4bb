"""Every headline cell of the committed toy board reproduced from the measured rung rows alone.

An independent re-reading of ``leaderboard/results/toy.jsonl`` and ``toy-rungs.jsonl``: per method and
measured rung, the mean over concepts of ``subject_dino`` and of each headline measure; at each of the
profile's levels, the first pair of consecutive measured rungs whose fidelity brackets the level, linear
between them. The base model's rows never enter a cell."""

from __future__ import annotations

import json
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

import pytest

from benchmark.settings import settings_for
from leaderboard import build_leaderboard, read_rows
from leaderboard.trajectory import BEFORE_FIRST, NOT_REACHED, READ, overfitting_metrics

RESULTS = Path(__file__).resolve().parents[1] / "leaderboard" / "results"
FILES = [RESULTS / "toy.jsonl", RESULTS / "toy-rungs.jsonl"]


def _means() -> dict[tuple[str, str], dict[float, float]]:
    """(method, metric) -> {rung: mean over concepts}, trained rows only (rung not null)."""
    sums: dict[tuple[str, str, float], list[float]] = defaultdict(list)
    for path in FILES:
        for line in path.read_text().splitlines():
            r = json.loads(line)
            if r["rung"] is not None and r["suite"] == "toy":
                sums[(r["method"], r["metric"], float(r["rung"]))].append(float(r["value"]))
    out: dict[tuple[str, str], dict[float, float]] = defaultdict(dict)
    for (method, metric, rung), values in sums.items():
        out[(method, metric)][rung] = sum(values) / len(values)
    return out


def _read(fid: dict[float, float], val: dict[float, float], level: float) -> tuple[float | None, str]:
    rungs = sorted(r for r in fid if r in val)
    if fid[rungs[0]] >= level:
        return (val[rungs[0]], READ) if fid[rungs[0]] == level else (None, BEFORE_FIRST)
    for a, b in pairwise(rungs):
        if fid[b] >= level:
            return val[a] + (val[b] - val[a]) * (level - fid[a]) / (fid[b] - fid[a]), READ
    return None, NOT_REACHED


def test_every_headline_cell_is_read_between_two_measured_rungs() -> None:
    settings = settings_for("toy")
    board = build_leaderboard(
        read_rows(FILES),
        fidelity_levels={"toy": settings.headline_levels},
        leads={"toy": (settings.headline_specific, settings.headline_specific_rule)},
    )
    (headline,) = [h for h in board.headlines if h is not None and h.suite == "toy"]
    assert headline.levels == settings.headline_levels and len(headline.levels) == 3
    # the profile's concept-specific measure heads the columns; every registry headline measure follows
    assert (
        headline.shown()
        == (settings.headline_specific, *overfitting_metrics())
        == overfitting_metrics(settings.headline_specific)
    )
    means = _means()
    trained = {m for (m, metric) in means if metric == "subject_dino"}
    assert {t.method for t in headline.trajectories} == trained
    cells: dict[str, int] = defaultdict(int)
    for t in headline.trajectories:
        assert len(means[(t.method, "subject_dino")]) >= 4  # at least four measured rungs per method
        for metric in headline.shown():
            if metric not in t.metrics:
                continue
            for level, cell in zip(headline.levels, headline.matched[t.method][metric], strict=True):
                value, status = _read(means[(t.method, "subject_dino")], means[(t.method, metric)], level)
                assert cell.status == status, (t.method, metric, level)
                if value is not None:
                    assert cell.value == pytest.approx(value, rel=1e-12, abs=1e-15), (t.method, metric, level)
                    cells[metric] += 1
    assert cells[settings.headline_specific] > 0 and sum(cells.values()) > cells[settings.headline_specific]
