"""The typed schemas: the exported manifest and profile JSON Schemas are current and agree with the
loaders and the shipped files, shipped recipes pass the recipe model, errors stay one line naming file and field, and rows pass through the row
model unchanged."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any, get_args

import pytest

from baselines.config import load_recipe
from baselines.recipe_schema import RecipeError, validate_recipe
from benchmark import profile_schema
from benchmark.data import schema
from benchmark.data.errors import ManifestError
from benchmark.data.manifest import available_suites, parse_manifest
from benchmark.results import make_row
from benchmark.settings import (
    FULL_LADDER,
    BackboneSpec,
    EvalSettings,
    ProfileError,
    load_profile,
    parse_rungs,
    settings_from_profile,
)
from benchmark.toy.config import PRESETS, BaseModelConfig
from benchmark.toy.world import CAPTION_ORDERS
from leaderboard.row_schema import RowModel
from leaderboard.rows import REQUIRED_FIELDS, RowError, parse_row, read_jsonl

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "data_manifests"


def _shipped(name: str) -> dict[str, Any]:
    return json.loads((MANIFESTS / f"{name}.json").read_text(encoding="utf-8"))


def test_committed_json_schema_is_current() -> None:
    committed = schema.SCHEMA_FILE.read_text(encoding="utf-8")
    assert committed == schema.schema_text(), "stale: run python -m benchmark.data.schema --write"
    assert schema.main(["--check"]) == 0


def test_shipped_manifests_validate_against_the_exported_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json.loads(schema.SCHEMA_FILE.read_text(encoding="utf-8")))
    names = available_suites()
    assert {"dreambench", "customconcept101", "smoke", "toy"} <= set(names)
    for name in names:
        assert list(validator.iter_errors(_shipped(name))) == [], name
    bad = _shipped("dreambench")
    bad["concepts"][0]["images"][0]["sha256"] = "XYZ"
    assert not validator.is_valid(bad)
    bad = _shipped("smoke")
    bad["colour"] = "blue"
    assert not validator.is_valid(bad)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(version=True), "dreambench.json: field 'version': expected an integer, got True"),
        (
            lambda m: m["concepts"][3].update(kind=None),
            "field 'concepts[3].kind': expected one of ['live', 'object']",
        ),
        (
            lambda m: m["concepts"][1]["images"].clear(),
            "field 'concepts[1].images': expected a non-empty list, got []",
        ),
        (lambda m: m["concepts"][0].update(colour=1), "field 'concepts[0]': unknown field(s) ['colour']"),
        (
            lambda m: m["source"].update(url_pattern="x"),
            "field 'source.url_pattern': expected a pattern with a {path}",
        ),
        (
            lambda m: m["source"].update(type="ftp"),
            "field 'source.type': expected one of ['pinned', 'imported',",
        ),
        (
            lambda m: m["lfd_prompts"].append(m["lfd_prompts"][0]),
            "field 'lfd_prompts[20]': expected no duplicates",
        ),
        (
            lambda m: m["files"][0].update(path="a//b"),
            "field 'files[0].path': expected a relative POSIX path",
        ),
    ],
)
def test_manifest_errors_are_one_line_naming_file_and_field(edit, message: str) -> None:  # type: ignore[no-untyped-def]
    raw = _shipped("dreambench")
    edit(raw)
    with pytest.raises(ManifestError) as info:
        parse_manifest(raw, origin="dreambench.json")
    text = str(info.value)
    assert "\n" not in text and text.startswith("dreambench.json: ")
    assert message in text


def test_relative_path_pattern_matches_the_rule() -> None:
    import re

    rule = re.compile(schema.RELPATH_PATTERN)
    for good in ("a", "a/b.jpg", ".hidden/x", "a/...", "..x/y", "dataset/dog/00.jpg"):
        assert rule.fullmatch(good), good
    for bad in ("", "/a", "a/", "a//b", ".", "..", "a/./b", "a/../b", "../a", "a\\b", "a/.."):
        assert not rule.fullmatch(bad), bad


def test_derived_and_generated_documents_are_typed() -> None:
    smoke = schema.validate_document(_shipped("smoke"), "smoke.json")
    assert isinstance(smoke, schema.DerivedManifest) and smoke.source.suite == "dreambench"
    toy = schema.validate_document(_shipped("toy"), "toy.json")
    assert (
        isinstance(toy, schema.GeneratedManifest)
        and toy.source.generator == "benchmark.toy.suite:build_suite"
    )
    raw = copy.deepcopy(_shipped("smoke"))
    raw["seeds"] = [0, 0]
    with pytest.raises(
        ManifestError, match=r"smoke\.json: field 'images_per_prompt': expected the number of distinct"
    ):
        parse_manifest(raw, origin="smoke.json")


def test_toy_config_literals_follow_the_world_and_errors_are_one_line() -> None:
    assert get_args(BaseModelConfig.model_fields["caption_order"].annotation) == CAPTION_ORDERS
    with pytest.raises(
        ValueError, match=r"^BaseModelConfig\.pattern_prob: expected a number <= 1\.0, got 1\.5$"
    ):
        BaseModelConfig(pattern_prob=1.5)
    with pytest.raises(
        ValueError, match=r"^BaseModelConfig\.vae_channels\[1\]: expected an integer, got '64'$"
    ):
        PRESETS["default"].replace(vae_channels=[32, "64"])
    assert BaseModelConfig.from_dict(json.loads(json.dumps(PRESETS["tiny"].to_dict()))) == PRESETS["tiny"]
    assert list(PRESETS["default"].to_dict())[:3] == ["seed", "image_size", "vae_factor"]  # field order kept


def test_committed_rows_round_trip_byte_identically() -> None:
    files = sorted((ROOT / "leaderboard" / "results").glob("*.jsonl"))
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        rows = read_jsonl(path)
        assert len(rows) == len(text.splitlines())
        assert "".join(json.dumps(r.to_dict(), sort_keys=True) + "\n" for r in rows) == text


def test_make_row_writes_what_the_reader_reads() -> None:
    row = make_row(
        suite="toy",
        suite_version=2,
        method="lora",
        method_version="2024-06",
        concept="red-star",
        metric="lfd",
        value=3,
        n=4,
        backbone="toy-clip",
        config_hash="abc",
        rung=2,
    )
    assert list(row) == [*REQUIRED_FIELDS, "extra"]
    assert row["value"] == 3.0 and isinstance(row["value"], float) and row["rung"] == 2.0
    assert parse_row(json.loads(json.dumps(row)), "x:1").to_dict() == row
    assert RowModel.model_validate(row).value == 3.0
    with pytest.raises(RowError, match=r"^lora/red-star/lfd: field 'n': expected an integer >= 1, got 0$"):
        make_row(**{**_args(), "n": 0})


def _args() -> dict[str, Any]:
    return {
        "suite": "toy",
        "suite_version": 2,
        "method": "lora",
        "method_version": 1,
        "concept": "red-star",
        "metric": "lfd",
        "value": 0.5,
        "n": 4,
        "backbone": "toy-clip",
        "config_hash": "abc",
    }


# ----------------------------------------------------------------------------------------------------
# Evaluation profiles


def _shipped_profiles() -> dict[str, dict[str, Any]]:
    """Every profile the package ships: the named ones and the manifests' inline ones."""
    out = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in (MANIFESTS / "profiles").glob("*.json")}
    for name in available_suites():
        evaluation = _shipped(name).get("evaluation")
        if isinstance(evaluation, dict):
            out[f"{name}.json: evaluation"] = evaluation
    return out


