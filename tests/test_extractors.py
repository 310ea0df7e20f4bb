"""Feature extractors are a named registry in the suite profile: a third extractor is one profile entry,
and a metric over it is one module; a profile that lists a metric its suite cannot serve is one error."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.settings import ProfileError, load_profile, settings_from_profile
from metrics.spec import METRICS, unregister_metric
from tests.rows_support import read_rows

ROOT = Path(__file__).resolve().parents[1]

METRIC_MODULE = '''
"""A metric over the profile's third extractor (the whole of what a new metric needs)."""
from metrics.similarity import all_pairs_cosine_mean
from metrics.spec import MetricSpec, MetricValue, register_metric


def ssl_fidelity(generated_ssl, reference_ssl):
    return MetricValue(all_pairs_cosine_mean(generated_ssl, reference_ssl), int(generated_ssl.shape[0]))


register_metric(
    MetricSpec(
        key="ssl_fidelity",
        version=1,
        name="subject fidelity under the ssl extractor",
        higher_is_better=True,
        role="fidelity",
        inputs=("generated:ssl", "reference:ssl"),
        compute="ssl_metric:ssl_fidelity",
        definition="mean cosine over (generated, reference) pairs of the ssl extractor's features.",
    )
)
'''


def _toy_copy(tmp_path: Path, extra_extractors: dict, metrics: list[str]) -> Path:
    """A copy of the toy manifest whose inline profile is the toy profile plus ``extra_extractors``."""
    manifest = json.loads((ROOT / "data_manifests" / "toy.json").read_text())
    profile = load_profile("toy")
    profile["extractors"] = {**profile["extractors"], **extra_extractors}
    profile["metrics"] = metrics
    manifest["evaluation"] = profile
    path = tmp_path / "toy-ssl.json"
    path.write_text(json.dumps(manifest))
    return path


def test_a_third_extractor_is_a_profile_entry_and_its_metric_one_module(tmp_path: Path) -> None:
    (tmp_path / "ssl_metric.py").write_text(METRIC_MODULE)
    sys.path.insert(0, str(tmp_path))
    try:
        import ssl_metric  # noqa: F401  (registers the metric)

        dino = load_profile("toy")["extractors"]["dino"]
        manifest = _toy_copy(tmp_path, {"ssl": {**dino, "seed": 3}}, ["dino", "ssl_fidelity"])
        args = ["run", "--manifest", str(manifest), "--methods", "base", "--concepts", "striped-heart"]
        args += ["--workers", "1", "--no-progress"]
        args += ["--out", str(tmp_path / "run"), "--cache", str(tmp_path / "cache")]
        assert main(args) == 0
        rows = read_rows(tmp_path / "run" / "results.jsonl")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("ssl_metric", None)
        unregister_metric("ssl_fidelity")
    assert "ssl_fidelity" not in METRICS
    got = {(r["method"], r["metric"]): r for r in rows}
    assert set(got) == {("base", "dino"), ("base", "ssl_fidelity"), ("real", "dino")}
    # the third extractor is the toy DINO backbone under another seed entry: the same features, so the
    # same value, computed through its own stages and named by its own tag
    assert got["base", "ssl_fidelity"]["value"] == pytest.approx(got["base", "dino"]["value"], rel=1e-12)
    assert got["base", "ssl_fidelity"]["backbone"] == got["base", "dino"]["backbone"]
    assert got["base", "ssl_fidelity"]["metric_version"] == 1


def test_a_profile_listing_a_metric_its_suite_cannot_serve_is_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    profile = load_profile("toy")
    profile["extractors"] = {"dino": profile["extractors"]["dino"]}  # no image-text extractor
    manifest = _toy_copy(tmp_path, {}, ["clip_t"])
    data = json.loads(manifest.read_text())
    data["evaluation"] = {**profile, "metrics": ["clip_t"]}
    manifest.write_text(json.dumps(data))
    args = ["run", "--manifest", str(manifest), "--methods", "base", "--concepts", "striped-heart"]
    args += [
        "--workers",
        "1",
        "--no-progress",
        "--out",
        str(tmp_path / "run"),
        "--cache",
        str(tmp_path / "cache"),
    ]
    assert main(args) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert any(
        "clip_t@1 needs input 'generated:clip'" in line and "no extractor 'clip'" in line for line in err
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "toy-dino", "weights": "toy"}, "missing field(s) ['kind']"),
        ({"kind": "vit", "name": "x", "weights": None}, "kind: expected one of"),
        (
            {"kind": "dino", "name": "x", "weights": None, "preprocessing": 1},
            "unknown field(s) ['preprocessing']",
        ),
    ],
)
def test_a_bad_extractor_entry_names_the_field(entry: dict, message: str) -> None:
    profile = load_profile("toy")
    profile["extractors"] = {**profile["extractors"], "ssl": entry}
    with pytest.raises(ProfileError, match=None) as err:
        settings_from_profile(profile, "toy.json")
    assert message in str(err.value) and "toy.json.extractors.ssl" in str(err.value)


def test_an_extractor_name_cannot_shadow_a_setting() -> None:
    profile = load_profile("toy")
    profile["extractors"] = {**profile["extractors"], "steps": profile["extractors"]["dino"]}
    with pytest.raises(ProfileError, match="extractor name 'steps'"):
        settings_from_profile(profile, "toy.json")


def test_an_old_profile_with_two_backbone_slots_is_told_where_they_went() -> None:
    profile = load_profile("toy")
    profile.update(profile.pop("extractors"))
    with pytest.raises(ProfileError, match="'clip' and 'dino' are now entries of 'extractors'"):
        settings_from_profile(profile, "toy.json")
