"""``run --plan``: the cost table of the suite's own model, and a trajectory's steps as one resumed run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SD15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"


def _toy_plan(tmp_path: Path, methods: list[str], **changes: Any) -> Any:
    from benchmark.plan import make_plan
    from benchmark.settings import settings_for

    changes.setdefault("rungs", (1.0,))  # one rung unless a test asks for more (the profile has four)
    return make_plan(
        suite="toy",
        methods=methods,
        concepts=["striped-heart"],
        settings=settings_for("toy").replace(**changes),
        cache_root=tmp_path / "cache",
        data_root=str(tmp_path / "data"),
        workers=2,
    )


def test_the_default_toy_run_scores_every_trainable_method_at_four_rungs_one_past_its_budget(
    tmp_path: Path,
) -> None:
    from baselines import load_method
    from benchmark.commands.run import default_methods
    from benchmark.plan import make_plan
    from benchmark.settings import settings_for

    settings = settings_for("toy")  # what `overfit-bench run` with no arguments uses
    assert len(settings.rungs) >= 4 and 1.0 in settings.rungs and max(settings.rungs) > 1.0
    methods = default_methods()
    trainable = [m for m in methods if load_method(m).trains]
    assert len(trainable) >= 10
    plan = make_plan(
        suite="toy",
        methods=methods,
        concepts=None,
        settings=settings,
        cache_root=tmp_path / "cache",
        data_root=str(tmp_path / "data"),
        workers=2,
    )
    concepts = len(plan.concepts)
    # every trainable method: one fit per rung and concept; the base model once per concept
    assert plan.rungs == settings.rungs and concepts == 8
    assert plan.jobs == (len(trainable) * len(settings.rungs) + len(methods) - len(trainable)) * concepts


def test_each_committed_table_names_its_models_and_what_measured_it() -> None:
    from benchmark.plan import cost_tables, costs_for_model

    tables = {path.name: table for path, table in cost_tables()}
    assert set(tables) >= {"costs.json", "costs-toy.json"}
    for name, table in tables.items():
        assert table["models"] and table["command"].startswith("overfit-bench bench costs"), name
        assert table["device"] and table["measured"], name
    assert tables["costs-toy.json"]["command"] == "overfit-bench bench costs --suite toy"
    found_toy, found_sd = costs_for_model("toy"), costs_for_model(SD15)
    assert found_toy is not None and found_toy[0].name == "costs-toy.json"
    assert found_sd is not None and found_sd[0].name == "costs.json"
    assert costs_for_model("no-such-model") is None


def test_the_toy_plan_is_priced_by_the_toy_table_and_says_so(tmp_path: Path) -> None:
    from benchmark.plan import render

    plan = _toy_plan(tmp_path, ["base", "textual-inversion"])
    assert plan.costs_source.startswith(
        "benchmark/perf/costs-toy.json (measured by `overfit-bench bench costs"
    )
    text = render(plan)
    assert "cost table: benchmark/perf/costs-toy.json" in text
    assert "--suite toy" in text and "costs.json" not in text.replace("costs-toy.json", "")
    assert plan.estimate["seconds"]["other"] > 0  # the toy table prices the rest of a job too
    assert not (tmp_path / "cache").exists()  # a plan writes nothing


def test_a_trajectory_is_one_resumed_training_run(tmp_path: Path) -> None:
    # textual-inversion: 150 tuned steps, a checkpoint every 75, so rungs 0.5, 1, 2 = 75, 150, 300 steps
    # resume one another: 300 steps in all, not 75 + 150 + 300
    plan = _toy_plan(tmp_path, ["textual-inversion"], rungs=(0.5, 1.0, 2.0))
    assert plan.stages["trainings"].todo == 3 and plan.train_fits["textual-inversion"] == 3
    assert plan.train_steps["textual-inversion"] == 300
    # infusion: 38 steps, a checkpoint every 19; rung 0.25 (10 steps) ends before the first checkpoint but
    # leaves one at its last step, so rung 0.5 (19) resumes from 10 and rung 1 (38) from 19: 38 in all
    plan = _toy_plan(tmp_path, ["infusion"], rungs=(0.25, 0.5, 1.0))
    assert plan.train_steps["infusion"] == 38


def test_a_model_without_a_table_gets_the_counts_and_a_line_saying_how_to_measure_one(tmp_path: Path) -> None:
    from benchmark.plan import render

    plan = _toy_plan(tmp_path, ["textual-inversion"], model="my-model")
    assert plan.estimate == {} and plan.costs_source == ""
    assert plan.stages["trainings"].todo == 1  # still counted
    last = render(plan).splitlines()[-1]
    assert last.startswith("no cost table for model 'my-model'")
    assert "`overfit-bench bench costs --suite toy`" in last


def test_the_estimate_adds_fits_jobs_and_setup_and_spreads_jobs_over_workers(tmp_path: Path) -> None:
    from benchmark.plan import estimate
    from benchmark.settings import settings_for

    plan = _toy_plan(tmp_path, ["textual-inversion"])
    table = {
        "unet_call_s": 1.0, "unet_call_batch": 32, "lfd_rows_per_s": 100.0, "feature_images_per_s": 1000.0,
        "train_step_s": {"*": 0.1}, "fit_s": {"*": 2.0}, "job_s": 5.0, "setup_s": 7.0,
    }  # fmt: skip
    settings = settings_for("toy")
    one = estimate(plan, table, settings, workers=1)
    sec = one["seconds"]
    assert sec["train"] == pytest.approx(150 * 0.1 + 2.0)
    assert sec["other"] == 5.0 * plan.jobs_todo and plan.jobs_todo == 1
    assert one["wall_seconds"] == pytest.approx(7.0 + sec["total"])
    # with the shared stages' counts (here all the generation, LFD and features) done first, in one
    # process, and the rest (training, the jobs' remainder) spread over 2 workers that each load the model
    two = estimate(plan, table, settings, workers=2, shared=dict(plan.stages))
    spread = sec["train"] + sec["other"]
    assert two["wall_seconds"] == pytest.approx(2 * 7.0 + (sec["total"] - spread) + spread / 2)


def test_bench_suite_is_for_costs_only(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmark.cli import main

    assert main(["bench", "train", "--suite", "toy"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--suite applies to `bench costs` only" in err[0]


def test_the_toy_table_file_is_packaged() -> None:
    text = Path(__file__).resolve().parents[1].joinpath("pyproject.toml").read_text(encoding="utf-8")
    assert "perf/costs*.json" in text
    table = json.loads(
        Path(__file__).resolve().parents[1].joinpath("benchmark/perf/costs-toy.json").read_text()
    )
    assert table["models"] == ["toy"]


def test_a_method_the_table_has_no_figure_for_is_named_not_priced_as_nan(tmp_path: Path) -> None:
    import math

    from benchmark.plan import estimate, load_costs, render
    from benchmark.settings import settings_for

    plan = _toy_plan(tmp_path, ["textual-inversion", "infusion-kv"])
    costs = load_costs(Path(__file__).resolve().parents[1] / "benchmark" / "perf" / "costs-toy.json")
    costs["train_step_s"] = {k: v for k, v in costs["train_step_s"].items() if k != "infusion-kv"}
    plan.estimate = estimate(plan, costs, settings_for("toy"), workers=2)
    assert plan.estimate["unpriced"] == ["infusion-kv"]
    assert math.isfinite(plan.estimate["seconds"]["train"]) and plan.estimate["seconds"]["train"] > 0
    assert "training not priced (the table has no figure): infusion-kv" in render(plan)


def test_stage_flops_table_states_each_stage_against_the_measured_peak() -> None:
    """The committed stage profile (python -m benchmark.perf.stage_flops): every stage's share of peak is its
    FLOPs over its CPU seconds over the measured peak, and the rendered table says so."""
    import json

    from benchmark.perf.stage_flops import OUT, render

    table = json.loads(OUT.read_text())
    assert table["peak_gflops"] > 0 and table["stages"]
    for row in table["stages"].values():
        rate = row["flops"] / row["cpu_s"] / 1e9
        assert row["gflops_per_s"] == pytest.approx(rate)
        assert row["share_of_peak"] == pytest.approx(rate / table["peak_gflops"])
    text = render(table)
    assert f"{table['peak_gflops']:.1f} GFLOP/s" in text
    assert text.count("\n| ") == len(table["stages"]) + 1  # a header row and one row per stage
