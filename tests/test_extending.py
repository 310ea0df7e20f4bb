"""Extending the suite the documented ways: a new suite is a manifest, a new metric is a module plus a spec.

Both run end to end through the command line on the tiny random pipeline (no data, no downloads).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from benchmark.cli import main
from metrics.similarity import paired_cosine_mean
from metrics.spec import METRICS, MetricSpec, MetricValue, register_metric, unregister_metric
from tests.rows_support import read_rows

TINY_PROFILE = {
    "model": "tiny",
    "extractors": {
        "clip": {"kind": "clip", "name": "tiny-clip", "weights": None},
        "dino": {"kind": "dino", "name": "tiny-dino", "weights": None},
    },
    "resolution": 64,
    "steps": 2,
    "guidance": 5.0,
    "lfd_timesteps": 2,
    "budget": "toy",
    "method_overrides": {"*": {"steps": 2, "batch_size": 1, "grad_accum": 1, "checkpoint_every": 1000}},
}


def _write_suite(root: Path) -> Path:
    """A two-photo suite in ``root/data/mini`` and its manifest ``root/mini.json`` (nothing else)."""
    rng = np.random.default_rng(0)
    images = []
    for k in range(2):
        path = root / "data" / "mini" / "img" / "vase" / f"{k:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
        data = path.read_bytes()
        images.append(
            {"path": f"img/vase/{k:02d}.png", "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        )
    manifest = {
        "schema": 1,
        "name": "mini",
        "version": 1,
        "source": {"type": "pinned"},
        "license": {"name": "test"},
        "evaluation": TINY_PROFILE,
        "prompt_sets": {"object": ["a {concept} on the beach", "a {concept} in the snow"]},
        "concepts": [
            {"id": "vase", "class_noun": "vase", "kind": "object", "prompt_set": "object", "images": images}
        ],
        "lfd_prompts": ["a horse in a field"],
        "class_prompts": ["a photo of a {class}"],
        "seeds": [0],
        "images_per_prompt": 1,
    }
    path = root / "mini.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return path


def _run(root: Path, manifest: Path, methods: str) -> list[dict[str, Any]]:
    args = ["run", "--manifest", str(manifest), "--methods", methods, "--data-root", str(root / "data")]
    args += ["--out", str(root / "run"), "--cache", str(root / "cache"), "--no-progress"]
    assert main(args) == 0
    return read_rows(root / "run" / "results.jsonl")


def test_a_suite_is_its_manifest(tmp_path: Path) -> None:
    rows = _run(tmp_path, _write_suite(tmp_path), "base,infusion")
    assert {r["suite"] for r in rows} == {"mini"}
    got = {(r["method"], r["metric"]) for r in rows}
    # this suite has no ground-truth identity scorer and no held-out views
    no_scorer = [k for k in METRICS if k not in ("identity", "heldout_gap")]
    expected = {("base", k) for k in no_scorer} | {("infusion", k) for k in no_scorer if k != "w2_floor"}
    assert got == expected | {
        ("real", m) for m in ("clip_i", "dino", "subject_dino", "subject_clip_i")
    }  # the W2 floor: in base rows only
    assert (tmp_path / "run" / "leaderboard" / "LEADERBOARD.md").is_file()
    lfd = {r["method"]: r["value"] for r in rows if r["metric"] == "lfd"}
    assert lfd == {"base": 0.0, "infusion": 0.0}  # the manifest's tiny profile ran, controls hold


def test_a_manifest_without_a_profile_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    manifest = _write_suite(tmp_path)
    data = json.loads(manifest.read_text())
    del data["evaluation"]
    manifest.write_text(json.dumps(data))
    assert main(["run", "--manifest", str(manifest), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "has no 'evaluation' profile" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def paired_cosine_to_base(generated_clip: Any, base_clip: Any) -> MetricValue:
    """A throwaway metric: mean cosine between each image and the base model's image for its prompt/seed."""
    return MetricValue(paired_cosine_mean(generated_clip, base_clip), int(generated_clip.shape[0]))


