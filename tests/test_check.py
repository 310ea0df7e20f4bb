"""Regression gate: ``overfit-bench check`` and :func:`leaderboard.compare_rows`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmark.cli import main
from leaderboard import Tolerance, ToleranceError, compare_rows, make_tolerances
from leaderboard.check import DEFAULT_ATOL, DEFAULT_RTOL
from leaderboard.demo import demo_rows
from leaderboard.rows import parse_row


def rows_file(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def find(rows: list[dict[str, Any]], method: str, concept: str, metric: str) -> dict[str, Any]:
    (hit,) = [r for r in rows if (r["method"], r["concept"], r["metric"]) == (method, concept, metric)]
    return hit


def run_check(tmp_path: Path, fresh: list[dict[str, Any]], base: list[dict[str, Any]], *extra: str) -> int:
    f = rows_file(tmp_path / "fresh.jsonl", fresh)
    b = rows_file(tmp_path / "base.jsonl", base)
    return main(["check", str(f), "--baseline", str(b), *extra])


def test_identical_rows_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = demo_rows()
    assert run_check(tmp_path, rows, rows) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [
        f"check OK: {len(rows)} rows match the baseline within tolerance (rtol 0.001, atol 1e-06); "
        "largest |diff|/tolerance 0"
    ]


def test_perturbed_value_fails_naming_the_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = demo_rows()
    fresh = json.loads(json.dumps(base))
    target = find(fresh, "dreambooth", "dog", "w2")
    old = target["value"]
    target["value"] = old * (1 + 5 * DEFAULT_RTOL)
    assert run_check(tmp_path, fresh, base) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("DRIFT   dreambench@1 dreambooth@1 dog w2@1: ")
    assert f"fresh {target['value']!r} vs baseline {old!r}" in lines[0]
    assert "atol 1e-06 + rtol 0.001·|baseline|" in lines[0]
    assert "fresh.jsonl:" in lines[0] and "base.jsonl:" in lines[0]
    assert lines[1].startswith(
        "check FAILED: 1 drifted, 0 changed (version, backbone or n), 0 missing, 0 new"
    )


def test_within_tolerance_passes(tmp_path: Path) -> None:
    base = demo_rows()
    fresh = json.loads(json.dumps(base))
    target = find(fresh, "dreambooth", "dog", "w2")
    target["value"] *= 1 + 0.5 * DEFAULT_RTOL
    assert run_check(tmp_path, fresh, base) == 0
    assert run_check(tmp_path, fresh, base, "--rtol", "1e-5") == 1


def test_missing_and_new_rows_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = demo_rows()
    fresh = [
        r for r in base if not (r["method"] == "infusion" and r["concept"] == "cat" and r["metric"] == "dino")
    ]
    fresh.append({**find(base, "infusion", "cat", "clip_t"), "concept": "new_concept"})
    assert run_check(tmp_path, fresh, base) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("MISSING dreambench@1 infusion@1 cat dino@1: in baseline") for line in lines)
    assert any(
        line.startswith("NEW     dreambench@1 infusion@1 new_concept clip_t@1: in fresh rows")
        for line in lines
    )
    assert lines[-1].startswith(
        "check FAILED: 0 drifted, 0 changed (version, backbone or n), 1 missing, 1 new"
    )


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("metric_version", 2, "metric_version 1 → 2"),
        ("suite_version", 2, "suite_version 1 → 2"),
        ("backbone", "ViT-L-14", "backbone 'ViT-B-32-quickgelu/openai' → 'ViT-L-14'"),
        ("n", 50, "n 100 → 50"),
    ],
)
def test_version_change_is_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, value: Any, expected: str
) -> None:
    base = demo_rows()
    fresh = json.loads(json.dumps(base))
    find(fresh, "dreambooth", "dog", "clip_t")[field] = value
    assert run_check(tmp_path, fresh, base) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("CHANGED dreambench dreambooth dog clip_t: ")
    assert expected in lines[0] and "values not compared" in lines[0]
    assert "1 changed (version, backbone or n)" in lines[-1]


def test_several_versions_per_key_are_matched_by_version() -> None:
    def parsed(**kw: Any) -> Any:
        return parse_row({**demo_rows()[0], **kw}, "mem:1")

    base = [parsed(metric_version=1, value=0.5), parsed(metric_version=2, value=0.7)]
    fresh = [parsed(metric_version=2, value=0.7), parsed(metric_version=3, value=0.9)]
    report = compare_rows(fresh, base)
    assert [f.kind for f in report.findings] == ["missing", "new"]
    assert report.n_compared == 1


def test_zero_baseline_uses_atol() -> None:
    base = [parse_row({**demo_rows()[0], "value": 0.0}, "b:1")]
    assert compare_rows([parse_row({**demo_rows()[0], "value": 5e-7}, "f:1")], base).ok
    assert not compare_rows([parse_row({**demo_rows()[0], "value": 2e-6}, "f:1")], base).ok


def test_tolerance_file_per_metric(tmp_path: Path) -> None:
    path = tmp_path / "tol.json"
    path.write_text(json.dumps({"rtol": 0.01, "metrics": {"w2": {"rtol": 0.1}, "w2@1": {"atol": 0.5}}}))
    tol = make_tolerances(path)
    assert tol.default == Tolerance(0.01, DEFAULT_ATOL)
    assert tol.for_metric("w2", 1) == Tolerance(0.01, 0.5)
    assert tol.for_metric("w2", 2) == Tolerance(0.1, DEFAULT_ATOL)
    assert tol.for_metric("lfd", 1) == Tolerance(0.01, DEFAULT_ATOL)
    # Command-line values override the file's top level but not its per-metric entries.
    cli = make_tolerances(path, rtol=0.2)
    assert cli.default.rtol == 0.2 and cli.for_metric("w2", 2).rtol == 0.1


def test_tolerance_file_used_by_cli(tmp_path: Path) -> None:
    base = demo_rows()
    fresh = json.loads(json.dumps(base))
    find(fresh, "dreambooth", "dog", "w2")["value"] *= 1.05
    tol = tmp_path / "tol.json"
    tol.write_text(json.dumps({"metrics": {"w2": {"rtol": 0.1}}}))
    assert run_check(tmp_path, fresh, base) == 1
    assert run_check(tmp_path, fresh, base, "--tolerances", str(tol)) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"rtol": -1}', "'rtol' must be a finite number >= 0"),
        ('{"metrics": {"lfdd": {"rtol": 1}}}', "metrics.lfdd: unknown metric"),
        ('{"metrics": {"lfd": {"rtl": 1}}}', "unknown field"),
        ('{"tolerance": 1}', "unknown field"),
        ("{oops", "cannot parse"),
    ],
)
def test_bad_tolerance_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "tol.json"
    path.write_text(content)
    with pytest.raises(ToleranceError, match=message):
        make_tolerances(path)


def test_bad_rows_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = demo_rows()
    fresh = [{k: v for k, v in r.items() if k != "value"} for r in base[:1]]
    assert run_check(tmp_path, fresh, base) == 2
    assert "fresh.jsonl:1: missing field(s) 'value'" in capsys.readouterr().err


def test_partial_rerun_checks_only_its_method_rung_groups(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = demo_rows()
    ladder = [{**r, "rung": 2.0} for r in base if r["method"] == "dreambooth"]  # a committed rung-2 ladder
    fresh = [r for r in ladder if r["concept"] != "cat" or r["metric"] != "w2"]  # one row lost
    assert run_check(tmp_path, fresh, base + ladder) == 1  # without --partial: the other groups are missing
    capsys.readouterr()
    assert run_check(tmp_path, fresh, base + ladder, "--partial") == 1  # the lost row is still missing
    lines = capsys.readouterr().out.strip().splitlines()
    assert (
        lines[0]
        == f"partial rerun: {len(ladder)} of {len(base) + len(ladder)} baseline rows are in the rerun's (method, rung) groups"
    )
    assert (
        sum(line.startswith("MISSING") for line in lines) == 1
        and "dreambooth" in lines[1]
        and "cat w2" in lines[1]
    )
    assert run_check(tmp_path, ladder, base + ladder, "--partial") == 0
