"""The two-tier regression gate, the tolerance rule, and the committed tolerance file's evidence."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from leaderboard.check import compare_rows, make_tolerances, row_tier
from leaderboard.demo import demo_rows
from leaderboard.rows import parse_row, read_jsonl
from leaderboard.variation import ATOL_FLOOR, RTOL_FLOOR, derive_tolerances, summarize, tier_rule

COMMITTED = Path(__file__).resolve().parents[1] / "leaderboard" / "results"


def _tol_file(tmp_path: Path, fixed: dict[str, Any], trained: dict[str, Any]) -> Path:
    path = tmp_path / "tol.json"
    path.write_text(json.dumps({"suites": {"dreambench": {"fixed": fixed, "trained": trained}}}))
    return path


def _rows(edit: dict[tuple[str, str, str], float] | None = None) -> list[Any]:
    out = []
    for i, row in enumerate(demo_rows()):
        key = (row["method"], row["concept"], row["metric"])
        if edit and key in edit:
            row = {**row, "value": edit[key]}
        out.append(parse_row(row, f"mem:{i + 1}"))
    return out


def _value(rows: list[Any], method: str, concept: str, metric: str) -> float:
    (hit,) = [r for r in rows if (r.method, r.concept, r.metric) == (method, concept, metric)]
    return float(hit.value)


def test_tiers_of_rows() -> None:
    tiers = {r.method: row_tier(r) for r in _rows()}
    assert tiers["base"] == tiers["real"] == "fixed"
    assert {tiers[m] for m in ("dreambooth", "infusion", "textual-inversion")} == {"trained"}
    image_row = parse_row({**demo_rows()[0], "method": "my-folder", "method_version": "images"}, "m:1")
    assert row_tier(image_row) == "fixed"


def test_trained_rows_compare_as_a_mean_over_concepts(tmp_path: Path) -> None:
    base = _rows()
    concepts = sorted({r.concept for r in base if r.method == "dreambooth" and r.metric == "clip_i"})
    tol = make_tolerances(
        _tol_file(tmp_path, {"rtol": 1e-6, "atol": 1e-9}, {"rtol": 0.0, "atol": 0.01, "metrics": {}})
    )
    one = concepts[0]
    old = _value(base, "dreambooth", one, "clip_i")
    # one concept moves by 0.05: the mean over the concepts moves by 0.05 / n < 0.01 -> passes
    moved = _rows({("dreambooth", one, "clip_i"): old + 0.05})
    report = compare_rows(moved, base, tol)
    assert report.ok and report.n_groups > 0 and 0 < report.worst["trained"] < 1
    # every concept moves by 0.02: the mean moves by 0.02 > 0.01 -> fails, naming the group
    shifted = _rows(
        {("dreambooth", c, "clip_i"): _value(base, "dreambooth", c, "clip_i") + 0.02 for c in concepts}
    )
    report = compare_rows(shifted, base, tol)
    assert not report.ok
    (finding,) = report.findings
    assert finding.tier == "trained" and f"mean over {len(concepts)} concepts" in finding.message
    assert "dreambooth@1 clip_i@1" in finding.message


def test_fixed_rows_compare_row_by_row(tmp_path: Path) -> None:
    base = _rows()
    tol = make_tolerances(_tol_file(tmp_path, {"rtol": 1e-6, "atol": 1e-9}, {"rtol": 0.5, "atol": 0.5}))
    concept = next(r.concept for r in base if r.method == "base" and r.metric == "clip_t")
    old = _value(base, "base", concept, "clip_t")
    report = compare_rows(_rows({("base", concept, "clip_t"): old * (1 + 1e-5)}), base, tol)
    (finding,) = report.findings
    assert finding.tier == "fixed" and "fixed tier, row by row" in finding.message


def test_suites_without_a_section_compare_row_by_row(tmp_path: Path) -> None:
    base = _rows()
    path = tmp_path / "tol.json"
    path.write_text(json.dumps({"suites": {"toy": {"fixed": {}, "trained": {"atol": 1.0}}}}))
    concept = next(r.concept for r in base if r.method == "dreambooth" and r.metric == "w2")
    old = _value(base, "dreambooth", concept, "w2")
    report = compare_rows(_rows({("dreambooth", concept, "w2"): old * 1.01}), base, make_tolerances(path))
    (finding,) = report.findings
    assert finding.tier == "row"


@pytest.mark.parametrize(
    ("suites", "message"),
    [
        ({"toy": {"fixed": {}}}, "exactly the tiers 'fixed' and 'trained'"),
        ({"toy": {"fixed": {}, "trained": {"metrics": {"lfdd": {}}}}}, "unknown metric"),
        ({"toy": {"fixed": {"rtol": -1}, "trained": {}}}, "'rtol' must be a finite number >= 0"),
        ([], "'suites' must be an object"),
    ],
)
def test_bad_suite_sections(tmp_path: Path, suites: Any, message: str) -> None:
    path = tmp_path / "tol.json"
    path.write_text(json.dumps({"suites": suites}))
    with pytest.raises(ValueError, match=message):
        make_tolerances(path)


def test_tier_rule_covers_every_measured_deviation_times_the_margin() -> None:
    units = [[0.001, 4e-5], [0.002, 1e-6], [0.5, 1e-3], [0.9, 2e-4], [0.0, 0.0]]
    tol = tier_rule(units, 3.0)
    for v, d in units:
        assert 3.0 * d <= tol["atol"] + tol["rtol"] * abs(v) + 1e-18
    # small values are covered by atol (the largest small-unit deviation x 3), large ones by rtol
    assert tol["atol"] == pytest.approx(3 * 4e-5)
    assert tol["rtol"] == pytest.approx(3 * 1e-3 / 0.5)
    assert tier_rule([[0.3, 0.0], [0.5, 0.0]], 3.0) == {"rtol": RTOL_FLOOR, "atol": ATOL_FLOOR}


def test_summarize_and_derive_round_trip(tmp_path: Path) -> None:
    base = _rows()
    concept = next(r.concept for r in base if r.method == "base" and r.metric == "clip_i")
    run_a = _rows({("base", concept, "clip_i"): _value(base, "base", concept, "clip_i") + 1e-4})
    summary = summarize({"a": run_a, "b": base}, base)
    entry = summary["dreambench"]["fixed"]["clip_i@1"]
    assert entry["max_abs"] == pytest.approx(1e-4) and entry["worst"]["run"] == "a"
    derived = derive_tolerances(summary, margin=3.0, runs=["a", "b"])
    fixed = derived["suites"]["dreambench"]["fixed"]["metrics"]
    assert "clip_i@1" in fixed
    assert len({m["rtol"] for m in fixed.values()}) == 1  # the fixed tier's relative part is pooled
    path = tmp_path / "tol.json"
    path.write_text(json.dumps(derived))
    tol = make_tolerances(path)
    assert compare_rows(run_a, base, tol).ok  # what was measured passes
    bigger = _rows({("base", concept, "clip_i"): _value(base, "base", concept, "clip_i") + 1e-2})
    assert not compare_rows(bigger, base, tol).ok  # far beyond the measurement fails


def test_rebase_bounds_earlier_runs_by_the_triangle_inequality() -> None:
    from leaderboard.variation import rebase

    old = _rows()
    concept = next(r.concept for r in old if r.method == "base" and r.metric == "clip_i")
    v = _value(old, "base", concept, "clip_i")
    run_a = _rows({("base", concept, "clip_i"): v + 1e-4})  # measured against the old baseline
    summary = summarize({"a": run_a}, old)["dreambench"]
    new = _rows({("base", concept, "clip_i"): v - 2e-4})  # the rows regenerated on another machine
    got = rebase(summary, old, new, "xeon")["fixed"]["clip_i@1"]
    unit = next(u for u in got["units"] if u[2] == f"base {concept}")
    assert unit[0] == pytest.approx(v - 2e-4)  # the new baseline value
    assert unit[1] == pytest.approx(1e-4 + 2e-4) and unit[3] == "a+xeon"  # d + |old - new|
    assert abs((v + 1e-4) - (v - 2e-4)) <= unit[1] * (1 + 1e-9)  # run a's true deviation is covered
    assert got["max_abs"] == pytest.approx(3e-4) and got["worst"]["run"] == "a+xeon"


def test_merge_keeps_each_units_largest_deviation() -> None:
    from leaderboard.variation import merge

    base = _rows()
    concept = next(r.concept for r in base if r.method == "base" and r.metric == "clip_i")
    v = _value(base, "base", concept, "clip_i")
    first = summarize({"a": _rows({("base", concept, "clip_i"): v + 1e-4})}, base)["dreambench"]
    later = summarize({"b": _rows({("base", concept, "clip_i"): v - 3e-4})}, base)["dreambench"]
    got = merge(first, later)["fixed"]["clip_i@1"]
    unit = next(u for u in got["units"] if u[2] == f"base {concept}")
    assert unit[1] == pytest.approx(3e-4) and unit[3] == "b" and got["worst"]["run"] == "b"
    swapped = merge(later, first)["fixed"]["clip_i@1"]["units"]
    assert [u[:3] for u in swapped] == [u[:3] for u in got["units"]]  # order does not matter (ties aside)
    same = merge(first, summarize({"c": base}, base)["dreambench"])  # a run that matches adds nothing
    assert same["fixed"]["clip_i@1"]["max_abs"] == pytest.approx(1e-4)


def test_add_runs_measures_a_recorded_run_against_every_committed_file(tmp_path: Path) -> None:
    from benchmark.gate.variation import add_runs, record_run

    committed = tmp_path / "results"
    committed.mkdir()
    rows = [r for r in demo_rows() if r["method"] == "base" or r["metric"] == "clip_i"]
    main_rows = [dict(r, suite="toy") for r in rows]
    rung_rows = [dict(r, suite="toy", rung=0.5) for r in rows if r["method"] != "base"]
    for name, part in (("toy.jsonl", main_rows), ("toy-rungs.jsonl", rung_rows)):
        (committed / name).write_text("".join(json.dumps(r) + "\n" for r in part))
    moved = [dict(r, value=r["value"] + 0.01) for r in rung_rows]  # only the rung rows move
    run = tmp_path / "runs" / "toy-new-native-t1-w2"
    run.mkdir(parents=True)
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in main_rows + moved))
    record = record_run(run, "toy", "toy-new-native-t1-w2", threads=1, workers=2)
    assert record["kernels"] == "native" and (run / "run_record.json").is_file()
    summary = {"runs": [], "variation": {}}
    got = add_runs(summary, [run.parent], committed)
    trained = got["variation"]["toy"]["trained"]["clip_i@1"]
    assert trained["max_abs"] == pytest.approx(0.01) and "×0.5" in trained["worst"]["unit"]
    assert [r["name"] for r in got["runs"]] == ["toy-new-native-t1-w2"]
    with pytest.raises(ValueError, match="already in the summary"):
        add_runs(got, [run.parent], committed)


def test_committed_tolerances_were_measured() -> None:
    """The committed file is the rule applied to a measurement: each entry covers its measured deviation
    times the margin, and names the runs it came from."""
    doc = json.loads((COMMITTED / "tolerances.json").read_text())
    assert doc["margin"] >= 2 and doc["runs"] and doc["generated_by"].startswith("python -m benchmark.gate")
    assert {"smoke", "toy"} <= set(doc["suites"])
    kernels = {name.split("-")[1] for name in doc["runs"]}
    assert {"avx2", "native"} <= kernels
    for suite, section in doc["suites"].items():
        for tier in ("fixed", "trained"):
            for metric, entry in section[tier]["metrics"].items():
                worst = entry["measured"]["worst"]
                bound = entry["atol"] + entry["rtol"] * abs(worst["baseline"])
                assert doc["margin"] * worst["abs"] <= bound * (1 + 1e-9), (suite, tier, metric)
    make_tolerances(COMMITTED / "tolerances.json")  # and it parses
    # ... and it is exactly the rule applied to the committed measurement (no hand-widened entry)
    summary = json.loads((COMMITTED.parents[1] / "docs" / "gate" / "variation.json").read_text())
    derived = derive_tolerances(summary["variation"], margin=doc["margin"], runs=doc["runs"])
    assert derived["suites"] == doc["suites"]
    assert sorted(doc["runs"]) == sorted(r["name"] for r in summary["runs"])


DATA = os.environ.get("OVERFIT_BENCH_DATA")


@pytest.mark.skipif(
    not DATA or not (Path(DATA) / "dreambench").is_dir(),
    reason="OVERFIT_BENCH_DATA is not set to a folder with dreambench/ (CI sets it to ../shared/datasets)",
)
@pytest.mark.parametrize("mutation", ["lr", "lfd-timesteps", "prompt"])
def test_gate_fails_on_each_mutation(mutation: str, tmp_path: Path) -> None:
    """A learning rate x 1.05, LFD's timestep count + 1, one prompt replaced: the smoke gate fails on each."""
    import torch

    from benchmark.gate.mutations import check_mutation

    threads = torch.get_num_threads()
    try:
        report = check_mutation(mutation, suite="smoke", method="dreambooth", folder=tmp_path)
    finally:
        torch.set_num_threads(threads)
    assert not report.ok, report.summary()
    kinds = {f.kind for f in report.findings}
    assert kinds <= {"drift"}, [f.message for f in report.findings if f.kind != "drift"]
    expected = {"lr": {"trained"}, "lfd-timesteps": {"trained"}, "prompt": {"fixed", "trained"}}[mutation]
    assert expected <= {f.tier for f in report.findings}
    # the rows it compared are the committed rows of base, real and dreambooth
    committed = [
        r for r in read_jsonl(COMMITTED / "smoke.jsonl") if r.method in {"base", "real", "dreambooth"}
    ]
    assert report.n_baseline == len(committed)


