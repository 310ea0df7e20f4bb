"""The ``toy`` suite manifest and generator, and the validity study's statistics and oracle readouts."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import spearmanr

from benchmark.data.errors import ManifestError
from benchmark.data.manifest import load_manifest, parse_manifest
from benchmark.suites import generated_dir, load_suite, suite_from_manifest
from benchmark.toy.agreement import spearman
from benchmark.toy.backbones import parse_caption
from benchmark.toy.render import render_array
from benchmark.toy.suite import concept_scenes, pixels_sha256, training_scenes
from benchmark.toy.validity import concept_readout, prompt_accuracy
from benchmark.toy.validity_report import agreement
from benchmark.toy.world import BACKGROUNDS, POSITIONS
from metrics.similarity import render_slot


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return load_suite("toy", tmp_path_factory.mktemp("data"))


def _raw() -> dict:  # type: ignore[type-arg]
    text = (Path(__file__).resolve().parents[1] / "data_manifests" / "toy.json").read_text()
    return dict(json.loads(text))


def test_suite_shape_matches_the_issue(suite) -> None:  # type: ignore[no-untyped-def]
    from benchmark.toy.world import NOVEL_PATTERNS, RESERVED_PAIRS

    assert len(suite.concepts) >= 8
    tiers = [c.spec.upstream["tier"] for c in suite.concepts]
    assert tiers.count("recombination") >= 4 and tiers.count("novel") >= 4
    looks = set()
    for c in suite.concepts:
        up = c.spec.upstream
        if up["tier"] == "recombination":  # a pretrained pattern on a pretrained shape, never together
            assert (up["shape"], up["pattern"]) in RESERVED_PAIRS
        else:
            assert up["pattern"] in NOVEL_PATTERNS
        looks.add((up["shape"], up["pattern"]))
        scenes = training_scenes(suite, c.id)
        assert 4 <= len(scenes) == len(c.images) <= 5
        assert 1 <= len({s.background for s in scenes}) <= 2
        assert len({s.position for s in scenes}) == 1  # one layout
        assert c.class_noun == scenes[0].shape
        # evaluation prompts ask for backgrounds and positions the training images never show
        for tpl in c.prompts:
            want = parse_caption(render_slot(tpl, c.class_noun))
            assert want.get("background") not in {s.background for s in scenes}
            assert want.get("position") not in {s.position for s in scenes}
    assert len(looks) == len(suite.concepts)  # a unique (shape, pattern) per concept
    assert suite.images_per_prompt == len(suite.seeds) >= 1
    for p in suite.lfd_prompts:  # non-customized prompts name no concept class
        assert parse_caption(p).get("shape") not in {c.class_noun for c in suite.concepts}


def test_rendered_images_match_pinned_pixels(suite) -> None:  # type: ignore[no-untyped-def]
    from benchmark.io import open_rgb

    cfg = suite.manifest.config
    for c, spec in zip(suite.concepts, cfg["concepts"], strict=True):
        for path, expected in zip(c.images, spec["pixels_sha256"], strict=True):
            assert pixels_sha256(np.asarray(open_rgb(path))) == expected  # the one loader keeps toy pixels


def test_tuning_concepts_are_never_evaluated() -> None:
    evaluated, tuning = load_manifest("toy"), load_manifest("toy-tuning")
    ids = {c["id"] for c in evaluated.config["concepts"]}
    tuning_ids = {c["id"] for c in tuning.config["concepts"]}
    assert len(tuning_ids) >= 2 and not ids & tuning_ids
    assert {c["tier"] for c in tuning.config["concepts"]} == {"recombination", "novel"}
    for key in ("prompts", "lfd_prompts", "class_prompts", "seeds", "world_version", "image_size"):
        assert tuning.config[key] == evaluated.config[key], key  # tuned on the same task
    assert tuning.evaluation == evaluated.evaluation == "toy"


def test_second_load_reuses_files_and_repairs_a_damaged_one(tmp_path: Path) -> None:
    s1 = load_suite("toy", tmp_path)
    first = s1.concepts[0].images[0]
    mtime = first.stat().st_mtime_ns
    s2 = load_suite("toy", tmp_path)
    assert s2.concepts[0].images[0].stat().st_mtime_ns == mtime
    first.write_bytes(b"not a png")
    s3 = load_suite("toy", tmp_path)
    assert s3.concepts[0].images[0].read_bytes()[:4] == b"\x89PNG"


def test_renderer_drift_is_an_error(tmp_path: Path) -> None:
    raw = _raw()
    raw["config"]["concepts"][0]["pixels_sha256"][0] = "0" * 64
    m = parse_manifest(raw, origin="toy-edited.json")
    with pytest.raises(ManifestError, match="renderer changed"):
        suite_from_manifest(m, tmp_path)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda r: r["config"].pop("seeds"), "missing keys"),
        (lambda r: r["config"]["concepts"][0].update(shape="blob"), "blob"),
        (lambda r: r["config"]["prompts"].append("no slot here"), "no \\{concept\\} slot"),
        (lambda r: r["config"].update(world_version=99), "world_version"),
        (lambda r: r["config"]["concepts"].append(dict(r["config"]["concepts"][0])), "duplicate concept"),
        (lambda r: r["config"]["concepts"][0].update(pattern=None), "needs a pattern"),
        (lambda r: r["config"]["concepts"][0].update(tier="mixed"), "tier"),
        (lambda r: r["config"]["concepts"][0].update(pattern="rings"), "held out of pretraining"),
        (lambda r: r["config"]["concepts"][4].update(pattern="dots"), "never pretrained"),
        (lambda r: r["config"]["lfd_prompts"].append("a red heart on a sand background"), "names a concept"),
        (lambda r: r["config"].update(seeds=[0, 0]), "duplicate seeds"),
    ],
)
def test_bad_config_names_the_problem(tmp_path: Path, edit, match: str) -> None:  # type: ignore[no-untyped-def]
    raw = _raw()
    edit(raw)
    with pytest.raises(ManifestError, match=match):
        suite_from_manifest(parse_manifest(raw, origin="toy-edited.json"), tmp_path)


def test_generated_suites_render_into_the_cache_not_the_data_root(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OVERFIT_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OVERFIT_BENCH_DATA", str(tmp_path / "shared"))
    m = load_manifest("toy")
    assert generated_dir(m) == (tmp_path / "cache").resolve() / "generated" / f"toy-v{m.version}"
    assert generated_dir(m, tmp_path / "x") == tmp_path / "x" / "toy"
    # a command's --cache wins over the environment
    assert (
        generated_dir(m, cache=tmp_path / "c")
        == (tmp_path / "c").resolve() / "generated" / f"toy-v{m.version}"
    )


def test_load_suite_renders_a_generated_suite_into_the_given_cache(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OVERFIT_BENCH_CACHE", str(tmp_path / "env-cache"))
    suite = load_suite("toy", cache=tmp_path / "run-cache")
    assert suite.root == (tmp_path / "run-cache").resolve() / "generated" / f"toy-v{suite.version}"
    assert all(Path(p).is_file() for c in suite.concepts for p in c.images)
    assert not (tmp_path / "env-cache").exists()


def test_concept_scenes_are_deterministic() -> None:
    spec = _raw()["config"]["concepts"][1]
    a, b = concept_scenes(spec), concept_scenes(spec)
    assert a == b
    assert pixels_sha256(render_array(a[0], 32)) == spec["pixels_sha256"][0]


# ---------------------------------------------------------------------------------------------- stats


def test_spearman_matches_scipy_and_closed_forms() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=30)
    b = a + rng.normal(size=30)
    b[3] = b[4]  # a tie
    assert spearman(a.tolist(), b.tolist()) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 2, 3], [5, 5, 5]))
    assert math.isnan(spearman([1, 2], [1, 2]))  # fewer than 3 pairs: no ρ
    with pytest.raises(ValueError, match="lengths differ"):
        spearman([1, 2, 3], [1, 2])


def test_concept_readout_counts_what_the_prompts_ask() -> None:
    concept = {
        "shape": "star",
        "colour": "red",
        "pattern": "stripes",
        "backgrounds": ["grass"],
        "position": "center",
    }
    prompts = ["a star on a snow background", "top left, a star on a snow background", "a green star"]
    readings = [
        {"shape": "star", "colour": "red", "background": "snow", "position": "center", "pattern": "stripes"},
        {"shape": "star", "colour": "red", "background": "grass", "position": "top left", "pattern": "none"},
        {
            "shape": "heart",
            "colour": "green",
            "background": "grass",
            "position": "center",
            "pattern": "stripes",
        },
    ]
    r = concept_readout(readings, prompts, concept)
    assert r["background_acc"] == pytest.approx(0.5)  # two prompts ask a background, one shows it
    assert r["train_background"] == pytest.approx(2 / 3)
    assert r["train_position"] == pytest.approx(2 / 3)  # centre, top left, centre
    assert r["position_acc"] == pytest.approx(1.0)
    assert r["colour_acc"] == pytest.approx(1.0)
    assert r["identity"] == pytest.approx(1 / 3)
    # fidelity: (shape, colour, bg) 3/3; (shape, colour, bg, pos) 3/4; (shape, colour=green) 1/2
    assert r["fidelity"] == pytest.approx((1 + 0.75 + 0.5) / 3)
    # the prompt names the shape too: (star, snow) 2/2; (top left, star, snow) 2/3
    assert prompt_accuracy(readings[:2], prompts[:2]) == pytest.approx((1 + 2 / 3) / 2)


def test_agreement_reports_each_pair_with_its_sign() -> None:
    runs = []
    for k, label in enumerate(["base", "a", "b", "c"]):
        runs.append(
            {
                "label": label,
                "concept": "x",
                "metrics": {
                    "w2": float(k),
                    "lfd": float(k),
                    "clip_t": 1.0 - k,
                    "clip_i": 1.0,
                    "dino": float(k),
                },
                "oracle": {
                    "train_background": k / 4,
                    "background_acc": 1 - k / 4,
                    "nonconcept_acc": 1 - k / 10,
                    "fidelity": 1 - k / 4,
                    "identity": k / 4,
                },
            }
        )
    got = {(a["metric"], a["oracle"]): a["rho"] for a in agreement(runs)}
    assert got[("w2", "train_background")] == pytest.approx(1.0)
    assert got[("w2", "background_acc")] == pytest.approx(-1.0)
    assert got[("lfd", "nonconcept_drop")] == pytest.approx(1.0)
    assert got[("clip_t", "fidelity")] == pytest.approx(1.0)
    assert math.isnan(got[("clip_i", "identity")])  # a constant metric has no rank order
    assert got[("dino", "identity")] == pytest.approx(1.0)


def test_vocabulary_used_by_prompts_exists() -> None:
    raw = _raw()["config"]
    words = " ".join(raw["prompts"] + raw["lfd_prompts"] + raw["class_prompts"])
    assert any(b in words for b in BACKGROUNDS)
    assert any(p in words for p in POSITIONS)


# ------------------------------------------------------------------------------ end to end (tiny)


@pytest.fixture(scope="module")
def tiny_toy_run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The toy suite through the harness on a tiny-preset toy base model and random-weight oracle backbones."""
    import torch

    from benchmark.runner import run_suite
    from benchmark.settings import BackboneSpec, settings_for
    from benchmark.toy.train_base import main as train_main

    root = tmp_path_factory.mktemp("toyrun")
    threads = torch.get_num_threads()
    try:
        assert train_main(["--out", str(root / "base"), "--stage", "all", "--preset", "tiny"]) == 0
    finally:
        torch.set_num_threads(threads)  # the trainer sets its own thread count
    settings = settings_for("toy", model=str(root / "base" / "model"))
    fast = {"steps": 2, "batch_size": 1, "grad_accum": 1, "num_class_images": 1, "checkpoint_every": 1000}
    settings = settings.replace(
        extractors={
            name: BackboneSpec(spec.kind, spec.name, None, loader=spec.loader)
            for name, spec in settings.extractors.items()
        },
        resolution=16,
        steps=3,
        lfd_timesteps=3,
        method_overrides={"*": {**settings.method_overrides["*"], **fast}},
        rungs=(1.0,),
    )
    result = run_suite(
        suite="toy",
        methods=["base", "infusion", "textual-inversion", "dreambooth-lora"],
        concepts=["striped-heart"],
        settings=settings,
        run_dir=root / "run",
        cache_root=root / "cache",
        data_root=str(root / "data"),
        progress=False,
    )
    return root, result, settings


