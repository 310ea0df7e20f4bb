"""Leaderboard: row validation, the summary table's cluster-t intervals, grouping, rendering and determinism
(the bootstrap tests cover the public ``bootstrap_mean_ci``, which the page no longer uses)."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmark.cli import main
from leaderboard import (
    RowError,
    bootstrap_mean_ci,
    build_leaderboard,
    parse_scale_options,
    read_rows,
    write_leaderboard,
)
from leaderboard.demo import demo_rows, write_demo_rows
from leaderboard.render_csv import render_csv
from leaderboard.render_html import render_html
from leaderboard.render_md import render_markdown
from leaderboard.rows import parse_row
from metrics.spec import METRICS

# Few resamples keep the bootstrap tests fast; determinism and the properties do not depend on the count.
FAST = 2000


def row(**overrides: Any) -> dict[str, Any]:
    base = {
        "suite": "toy",
        "suite_version": 1,
        "method": "dreambooth",
        "method_version": 1,
        "concept": "c0",
        "metric": "clip_t",
        "metric_version": METRICS["clip_t"].version,
        "value": 0.3,
        "n": 10,
        "backbone": "tiny-clip",
        "config_hash": "h0",
        "created_at": "2026-11-27T10:00:00+00:00",
        "package_version": "0.1.0",
        "git_rev": "abc",
        "extra": {},
    }
    base.update(overrides)
    return base


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# --- bootstrap -----------------------------------------------------------------------------------


def test_bootstrap_contains_mean_and_is_ordered() -> None:
    rng = np.random.default_rng(1)
    for trial in range(20):
        values = rng.normal(0.5, 0.1, size=int(rng.integers(2, 40))).tolist()
        ci = bootstrap_mean_ci(values, resamples=FAST, seed=trial)
        assert ci.low <= ci.mean <= ci.high
        assert ci.mean == pytest.approx(float(np.mean(values)), abs=1e-15)
        assert min(values) <= ci.low and ci.high <= max(values)


def test_bootstrap_degenerate_when_all_equal_or_single() -> None:
    ci = bootstrap_mean_ci([0.1] * 30)
    assert (ci.mean, ci.low, ci.high) == (0.1, 0.1, 0.1)
    one = bootstrap_mean_ci([0.8123])
    assert (one.mean, one.low, one.high) == (0.8123, 0.8123, 0.8123)


def test_bootstrap_deterministic_and_order_invariant() -> None:
    values = [0.2, 0.5, 0.9, 0.4, 0.3, 0.75]
    a = bootstrap_mean_ci(values, resamples=FAST, seed=7)
    shuffled = values[:]
    random.Random(3).shuffle(shuffled)
    assert bootstrap_mean_ci(values, resamples=FAST, seed=7) == a
    assert bootstrap_mean_ci(shuffled, resamples=FAST, seed=7) == a
    assert bootstrap_mean_ci(values, resamples=FAST, seed=8) != a


def test_bootstrap_width_matches_normal_theory() -> None:
    # For n = 200 draws the percentile interval is close to mean ± 1.96·s/√n.
    values = np.random.default_rng(0).normal(0.0, 1.0, size=200)
    ci = bootstrap_mean_ci(values.tolist(), resamples=10_000)
    expected = 2 * 1.96 * values.std(ddof=1) / np.sqrt(values.size)
    assert ci.high - ci.low == pytest.approx(expected, rel=0.1)


@pytest.mark.parametrize(
    ("values", "kwargs", "message"),
    [([], {}, "no values"), ([1.0, float("nan")], {}, "finite"), ([1.0], {"level": 1.0}, "level")],
)
def test_bootstrap_rejects_bad_input(values: list[float], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bootstrap_mean_ci(values, **kwargs)


# --- row validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"res\.jsonl:2: not valid JSON"),
        (
            json.dumps(row(value=float("nan"))),
            r"res\.jsonl:2: field 'value': expected a finite number, got nan",
        ),
        (json.dumps(row(value="0.3")), r"res\.jsonl:2: field 'value'"),
        (json.dumps(row(metric="clipt")), r"res\.jsonl:2: field 'metric': unknown metric 'clipt'"),
        (
            json.dumps({k: v for k, v in row().items() if k != "concept"}),
            r"res\.jsonl:2: missing field\(s\) 'concept'",
        ),
        (json.dumps(row(metric_version="1")), r"res\.jsonl:2: field 'metric_version'"),
        (json.dumps(row(n=0)), r"res\.jsonl:2: field 'n'"),
        (json.dumps(row(created_at="yesterday")), r"res\.jsonl:2: field 'created_at'"),
        (json.dumps(row(extra=[1])), r"res\.jsonl:2: field 'extra'"),
        ("[1, 2]", r"res\.jsonl:2: expected a JSON object"),
        (json.dumps(row(config_hash="h1")), r"res\.jsonl:2: duplicate row .* first seen at .*res\.jsonl:1"),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "res.jsonl"
    path.write_text(json.dumps(row()) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(RowError, match=message):
        read_rows([path])


def test_duplicates_across_files_and_missing_paths(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [row(), row(method="real", metric="clip_i", value=0.9)])
    b = write_jsonl(tmp_path / "b.jsonl", [row(method="real", metric="clip_i", value=0.9)])
    # the same reference row in two runs' files merges into one ...
    assert [(r.method, r.source) for r in read_rows([a, b])] == [
        ("dreambooth", f"{a}:1"),
        ("real", f"{a}:2"),
    ]
    # ... a row that differs is an error naming both files
    c = write_jsonl(tmp_path / "c.jsonl", [row(value=0.31)])
    with pytest.raises(
        RowError, match=r"c\.jsonl:1: row .* differs from the one in .*a\.jsonl:1 \(value 0\.3 vs 0\.31"
    ):
        read_rows([a, c])
    with pytest.raises(RowError, match="no such results file"):
        read_rows([tmp_path / "nope.jsonl"])


def test_reference_rows_merge_within_the_fixed_tolerance_keeping_the_committed_copy(tmp_path: Path) -> None:
    """Two machines' `real`/`base` rows differ in the last digits: one row, the committed copy kept; a
    trained row or a reference row beyond the tolerance still fails."""
    from leaderboard.check import make_tolerances

    tol_path = tmp_path / "tol.json"
    tol_path.write_text(json.dumps({"suites": {"toy": {"fixed": {"rtol": 1e-6}, "trained": {"rtol": 0.5}}}}))
    tol = make_tolerances(tol_path)
    ref = {"method": "real", "metric": "clip_i", "rung": None}
    mine = write_jsonl(tmp_path / "mine.jsonl", [row(**ref, value=0.9999997582151383)])
    other = write_jsonl(tmp_path / "other.jsonl", [row(**ref, value=0.9999997582150371)])
    got = read_rows([mine, other], tol)
    assert [(r.method, r.value) for r in got] == [("real", 0.9999997582151383)]  # first kept: none committed
    far = write_jsonl(tmp_path / "far.jsonl", [row(**ref, value=0.99)])
    with pytest.raises(RowError, match="differs from the one in"):
        read_rows([mine, far], tol)
    trained_a = write_jsonl(tmp_path / "ta.jsonl", [row(value=0.3)])
    trained_b = write_jsonl(tmp_path / "tb.jsonl", [row(value=0.3 + 1e-12)])
    with pytest.raises(RowError, match="differs from the one in"):
        read_rows([trained_a, trained_b], tol)  # trained rows: exact, however wide the trained tier


def test_committed_copy_is_kept_on_merge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import leaderboard.check as check

    monkeypatch.setattr(check, "COMMITTED_RESULTS", (tmp_path / "results").resolve())
    (tmp_path / "results").mkdir()
    tol_path = tmp_path / "tol.json"
    tol_path.write_text(json.dumps({"suites": {"toy": {"fixed": {"rtol": 1e-6}, "trained": {"rtol": 0.5}}}}))
    ref = {"method": "real", "metric": "clip_i", "rung": None}
    mine = write_jsonl(tmp_path / "mine.jsonl", [row(**ref, value=0.9999997582151383)])
    kept = write_jsonl(tmp_path / "results" / "toy.jsonl", [row(**ref, value=0.9999997582150371)])
    (got,) = read_rows([mine, kept], check.make_tolerances(tol_path))
    assert got.value == 0.9999997582150371 and got.source == f"{kept}:1"


def test_valid_row_round_trip_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "res.jsonl"
    path.write_text("\n" + json.dumps(row(git_rev=None, backbone=None)) + "\n\n", encoding="utf-8")
    (got,) = read_rows([tmp_path])  # a directory stands for its *.jsonl files
    assert got.metric_id == "clip_t@1"
    assert got.git_rev is None and got.backbone is None
    assert got.source.endswith("res.jsonl:2")
    # Equality ignores where a row was read from.
    assert parse_row(row(git_rev=None, backbone=None), "elsewhere:9") == got


# --- grouping ------------------------------------------------------------------------------------


def parsed(rows: list[dict[str, Any]]) -> list[Any]:
    return [parse_row(r, f"mem:{i}") for i, r in enumerate(rows, 1)]


def test_versions_are_never_averaged_together() -> None:
    rows = [row(concept=f"c{i}", value=0.2) for i in range(3)]
    rows += [row(concept=f"c{i}", value=0.8, metric_version=2) for i in range(3)]
    rows += [row(concept=f"c{i}", value=0.5, suite_version=2) for i in range(3)]
    board = build_leaderboard(parsed(rows))
    assert [s.label for s in board.sections] == ["toy@1", "toy@2"]
    v1 = board.sections[0]
    assert [g.metric_id for g in v1.groups] == ["clip_t@1", "clip_t@2"]
    means = [g.stats[0].interval.mean for g in v1.groups]
    assert means == [pytest.approx(0.2), pytest.approx(0.8)]
    assert board.sections[1].groups[0].stats[0].interval.mean == pytest.approx(0.5)
    assert not v1.groups[1].definition_known  # clip_t@2 is not defined by this package
    md = render_markdown(board)
    assert "toy@1" in md and "toy@2" in md and "never averaged together" in md
    assert "This package defines clip_t@1, not clip_t@2" in md


def test_backbones_and_method_versions_are_separate() -> None:
    rows = [row(concept="c0", value=0.2), row(concept="c0", value=0.6, backbone="other")]
    rows += [row(concept="c0", value=0.4, method_version=2)]
    board = build_leaderboard(parsed(rows))
    (section,) = board.sections
    assert [(g.metric_id, g.backbone) for g in section.groups] == [
        ("clip_t@1", "other"),
        ("clip_t@1", "tiny-clip"),
    ]
    assert [k.label for k in section.methods] == ["dreambooth@1", "dreambooth@2"]
    assert "clip_t@1 [other] ↑ (raw)" in render_markdown(board)


def test_missing_concepts_flagged_and_references_last() -> None:
    rows = [row(method=m, concept=c, value=0.3) for m in ("zeta", "alpha", "base") for c in ("a", "b", "c")]
    rows = [r for r in rows if not (r["method"] == "zeta" and r["concept"] == "b")]
    rows += [row(method="real", metric="dino", concept=c, value=0.7, backbone="tiny-dino") for c in "abc"]
    board = build_leaderboard(parsed(rows))
    (section,) = board.sections
    assert [k.method for k in section.methods] == ["alpha", "zeta", "base", "real"]
    stat = section.groups[0].stat_for(section.methods[1])
    assert stat is not None and stat.missing == ("b",) and stat.n_concepts == 2
    md = render_markdown(board)
    assert "zeta@1, clip_t@1: 2/3 concepts (missing: b)" in md
    assert "real@1 has no rows for clip_t@1" in md
    assert "| zeta | 1 | 2/3 |" in md


def test_arrows_and_definitions_come_from_spec() -> None:
    rows = [row(metric=m, metric_version=s.version, backbone="bb", value=0.1) for m, s in METRICS.items()]
    board = build_leaderboard(parsed(rows))
    md = render_markdown(board)
    html = render_html(board)
    for spec in METRICS.values():
        if (
            spec.role == "grader"
        ):  # the oracle grades the metrics: never on the page, only said to be left off
            assert spec.definition.split(";")[0][:40] not in md and f'data-metric="{spec.id}"' not in html
            assert f"rows of {spec.key} (a synthetic suite's ground truth, the oracle) are left off" in md
            continue
        assert spec.definition.split(";")[0][:40] in md
        if spec.key == "w2_floor":  # no column of its own: the base row's W2 cell and its own table show it
            assert f"{spec.id} {spec.arrow} — {spec.name}" in md
            continue
        assert f"{spec.id} {spec.arrow} (raw)" in md
        assert f'data-metric="{spec.id}"' in html


def test_display_scale_is_printed_and_applied() -> None:
    rows = [row(concept=c, value=v) for c, v in (("a", 0.30), ("b", 0.32))]
    rows += [row(metric="lfd", concept="a", value=0.01, backbone="sd")]
    scales = parse_scale_options(["clip_t,clip_i,dino=x100"])
    board = build_leaderboard(parsed(rows), scales=scales)
    md = render_markdown(board)
    assert "clip_t@1 ↑ (×100)" in md and "lfd@1 ↓ (raw)" in md
    assert "| 31.0 (n too small) |" in md  # two concepts: the mean, no interval
    # CSV stays in stored units whatever the display scale.
    (line,) = [r for r in csv.DictReader(io.StringIO(render_csv(board))) if r["metric"] == "clip_t"]
    assert float(line["mean"]) == pytest.approx(0.31)
    with pytest.raises(ValueError, match="unknown metric 'clipt'"):
        parse_scale_options(["clipt=x100"])
    with pytest.raises(ValueError, match="unknown scale"):
        parse_scale_options(["clip_t=x1000"])
    with pytest.raises(ValueError, match="KEYS=SCALE"):
        parse_scale_options(["x100"])


def test_output_independent_of_row_and_file_order(tmp_path: Path) -> None:
    rows = demo_rows()
    shuffled = rows[:]
    random.Random(0).shuffle(shuffled)
    a = write_jsonl(tmp_path / "a.jsonl", rows)
    b1 = write_jsonl(tmp_path / "b1.jsonl", shuffled[: len(rows) // 2])
    b2 = write_jsonl(tmp_path / "b2.jsonl", shuffled[len(rows) // 2 :])
    board_a = build_leaderboard(read_rows([a]))
    board_b = build_leaderboard(read_rows([b2, b1]))
    assert render_markdown(board_a) == render_markdown(board_b)
    assert render_csv(board_a) == render_csv(board_b)
    assert render_html(board_a) == render_html(board_b)


def test_csv_matches_aggregates() -> None:
    rows = [row(concept=f"c{i}", value=0.1 * i) for i in range(1, 6)]
    board = build_leaderboard(parsed(rows))
    (line,) = list(csv.DictReader(io.StringIO(render_csv(board))))
    assert float(line["mean"]) == pytest.approx(0.3)
    assert float(line["ci_low"]) < 0.3 < float(line["ci_high"])
    assert (line["n_concepts"], line["higher_is_better"], line["metric_id"]) == ("5", "true", "clip_t@1")


def _floor_rows(pairs: dict[str, float]) -> list[dict[str, Any]]:
    """The base model's W2 floor per concept: concepts with the same floor share base images (a cluster)."""
    spec = METRICS["w2_floor"]
    return [
        row(
            method="base",
            metric="w2_floor",
            metric_version=spec.version,
            concept=c,
            value=v,
            backbone="tiny-clip",
        )
        for c, v in pairs.items()
    ]


