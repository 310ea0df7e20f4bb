"""The typed schemas: the exported manifest JSON Schema is current and agrees with the loader, errors
stay one line naming file and field, and rows pass through the row model unchanged."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, get_args

import pytest

from benchmark.data import schema
from benchmark.data.errors import ManifestError
from benchmark.data.manifest import available_suites, parse_manifest
from benchmark.results import make_row
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