def test_a_new_metric_is_its_module_plus_its_spec(tmp_path: Path) -> None:
    spec = MetricSpec(
        key="base_cosine",
        version=1,
        name="cosine to the base model's image",
        higher_is_better=False,
        inputs=("generated:clip", "base:clip"),
        compute="tests.test_extending:paired_cosine_to_base",
        definition="mean over images of cos(CLIP(x_i), CLIP(base_i)) on the same prompt and seed.",
    )
    register_metric(spec)
    try:
        manifest = _write_suite(tmp_path)
        rows = _run(tmp_path, manifest, "base,infusion")
        values = {r["method"]: r["value"] for r in rows if r["metric"] == "base_cosine"}
        assert values["base"] == pytest.approx(1.0, abs=1e-6)  # the base model's own images
        assert -1.0 <= values["infusion"] <= 1.0 + 1e-6
        args = ["score", "--manifest", str(manifest), "--images", str(tmp_path / "run" / "images" / "base")]
        args += ["--data-root", str(tmp_path / "data"), "--cache", str(tmp_path / "cache")]
        assert main([*args, "--out", str(tmp_path / "scored"), "--no-progress"]) == 0
        scored = {r["metric"]: r for r in read_rows(tmp_path / "scored" / "results.jsonl")}
        assert scored["base_cosine"]["value"] == pytest.approx(1.0, abs=1e-6)
        assert scored["base_cosine"]["backbone"] == scored["w2"]["backbone"]
    finally:
        unregister_metric("base_cosine")
    assert "base_cosine" not in METRICS


def test_profiles_keep_every_settings_hash() -> None:
    """Moving the settings into the manifests changed no cache key and no row's config_hash."""
    from benchmark.cache import hash_inputs
    from benchmark.settings import settings_for

    got = {s: hash_inputs(settings_for(s).identity())[:16] for s in ("smoke", "dreambench")}
    # (toy: changed by toy v2; dreambench: by pinning the SD-1.5 and CLIP commits; smoke: by smoke v2's
    # one torch thread per job)
    assert got == {"smoke": "6be74e2b953a707e", "dreambench": "3c21e15159e4537e"}
    assert settings_for("customconcept101") == settings_for("dreambench")  # both name the sd15 profile
    toy = settings_for("toy")
    assert toy.model_loader == "benchmark.toy.assets:base_model_dir" and toy.extractors["clip"].loader
    assert settings_for("toy", model="/some/folder").model_loader is None  # --model replaces the loader


class _NoPredictor:
    """An outside method whose load() returns a model without the LFD essentials."""

    name = "tests.test_extending:_NoPredictor"

    def fit(self, concept: Any, pipeline: Any, config: Any, *, seed: int, progress: bool = True) -> Any:
        return None

    def load(self, artifact: Any, pipeline: Any) -> Any:
        return object()

    def render(self, template: str, concept: Any) -> str:
        return template


def test_the_method_contract_is_checked_once_with_the_missing_parts_named() -> None:
    from baselines import UnknownMethodError, load_method
    from baselines.contract import MethodContractError, MethodHandle

    handle = load_method("tests.test_extending:_NoPredictor")
    assert (handle.version, handle.takes_work_dir) == ("0", False)  # the defaults, filled in once
    assert handle.config_hash({"a": 1}) != handle.config_hash({"a": 2})
    with pytest.raises(MethodContractError, match=r"without render, generate, eps, reset_counters"):
        handle.load(None, None)
    with pytest.raises(MethodContractError, match="lacks fit, load"):
        MethodHandle(object(), "broken")
    with pytest.raises(UnknownMethodError, match="lacks fit"):
        load_method("tests.test_extending:TINY_PROFILE")


def test_results_load_as_a_typed_dataframe() -> None:
    from leaderboard import load_results

    committed = Path(__file__).resolve().parents[1] / "leaderboard" / "results" / "toy.jsonl"
    df = load_results([committed])
    assert len(df) == len(committed.read_text().splitlines())
    assert str(df["value"].dtype) == "float64" and str(df["n"].dtype) == "int64"
    assert str(df["created_at"].dtype).startswith("datetime64") and str(df["method"].dtype) == "string"
    table = df[df.metric == "w2"].pivot_table(index="method", columns="concept", values="value")
    assert table.shape == (12, 8)  # every method but `real` (no W2) on the eight concepts