def test_every_metric_is_produced_on_the_toy_suite(tiny_toy_run) -> None:  # type: ignore[no-untyped-def]
    from tests.rows_support import read_rows

    root, result, _ = tiny_toy_run
    rows = read_rows(result.results)
    values = {(r["method"], r["metric"]): r["value"] for r in rows}
    for method in ("base", "infusion", "textual-inversion", "dreambooth-lora"):
        for metric in ("clip_t", "clip_i", "dino", "w2", "lfd", "lfd_class"):
            assert math.isfinite(values[(method, metric)])
    # methods that cannot touch prompts without their concept score LFD exactly 0 on the toy suite too
    for method in ("base", "infusion", "textual-inversion"):
        assert values[(method, "lfd")] == 0.0
    assert values[("dreambooth-lora", "lfd")] > 0.0
    assert values[("base", "w2")] == pytest.approx(0.0, abs=1e-6)
    pngs = sorted((root / "run" / "images" / "infusion" / "striped-heart").glob("*.png"))
    assert len(pngs) == 8 * 4  # 8 prompts x 4 seeds


def test_leakage_reads_boxed_contexts_through_the_dino_slot(tiny_toy_run) -> None:  # type: ignore[no-untyped-def]
    """leakage@2's contexts (own masks grown by 1/16, filled to their box) are cached apart from any
    unboxed masking and read by the DINO slot; collapse's masked images stay on the CLIP slot, unboxed."""
    import json

    from tests.rows_support import read_rows

    root, result, settings = tiny_toy_run
    rows = read_rows(result.results)
    leak = [r for r in rows if r["metric"] == "leakage"]
    assert leak and {r["metric_version"] for r in leak} == {2}
    assert {r["backbone"] for r in leak} == {r["backbone"] for r in rows if r["metric"] == "dino"}
    entries = [
        json.loads((d / "inputs.json").read_text())
        for d in (root / "cache" / "masked_features").iterdir()
        if (d / "inputs.json").is_file()
    ]
    boxed = [e for e in entries if e.get("box")]
    dino_name = settings.extractors["dino"].name
    assert {e["backbone"]["name"] for e in boxed} == {dino_name}
    assert all(e["dilation"] == 1 / 16 for e in boxed)
    assert any(str(e["source"]).endswith("/reference") for e in boxed)  # the training photos' contexts
    assert len({e["source"] for e in boxed}) >= 3  # generated, reference and base on disjoint seeds
    unboxed = [e for e in entries if not e.get("box")]
    assert unboxed and all(e["backbone"]["name"] != dino_name for e in unboxed)


