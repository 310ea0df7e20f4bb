"""Shipped manifests: contents, agreement with the upstream copies, and rejection of malformed manifests."""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from benchmark.data import build
from benchmark.data.errors import ManifestError
from benchmark.data.manifest import available_suites, load_manifest, mentions, parse_manifest

DATA = os.environ.get("OVERFIT_BENCH_DATA")
needs_data = pytest.mark.skipif(
    not DATA,
    reason="OVERFIT_BENCH_DATA is not set (CI sets it to ../shared/datasets); upstream copy not available",
)
DREAMBENCH_COMMIT = "4f887af7970a06fc0cd3adaa1d0b368547d6a1d0"
MANIFESTS = Path(__file__).resolve().parents[1] / "data_manifests"
LIVE = {"cat", "cat2", "dog", "dog2", "dog3", "dog5", "dog6", "dog7", "dog8"}


def test_shipped_suites() -> None:
    assert available_suites() == [
        "customconcept101",
        "dreambench",
        "sd15-check",
        "smoke",
        "toy",
        "toy-tuning",
    ]
    for name in available_suites():
        m = load_manifest(name)
        assert m.name == name
        assert isinstance(m.version, int) and m.version >= 1
        assert re.fullmatch(r"[0-9a-f]{64}", m.sha256)


def test_dreambench_manifest_contents() -> None:
    m = load_manifest("dreambench")
    assert len(m.concepts) == 30
    assert {c.id for c in m.concepts if c.kind == "live"} == LIVE
    assert sum(c.kind == "object" for c in m.concepts) == 21
    assert len({c.class_noun for c in m.concepts}) == 15
    assert len(m.image_entries()) == 158
    assert all(4 <= len(c.images or ()) <= 6 for c in m.concepts)
    assert m.source["commit"] == DREAMBENCH_COMMIT
    assert m.source_type == "pinned"
    assert m.seeds == (0, 1, 2, 3) and m.images_per_prompt == 4
    assert m.license["spdx"] == "CC-BY-4.0" and "Unsplash" in m.license["name"]
    assert {f.path for f in m.files} >= {"LICENSE.md", "dataset/references_and_licenses.txt"}
    assert m.license["attribution_file"] == "dataset/references_and_licenses.txt"


def test_dreambench_prompt_lists_follow_upstream_structure() -> None:
    m = load_manifest("dreambench")
    obj, live = m.prompt_sets["object"], m.prompt_sets["live"]
    assert len(obj) == len(live) == 25
    assert obj[:10] == live[:10] and obj[20:] == live[20:]  # items 1-10 and 21-25 shared
    assert not set(obj[10:20]) & set(live[10:20])  # items 11-20 differ
    assert obj[0] == "a {concept} in the jungle"
    assert obj[12] == "a {concept} with the Eiffel Tower in the background"
    assert live[13] == "a {concept} wearing a black top hat and a monocle"
    assert obj[24] == live[24] == "a cube shaped {concept}"
    for c in m.concepts:
        assert c.prompt_set == c.kind
    for prompt in obj + live:
        assert prompt.count("{concept}") == 1 and prompt.count("{") == 1


def test_dreambench_url_pattern_pins_the_commit() -> None:
    m = load_manifest("dreambench")
    entry = m.concept("dog").images[0]  # type: ignore[index]
    assert (
        m.url(entry)
        == f"https://raw.githubusercontent.com/google/dreambooth/{DREAMBENCH_COMMIT}/dataset/dog/00.jpg"
    )


@pytest.mark.parametrize("name", ["dreambench", "customconcept101"])
def test_lfd_and_class_prompts(name: str) -> None:
    m = load_manifest(name)
    assert 15 <= len(m.lfd_prompts) <= 25
    nouns = {c.class_noun for c in m.concepts}
    for prompt in m.lfd_prompts:
        assert "{" not in prompt
        assert not [n for n in nouns if mentions(prompt, n)], prompt
    assert m.class_prompts and all(p.count("{class}") == 1 for p in m.class_prompts)