def test_trajectory_rungs_come_from_one_training_run(tmp_path: Path) -> None:
    manifest = _write_suite(tmp_path)
    data = json.loads(manifest.read_text())
    data["evaluation"]["method_overrides"]["*"]["checkpoint_every"] = 1
    data["evaluation"]["headline_specific"] = "mmd_base"  # the run's own page follows the profile's lead
    data["evaluation"]["headline_specific_rule"] = "a test's choice"
    manifest.write_text(json.dumps(data))

    def run(out: str, rungs: str, cache: str) -> dict[tuple[Any, ...], float]:
        args = ["run", "--manifest", str(manifest), "--methods", "base,dreambooth-lora", "--rungs", rungs]
        args += ["--data-root", str(tmp_path / "data"), "--cache", str(tmp_path / cache), "--no-progress"]
        assert main([*args, "--out", str(tmp_path / out)]) == 0
        rows = read_rows(tmp_path / out / "results.jsonl")
        return {(r["method"], r["rung"], r["concept"], r["metric"]): r["value"] for r in rows}

    ladder = run("ladder", "0.5,2", "cache")
    rungs = {(m, r) for m, r, _, k in ladder if k == "w2"}
    assert rungs == {
        ("base", None),
        ("dreambooth-lora", 0.5),
        ("dreambooth-lora", 1.0),
        ("dreambooth-lora", 2.0),
    }
    assert not any((tmp_path / "cache" / "fit_work").iterdir())  # the run's checkpoints are gone afterwards
    page = (tmp_path / "ladder" / "leaderboard" / "LEADERBOARD.md").read_text()
    assert "Concept-specific column: mmd_base heads it; " in page and "Why: a test's choice." in page
    # rung 1, resumed from rung 0.5's checkpoint, equals a plain run trained from scratch in another cache
    plain = run("plain", "1", "cache-plain")
    assert plain == {k: v for k, v in ladder.items() if k[1] in (None, 1.0)}


def test_parallel_workers_give_the_same_rows(tmp_path: Path) -> None:
    """With the profile's threads per job fixed, rows do not depend on how many jobs run side by side."""
    manifest = _write_suite(tmp_path)
    data = json.loads(manifest.read_text())
    data["evaluation"]["torch_threads"] = 1
    manifest.write_text(json.dumps(data))
    got = []
    for workers in ("1", "2"):
        args = [
            "run",
            "--manifest",
            str(manifest),
            "--methods",
            "base,infusion,dreambooth-lora",
            "--workers",
            workers,
        ]
        args += ["--data-root", str(tmp_path / "data"), "--cache", str(tmp_path / f"cache{workers}")]
        assert main([*args, "--out", str(tmp_path / f"run{workers}"), "--no-progress"]) == 0
        rows = read_rows(tmp_path / f"run{workers}" / "results.jsonl")
        got.append({(r["method"], r["concept"], r["metric"]): r["value"] for r in rows})
    assert got[0] == got[1] and len(got[0]) > 10


def test_an_outside_method_that_returns_the_base_model_is_named_as_not_learning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """run, score --method and score --images of a method that changes nothing: each names it on the
    terminal (its fidelity equals the base model's, so none of its numbers is ranked)."""
    manifest = _write_suite(tmp_path)
    method = "tests.external_method:BaseModelMethod"
    flagged = f"mini@1 {method}@0: did not learn (subject_dino "
    common = ["--manifest", str(manifest), "--data-root", str(tmp_path / "data")]
    common += ["--cache", str(tmp_path / "cache"), "--no-progress"]
    rows = _run(tmp_path, manifest, f"base,{method}")
    dino = {r["method"]: r["value"] for r in rows if r["metric"] == "subject_dino"}
    assert dino[method] == dino["base"]  # it did not learn: the base model's own images
    out = capsys.readouterr().out
    assert flagged in out and "did not learn on 1 of 1 concept " in out
    assert main(["score", *common, "--method", method, "--out", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert flagged in out and "none of its numbers is ranked" in out
    assert {r["method"] for r in read_rows(tmp_path / "s" / "results.jsonl")} == {
        method,
        "real",
    }  # no base rows
    images = tmp_path / "s" / "images" / method
    assert main(["score", *common, "--images", str(images), "--out", str(tmp_path / "f")]) == 0
    out = capsys.readouterr().out
    assert f"mini@1 {method}@images: did not learn (subject_dino " in out
    assert (
        "not scored: lfd@2, lfd_class@2 need the customized model (images alone cannot give them); score the "
        "method itself with `overfit-bench score --method package.module:Class` to get them"
    ) in out