def test_tuning_sweep_reads_every_rung_from_one_training_run(tiny_toy_run) -> None:  # type: ignore[no-untyped-def]
    import torch

    from baselines import load_method
    from baselines.artifact import Artifact
    from benchmark.jobs import job_context
    from benchmark.stages import fit
    from benchmark.toy.oracle import Oracle
    from benchmark.toy.tuning import _spec, choose, sweep

    root, _, settings = tiny_toy_run
    torch.manual_seed(0)
    oracle = Oracle(width=8, hidden=32).eval()
    out = sweep(
        "dreambooth-lora", root / "tcache", oracle, lrs=(1e-3, 1e-2), rungs=(1.0, 2.0), settings=settings
    )
    assert out["ladder"] == [2, 4] and out["recipe"]["steps"] == 2
    assert len(out["cells"]) == 2 * 2 * 2  # learning rates x tuning concepts x rungs
    assert {c["concept"] for c in out["cells"]} == {
        "dotted-hexagon",
        "ringed-heart",
    }  # never an evaluated one
    table = {float(lr): {int(s): v for s, v in row.items()} for lr, row in out["identity"].items()}
    assert out["choice"] == choose(table, out["recipe"]["lr"], 2)
    assert not (root / "tcache" / "fit_work").exists() or not any((root / "tcache" / "fit_work").iterdir())
    # the 4-step rung resumed from the 2-step rung's checkpoint: it equals a 4-step fit from scratch
    overrides = {**settings.method_overrides, "dreambooth-lora": {"lr": 1e-2, "checkpoint_every": 2}}
    tuned = settings.replace(method_overrides=overrides)
    rung = load_method("dreambooth-lora").with_steps(4)
    arts = []
    for cache in ("tcache", "fresh"):
        ctx = job_context(_spec(tuned, root / cache))
        path, _ = fit(ctx, rung, ctx.suite.concepts[0])
        arts.append(Artifact.load(path / "artifact.safetensors"))
    assert arts[0].meta["steps"] == 4
    assert all(torch.equal(arts[0].tensors[k], arts[1].tensors[k]) for k in arts[0].tensors)