def test_committed_profile_schema_is_current() -> None:
    committed = profile_schema.SCHEMA_FILE.read_text(encoding="utf-8")
    assert committed == profile_schema.schema_text(), "stale: run python -m benchmark.profile_schema --write"
    assert profile_schema.main(["--check"]) == 0


def test_shipped_profiles_validate_against_the_exported_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(
        json.loads(profile_schema.SCHEMA_FILE.read_text(encoding="utf-8"))
    )
    profiles = _shipped_profiles()
    assert {"toy.json", "sd15.json", "smoke.json: evaluation", "sd15-check.json: evaluation"} <= set(profiles)
    for where, profile in profiles.items():
        assert list(validator.iter_errors(profile)) == [], where
        assert settings_from_profile(profile, where).extractors  # and the loader agrees
    toy = profiles["toy.json"]
    for bad in (
        {**toy, "steps": "12"},
        {**toy, "colour": 1},
        {**toy, "rungs": [-1]},
        {**toy, "guidance": True},
    ):
        assert not validator.is_valid(bad)


def test_profile_fields_are_the_settings_fields() -> None:
    fields = {f.name for f in dataclasses.fields(EvalSettings)}
    assert set(profile_schema.ProfileModel.model_fields) == fields | {"description"}
    assert set(profile_schema.ExtractorModel.model_fields) == {
        f.name for f in dataclasses.fields(BackboneSpec)
    }


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p.update(steps=0), "p.json.steps: expected an integer >= 1, got 0"),
        (lambda p: p.update(guidance="5"), "p.json.guidance: expected a number, got '5'"),
        (lambda p: p.update(colour=1), "p.json: unknown field(s) ['colour']; known: ['budget', "),
        (lambda p: p.pop("model"), "p.json: missing field(s) ['model']"),
        (lambda p: p.update(extractors={}), "p.json.extractors: expected a non-empty object, got {}"),
        (lambda p: p["extractors"].update(ssl=3), "p.json.extractors.ssl: expected an object, got 3"),
        (
            lambda p: p["extractors"]["dino"].update(seed=1.5),
            "p.json.extractors.dino.seed: expected an integer",
        ),
        (
            lambda p: p.update(rungs="a"),
            "p.json.rungs: expected positive numbers (e.g. 0.5,1,2) or 'full', got",
        ),
        (lambda p: p.update(metrics=[1]), "p.json.metrics[0]: expected a string, got 1"),
        (lambda p: p.update(model_loader="x"), "p.json.model_loader: expected an import path"),
        (lambda p: p.update(lfd_weighting="l2"), "p.json.lfd_weighting: expected one of ['eps', 'score']"),
    ],
)
def test_profile_errors_are_one_line_naming_file_and_field(edit, message: str) -> None:  # type: ignore[no-untyped-def]
    profile = copy.deepcopy(load_profile("toy"))
    edit(profile)
    with pytest.raises(ProfileError) as err:
        settings_from_profile(profile, "p.json")
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_a_profile_builds_the_settings_it_always_built() -> None:
    settings = settings_from_profile(
        {**load_profile("toy"), "guidance": 5, "rungs": "2,0.5", "metrics": ["dino"]}
    )
    assert settings.guidance == 5.0 and isinstance(settings.guidance, float)
    assert settings.rungs == (0.5, 1.0, 2.0) and settings.metrics == ("dino",)
    assert settings.extractors["clip"] == BackboneSpec(
        kind="clip", name="toy-contrastive", weights="toy", loader="benchmark.toy.rulers:load_ruler"
    )
    assert settings.lfd_seed == 0 and settings.model_revision is None  # unset: the dataclass defaults
    assert parse_rungs("full") == FULL_LADDER


