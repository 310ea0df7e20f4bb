"""The frozen job spec: it carries the settings object itself, pickles to a worker process unchanged,
and writes and reads back run.json's plain record."""

from __future__ import annotations

import dataclasses
import json
import pickle
from operator import attrgetter
from pathlib import Path

import pytest

from benchmark.executors import LocalExecutor
from benchmark.jobspec import JobSpec
from benchmark.settings import EvalSettings, settings_for


def _spec(tmp_path: Path) -> JobSpec:
    return JobSpec(
        suite="toy", settings=settings_for("toy"), cache=tmp_path / "cache", run_dir=tmp_path / "run"
    )


def test_a_job_spec_is_frozen_and_carries_the_settings_object(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    job = spec.job("dora", "striped-heart")
    assert job.settings is spec.settings and isinstance(job.settings, EvalSettings)
    assert (job.method, job.concept) == ("dora", "striped-heart") and spec.method is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.device = "cuda"  # type: ignore[misc]
    # every job of a run shares one run part; other settings are another run
    assert job.shared() == spec.job("base", "dotted-star").shared() == spec
    assert spec.replace(settings=spec.settings.replace(lfd_timesteps=11)) != spec


def test_a_job_spec_pickles_with_its_settings(tmp_path: Path) -> None:
    job = _spec(tmp_path).job("dora", "striped-heart")
    back = pickle.loads(pickle.dumps(job))
    assert back == job and isinstance(back.settings, EvalSettings)
    assert back.settings.identity() == job.settings.identity()  # what cache keys and row hashes hash


def test_worker_processes_receive_the_settings_object(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    jobs = [spec.job("base", "striped-heart"), spec.job("dora", "striped-heart")]
    got = list(LocalExecutor(progress=False, workers=2).map(attrgetter("settings"), jobs))  # type: ignore[arg-type]
    assert got == [spec.settings, spec.settings]
    assert all(type(s) is EvalSettings for s in got)


def test_the_run_record_is_plain_json_and_reads_back(tmp_path: Path) -> None:
    spec = _spec(tmp_path).replace(torch_threads=2, data_root="/data")
    record = json.loads(json.dumps(spec.record()))
    assert list(record) == [
        "suite",
        "data_root",
        "settings",
        "cache",
        "run_dir",
        "device",
        "progress",
        "torch_threads",
    ]
    assert record["cache"] == str(tmp_path / "cache") and record["settings"] == spec.settings.to_dict()
    assert JobSpec.from_record(record, data_root="/data") == spec
