"""The toy suite's ground-truth controls (benchmark.toy.controls): scenes, image folders, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmark.io import open_rgb
from benchmark.suites import load_suite
from benchmark.toy.backbones import parse_caption
from benchmark.toy.controls import (
    BASE,
    CONTEXT_ONLY,
    COPY,
    IDEAL,
    RENDERED,
    ControlError,
    check_controls,
    class_prompts,
    control_scenes,
    main,
    method_name,
    write_controls,
)
from benchmark.toy.render import render_array
from benchmark.toy.suite import concept_config, training_scenes
from benchmark.toy.world import COLOURS, POSITIONS


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_suite("toy", tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def ctx(suite: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from benchmark.cache import StageCache
    from benchmark.context import RunContext
    from benchmark.settings import settings_for

    tmp = tmp_path_factory.mktemp("ctx")
    return RunContext(suite=suite, settings=settings_for("toy"), cache=StageCache(tmp / "cache"), run_dir=tmp)


def _plan(ctx: Any, concept: Any) -> list[tuple[int, str, int]]:
    from benchmark.stages import generation_plan

    return generation_plan(ctx, concept)


def test_ideal_scenes_show_the_concept_as_each_prompt_asks(ctx: Any, suite: Any) -> None:
    for concept in suite.concepts:
        cfg = concept_config(suite, concept.id)
        plan = _plan(ctx, concept)
        scenes = control_scenes(suite, concept.id, plan)[IDEAL]
        assert len(scenes) == len(plan) == 32
        unasked_positions = set()
        for scene, prompt in zip(scenes, class_prompts(suite, concept.id, plan), strict=True):
            want = parse_caption(prompt)
            assert (scene.shape, scene.pattern) == (cfg["shape"], cfg["pattern"])
            assert scene.background == want["background"]  # every toy prompt asks a background
            assert scene.colour == want.get("colour", cfg["colour"])
            if "position" in want:
                assert scene.position == want["position"]
            else:
                unasked_positions.add(scene.position)
        # an unasked position is drawn from the world's prior, not pinned to the training layout
        assert len(unasked_positions) > 1 and unasked_positions <= set(POSITIONS)
        assert len({s.seed for s in scenes}) == len(scenes)  # a texture per image


def test_copy_is_the_training_images_pixel_for_pixel(ctx: Any, suite: Any, tmp_path: Path) -> None:
    concept = suite.concepts[1]
    folder = write_controls(ctx, [concept], tmp_path, [COPY])[COPY]
    n = len(concept.images)
    for k, (i, _, seed) in enumerate(_plan(ctx, concept)):
        got = np.asarray(open_rgb(folder / concept.id / f"{i}_{seed}.png"))
        want = np.asarray(open_rgb(concept.images[k % n]))
        assert got.shape == want.shape == (32, 32, 3)
        assert np.array_equal(got, want)


def test_context_only_is_the_plain_class_object_on_the_training_scenes(ctx: Any, suite: Any) -> None:
    for concept in suite.concepts:
        cfg = concept_config(suite, concept.id)
        plan = _plan(ctx, concept)
        scenes = control_scenes(suite, concept.id, plan)[CONTEXT_ONLY]
        train = list(training_scenes(suite, concept.id))
        drawn = set()
        for k, (scene, prompt) in enumerate(zip(scenes, class_prompts(suite, concept.id, plan), strict=True)):
            t = train[k % len(train)]
            assert scene.pattern is None and scene.shape == cfg["shape"]
            assert (scene.background, scene.position, scene.size, scene.jitter, scene.seed) == (
                t.background,
                t.position,
                t.size,
                t.jitter,
                t.seed,
            )
            want = parse_caption(prompt)
            if "colour" in want:
                assert scene.colour == want["colour"]
            else:
                drawn.add(scene.colour)
        assert {s.background for s in scenes} == set(cfg["backgrounds"])
        assert drawn <= set(COLOURS) and len(drawn) > 1  # the class noun's colours, not the concept's


def test_controls_are_deterministic(ctx: Any, suite: Any, tmp_path: Path) -> None:
    concept = suite.concepts[2]
    plan = _plan(ctx, concept)
    assert control_scenes(suite, concept.id, plan) == control_scenes(suite, concept.id, plan)
    a = write_controls(ctx, [concept], tmp_path / "a", RENDERED)
    b = write_controls(ctx, [concept], tmp_path / "b", RENDERED)
    for control in RENDERED:
        files = sorted((a[control] / concept.id).glob("*.png"))
        assert len(files) == len(plan)
        for f in files:
            assert f.read_bytes() == (b[control] / concept.id / f.name).read_bytes()
    # the draws depend on the concept: another concept's ideal scenes differ in size and texture
    other = control_scenes(suite, suite.concepts[3].id, plan)[IDEAL]
    mine = control_scenes(suite, concept.id, plan)[IDEAL]
    assert [s.seed for s in other] != [s.seed for s in mine]


def test_the_written_folder_passes_the_image_folder_check(ctx: Any, suite: Any, tmp_path: Path) -> None:
    from benchmark.image_scoring import check_folder

    concepts = list(suite.concepts[:2])
    folders = write_controls(ctx, concepts, tmp_path, RENDERED)
    for control, folder in folders.items():
        assert folder == tmp_path / control
        files = check_folder(ctx, folder, concepts)
        assert sorted(files) == sorted(c.id for c in concepts)
        ideal = control_scenes(suite, concepts[0].id, _plan(ctx, concepts[0]))[control]
        first = np.asarray(open_rgb(files[concepts[0].id][0]))
        assert np.array_equal(first, render_array(ideal[0], 32))


def test_an_unknown_concept_or_control_is_one_clear_line(
    ctx: Any, suite: Any, tmp_path: Path, capsys: Any
) -> None:
    with pytest.raises(ControlError, match="has no concept 'striped-hart'; did you mean striped-heart"):
        control_scenes(suite, "striped-hart", [])
    with pytest.raises(ControlError, match="unknown control 'ideall'"):
        check_controls(["ideal", "ideall"])
    code = main(["--out", str(tmp_path / "out"), "--concepts", "nope", "--cache", str(tmp_path / "cache")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and err.startswith("controls: error:") and "'nope'" in err
    assert not (tmp_path / "out" / IDEAL).exists()  # nothing written


def test_validity_reads_the_controls_as_study_entries(suite: Any, tmp_path: Path) -> None:
    from benchmark.toy.validity import control_runs

    cid = suite.concepts[0].id
    rows = [
        {"method": method_name(IDEAL), "concept": cid, "metric": "w2", "value": 0.5},
        {"method": method_name(BASE), "concept": cid, "metric": "w2", "value": 0.0},
    ]
    (tmp_path / "controls.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    readout = {"identity": 1.0, "train_background": 0.0}
    (tmp_path / "controls_oracle.json").write_text(json.dumps({IDEAL: {cid: readout}, BASE: {cid: readout}}))
    runs = control_runs(tmp_path, suite)
    assert [r["label"] for r in runs] == ["control:ideal", "control:base"]
    assert runs[0]["metrics"] == {"w2": 0.5} and runs[1]["metrics"] == {"w2": 0.0}
    assert runs[0]["tier"] == "recombination" and runs[0]["rung"] is None
    assert runs[0]["oracle"]["identity"] == 1.0 and np.isnan(runs[0]["oracle"]["nonconcept_acc"])
    with pytest.raises(FileNotFoundError, match="no controls there"):
        control_runs(tmp_path / "missing", suite)