def test_summary_interval_is_the_t_interval_on_cluster_means() -> None:
    from scipy.stats import ttest_1samp

    values = [0.31, 0.35, 0.22, 0.28, 0.40, 0.47, 0.12, 0.19]
    concepts = [f"c{i}" for i in range(8)]
    floors = {c: 0.5 + i // 2 for i, c in enumerate(concepts)}  # 4 pairs share their base images
    rows = [row(concept=c, value=v) for c, v in zip(concepts, values, strict=True)] + _floor_rows(floors)
    stat = build_leaderboard(parsed(rows)).sections[0].groups_for("clip_t")[0].stats[0]
    pair_means = np.array(values).reshape(4, 2).mean(axis=1)
    ref = ttest_1samp(pair_means, 0.0).confidence_interval(0.95)  # t with 3 df on the 4 cluster means
    assert (stat.interval.clusters, stat.interval.too_few) == (4, False)
    assert stat.interval.mean == pytest.approx(np.mean(values), abs=1e-15)
    assert (stat.interval.low, stat.interval.high) == pytest.approx((ref.low, ref.high), rel=1e-12)
    # without the base rows every concept is its own unit: 7 degrees of freedom, a narrower interval
    alone = build_leaderboard(parsed(rows[:8])).sections[0].groups[0].stats[0].interval
    ref8 = ttest_1samp(values, 0.0).confidence_interval(0.95)
    assert alone.clusters == 8 and (alone.low, alone.high) == pytest.approx((ref8.low, ref8.high), rel=1e-12)
    assert alone.high - alone.low < stat.interval.high - stat.interval.low


def test_fewer_than_five_concepts_print_the_mean_and_n_too_small() -> None:
    rows = [row(concept=f"c{i}", value=0.1 * i) for i in range(1, 5)]
    board = build_leaderboard(parsed(rows))
    (line,) = list(csv.DictReader(io.StringIO(render_csv(board))))
    assert float(line["mean"]) == pytest.approx(0.25)
    assert (line["ci_low"], line["ci_high"], line["n_clusters"]) == ("", "", "4")
    assert "| 0.250 (n too small) |" in render_markdown(board)
    html = render_html(board)
    assert "n too small" in html and '<span class="ci">' not in html


def test_no_whisker_or_interval_text_where_there_is_no_interval() -> None:
    rows = demo_rows()
    four = set(sorted({r["concept"] for r in rows})[:4])
    few = render_html(build_leaderboard(parsed([r for r in rows if r["concept"] in four])))
    assert "<svg" in few and 'class="ci"' not in few  # scatter plots drawn, no whisker, no bracket
    assert re.search(r"<title>[^<]*: subject_dino@1 [0-9.]+ \(n too small\), lfd@2 ", few)
    cells = re.findall(r"<td[^>]*>.*?</td>", few, flags=re.S)
    assert any("n too small" in c for c in cells)
    assert all(c.count("n too small") <= 1 for c in cells)  # said once per cell
    full = render_html(build_leaderboard(parsed(rows)))
    assert full.count('class="ci"') > 0  # 8 concepts: whiskers and brackets are back
    smoke = Path(__file__).resolve().parents[1] / "leaderboard" / "results" / "smoke.jsonl"
    page = render_html(build_leaderboard(read_rows([smoke])))  # 2 concepts, W2's floor and its test
    cells = re.findall(r"<td[^>]*>.*?</td>", page, flags=re.S)
    assert all(c.count("n too small") <= 1 for c in cells)
    assert any(
        re.fullmatch(
            r"<td[^>]*>floor [0-9.]+ \(n too small\)<span class=\"unranked-note\">[^<]*</span></td>", c
        )
        for c in cells
    )


def test_html_is_self_contained_with_table_and_plots() -> None:
    board = build_leaderboard(parsed(demo_rows()))
    html = render_html(board)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "url(" not in html and "<link" not in html
    assert html.count('<svg class="plot"') == 2
    # overfitting is plotted against fidelity (no LFD-vs-W2 map, where a method that learned nothing looks best)
    assert 'data-plot="agnostic-vs-fidelity" data-x="subject_dino@1" data-y="lfd@2"' in html
    assert "overfitting-map" not in html
    assert 'data-plot="fidelity" data-x="subject_dino@1" data-y="clip_t@1"' in html
    assert html.count("<tr data-method=") == 5 and html.count('<tr class="reference" data-method=') == 2
    assert "latest row created_at 2026-11-27T16:00:00+00:00" in html


def test_html_escapes_row_strings() -> None:
    rows = [row(method="<script>alert(1)</script>")]
    html = render_html(build_leaderboard(parsed(rows)))
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_markdown_escapes_pipes() -> None:
    md = render_markdown(build_leaderboard(parsed([row(method="a|b")])))
    assert "| a\\|b | 1 |" in md


# --- command line --------------------------------------------------------------------------------


def test_cli_regenerates_byte_identical(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = write_demo_rows(tmp_path / "results.jsonl")
    for out in ("one", "two"):
        assert main(["leaderboard", str(results), "--out", str(tmp_path / out)]) == 0
    assert "359 rows" in capsys.readouterr().out
    for name in ("LEADERBOARD.md", "leaderboard.csv", "index.html"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert not list((tmp_path / "one").glob("*.tmp"))


def test_cli_reports_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", [row(), row(concept="c1", value=float("inf"))])
    assert main(["leaderboard", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl:2: field 'value': expected a finite number, got inf" in err
    assert not (tmp_path / "out").exists()


def test_write_leaderboard_returns_paths(tmp_path: Path) -> None:
    board = build_leaderboard(parsed([row()]))
    paths = write_leaderboard(board, tmp_path / "deep" / "out")
    assert [p.name for p in paths] == ["LEADERBOARD.md", "leaderboard.csv", "index.html", "paired.csv"]
    assert all(p.stat().st_size > 0 for p in paths)


def test_leaderboard_imports_no_heavy_packages() -> None:
    code = (
        "import sys, leaderboard, leaderboard.check, leaderboard.demo; "
        "bad = [m for m in ('torch', 'open_clip', 'timm', 'diffusers', 'ot', 'baselines', 'benchmark') "
        "if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_no_nonzero_value_prints_as_zero_in_any_output(tmp_path: Path) -> None:
    from leaderboard.format import fmt, significant_digits

    assert fmt(1.28e-05, 4) == "1.3e-05" and fmt(2.383e-07, 6) == "2.4e-07"
    assert fmt(0.0, 4) == "0.0000" and fmt(0.0214, 4) == "0.0214" and fmt(-1e-9, 3) == "-1.0e-09"
    assert fmt(0.0003, 4) == "3.0e-04" and fmt(0.0012, 4) == "0.0012"
    assert significant_digits("0.0000") == 0 and significant_digits("12.50") == 4
    rows = []
    for method, values in (("tiny", (1.28e-05, 1.5e-05)), ("zero", (0.0, 0.0)), ("big", (0.0214, 0.03))):
        for concept, v in zip(("a", "b"), values, strict=True):
            rows.append(row(method=method, concept=concept, metric="lfd", value=v, backbone="latent:toy"))
    board = build_leaderboard(read_rows([write_jsonl(tmp_path / "r.jsonl", rows)]))
    md, html = render_markdown(board), render_html(board)
    for text in (md, html):
        assert "1.4e-05" in text  # the mean of the tiny method, not 0.0000
        assert "0 (structural)" in text  # the true zero of lfd (a structural-zero metric) is said to be one
    csv_text = render_csv(board)
    assert (
        "1.3899999999999999e-05" in csv_text and ",0.0,,,0.95," in csv_text
    )  # raw values, shortest repr; 2 concepts: no interval


def test_headline_reads_each_measured_trajectory_at_the_fixed_levels(tmp_path: Path) -> None:
    from leaderboard.trajectory import BEFORE_FIRST, NOT_REACHED, READ, pareto_front, read_at

    assert read_at([0.2, 0.4], [0.1, 0.2], 0.3) == (pytest.approx(0.15), READ)
    assert read_at([0.2, 0.4], [0.1, 0.2], 0.1) == (None, BEFORE_FIRST)  # never read from the origin
    assert read_at([0.2, 0.4], [0.1, 0.2], 0.2) == (0.1, READ)  # exactly at the first rung
    assert read_at([0.1, 0.2], [0.0, 1.0], 0.5) == (None, NOT_REACHED)  # never extrapolated
    assert read_at([0.1, 0.5, 0.3], [0.0, 1.0, 2.0], 0.4) == (pytest.approx(0.75), READ)  # first crossing
    assert pareto_front([(0.1, 0.5), (0.2, 0.4), (0.15, 0.6), (0.2, 0.4)]) == [1, 3]
    curves = {  # method: [(rung, subject fidelity, leakage)]
        "a": [(0.5, 0.2, 0.1), (1.0, 0.4, 0.2), (2.0, 0.8, 0.6)],
        "b": [(0.5, 0.1, 0.05), (1.0, 0.2, 0.1), (2.0, 0.3, 0.2)],
        "c": [(0.5, 0.01, 0.0), (1.0, 0.02, 0.01), (2.0, 0.02, 0.02)],
    }
    rows = []
    for concept in ("x", "y"):
        for metric, value in (("subject_dino", 0.0), ("leakage", 0.0), ("w2", 0.0), ("w2_floor", 0.6)):
            rows.append(row(method="base", concept=concept, metric=metric, value=value, rung=None))
        for method, points in curves.items():
            for rung, ident, coll in points:
                rows.append(
                    row(method=method, concept=concept, metric="subject_dino", value=ident, rung=rung)
                )
                rows.append(row(method=method, concept=concept, metric="leakage", value=coll, rung=rung))
            rows.append(row(method=method, concept=concept, metric="w2", value=0.7, rung=1.0))
            # b: p 0.02 on each of 2 concepts, Bonferroni 0.04 < 0.05; c: 0.03 twice -> 0.06, not detected
            p_value = {"a": 0.0001, "b": 0.02, "c": 0.03}[method]
            rows.append(
                row(
                    method=method,
                    concept=concept,
                    metric="mmd_base",
                    value=0.01,
                    rung=1.0,
                    extra={"p_value": p_value},
                )
            )
    board = build_leaderboard(parsed(rows), fidelity_levels={"toy": (0.15, 0.3, 0.5)})
    (headline,) = board.headlines
    assert (
        headline is not None and headline.fidelity == "subject_dino" and headline.levels == (0.15, 0.3, 0.5)
    )
    a, b, c = (headline.matched[m]["leakage"] for m in "abc")
    assert [x.status for x in a] == [BEFORE_FIRST, READ, READ]  # a's first rung (0.2) is past 0.15
    assert [x.value for x in a[1:]] == [pytest.approx(0.15), pytest.approx(0.3)]
    assert (
        b[0].value == pytest.approx(0.075) and b[1].value == pytest.approx(0.2) and b[2].status == NOT_REACHED
    )
    assert all(x.status == NOT_REACHED for x in c)
    assert a[1].low is None and a[1].why == "n too small"  # 2 concepts: no interval
    area = headline.areas["leakage"]  # compared: ranges holding the middle level 0.3 (a, b; not c)
    assert (area.lo, area.hi) == (pytest.approx(0.2), pytest.approx(0.3)) and area.not_compared == ("c",)
    assert area.values["a"] == pytest.approx(0.125) and area.values["b"] == pytest.approx(0.15)
    assert headline.pareto["leakage"] == {"a": (3, 3, 0), "b": (3, 2, 1), "c": (3, 2, 0)}
    assert headline.floor == pytest.approx(0.6) and headline.not_detected == {"c"}
    assert headline.combined_p["b"] == pytest.approx(0.04) and headline.combined_p["c"] == pytest.approx(0.06)
    md = render_markdown(board)
    assert "not reached" in md and "passed before the first rung" in md and "0.150" in md
    assert "no difference from base detected" in md and "never from the base model" in md
    assert "indistinguishable" not in md and "within the base model's own sampling variation" not in md
    assert "not evidence that it is the same as base" in md
    assert "floor 0.600" in md  # the base row of the W2 column shows the floor, not 0
    assert "no rows for w2_floor" not in md  # a base-model metric: no other method is missing it
    html = render_html(board)
    assert (
        html.count('data-plot="trajectory"') == 3 and "Headline: overfitting at matched subject_dino" in html
    )
    write_leaderboard(board, tmp_path / "out")
    figure = tmp_path / "out" / "figures" / "toy-1-leakage.svg"
    assert figure.is_file() and "<polyline" in figure.read_text()
    umask = os.umask(0)
    os.umask(umask)
    for path in (tmp_path / "out" / "LEADERBOARD.md", figure):  # readable as the umask allows, not 0600
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask


# --- did the method learn? -----------------------------------------------------------------------
def _learning_rows(folder: bool = False) -> list[dict[str, Any]]:
    """Base, a do-nothing method (its subject-fidelity rows equal the base model's, its W2 the lowest on the board)
    and one that learned, on three concepts; ``folder``: an image folder's rows too (no LFD)."""
    v = {m: METRICS[m].version for m in ("subject_dino", "w2", "w2_floor", "lfd")}
    base_identity = {"x": 0.10, "y": 0.20, "z": 0.15}
    learned = {"x": 0.80, "y": 0.60, "z": 0.90}
    rows = []

    def add(
        method: str, concept: str, metric: str, value: float, rung: float | None, version: Any = 1
    ) -> None:
        backbone = {"subject_dino": "tiny-dino", "lfd": "latent"}.get(metric, "tiny-clip")
        rows.append(
            row(
                method=method,
                method_version=version,
                concept=concept,
                metric=metric,
                metric_version=v[metric],
                value=value,
                n=40,
                backbone=backbone,
                rung=rung,
                extra={"se": 0.02} if metric == "subject_dino" else {},
            )
        )

    for c in ("x", "y", "z"):
        for metric, value in (
            ("subject_dino", base_identity[c]),
            ("w2", 0.0),
            ("w2_floor", 0.5),
            ("lfd", 0.0),
        ):
            add("base", c, metric, value, None)
        for method, ident, w2, lfd in (
            ("noop", base_identity[c], 0.05, 0.0),
            ("good", learned[c], 0.9, 0.02),
        ):
            for metric, value in (("subject_dino", ident), ("w2", w2), ("lfd", lfd)):
                add(method, c, metric, value, 1.0)
        if folder:
            add("folder", c, "subject_dino", base_identity[c], None, "images")
            add("folder", c, "w2", 0.05, None, "images")
    return rows


def _md_cells(md: str, method: str) -> dict[str, str]:
    """The summary table's cells of ``method``, by column header."""
    lines = md.splitlines()
    header = next(line for line in lines if line.startswith("| method | version | concepts |"))
    body = next(line for line in lines if line.startswith(f"| {method} |"))
    split = [[c.strip() for c in line.strip("|").split("|")] for line in (header, body)]
    return dict(zip(*split, strict=True))


def test_a_method_that_does_not_learn_is_flagged_and_its_overfitting_not_ranked() -> None:
    board = build_leaderboard(parsed(_learning_rows()))
    (section,) = board.sections
    assert section.learning is not None and section.learning.fidelity == "subject_dino"
    noop, good = section.learning.methods[("noop", 1)], section.learning.methods[("good", 1)]
    assert noop.flagged and noop.not_learned == ("x", "y", "z") and noop.p_value is None  # every diff <= 0
    assert noop.count_text == "did not learn on 3 of 3 concepts"
    assert not good.flagged and good.not_learned == () and good.p_value is not None and good.p_value < 0.05
    md = render_markdown(board)
    noop_cells, good_cells = _md_cells(md, "noop"), _md_cells(md, "good")
    for column, cell in noop_cells.items():
        if column in ("method", "version", "concepts"):
            continue
        # every metric column: a method that changes nothing keeps the base model's prompt fidelity too
        assert cell.endswith("(not ranked: did not learn)"), column
    assert noop_cells["w2@1 ↓ (raw)"].startswith("0.05")  # the value is still shown
    assert not any("not ranked" in c for c in good_cells.values())
    assert "- noop@1: did not learn (subject_dino 0.150 against the base model's 0.150" in md
    assert (
        "did not learn on 3 of 3 concepts" in md
        and "good@1" not in md.split("### Headline")[0].split("Did each")[1]
    )
    # the headline's area/Pareto table (no levels given): w2 and lfd left out for the method that did not learn
    headline_row = next(
        line for line in md.split("### Headline")[1].splitlines() if line.startswith("| noop |")
    )
    assert headline_row.count("not ranked: did not learn") == 2
    html = render_html(board)
    noop_row = re.search(r'<tr data-method="noop@1">.*?</tr>', html, re.S)
    good_row = re.search(r'<tr data-method="good@1">.*?</tr>', html, re.S)
    assert noop_row is not None and good_row is not None
    # every metric cell of the method that did not learn (its subject_dino, w2, lfd) sorts last
    assert noop_row.group(0).count('class="unranked" data-unranked="1"') == 3
    assert 'class="unranked"' not in good_row.group(0)
    base_row = re.search(r'<tr[^>]*data-method="base@1">.*?</tr>', html, re.S)
    assert base_row is not None and "reference: not ranked" in base_row.group(0)  # the base model never wins
    assert "noop@1: did not learn" in html and "ca.dataset.unranked" in html  # the sort puts them last


def test_learning_tests_read_sampling_noise_from_the_rows() -> None:
    from leaderboard.learning import concept_learned, method_flagged, standard_error

    share, other = METRICS["identity"], METRICS["dino"]
    assert standard_error(share, 0.5, 40, {}) == pytest.approx(0.5 / 40**0.5)  # binomial, from the row
    assert standard_error(other, 0.5, 40, {}) is None and standard_error(other, 0.5, 40, {"se": 0.1}) == 0.1
    assert concept_learned(share, (0.5, 40, {}), (0.1, 40, {})) is True  # t = 4.3
    assert concept_learned(share, (0.15, 40, {}), (0.1, 40, {})) is False  # t = 0.6: within noise
    assert concept_learned(share, (0.0, 40, {}), (0.0, 40, {})) is False  # identical rows
    assert concept_learned(share, (1.0, 40, {}), (0.0, 40, {})) is True  # zero spread, above
    assert concept_learned(other, (0.8, 40, {}), (0.6, 40, {})) is None  # no spread recorded: not assessed
    assert concept_learned(other, (0.8, 40, {"se": 0.01}), (0.6, 40, {"se": 0.01})) is True
    assert concept_learned(other, (0.6, 40, {}), (0.6, 40, {})) is False
    base = np.array([0.1, 0.2, 0.3, 0.4])
    assert method_flagged(base, base)[0] is True  # every difference <= 0
    assert method_flagged(base - 0.1, base)[0] is True
    assert method_flagged(base + 0.1, base)[:2] == (False, None)  # zero spread, above
    flagged, p, _ = method_flagged(base + np.array([0.3, -0.2, 0.1, -0.15]), base)  # mean 0.0125: noise
    assert flagged is True and p is not None and p > 0.05
    flagged, p, _ = method_flagged(base + np.array([0.3, 0.25, 0.35, 0.2]), base)
    assert flagged is False and p is not None and p < 0.05


def test_an_image_folder_is_flagged_and_told_lfd_needs_the_model() -> None:
    board = build_leaderboard(parsed(_learning_rows(folder=True)))
    (section,) = board.sections
    assert section.learning is not None and section.learning.methods[("folder", "images")].flagged
    md = render_markdown(board)
    assert "folder@images is an image folder: lfd@2 needs the customized model" in md
    assert "folder@images has no rows for lfd@2" not in md  # explained by the note above instead
    assert _md_cells(md, "folder")["w2@1 ↓ (raw)"].endswith("(not ranked: did not learn)")
    assert "folder@images is an image folder" in render_html(board)


def test_structural_zeros_and_methods_that_did_not_learn_shape_no_area_or_pareto_count() -> None:
    import numpy as np

    from leaderboard.trajectory import Trajectory, pareto_counts, ranked, structural_zero

    fid = np.array([[0.0], [0.5], [0.7]])
    zero = Trajectory("ti", "1", (0.0, 1.0, 2.0), ("x",), fid, {"lfd": np.zeros((3, 1))})
    real = Trajectory("db", "1", (0.0, 1.0, 2.0), ("x",), fid, {"lfd": np.array([[0.0], [0.1], [0.2]])})
    noop = Trajectory("noop", "1", (0.0, 1.0, 2.0), ("x",), fid, {"lfd": np.array([[0.0], [0.01], [0.02]])})
    assert structural_zero(zero, "lfd") and not structural_zero(real, "lfd")
    assert [t.method for t in ranked([zero, real, noop], "lfd", frozenset({"noop"}))] == ["db"]
    # counted among all three, db's rungs would be dominated by the zero and the method that did not learn
    assert pareto_counts([zero, real, noop], "lfd")["db"] == (2, 0, 2)
    assert pareto_counts(ranked([zero, real, noop], "lfd", frozenset({"noop"})), "lfd")["db"] == (2, 2, 0)


def test_a_reading_rests_on_the_concepts_the_method_was_measured_on() -> None:
    from leaderboard.trajectory import Trajectory, matched_at

    concepts = tuple(f"c{i}" for i in range(8))
    clusters = {c: c for c in concepts}  # 8 independent units
    fid = np.tile(np.array([[0.0], [0.4], [0.8]]), (1, 8)) + np.linspace(0, 0.01, 8)
    values = np.tile(np.array([[0.0], [0.2], [0.6]]), (1, 8)) + np.linspace(0, 0.05, 8)
    full = Trajectory("m", "1", (0.0, 1.0, 2.0), concepts, fid, {"w2": values})
    read = matched_at(full, "w2", 0.6, clusters)
    assert read.value is not None and read.low is not None and read.high is not None
    half = values.copy()
    half[1:, 4:] = np.nan  # measured on 4 concepts only: fewer than 5 units, no interval
    part = matched_at(Trajectory("m", "1", (0.0, 1.0, 2.0), concepts, fid, {"w2": half}), "w2", 0.6, clusters)
    assert part.value is not None and part.low is None and part.high is None and part.why == "n too small"


def test_the_oracle_and_the_base_model_are_never_ranked_anywhere(tmp_path: Path) -> None:
    rows = demo_rows()
    rows += [
        {**r, "metric": "identity", "metric_version": 1, "backbone": "identity", "value": 0.5}
        for r in rows
        if r["metric"] == "subject_dino"
    ]
    board = build_leaderboard(parsed(rows))
    assert board.graders == ("identity",) and board.n_grader_rows > 0
    csv_text, html, md = render_csv(board), render_html(board), render_markdown(board)
    paired = "\n".join(",".join(map(str, (c.method, c.reference, c.metric))) for c in board.pairs[0])
    for text in (csv_text, paired):
        assert "identity" not in text
    assert "identity@1" not in md and 'data-metric="identity@1"' not in html
    # the base model's overfitting differences against the reference are not ranked either
    (table,) = [p for p in board.paired if p is not None]
    from leaderboard.paired import paired_rows

    header, body = paired_rows(table)
    base = next(r for r in body if r[0] == "base")
    overfitting = [
        i for i, h in enumerate(header) if h.startswith("Δ") and METRICS[h.split()[1]].role == "overfitting"
    ]
    assert overfitting and all(base[i] in ("reference: not ranked", "— (structural 0)") for i in overfitting)
    # hollow, unranked points in the scatter plots for the references
    assert re.search(r'<g class="point" data-method="base@1"><title>[^<]*\(reference: not ranked\)', html)
