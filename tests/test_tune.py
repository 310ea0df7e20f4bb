"""Tuned budgets (issue 26): ``overfit-bench tune`` stores a method's chosen budget in the cache; the one
budget lookup applies it after the profile's budgets and before its ``method_overrides``; ``score`` and
``run`` say which budget each method trains with and where it came from; rows record it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import baselines
from benchmark.budget_report import budget_line, budget_source, row_budget
from benchmark.cache import StageCache
from benchmark.cli import main
from benchmark.commands.tune import store_choice
from benchmark.context import RunContext
from benchmark.settings import settings_for
from benchmark.stages import method_config, method_identity
from benchmark.toy.tuning import LR_GRIDS, lr_grid
from benchmark.tuned import (
    code_hash,
    tuned_budget,
    tuned_file,
    tuned_key,
    tuning_suite_of,
)
from tests.test_budgets import OutsideLoRA

OUTSIDE = "tests.tuned_method:RankEightLoRA"


def _ctx(cache: Path, suite: str = "toy") -> RunContext:
    from benchmark.data.manifest import load_manifest

    manifest = load_manifest(suite)
    return RunContext(
        suite=SimpleNamespace(name=manifest.name, version=manifest.version),
        settings=settings_for(suite),
        cache=StageCache(cache),
        run_dir=cache / "run",
    )


def _sweep_result(lr: float, steps: int) -> dict[str, Any]:
    """What :func:`benchmark.toy.tuning.sweep` returns, for a choice of ``lr`` and ``steps``."""
    return {
        "method": OUTSIDE,
        "recipe": {"lr": 1e-4, "steps": 100},
        "ladder": [25, 50, 100, 200, 400],
        "lrs": [lr],
        "identity": {f"{lr:g}": {"400": 0.25}},
        "cells": [],
        "choice": {"lr": lr, "steps": steps, "identity": 0.25, "plateau": 0.25},
    }


def _store(ctx: RunContext, handle: Any, lr: float = 2e-3, steps: int = 400) -> Path:
    return store_choice(
        ctx.cache.root,
        ctx.suite.name,
        ctx.suite.version,
        ctx.settings,
        handle,
        _sweep_result(lr, steps),
        tuning_suite="toy-tuning",
        given_as=OUTSIDE,
    )


def test_a_stored_tuned_budget_takes_precedence_over_the_profile_default(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    handle = baselines.load_method(OUTSIDE)
    before = method_config(ctx, handle)
    assert (before["lr"], before["steps"], before["rank"], before["lora_alpha"]) == (1e-4, 100, 8, 8)
    assert budget_source(ctx, handle)["source"] == "default" and tuned_budget(ctx, handle) is None
    line = budget_line(ctx, handle, given_as=OUTSIDE)
    assert line is not None and "WARNING: not tuned" in line
    assert f"overfit-bench tune --suite toy --method {OUTSIDE}" in line

    path = _store(ctx, handle)
    assert path.parent == tmp_path / "tuned" / "toy@2"
    assert path.name == tuned_key(ctx.settings, "toy", 2, handle) + ".json"
    after = method_config(ctx, handle)
    assert (after["lr"], after["steps"], after["checkpoint_every"]) == (
        2e-3,
        400,
        100,
    )  # every rung, 1/4 included, resumes
    assert after["rank"] == 8 and after["batch_size"] == before["batch_size"]  # only lr/steps/checkpoints
    # a different training, so a different identity (cache keys and the rows' config hash)
    ident_before = method_identity(_ctx(tmp_path / "empty"), handle)
    assert method_identity(ctx, handle)["config_hash"] != ident_before["config_hash"]
    # trajectory rungs are multiples of the tuned steps
    assert method_config(ctx, handle.with_steps(200))["steps"] == 200
    assert method_config(ctx, handle.with_steps(200))["lr"] == 2e-3
    info = budget_source(ctx, handle)
    assert (info["source"], info["lr"], info["steps"], info["path"]) == ("tuned", 2e-3, 400, str(path))
    assert row_budget(ctx, handle.with_steps(100)) == {"source": "tuned", "lr": 2e-3, "steps": 400}
    line = budget_line(ctx, handle)
    assert (
        line
        == f"budget rank8-lora: lr 0.002, 400 steps (tuned on toy-tuning by `overfit-bench tune`: {path})"
    )
    # another suite, another cache: not found
    assert tuned_budget(_ctx(tmp_path, "toy-tuning"), handle) is None


def test_the_store_is_keyed_by_the_method_code_and_config(tmp_path: Path) -> None:
    settings = settings_for("toy")
    lora8 = baselines.load_method(OUTSIDE)
    outside = baselines.load_method("tests.test_budgets:OutsideLoRA")
    keys = {
        tuned_key(settings, "toy", 2, h) for h in (lora8, outside, baselines.load_method("dreambooth-lora"))
    }
    assert len(keys) == 3  # rank 8 vs rank 4 configs, different names and classes
    assert tuned_key(settings, "toy", 2, lora8) == tuned_key(settings, "toy", 2, lora8.with_steps(7))
    assert tuned_key(settings, "toy", 2, lora8) != tuned_key(settings, "toy", 3, lora8)
    assert code_hash(lora8) != code_hash(baselines.load_method("dreambooth-lora"))  # its own file too
    assert tuned_file(tmp_path, "toy", 2, "k") == tmp_path / "tuned" / "toy@2" / "k.json"


def test_a_profile_tuned_built_in_and_an_own_budget_never_use_a_stored_one(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    lora = baselines.load_method("dreambooth-lora")
    committed = method_config(ctx, lora)
    _store(ctx, lora, lr=8e-3, steps=25)  # as if someone stored one for the built-in
    assert method_config(ctx, lora) == committed  # the profile's method_overrides decide
    assert budget_source(ctx, lora)["source"] == "profile-tuned"
    assert (
        budget_line(ctx, lora)
        == "budget dreambooth-lora: lr 0.002, 400 steps (the profile's tuned method_overrides)"
    )

    own = {"toy": {"steps": 30, "lr": 3e-3}}

    class OwnBudget(OutsideLoRA):
        def __init__(self) -> None:
            super().__init__(budgets=own)

    handle = baselines.contract.MethodHandle(OwnBudget(), "own")
    _store(ctx, handle, lr=8e-3, steps=25)
    cfg = method_config(ctx, handle)
    assert (cfg["lr"], cfg["steps"]) == (3e-3, 30) and budget_source(ctx, handle)["source"] == "recipe"
    assert row_budget(ctx, baselines.load_method("base")) is None  # trains nothing


def test_the_grid_of_an_outside_method() -> None:
    assert lr_grid(baselines.load_method(OUTSIDE), 1e-4) == LR_GRIDS["dreambooth-lora"]  # derives from it
    assert lr_grid(baselines.load_method("dora"), 1e-4) == LR_GRIDS["dora"]
    prefix = baselines.load_method("tests.external_method:PrefixMethod")
    assert lr_grid(prefix, 1e-4) == (2.5e-5, 1e-4, 4e-4)  # the budget's rate x 1/4, 1, 4


def test_a_suite_without_tuning_concepts_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert tuning_suite_of("toy") == "toy-tuning"
    with pytest.raises(ValueError, match="no tuning concepts"):
        tuning_suite_of("smoke")
    assert main(["tune", "--suite", "smoke", "--method", OUTSIDE]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "overfit-bench tune: error: suite 'smoke' has no tuning concepts (no suite 'smoke-tuning'); "
        "tuning is offered for: toy"
    ]


def test_tune_leaves_what_it_must_not_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = ["--cache", str(tmp_path / "c")]
    assert main(["tune", "--method", "dreambooth-lora", *cache]) == 0
    out = capsys.readouterr().out
    assert "lr 0.002 and 400 steps are set by suite 'toy''s profile" in out and "nothing to tune" in out
    assert main(["tune", "--method", "base", *cache]) == 2
    assert "trains nothing" in capsys.readouterr().err
    assert main(["tune", "--method", OUTSIDE, "--lrs", "0.002,x", *cache]) == 2
    assert "--lrs: expected comma-separated positive numbers" in capsys.readouterr().err
    assert not (tmp_path / "c" / "tuned").exists()


def test_tune_runs_the_protocol_on_the_tuning_concepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One learning rate and one tiny rung (1 step): too short to learn, so nothing is stored and the exit
    code says so; the table is printed and the fits are cached for a rerun."""
    args = ["tune", "--method", OUTSIDE, "--lrs", "0.002", "--rungs", "0.01", "--no-progress"]
    args += ["--cache", str(tmp_path / "c"), "--data-root", str(tmp_path / "data")]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "tuning protocol of rank8-lora on toy-tuning, the tuning concepts of suite 'toy':" in out
    assert "| lr | 1 |" in out and "| 0.002 | 0.000 |" in out
    assert "showed its concept at no learning rate tried (0.002) and no budget was stored" in out
    assert not (tmp_path / "c" / "tuned").exists()
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["toy-tuning"]  # never the evaluated ones
    fits = [p for p in (tmp_path / "c" / "fit").iterdir() if not p.name.startswith(".")]
    assert len(fits) == 2  # tuning concepts x rungs