def test_same_lfd_prompts_in_both_real_suites() -> None:
    assert load_manifest("dreambench").lfd_prompts == load_manifest("customconcept101").lfd_prompts


def test_mentions_matches_whole_words_and_plurals() -> None:
    assert mentions("two dogs on a sofa", "dog")
    assert mentions("a Stuffed  Animal", "stuffed animal")
    assert mentions("glasses", "glasses") and not mentions("a stained glass window", "glasses")
    assert not mentions("a locomotive", "car") and not mentions("orbiting", "ring")


def test_smoke_is_a_dreambench_subset() -> None:
    smoke, db = load_manifest("smoke"), load_manifest("dreambench")
    assert [c.id for c in smoke.concepts] == ["dog", "backpack"]
    assert [c.kind for c in smoke.concepts] == ["live", "object"]
    assert smoke.data_dir == "dreambench" and smoke.derived_from == "dreambench@1"
    for c in smoke.concepts:
        assert smoke.prompt_sets[c.prompt_set] == db.prompt_sets[c.prompt_set][:2]
        assert c.images == db.concept(c.id).images
    assert smoke.seeds == (0,) and smoke.images_per_prompt == 1
    assert smoke.files == db.files
    assert smoke.sha256 != db.sha256


def test_customconcept101_manifest_contents() -> None:
    m = load_manifest("customconcept101")
    assert len(m.concepts) == 101
    assert len({c.id for c in m.concepts}) == 101
    assert m.source_type == "imported"
    assert all(c.images is None and c.image_dir == f"benchmark_dataset/{c.id}" for c in m.concepts)
    assert all(len(m.prompt_sets[c.prompt_set]) == 20 for c in m.concepts)
    assert {c.id for c in m.concepts if c.kind == "live"} == {
        c.id for c in m.concepts if c.id.startswith(("pet_", "person_"))
    }
    assert m.concept("pet_dog1").class_noun == "dog"
    assert m.concept("pet_dog1").upstream["instance_prompt"] == "photo of a <new1> dog"
    assert m.source["images"]["google_drive_id"]
    assert "verified.json" in m.source["images"]["checksums"]
    assert len(m.files) == 52  # dataset.json, dataset_multiconcept.json, 50 prompt files


@needs_data
def test_dreambench_manifest_matches_the_upstream_copy() -> None:
    src = Path(str(DATA)) / "dreambench"
    m = json.loads((MANIFESTS / "dreambench.json").read_text(encoding="utf-8"))
    fields = build.dreambench_fields(src)
    assert fields["prompt_sets"] == m["prompt_sets"]  # prompts exactly as upstream's file
    assert fields["concepts"] == m["concepts"]  # ids, classes, kinds, every photo's sha256 and size
    assert fields["files"] == m["files"]
    assert (src / "UPSTREAM_COMMIT").read_text().strip() == m["source"]["commit"]


@needs_data
def test_customconcept101_manifest_matches_the_upstream_copy() -> None:
    src = Path(str(DATA)) / "customconcept101"
    m = json.loads((MANIFESTS / "customconcept101.json").read_text(encoding="utf-8"))
    fields = build.customconcept101_fields(src)
    assert fields == {k: m[k] for k in fields}
    assert (src / "UPSTREAM_COMMIT").read_text().strip() == m["source"]["commit"]