# --- the metric tier on committed inputs ------------------------------------------------------------


@pytest.mark.parametrize("suite", ["toy", "smoke"])
def test_every_metric_reproduces_its_value_on_the_committed_inputs(suite: str) -> None:
    from benchmark.gate.fixture import verify

    results = verify(suite)
    assert {r["metric"].split("@")[0] for r in results} >= {
        "clip_t",
        "clip_i",
        "dino",
        "lfd",
        "lfd_class",
        "w2",
    }
    assert all(r["ok"] for r in results), [r for r in results if not r["ok"]]


def test_fixture_catches_a_changed_lfd_grid_and_weighting(monkeypatch: pytest.MonkeyPatch) -> None:
    import benchmark.settings as settings_module
    from benchmark.gate import fixture

    real = settings_module.settings_for

    def more_timesteps(suite: Any, **kw: Any) -> Any:
        s = real(suite, **kw)
        return s.replace(lfd_timesteps=s.lfd_timesteps + 1)

    monkeypatch.setattr(settings_module, "settings_for", more_timesteps)
    bad = {r["metric"]: r for r in fixture.verify("toy") if not r["ok"]}
    assert set(bad) == {"lfd@2", "lfd_class@2"}
    assert "not in the fixture: LFD's timestep grid or noise changed" in bad["lfd@2"]["error"]

    monkeypatch.setattr(
        settings_module, "settings_for", lambda suite, **kw: real(suite, **kw).replace(lfd_weighting="score")
    )
    bad = {r["metric"]: r for r in fixture.verify("toy") if not r["ok"]}
    assert set(bad) == {"lfd@2", "lfd_class@2"} and bad["lfd@2"]["got"] > bad["lfd@2"]["expected"]