def test_the_tuning_rule() -> None:
    from benchmark.toy.tuning import choose, rung_steps

    assert rung_steps(150) == [38, 75, 150, 300, 600]
    table = {1e-3: {10: 0.1, 20: 0.2}, 1e-2: {10: 0.55, 20: 0.6}, 1e-1: {10: 0.6, 20: 0.3}}
    # best identity 0.6 is reached by 1e-2 and 1e-1: the smaller rate wins; then the smallest rung >= 0.54
    assert choose(table, 5e-3, 20) == {"lr": 1e-2, "steps": 10, "identity": 0.55, "plateau": 0.6}
    assert choose({1e-3: {10: 0.0}}, 5e-3, 20) == {"lr": 5e-3, "steps": 20, "identity": 0.0, "plateau": 0.0}


def _study() -> dict:  # type: ignore[type-arg]
    runs = []
    for k, label in enumerate(["base", "dreambooth", "dreambooth ×5", "copy"]):
        for concept in ("a", "b"):
            runs.append(
                {
                    "label": label,
                    "concept": concept,
                    "metrics": {"w2": 0.1 * k, "lfd": 0.01 * k, "lfd_class": 0.02 * k, "clip_t": 0.5},
                    "oracle": {
                        "background_acc": 1 - k / 4,
                        "train_background": k / 4,
                        "position_acc": 0.5,
                        "colour_acc": 0.5,
                        "identity": k / 4,
                        "fidelity": 0.7,
                        "nonconcept_acc": float("nan") if label == "copy" else 0.9 - k / 10,
                    },
                }
            )
    quality = {
        s: {"shape": 0.9, "colour": 0.95, "background": 0.99, "position": 0.6, "n": 10.0}
        for s in ("held_out", "held_in")
    }
    quality["position_probe"] = {"accuracy": 0.2, "same_for_all_prompts": 1.0, "seeds": 20.0}
    return {"base_quality": quality, "runs": runs, "study_method": "dreambooth", "factor": 5}


