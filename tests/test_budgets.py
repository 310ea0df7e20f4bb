"""Suite budgets live in evaluation profiles (the toy suite's in the toy profile); recipes keep upstream
budgets only. One lookup, :func:`benchmark.budgets.budget_config`, gives every method its budget."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

import baselines
from baselines.config import Recipe
from baselines.contract import MethodHandle
from baselines.lora import DreamBoothLoRA
from benchmark.budgets import budget_config, profile_budgets
from benchmark.context import RunContext
from benchmark.data.manifest import load_manifest
from benchmark.settings import ProfileError, load_profile, settings_for, settings_from_profile
from benchmark.stages import method_config, method_identity, row_config_hash

ROOT = Path(__file__).resolve().parents[1]


class OutsideLoRA(DreamBoothLoRA):
    """An outside method: a class of its own with a recipe that has no toy budget."""

    name: ClassVar[str] = "outside-lora"

    def __init__(self, budgets: dict[str, dict[str, Any]] | None = None) -> None:
        super().__init__()
        upstream = DreamBoothLoRA().recipe
        self._recipe = Recipe(
            name="outside-lora",
            description="test",
            source=upstream.source,
            deviations=(),
            defaults=upstream.defaults,
            budgets=budgets or {},
        )


def _toy_context(settings: Any = None) -> RunContext:
    manifest = load_manifest("toy")
    suite = SimpleNamespace(name=manifest.name, version=manifest.version)
    return RunContext(suite=suite, settings=settings or settings_for("toy"), cache=None, run_dir=Path("."))  # type: ignore[arg-type]


def test_every_committed_toy_row_keeps_its_config_hash() -> None:
    """The toy budgets moved from the recipes to the profile without changing a resolved config: the
    hashes the committed rows carry are the hashes the budgets give now."""
    ctx = _toy_context()
    rows = [json.loads(line) for line in (ROOT / "leaderboard/results/toy.jsonl").read_text().splitlines()]
    committed = {(r["method"], r["config_hash"]) for r in rows if r["rung"] in (None, 1.0)}
    now = set()
    for name in baselines.list_methods():
        handle = baselines.load_method(name)
        now.add((name, row_config_hash(ctx, method_identity(ctx, handle))))
    assert now == {c for c in committed if c[0] != "real"}  # `real` is the reference photos, no method


def test_built_in_methods_get_the_profile_default_and_their_own_entry() -> None:
    settings = settings_for("toy")
    lora = budget_config(settings, baselines.load_method("dreambooth-lora"))
    assert (lora["budget"], lora["steps"], lora["batch_size"], lora["resolution"]) == ("toy", 100, 2, None)
    assert lora["inference"] == {"steps": 25, "guidance": 5.0, "eta": 0.0} and lora["lr"] == 1e-4
    ti = budget_config(settings, baselines.load_method("textual-inversion"))
    assert (ti["steps"], ti["batch_size"], ti["checkpoint_every"], ti["mixed_precision"]) == (
        300,
        4,
        100,
        "no",
    )
    base = budget_config(settings, baselines.load_method("base"))
    assert base == {"budget": "toy", "inference": {"steps": 25, "guidance": 5.0, "eta": 0.0}}
    # the profile's tuned method_overrides apply on top of the budget
    tuned = method_config(_toy_context(settings), baselines.load_method("dreambooth-lora"))
    assert (tuned["steps"], tuned["lr"], tuned["hflip"], tuned["resolution"]) == (400, 0.002, 0.0, None)


def test_an_outside_method_without_a_toy_budget_gets_the_profile_default() -> None:
    settings = settings_for("toy")
    outside = MethodHandle(OutsideLoRA(), "outside-lora")
    cfg = budget_config(settings, outside)
    builtin = budget_config(settings, baselines.load_method("dreambooth-lora"))
    assert cfg == builtin  # the same recipe under the same default budget
    assert method_config(_toy_context(settings), outside)["hflip"] == 0.0  # '*' overrides reach it too
    # a recipe that ships its own toy budget keeps it (it replaces the profile's default)
    own = MethodHandle(OutsideLoRA({"toy": {"steps": 7, "rank": 2}}), "outside-lora")
    mine = budget_config(settings, own)
    assert (mine["steps"], mine["rank"], mine["resolution"], mine["budget"]) == (7, 2, 512, "toy")
    # a method without a recipe gets no budget: its config is its method_overrides
    bare = SimpleNamespace(name="bare", fit=lambda *a, **k: None, load=lambda *a: None, render=lambda *a: "")
    assert method_config(_toy_context(settings), MethodHandle(bare, "bare")) == {}


def test_a_profile_without_budgets_uses_those_of_the_profile_named_like_its_budget() -> None:
    smoke = settings_for("smoke")
    assert smoke.budget == "toy" and not smoke.budgets
    assert profile_budgets(smoke) == settings_for("toy").budgets == load_profile("toy")["budgets"]
    handle = baselines.load_method("custom-diffusion")
    assert budget_config(smoke, handle) == budget_config(settings_for("toy"), handle)
    assert budget_config(smoke, handle)["num_class_images"] == 8


def test_budgets_leave_the_settings_identity_and_recipe_budgets_still_resolve() -> None:
    toy = settings_for("toy")
    assert "budgets" not in toy.identity() and toy.replace(budgets={}).identity() == toy.identity()
    prior = budget_config(toy.replace(budget="prior", budgets={}), baselines.load_method("dreambooth"))
    assert (prior["budget"], prior["steps"], prior["prior_preservation"]) == ("prior", 800, True)
    sd15 = budget_config(settings_for("dreambench"), baselines.load_method("dreambooth"))
    assert sd15 == baselines.get_method("dreambooth").resolve_config()


def test_bad_budgets_are_named() -> None:
    toy = load_profile("toy")
    with pytest.raises(ProfileError, match=r"^toy.json.budgets.\*: expected an object, got 3$"):
        settings_from_profile({**toy, "budgets": {"*": 3}}, "toy.json")
    with pytest.raises(ProfileError, match=r"p.budgets: set 'budget'"):
        settings_from_profile({**toy, "budget": None}, "p")
    bad = settings_for("toy").replace(budgets={"*": {}, "dreambooth": {"stepz": 3}})
    with pytest.raises(ValueError, match=r"budgets\['dreambooth'\].*unknown key 'stepz'; did you mean steps"):
        budget_config(bad, baselines.load_method("dreambooth"))
    nowhere = settings_for("toy").replace(budget="huge", budgets={})
    with pytest.raises(ValueError, match=r"budget 'huge' is neither in the evaluation profile nor in"):
        budget_config(nowhere, baselines.load_method("dreambooth"))


def test_tuning_writes_its_choices_into_the_profile_whose_budgets_it_starts_from(tmp_path: Path) -> None:
    from benchmark.budgets import profile_file
    from benchmark.toy.tuning import TUNING_SUITE, apply_choices, profile_of_tuning_suite

    path = profile_of_tuning_suite()
    assert path == profile_file("toy") and path.is_file()
    assert json.loads(path.read_text())["budgets"] == settings_for(TUNING_SUITE).budgets
    copy = tmp_path / "toy.json"
    copy.write_text(path.read_text())
    current = settings_for(TUNING_SUITE).method_overrides["oft"]
    apply_choices([{"method": "oft", "choice": {"lr": current["lr"], "steps": current["steps"]}}], copy)
    assert copy.read_bytes() == path.read_bytes()  # re-applying the committed choice changes nothing
    apply_choices([{"method": "oft", "choice": {"lr": 0.01, "steps": 200}}], copy)
    data = json.loads(copy.read_text())
    assert data["method_overrides"]["oft"] == {"lr": 0.01, "steps": 200, "checkpoint_every": 100}
    assert data["budgets"] == load_profile("toy")["budgets"]  # the budgets stay where they are
    tuned = method_config(_toy_context(settings_from_profile(data)), baselines.load_method("oft"))
    assert (tuned["lr"], tuned["steps"], tuned["batch_size"], tuned["budget"]) == (0.01, 200, 2, "toy")