def test_fixture_catches_a_changed_statistic(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    import metrics.similarity as similarity
    from benchmark.gate import fixture

    def median_pairs(a: Any, b: Any) -> float:  # a plausible-looking redefinition of CLIP-I
        fa = np.asarray(a, dtype=np.float64)
        fb = np.asarray(b, dtype=np.float64)
        fa /= np.linalg.norm(fa, axis=1, keepdims=True)
        fb /= np.linalg.norm(fb, axis=1, keepdims=True)
        return float(np.median(fa @ fb.T))

    monkeypatch.setattr(similarity, "all_pairs_cosine_mean", median_pairs)
    bad = {r["metric"] for r in fixture.verify("toy") if not r["ok"]}
    assert bad == {"clip_i@1", "dino@1"}


def test_cli_refuses_to_override_measured_tolerances(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmark.cli import main

    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in demo_rows()), encoding="utf-8")
    tol = COMMITTED / "tolerances.json"
    code = main(["check", str(rows), "--baseline", str(rows), "--tolerances", str(tol), "--rtol", "0.5"])
    assert code == 2
    assert "--rtol/--atol apply only to suites the file does not measure" in capsys.readouterr().err
    assert main(["check", str(rows), "--baseline", str(rows), "--tolerances", str(tol)]) == 0