def test_report_tables_and_markers(tmp_path: Path) -> None:
    from benchmark.toy.validity_report import BEGIN, END, render_report, w2_figure, write_outputs

    study = _study()
    text = render_report(study, "cmd")
    assert "| held-out | 10 | 90.0% | 95.0% | 99.0% | 60.0% |" in text
    assert (
        "asked position read 20.0%; the read position is the same for all five prompts on 100% of seeds"
        in text
    )
    assert "| dreambooth ×5 | 0.500 | 0.500 | 0.500 | 0.500 | 0.200 |" in text
    assert (
        "| w2 | W2 vs share of images stuck on a training background | + | 1.00 | 1.00 | 8 | 1.00 | — | 4 |"
        in text
    )
    svg = w2_figure(study)
    assert svg.startswith("<svg") and svg.count("<circle") == 8 + 4  # points + legend
    doc = tmp_path / "VALIDITY.md"
    doc.write_text(f"intro\n{BEGIN}\nold\n{END}\noutro\n")
    write_outputs(study, doc, "cmd")
    body = doc.read_text()
    assert body.startswith("intro\n") and body.endswith("outro\n") and "old" not in body
    assert json.loads((tmp_path / "validity" / "validity.json").read_text())["factor"] == 5
    doc.write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        write_outputs(study, doc, "cmd")


def test_data_cli_renders_and_verifies_the_toy_suite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmark.cli import main

    assert main(["data", "verify", "toy", "--root", str(tmp_path / "toy")]) == 0
    assert "toy v2: OK, 8 concepts / 40 images" in capsys.readouterr().out
    assert len(list((tmp_path / "toy").rglob("*.png"))) == 40
    assert main(["data", "import", "toy", "--from", str(tmp_path)]) == 2
    assert "generated; there is nothing to import" in capsys.readouterr().err


