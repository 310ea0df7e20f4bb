"""Stage cache (atomic, locked, keyed by inputs) and results.jsonl (pinned fields, no duplicates)."""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from pathlib import Path

import pytest

from benchmark.cache import StageCache, hash_inputs
from benchmark.paths import cache_dir
from benchmark.results import ROW_FIELDS, append_rows, make_row, superseded_path
from metrics.spec import METRICS
from tests.rows_support import read_rows


def test_key_changes_with_every_input(tmp_path: Path) -> None:
    cache = StageCache(tmp_path)
    base = {"model": "m", "rev": "1", "seeds": [0, 1]}
    k = cache.key("fit", base)
    assert k == cache.key("fit", dict(reversed(list(base.items()))))  # key order does not matter
    assert k != cache.key("generate", base)
    for field, value in (("model", "m2"), ("rev", "2"), ("seeds", [1, 0])):
        assert cache.key("fit", {**base, field: value}) != k
    with pytest.raises(ValueError):
        hash_inputs({"x": float("nan")})


def test_compute_once_then_hit(tmp_path: Path) -> None:
    cache = StageCache(tmp_path)
    calls = []

    def compute(d: Path) -> None:
        calls.append(d)
        (d / "out.txt").write_text("42")

    p1, k1 = cache.get_or_compute("fit", {"a": 1}, compute)
    p2, k2 = cache.get_or_compute("fit", {"a": 1}, compute)
    assert (p1, k1) == (p2, k2) and len(calls) == 1
    assert (p1 / "out.txt").read_text() == "42"
    assert json.loads((p1 / "inputs.json").read_text()) == {"stage": "fit", "a": 1}
    assert cache.summary() == {"fit": {"computed": 1, "cached": 1}}


def test_failed_compute_leaves_nothing(tmp_path: Path) -> None:
    cache = StageCache(tmp_path)

    def boom(d: Path) -> None:
        (d / "half.bin").write_bytes(b"x")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        cache.get_or_compute("gen", {"a": 1}, boom)
    stage_dir = tmp_path / "gen"
    assert [p.name for p in stage_dir.iterdir() if not p.name.endswith(".lock")] == []
    assert not cache.done("gen", cache.key("gen", {"a": 1}))


def test_stale_temp_from_killed_run_is_ignored(tmp_path: Path) -> None:
    cache = StageCache(tmp_path)
    key = cache.key("gen", {"a": 1})
    stale = tmp_path / "gen" / f".{key}.tmp-999-dead"
    stale.mkdir(parents=True)
    (stale / "partial").write_text("x")
    path, _ = cache.get_or_compute("gen", {"a": 1}, lambda d: (d / "ok").write_text("1"))
    assert (path / "ok").exists() and not stale.exists()


def _worker(root: str, counter: str) -> None:
    cache = StageCache(root)

    def compute(d: Path) -> None:
        with open(counter, "a") as f:
            f.write("x")
        time.sleep(0.5)
        (d / "v").write_text("1")

    cache.get_or_compute("fit", {"shared": True}, compute)


def test_two_processes_share_one_cache(tmp_path: Path) -> None:
    counter = tmp_path / "count.txt"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(str(tmp_path / "c"), str(counter))) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert counter.read_text() == "x"  # computed exactly once


def test_cache_dir_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVERFIT_BENCH_CACHE", str(tmp_path / "env"))
    assert cache_dir(tmp_path / "flag") == (tmp_path / "flag").resolve()
    assert cache_dir() == (tmp_path / "env").resolve()
    monkeypatch.delenv("OVERFIT_BENCH_CACHE")
    assert "overfit-bench" in str(cache_dir())


def _row(metric: str = "lfd", value: float = 0.5, config_hash: str = "abc") -> dict:
    return make_row(
        suite="smoke",
        suite_version=1,
        method="infusion",
        method_version=1,
        concept="dog",
        metric=metric,
        value=value,
        n=4,
        backbone="tiny-clip/random(seed=0)",
        config_hash=config_hash,
        extra={"per_timestep": {"91": 0.1}},
    )


def test_rows_have_pinned_fields_and_never_duplicate(tmp_path: Path) -> None:
    row = _row()
    assert tuple(row) == ROW_FIELDS
    assert row["metric_version"] == METRICS[row["metric"]].version
    path = tmp_path / "run" / "results.jsonl"
    assert append_rows(path, [row, _row("w2")]) == 2
    assert append_rows(path, [_row(value=0.7), _row("w2")]) == 0  # same (method, concept, metric, config)
    assert not superseded_path(path).exists()
    assert append_rows(path, [_row(config_hash="other", value=0.9)]) == 1
    rows = read_rows(path)  # the other configuration's lfd row replaces the old one; w2 stays
    assert [(r["metric"], r["config_hash"], r["value"]) for r in rows] == [
        ("w2", "abc", 0.5),
        ("lfd", "other", 0.9),
    ]
    old = read_rows(superseded_path(path))
    assert [(r["metric"], r["config_hash"], r["value"]) for r in old] == [("lfd", "abc", 0.5)]
    assert superseded_path(path).suffix != ".jsonl"  # leaderboard directory scans skip it
    assert append_rows(path, [_row(config_hash="other", value=0.1)]) == 0  # already present
    # a profile that names another extractor: the old extractor's w2 row is superseded too
    assert append_rows(path, [{**_row("w2", config_hash="new"), "backbone": "toy-ssl/file:0"}]) == 1
    assert [(r["metric"], r["backbone"]) for r in read_rows(path) if r["metric"] == "w2"] == [
        ("w2", "toy-ssl/file:0")
    ]
    assert not list(path.parent.glob(".*tmp*"))


def test_append_sees_another_writer_and_writes_what_a_fresh_process_would(tmp_path: Path) -> None:
    # append_rows remembers what it last wrote; a file changed behind its back is read again
    path = tmp_path / "results.jsonl"
    assert append_rows(path, [_row("lfd")]) == 1
    other = json.dumps(_row("w2", value=0.25), sort_keys=True) + "\n"
    path.write_text(path.read_text() + other)  # another process appended a row
    assert append_rows(path, [_row("w2", value=0.9)]) == 0  # already there: the other writer's row
    assert append_rows(path, [_row("clip_t", value=0.3)]) == 1
    rows = read_rows(path)
    assert [(r["metric"], r["value"]) for r in rows] == [("lfd", 0.5), ("w2", 0.25), ("clip_t", 0.3)]
    fresh = tmp_path / "fresh.jsonl"  # the same rows written in one call give the same bytes
    assert append_rows(fresh, [{k: r[k] for k in ROW_FIELDS} for r in rows]) == 3
    assert fresh.read_bytes() == path.read_bytes()


def test_bad_rows_rejected(tmp_path: Path) -> None:
    # make_row checks the row with the schema the leaderboard reads with (leaderboard/row_schema.py)
    with pytest.raises(
        ValueError, match=r"infusion/dog/lfd: field 'value': expected a finite number, got nan"
    ):
        _row(value=float("nan"))
    with pytest.raises(KeyError, match="unknown metric"):
        _row(metric="fid")
    bad = tmp_path / "r.jsonl"
    bad.write_text('{"a": 1}\n{broken\n')
    with pytest.raises(ValueError, match=r"r.jsonl:1: missing field"):
        read_rows(bad)
    bad.write_text(json.dumps(_row()) + "\n{broken\n")
    with pytest.raises(ValueError, match=r"r.jsonl:2: not valid JSON"):
        read_rows(bad)
