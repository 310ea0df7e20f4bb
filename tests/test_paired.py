"""Paired differences against a reference method, with intervals over clusters of concepts."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from leaderboard.clustered import (
    MIN_UNITS,
    cluster_bca_interval,
    cluster_boot_t_interval,
    cluster_draws,
    cluster_t_interval,
    coverage,
)
from leaderboard.frame import rows_frame
from leaderboard.paired import all_pairs, clusters_from_base, paired_table
from leaderboard.rows import parse_row
from metrics.spec import METRICS


def row(**fields: Any) -> Any:
    base = {
        "suite": "toy",
        "suite_version": 1,
        "method_version": 1,
        "metric_version": METRICS[fields["metric"]].version,
        "n": 10,
        "backbone": "b",
        "config_hash": "h",
        "created_at": "2026-12-06T10:00:00+00:00",
        "package_version": "0.1.0",
        "git_rev": "abc",
        "extra": {},
    }
    return parse_row({**base, **fields}, "mem")


def test_cluster_t_interval_matches_the_textbook_formula() -> None:
    # two clusters of equal size: the CR1 standard error of the mean of 4 values is the spread of the two
    # cluster means / sqrt(2) ... written out: totals (1+3, 5+7) = (4, 12), mean 4, residual totals (-4, 4)
    values = {"a": 1.0, "b": 3.0, "c": 5.0, "d": 7.0, "e": 4.0, "f": 4.0}
    clusters = {"a": "x", "b": "x", "c": "y", "d": "y", "e": "z", "f": "z"}
    got = cluster_t_interval(values, clusters)
    from scipy.stats import t

    resid = np.array([4 - 2 * 4, 12 - 2 * 4, 8 - 2 * 4], dtype=float)
    se = math.sqrt(3 / 2 * float((resid**2).sum())) / 6
    half = t.ppf(0.975, 2) * se
    assert got.mean == pytest.approx(4.0) and got.clusters == 3 and got.n == 6
    assert got.low == pytest.approx(4.0 - half) and got.high == pytest.approx(4.0 + half)


def test_too_few_concepts_give_no_interval() -> None:
    values = {f"c{i}": float(i) for i in range(MIN_UNITS - 1)}
    got = cluster_t_interval(values, {})
    assert got.low is None and got.high is None and got.mean == pytest.approx(1.5)
    assert cluster_bca_interval(values, {}).low is None


def test_simulated_coverage_of_the_cluster_t_interval_at_eight_concepts_in_four_clusters() -> None:
    # normal data, half the variance shared within a cluster: close to the nominal 95%
    assert coverage("t", trials=400, within=0.5) >= 0.92


def test_boot_t_enumerates_every_resample_of_four_clusters_and_inverts_by_hand() -> None:
    draws = cluster_draws(4)
    assert draws.shape == (256, 4) and len({tuple(d) for d in draws}) == 256  # every ordered draw, once
    assert cluster_draws(6).shape == (1999, 6)  # 6**6 > 4096: random draws from a fixed seed
    assert np.array_equal(cluster_draws(6), cluster_draws(6))
    # 4 clusters of one concept each, values 0, 1, 2, 5: recompute the symmetric bootstrap-t by hand
    x = np.array([0.0, 1.0, 2.0, 5.0])
    got = cluster_boot_t_interval({f"c{i}": v for i, v in enumerate(x)} | {"d": 1.0}, {"d": "c1"})
    # "d" joins c1's cluster: totals (0, 2, 2, 5), sizes (1, 2, 1, 1)
    s, c = np.array([0.0, 2.0, 2.0, 5.0]), np.array([1.0, 2.0, 1.0, 1.0])

    def mean_se(idx: list[int]) -> tuple[float, float]:
        m = s[idx].sum() / c[idx].sum()
        r = s[idx] - m * c[idx]
        return m, math.sqrt(4 / 3 * float((r**2).sum())) / c[idx].sum()

    m, se = mean_se([0, 1, 2, 3])
    far = []
    for a in range(4):
        for b in range(4):
            for cc in range(4):
                for d in range(4):
                    ms, ses = mean_se([a, b, cc, d])
                    far.append(abs(ms - m) / ses if ses > 0 else (0.0 if ms == m else math.inf))
    q = sorted(far)[math.ceil(0.95 * 256) - 1]
    assert got.mean == pytest.approx(1.8) and got.n == 5 and got.clusters == 4
    assert got.low == pytest.approx(m - q * se) and got.high == pytest.approx(m + q * se)
    assert cluster_boot_t_interval({f"c{i}": 1.0 for i in range(6)}, {}).low == 1.0  # no spread: [v, v]
    assert cluster_boot_t_interval({f"c{i}": float(i) for i in range(4)}, {}).low is None  # n too small


def test_simulated_coverage_of_the_candidates_on_skewed_data() -> None:
    # the design docs/METRICS.md quotes: 8 concepts in 4 clusters, centred log-normal effects. The
    # bootstrap-t covers; the t interval the leaderboard uses does not (its width is why: DECISIONS)
    assert coverage("boot-t", trials=600, within=0.5, skewed=True) >= 0.93
    assert coverage("t", trials=600, within=0.5, skewed=True) < 0.93


def _rows() -> list[Any]:
    out = []
    floor = {"a": 0.5, "b": 0.5, "c": 0.7, "d": 0.7, "e": 0.9, "f": 0.9}  # 3 class nouns, 2 concepts each
    for concept, f in floor.items():
        out.append(row(method="base", concept=concept, metric="w2_floor", value=f, rung=None))
        out.append(row(method="base", concept=concept, metric="subject_dino", value=0.3, rung=None))
        out.append(row(method="ref", concept=concept, metric="subject_dino", value=0.5, rung=1.0))
        out.append(row(method="ref", concept=concept, metric="subject_dino", value=0.9, rung=2.0))
        out.append(row(method="mine", concept=concept, metric="subject_dino", value=0.6, rung=1.0))
        out.append(row(method="real", concept=concept, metric="subject_dino", value=1.0, rung=None))
    return out


def test_clusters_are_read_from_identical_base_rows_and_pairs_at_the_tuned_budget() -> None:
    frame = rows_frame(_rows())
    clusters = clusters_from_base(frame)
    assert clusters["a"] == clusters["b"] != clusters["c"] == clusters["d"] != clusters["e"]
    table = paired_table(frame, "ref")
    assert table is not None and table.clusters == 3 and table.concepts == 6
    cell = table.cell("mine", "subject_dino")
    assert cell is not None and cell.diff.mean == pytest.approx(0.1) and cell.better == 6  # rung 2 not used
    assert table.cell("base", "subject_dino") is not None and table.cell("real", "subject_dino") is None
    assert paired_table(frame, "nobody") is None
    pairs = {(c.method, c.reference) for c in all_pairs(frame)}
    assert pairs == {
        ("mine", "ref"),
        ("ref", "mine"),
        ("base", "ref"),
        ("ref", "base"),
        ("mine", "base"),
        ("base", "mine"),
    }


def test_leaderboard_command_writes_every_pair_and_names_an_unknown_reference(tmp_path, capsys) -> None:
    import csv
    from pathlib import Path

    from benchmark.cli import main

    rows = Path(__file__).resolve().parents[1] / "leaderboard" / "results" / "smoke.jsonl"
    assert main(["leaderboard", str(rows), "--out", str(tmp_path / "lb")]) == 0
    page = (tmp_path / "lb" / "LEADERBOARD.md").read_text()
    assert "### Paired differences against infusion" in page  # the smoke profile's reference
    assert "too small: fewer than 5 concepts" in page  # two concepts: no interval
    assert "Paired differences against infusion" in (tmp_path / "lb" / "index.html").read_text()
    with open(tmp_path / "lb" / "paired.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert {r["reference"] for r in table} >= {"infusion", "dreambooth"} and all(
        r["ci_low"] == "" for r in table
    )
    args = ["leaderboard", str(rows), "--out", str(tmp_path / "x"), "--reference", "dreambooth"]
    assert main(args) == 0 and "against dreambooth" in (tmp_path / "x" / "LEADERBOARD.md").read_text()
    assert main([*args[:-1], "nobody"]) == 2
    assert "--reference 'nobody': no row has that method" in capsys.readouterr().err


def test_structural_zeros_are_shown_as_such_and_never_compared() -> None:
    from leaderboard.aggregate import build_leaderboard
    from leaderboard.render_html import render_html
    from leaderboard.render_md import render_markdown

    rows = _rows()
    for concept in "abcdef":
        rows.append(row(method="ref", concept=concept, metric="lfd", value=0.0, rung=1.0))  # cannot touch
        rows.append(row(method="mine", concept=concept, metric="lfd", value=0.01, rung=1.0))
        rows.append(row(method="zero", concept=concept, metric="lfd", value=0.0, rung=1.0))
        rows.append(row(method="zero", concept=concept, metric="subject_dino", value=0.55, rung=1.0))
    table = paired_table(rows_frame(rows), "ref")
    assert table is not None and table.structural_reference("lfd")
    assert table.cell("zero", "lfd") is None  # two structural zeros: nothing to compare
    assert table.cell("mine", "lfd") is not None
    board = build_leaderboard(rows, references={"toy": "ref"})
    md = render_markdown(board)
    assert "0 (structural)" in md and "reference: structural 0; own 0.01" in md
    assert "0.000 [0.000, 0.000]" not in md
    html = render_html(board)
    assert "zero by construction: not ranked" in html


def test_headline_jackknife_t_is_the_cluster_t_interval_for_a_mean() -> None:
    """The headline's interval (delete-one-cluster jackknife, t with G − 1 df) equals the cluster-robust t
    interval whose coverage docs/METRICS.md quotes, when the statistic is a plain mean over equal clusters."""
    from leaderboard.trajectory import jackknife_t_interval

    rng = np.random.Generator(np.random.PCG64(3))
    concepts = [f"c{i}" for i in range(8)]
    clusters = {c: f"g{i // 2}" for i, c in enumerate(concepts)}
    values = rng.normal(size=8)
    low, high, why = jackknife_t_interval(lambda idx: float(values[idx].mean()), concepts, clusters)
    ref = cluster_t_interval(dict(zip(concepts, values, strict=True)), clusters)
    assert why == "" and low == pytest.approx(ref.low) and high == pytest.approx(ref.high)
    assert jackknife_t_interval(lambda idx: 0.0, concepts[:4], clusters)[2] == "n too small"
    gone = jackknife_t_interval(lambda idx: None if len(idx) < 8 else 0.0, concepts, clusters)
    assert gone == (None, None, "a cluster left out moves the curve off the level")


def test_show_prints_one_methods_row_against_the_reference(tmp_path, capsys) -> None:
    """``leaderboard --show METHOD``: the page's paired row of METHOD on the terminal, the same numbers as
    paired.csv; the reference's own verdict is said; an unknown name is one error line."""
    import csv
    from pathlib import Path

    from benchmark.cli import main

    results = Path(__file__).resolve().parents[1] / "leaderboard" / "results"
    args = ["leaderboard", str(results / "toy.jsonl"), "--out", str(tmp_path / "lb")]
    assert main([*args, "--show", "dreambooth"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("dreambooth minus infusion on toy@2 (same concepts, prompts and seeds")
    shown = dict(line.strip().split(": ", 1) for line in out[2:] if line.startswith("  Δ "))
    with open(tmp_path / "lb" / "paired.csv", newline="") as fh:
        cells = {
            r["metric"]: r
            for r in csv.DictReader(fh)
            if r["method"] == "dreambooth" and r["reference"] == "infusion"
        }
    dino = cells["subject_dino"]
    low, high = float(dino["ci_low"]), float(dino["ci_high"])
    expected = f"{float(dino['mean_difference']):+.3g} [{low:+.3g}, {high:+.3g}]"
    assert shown["Δ subject_dino ↑ (better on)"] == f"{expected} ({dino['better_on']}/{dino['n_concepts']})"
    assert shown["Δ lfd ↓ (better on)"].startswith("— (reference: structural 0; own ")
    assert any(line.startswith("  note: the reference infusion did not learn on toy@2") for line in out)
    assert main([*args, "--show", "nobody"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--show 'nobody': no row has that method" in err[0]


def test_the_run_summary_keeps_rungs_apart(tmp_path) -> None:
    """The terminal table of ``run``: one line per method and rung (a trajectory is not averaged over its
    rungs), each the mean over concepts of that rung's rows."""
    import json
    from pathlib import Path

    from benchmark.runner import summary_table

    committed = Path(__file__).resolve().parents[1] / "leaderboard" / "results" / "toy-rungs.jsonl"
    rows = [json.loads(x) for x in committed.read_text().splitlines()]
    mine = [r for r in rows if r["method"] == "dreambooth-lora"]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in mine))
    lines = summary_table(path).splitlines()
    labels = [line.split("  ")[0] for line in lines[1:]]
    assert labels == ["dreambooth-lora ×0.25", "dreambooth-lora ×0.5", "dreambooth-lora ×2"]
    assert "identity@1" not in lines[0]  # the oracle grades the metrics; it is not one of them
    column = lines[0].split().index("subject_dino@1") // 2  # header cells are "name arrow"
    quarter = [r["value"] for r in mine if r["metric"] == "subject_dino" and r["rung"] == 0.25]
    assert float(lines[1].split()[2 + column]) == pytest.approx(float(np.mean(quarter)), rel=1e-3, abs=1e-9)


def test_the_profiles_concept_specific_lead_heads_the_headline_the_paired_table_and_the_scatter() -> None:
    from leaderboard.aggregate import build_leaderboard
    from leaderboard.render_html import render_html
    from leaderboard.render_md import render_markdown

    rows = _rows()
    for concept in "abcdef":
        for method, rung, leak, gap in (
            ("ref", 1.0, 0.2, 0.1),
            ("ref", 2.0, 0.4, 0.3),
            ("mine", 1.0, 0.3, 0.05),
        ):
            rows.append(row(method=method, concept=concept, metric="leakage", value=leak, rung=rung))
            rows.append(row(method=method, concept=concept, metric="heldout_gap", value=gap, rung=rung))
    plain = build_leaderboard(rows, references={"toy": "ref"})
    assert plain.headlines[0] is not None and plain.headlines[0].shown() == ("leakage",)
    assert "Concept-specific column: leakage heads it. Why: the metric registry's order." in render_markdown(
        plain
    )
    rule = "chosen on the tuning concepts"
    led = build_leaderboard(
        rows,
        references={"toy": "ref"},
        leads={"toy": ("heldout_gap", rule)},
        fidelity_levels={"toy": (0.55,)},
    )
    headline, table = led.headlines[0], led.paired[0]
    assert headline is not None and headline.shown() == ("heldout_gap", "leakage")
    assert table is not None and table.lead == "heldout_gap"
    from leaderboard.paired import page_metrics

    assert page_metrics(table) == ("subject_dino", "heldout_gap", "leakage")
    md = render_markdown(led)
    assert f"Concept-specific column: heldout_gap heads it; leakage beside it. Why: {rule}." in md
    # its first overfitting column is the lead, in the level tables
    header = next(line for line in md.splitlines() if line.startswith("| method | measured subject_dino"))
    assert header.index("heldout_gap") < header.index("leakage")
    html = render_html(led)
    assert "Concept-specific overfitting (heldout_gap, y)" in html


def test_a_lead_that_is_not_an_overfitting_metric_is_refused_in_one_line() -> None:
    import json
    from pathlib import Path

    from benchmark.settings import ProfileError, settings_from_profile
    from metrics.spec import headline_metrics

    assert headline_metrics("overfitting", "heldout_gap")[0] == "heldout_gap"
    assert headline_metrics("overfitting")[0] == "leakage"
    with pytest.raises(ValueError, match="not a metric of role 'overfitting'"):
        headline_metrics("overfitting", "clip_t")
    profile = json.loads(
        (Path(__file__).resolve().parents[1] / "data_manifests" / "profiles" / "toy.json").read_text()
    )
    with pytest.raises(ProfileError) as err:
        settings_from_profile({**profile, "headline_specific": "clip_t"}, "toy.json")
    assert "headline_specific: 'clip_t' is not a metric of role overfitting" in str(err.value)
    assert "\n" not in str(err.value)
    other = settings_from_profile({**profile, "headline_specific": "w2"}, "toy.json")
    assert other.identity() == settings_from_profile(profile, "toy.json").identity()  # changes no row


def test_a_lead_the_rows_lack_leaves_the_registry_order_and_says_so() -> None:
    from leaderboard.aggregate import build_leaderboard
    from leaderboard.render_md import render_markdown

    rows = _rows()
    for concept in "abcdef":
        rows.append(row(method="ref", concept=concept, metric="leakage", value=0.2, rung=1.0))
    board = build_leaderboard(rows, references={"toy": "ref"}, leads={"toy": ("heldout_gap", "x")})
    assert board.headlines[0] is not None and board.headlines[0].shown() == ("leakage",)
    assert "leakage heads it. Why: the profile names heldout_gap, which these rows lack." in render_markdown(
        board
    )