def test_model_key_follows_the_model_files(tmp_path: Path) -> None:
    from benchmark.cache import StageCache
    from benchmark.context import RunContext
    from benchmark.settings import settings_for

    folder = tmp_path / "model"
    folder.mkdir()

    def key(model: str | None) -> str:
        ctx = RunContext(
            suite=None,
            settings=settings_for("toy") if model is None else settings_for("smoke", model=model),
            cache=StageCache(tmp_path / "c"),
            run_dir=tmp_path,
        )
        return ctx.model_key

    assert key("tiny") == "tiny"  # aliases without files are keyed by name
    assert key(str(folder)) == str(folder)  # a folder without SHA256SUMS too
    (folder / "SHA256SUMS").write_text("a  x\n")
    first = key(str(folder))
    (folder / "SHA256SUMS").write_text("b  x\n")  # retrained weights: new sums, new key
    assert first.startswith(str(folder) + "@") and key(str(folder)) != first
    assert key(None).startswith("toy@")  # the toy profile's model loader gives a folder with SHA256SUMS


@pytest.mark.parametrize("follows", ["caption", "noise"])
def test_position_probe_tells_a_caption_following_model_from_a_noise_following_one(follows: str) -> None:
    from types import SimpleNamespace

    from benchmark.settings import settings_for
    from benchmark.toy.assets import oracle_checkpoint
    from benchmark.toy.oracle import load_oracle
    from benchmark.toy.render import render_batch
    from benchmark.toy.validity import position_probe
    from benchmark.toy.world import POSITIONS, Scene

    names = list(POSITIONS)

    class FakePipe:
        def generate(self, prompts: list[str], seeds: list[int], **_: Any) -> Any:
            where = [
                p.split(",")[0] if follows == "caption" else names[s % 5]
                for p, s in zip(prompts, seeds, strict=True)
            ]
            scenes = [Scene("star", "red", "snow", w) for w in where]
            return SimpleNamespace(images=render_batch(scenes, 32))

    settings = settings_for("toy").replace(steps=1, guidance=1.0, resolution=32, gen_batch_size=8)
    probe = position_probe(FakePipe(), load_oracle(oracle_checkpoint()), settings, seeds=10)
    if follows == "caption":
        assert probe == {"accuracy": 1.0, "same_for_all_prompts": 0.0, "seeds": 10.0}
    else:
        assert probe == {"accuracy": 0.2, "same_for_all_prompts": 1.0, "seeds": 10.0}


def test_applied_checkpoints_let_the_trajectory_rungs_resume() -> None:
    from benchmark.toy.tuning import checkpoint_every, rung_steps

    for steps in (150, 400, 100, 75, 300, 1):
        every = checkpoint_every(steps)
        assert all(s % every == 0 for s in rung_steps(steps, (1.0, 2.0, 4.0)))
    assert checkpoint_every(150) == 75 and checkpoint_every(400) == 200 and checkpoint_every(75) == 75


def test_the_grid_grows_beyond_an_edge_the_rule_chooses() -> None:
    from benchmark.toy.tuning import extension

    rising = {1e-5: {10: 0.0, 20: 0.0}, 1e-4: {10: 0.0, 20: 0.1}, 1e-3: {10: 0.1, 20: 0.2}}
    assert extension(rising, 1e-4, 20) == pytest.approx(1e-2)  # best at the top: one ratio above
    falling = {5e-5: {10: 0.5, 20: 0.6}, 2e-4: {10: 0.3, 20: 0.2}, 8e-4: {10: 0.0, 20: 0.0}}
    assert extension(falling, 2e-4, 20) == pytest.approx(1.25e-5)  # best at the bottom: one ratio below
    inside = {1e-3: {10: 0.1}, 1e-2: {10: 0.5}, 1e-1: {10: 0.2}}
    assert extension(inside, 1e-2, 10) is None
    assert extension({1e-3: {10: 0.0}, 1e-2: {10: 0.0}}, 1e-2, 10) is None  # nothing learned: recipe kept