def test_build_check_mode_reports_agreement(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not DATA:
        pytest.skip("OVERFIT_BENCH_DATA is not set (CI sets it to ../shared/datasets)")
    src = Path(DATA) / "dreambench"
    assert build.main(["dreambench", "--from", str(src), "--check"]) == 0
    edited = json.loads((MANIFESTS / "dreambench.json").read_text(encoding="utf-8"))
    edited["prompt_sets"]["object"][0] = "a {concept} in the desert"
    (tmp_path / "m.json").write_text(json.dumps(edited), encoding="utf-8")
    assert (
        build.main(["dreambench", "--from", str(src), "--manifest", str(tmp_path / "m.json"), "--check"]) == 1
    )
    assert "differs in prompt_sets" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------------
# Upstream prompt parsing


def test_convert_dreambench_prompt() -> None:
    assert build.convert_dreambench_prompt("a {0} {1} in the jungle") == "a {concept} in the jungle"
    assert build.convert_dreambench_prompt("a red {0} {1}") == "a red {concept}"
    with pytest.raises(ValueError, match="exactly one"):
        build.convert_dreambench_prompt("a {1} {0}")
    with pytest.raises(ValueError, match="unexpected braces"):
        build.convert_dreambench_prompt("a {0} {1} and {2}")


def test_parse_prompts_and_classes_minimal() -> None:
    text = "\n".join(
        [
            "Classes",
            "",
            "subject_name,class",
            "dog,dog",
            "vase,vase",
            "",
            "Object Prompts",
            "prompt_list = [",
            "'a {0} {1} in the jungle'.format(unique_token, class_token),",
            "'a red {0} {1}'.format(unique_token, class_token)",
            "]",
            "Live Subject Prompts",
            "prompt_list = [",
            "'a {0} {1} wearing a red hat'.format(unique_token, class_token)",
            "]",
        ]
    )
    classes, sets = build.parse_prompts_and_classes(text)
    assert classes == {"dog": "dog", "vase": "vase"}
    assert sets == {
        "object": ["a {concept} in the jungle", "a red {concept}"],
        "live": ["a {concept} wearing a red hat"],
    }
    with pytest.raises(ValueError, match=r"x\.txt:4: expected 'subject,class'"):
        build.parse_prompts_and_classes(text.replace("dog,dog", "dog dog"), "x.txt")
    with pytest.raises(ValueError, match="unexpected line in the object prompt list"):
        build.parse_prompts_and_classes(text.replace("'a red {0} {1}'", "a red {0} {1}"))


def test_customconcept101_prompt_file_rules(tmp_path: Path) -> None:
    (tmp_path / "ok.txt").write_text("photo of a {}. \n\n{} on a beach\n", encoding="utf-8")
    assert build.read_customconcept101_prompts(tmp_path / "ok.txt") == [
        "photo of a {concept}.",
        "{concept} on a beach",
    ]
    (tmp_path / "two.txt").write_text("{0} and {1}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"two\.txt:1: expected exactly one"):
        build.read_customconcept101_prompts(tmp_path / "two.txt")


# --------------------------------------------------------------------------------------------------
# Malformed manifests


def _minimal() -> dict[str, Any]:
    return {
        "schema": 1,
        "name": "mini",
        "version": 1,
        "source": {"type": "pinned"},
        "license": {"name": "test"},
        "prompt_sets": {"object": ["a {concept} on the beach"]},
        "concepts": [
            {
                "id": "vase",
                "class_noun": "vase",
                "kind": "object",
                "prompt_set": "object",
                "images": [{"path": "img/vase/00.jpg", "sha256": "a" * 64, "bytes": 10}],
            }
        ],
        "lfd_prompts": ["a horse in a field"],
        "class_prompts": ["a photo of a {class}"],
        "seeds": [0],
        "images_per_prompt": 1,
    }


def test_minimal_manifest_parses() -> None:
    m = parse_manifest(_minimal(), origin="mini.json")
    assert m.data_dir == "mini" and m.concepts[0].images[0].size == 10  # type: ignore[index]


def _set(obj: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    cur: Any = out
    keys = dotted.split(".")
    for k in keys[:-1]:
        cur = cur[int(k)] if k.isdigit() else cur[k]
    last = keys[-1]
    if value is _DELETE:
        del cur[last]
    elif last.isdigit():
        cur[int(last)] = value
    else:
        cur[last] = value
    return out


_DELETE = object()

BAD = [
    ("schema", 2, "field 'schema'"),
    ("name", _DELETE, "missing field 'name'"),
    ("version", "1", "field 'version': expected an integer"),
    ("source.type", "ftp", "field 'source.type'"),
    ("license", _DELETE, "missing field 'license'"),
    ("concepts.0.class_noun", "", "field 'concepts[0].class_noun'"),
    ("concepts.0.kind", "animal", "field 'concepts[0].kind'"),
    ("concepts.0.prompt_set", "live", "field 'concepts[0].prompt_set'"),
    ("concepts.0.images.0.sha256", "XYZ", "field 'concepts[0].images[0].sha256'"),
    ("concepts.0.images.0.bytes", 0, "field 'concepts[0].images[0].bytes'"),
    ("concepts.0.images.0.path", "/etc/passwd", "field 'concepts[0].images[0].path'"),
    ("concepts.0.images.0.path", "img/../../x.jpg", "without '.' or '..'"),
    ("prompt_sets.object.0", "a photo on the beach", "exactly {concept}"),
    ("prompt_sets.object.0", "a {concept} and a {concept}", "exactly {concept}"),
    ("prompt_sets.object.0", "a {concept} and {other}", "exactly {concept}"),
    ("lfd_prompts.0", "a {concept} in a field", "no {...} slots"),
    ("lfd_prompts.0", "a blue vase on a table", "names no concept class"),
    ("class_prompts.0", "a photo", "exactly {class}"),
    ("seeds", [0, 0], "field 'seeds': expected distinct"),
    ("images_per_prompt", 3, "field 'images_per_prompt'"),
    ("colour", "blue", "unknown field(s) ['colour']"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD, ids=[b[0] + ":" + repr(b[1])[:20] for b in BAD])
def test_malformed_manifest_is_rejected_naming_the_field(field: str, value: Any, message: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(_set(_minimal(), field, value), origin="mini.json")
    assert str(info.value).startswith("mini.json: ")
    assert message in str(info.value)


def test_duplicate_concept_ids_and_paths_are_rejected() -> None:
    m = _minimal()
    m["concepts"].append(copy.deepcopy(m["concepts"][0]))
    with pytest.raises(ManifestError, match=r"concepts\[1\]\.id.*unique"):
        parse_manifest(m, origin="mini.json")
    m["concepts"][1]["id"] = "vase2"
    with pytest.raises(ManifestError, match="listed once"):
        parse_manifest(m, origin="mini.json")


def test_duplicate_json_keys_and_bad_json_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "dup.json").write_text('{"schema": 1, "schema": 1}', encoding="utf-8")
    with pytest.raises(ManifestError, match=r"dup\.json: duplicate key 'schema'"):
        load_manifest(tmp_path / "dup.json")
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(ManifestError, match=r"bad\.json: not valid JSON"):
        load_manifest(tmp_path / "bad.json")
    with pytest.raises(ManifestError, match="manifest file not found"):
        load_manifest(tmp_path / "none.json")


def test_unknown_suite_name_suggests_the_closest() -> None:
    with pytest.raises(KeyError, match="did you mean 'dreambench'"):
        load_manifest("dreambnch")


def test_derived_manifest_must_match_its_base_version() -> None:
    smoke = json.loads((MANIFESTS / "smoke.json").read_text(encoding="utf-8"))
    smoke["source"]["suite_version"] = 99
    with pytest.raises(ManifestError, match="dreambench is now version 1"):
        parse_manifest(smoke, origin="smoke.json")
    smoke["source"]["suite_version"] = 1
    smoke["prompt_indices"] = [0, 25]
    with pytest.raises(ManifestError, match=r"field 'prompt_indices': expected indices below 25"):
        parse_manifest(smoke, origin="smoke.json")
    smoke["prompt_indices"] = [0]
    smoke["concepts"] = ["dog", "dgo"]
    with pytest.raises(ManifestError, match="did you mean 'dog'"):
        parse_manifest(smoke, origin="smoke.json")