# ----------------------------------------------------------------------------------------------------
# Recipes


def test_every_shipped_recipe_passes_the_recipe_model() -> None:
    import yaml

    files = sorted((ROOT / "baselines" / "recipes").glob("*.yaml"))
    assert len(files) >= 9
    for path in files:
        doc = validate_recipe(yaml.safe_load(path.read_text(encoding="utf-8")), path.name)
        recipe = load_recipe(path.name)
        assert recipe.name == doc.name == path.stem and recipe.defaults == doc.defaults
        assert recipe.budgets == (doc.budgets or {}) and all(d == d.strip() for d in recipe.deviations)
    assert list(load_recipe("dreambooth.yaml").budgets) == ["prior"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r.pop("source"), "r.yaml: missing field 'source'"),
        (lambda r: r.update(defaults=3), "r.yaml: field 'defaults': expected a mapping, got 3"),
        (
            lambda r: r.update(budgets={"prior": [1]}),
            "r.yaml: field 'budgets.prior': expected a mapping, got [1]",
        ),
        (lambda r: r.update(name=""), "r.yaml: field 'name': expected a non-empty string, got ''"),
        (lambda r: r.update(deviations="none"), "r.yaml: field 'deviations': expected a list, got 'none'"),
        (lambda r: r.update(budget={}), "r.yaml: unknown field 'budget'; expected only ['name', "),
    ],
)
def test_recipe_errors_are_one_line_naming_file_and_field(edit, message: str) -> None:  # type: ignore[no-untyped-def]
    import yaml

    recipe = yaml.safe_load((ROOT / "baselines" / "recipes" / "dreambooth.yaml").read_text(encoding="utf-8"))
    edit(recipe)
    with pytest.raises(RecipeError) as err:
        validate_recipe(recipe, "r.yaml")
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
    with pytest.raises(RecipeError, match=r"^r.yaml: field '<top>': expected a mapping, got \[1\]$"):
        validate_recipe([1], "r.yaml")