def test_a_rerun_of_the_tuning_starts_from_the_recipe_not_from_the_applied_choice() -> None:
    from benchmark.settings import settings_for
    from benchmark.toy.tuning import TUNING_SUITE, _without_choice

    settings = settings_for(TUNING_SUITE)
    applied = {
        **settings.method_overrides,
        "oft": {"lr": 0.5, "steps": 7, "hflip": 0.0},
        "lokr": {"steps": 3},
    }
    cleared = _without_choice(settings.replace(method_overrides=applied), "oft")
    assert cleared.method_overrides["oft"] == {"hflip": 0.0}
    assert cleared.method_overrides["lokr"] == {"steps": 3}  # another method's choice is not this sweep's
    assert "lokr" not in _without_choice(cleared, "lokr").method_overrides


def test_plan_counts_what_a_run_cached_and_prices_the_rest(tiny_toy_run) -> None:  # type: ignore[no-untyped-def]
    from benchmark.errors import EnvironmentProblem
    from benchmark.plan import load_costs, make_plan

    root, _, settings = tiny_toy_run
    costs = {
        "device": "test table",
        "gpu": False,
        "train_step_s": {"*": 1.0},
        "unet_call_s": 0.5,
        "unet_call_batch": 4,
        "lfd_rows_per_s": 10.0,
        "feature_images_per_s": 100.0,
    }
    args = {
        "suite": "toy",
        "methods": ["base", "infusion", "textual-inversion", "dreambooth-lora"],
        "concepts": ["striped-heart"],
        "settings": settings,
        "data_root": str(root / "data"),
        "costs": costs,
    }
    cached = make_plan(cache_root=root / "cache", **args)
    assert cached.jobs == 4
    for stage in ("trainings", "images", "lfd_samples", "lfd_base_rows", "lfd_rows"):
        assert cached.stages[stage].todo == 0 and cached.stages[stage].total > 0, stage
    assert cached.estimate["seconds"]["train"] == 0.0 and cached.estimate["seconds"]["generate"] == 0.0
    fresh = make_plan(cache_root=root / "no-cache", **args)
    assert fresh.stages["trainings"].todo == 3 and fresh.stages["trainings"].cached == 0
    assert dict(fresh.train_steps) == {"infusion": 2, "textual-inversion": 2, "dreambooth-lora": 2}
    sec = fresh.estimate["seconds"]
    assert sec["train"] == 6.0
    # LFD's base samples are sampled too
    images = fresh.stages["images"].todo + fresh.stages["lfd_samples"].todo
    assert sec["generate"] == images / 4 * settings.steps * 0.5
    assert sec["lfd"] == (fresh.stages["lfd_rows"].todo + fresh.stages["lfd_base_rows"].todo) / 10.0
    assert not (root / "no-cache").exists()  # a plan writes nothing
    with pytest.raises(EnvironmentProblem, match="bench costs"):
        load_costs(root / "no-table.json")


def test_a_trajectory_rung_off_the_checkpoint_grid_leaves_its_last_step_for_the_next(tiny_toy_run) -> None:  # type: ignore[no-untyped-def]
    import torch

    from baselines import load_method
    from baselines.artifact import Artifact
    from benchmark.jobs import job_context
    from benchmark.stages import fit, fit_work_dir
    from benchmark.toy.tuning import _spec

    root, _, settings = tiny_toy_run
    overrides = {**settings.method_overrides, "dreambooth-lora": {"lr": 1e-2, "checkpoint_every": 3}}
    tuned = settings.replace(method_overrides=overrides)
    method = load_method("dreambooth-lora")
    ctx = job_context(_spec(tuned, root / "offgrid"))
    concept = ctx.suite.concepts[0]
    ctx.keep_fit_work = True  # what score_trajectory sets while a longer rung follows
    fit(ctx, method.with_steps(2), concept)
    work = fit_work_dir(ctx, method, concept)
    assert sorted(p.name for p in (work / "checkpoints").iterdir()) == ["step-000002.pt"]
    path, _ = fit(ctx, method.with_steps(4), concept)
    resumed = Artifact.load(path / "artifact.safetensors")
    fresh_ctx = job_context(_spec(tuned, root / "offgrid-fresh"))
    fresh_path, _ = fit(fresh_ctx, method.with_steps(4), concept)
    fresh = Artifact.load(fresh_path / "artifact.safetensors")
    assert json.loads((path / "fit.json").read_text())["log"]["resumed_from"] == 2
    assert all(torch.equal(resumed.tensors[k], fresh.tensors[k]) for k in fresh.tensors)
