"""The toy rulers (learned toy CLIP / DINO): they never touch the oracle, their parts have the promised
shapes, the tokenizer maps unknown words to [UNK] and truncates, they load through the generic backbone
loader, the shipped assets are checked, and training resumed in two sittings equals one sitting."""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.toy.rulers import (
    HELD_OUT_PAIRS,
    UNK,
    ContrastiveRuler,
    ImageTower,
    RulerConfig,
    WordTokenizer,
    build_model,
    default_config,
    load_ruler,
    sample_ruler_scenes,
)
from benchmark.toy.train_rulers import export, train_ruler
from metrics.backbones import (
    BackboneUnavailable,
    count_text_tokens,
    extract_image_features,
    extract_text_features,
    load_backbone,
)

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("benchmark.toy.rulers", "benchmark.toy.train_rulers", "benchmark.toy.ruler_probe")
FORBIDDEN = ("benchmark.toy.oracle", "benchmark.toy.backbones")
LOADER = "benchmark.toy.rulers:load_ruler"


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread: the tiny models gain nothing from more, and on a busy machine threads that
    wait for each other make a 0.1 s step take seconds."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _tiny(which: str) -> RulerConfig:
    return dataclasses.replace(
        default_config(which),
        width=8,
        hidden=32,
        embed_dim=16,
        text_width=16,
        text_layers=1,
        proj_dim=16,
        batch_size=8,
        bank_size=12,
        checkpoint_every=2,
        log_every=2,
        warmup_steps=2,
    )


# ---------------------------------------------------------------------------------------------- oracle


def _package_imports(module: str) -> set[str]:
    """Package modules ``module`` imports (module level and inside functions)."""
    path = ROOT / (module.replace(".", "/") + ".py")
    if not path.is_file():
        path = ROOT / module.replace(".", "/") / "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in found if m.split(".")[0] in ("benchmark", "metrics")}


def _reachable(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        file = ROOT / (module.replace(".", "/") + ".py")
        package = ROOT / module.replace(".", "/") / "__init__.py"
        if not file.is_file() and not package.is_file():
            continue  # a name imported from a module, not a module
        seen.add(module)
        todo.extend(_package_imports(module))
    return seen


@pytest.mark.parametrize("module", MODULES)
def test_rulers_never_import_the_oracle_statically(module: str) -> None:
    reached = _reachable(module)
    assert module in reached and "benchmark.toy.world" in reached
    assert not set(FORBIDDEN) & reached


def test_the_static_check_would_see_the_oracle() -> None:
    assert "benchmark.toy.oracle" in _reachable("benchmark.toy.backbones")


def test_importing_and_loading_rulers_leaves_the_oracle_unloaded() -> None:
    code = (
        "import sys, json\n"
        f"import {', '.join(MODULES)}\n"
        "from benchmark.toy.rulers import load_ruler\n"
        "load_ruler('clip', 'toy-contrastive', 'toy'); load_ruler('dino', 'toy-ssl', 'toy')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('benchmark.toy'))))\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "benchmark.toy.rulers" in loaded
    assert not set(FORBIDDEN) & loaded


def test_no_ruler_source_names_the_oracle_checkpoint() -> None:
    for module in MODULES:
        text = (ROOT / (module.replace(".", "/") + ".py")).read_text(encoding="utf-8")
        assert "oracle_checkpoint" not in text and "assets/oracle" not in text


# ---------------------------------------------------------------------------------------------- models


def test_forward_shapes_of_small_random_models() -> None:
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    clip = cast(ContrastiveRuler, build_model(_tiny("contrastive"), seed=0))
    ids = WordTokenizer()(["a red heart", "top left, a photo of a star with zigzags", "sks"])
    assert clip.encode_image(x).shape == (3, 16)
    assert clip.encode_text(ids).shape == (3, 16)
    assert clip.spatial(x).shape == (3, 32, 4, 4)
    ssl = cast(ImageTower, build_model(_tiny("ssl"), seed=0))
    assert ssl(x).shape == (3, 32)
    assert ssl.spatial(x).shape == (3, 32, 4, 4)


def test_padding_does_not_change_a_text_embedding() -> None:
    clip = cast(ContrastiveRuler, build_model(_tiny("contrastive"), seed=1).eval())
    ids = WordTokenizer()(["a red heart on a grass background"])
    short = ids[:, : int((ids != 0).sum())]
    with torch.no_grad():
        torch.testing.assert_close(clip.encode_text(ids), clip.encode_text(short), atol=1e-5, rtol=0)


def test_random_init_is_seeded_and_leaves_the_callers_rng_alone() -> None:
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = build_model(_tiny("ssl"), seed=5).state_dict()
    b = build_model(_tiny("ssl"), seed=5).state_dict()
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------------------- tokenizer


def test_tokenizer_maps_unknown_words_to_unk_and_splits_on_commas() -> None:
    tok = WordTokenizer()
    unk = tok.index[UNK]
    ids = tok.encode("Top left,a sks heart <new1> zwx")
    assert ids[:4] == [tok.index["top"], tok.index["left"], tok.index["a"], unk]
    assert ids[4] == tok.index["heart"] and ids[5:] == [unk, unk]
    for word in ("heart", "zigzags", "night", "sky", "photo", "background", "diagonal"):
        assert tok.index.get(word, unk) != unk


def test_tokenizer_truncates_to_the_context_length() -> None:
    tok = WordTokenizer(context_length=8)
    row = tok(" ".join(["heart"] * 20))[0].tolist()
    assert len(row) == 8
    assert row[0] == tok.index["[BOS]"] and row[-1] == tok.index["[EOS]"]
    assert row[1:-1] == [tok.index["heart"]] * 6
    assert tok("a heart")[0].tolist()[4:] == [0, 0, 0, 0]


# --------------------------------------------------------------------------------------------- loading


def test_load_through_the_generic_loader_with_random_weights() -> None:
    clip = load_backbone("clip", "toy-contrastive", None, loader=LOADER, seed=3)
    assert clip.weights == "random(seed=3)" and clip.kind == "clip"
    images = [Image.fromarray(np.full((40, 40, 3), v, np.uint8)) for v in (0, 128, 255)]
    feats = extract_image_features(clip, images)
    assert feats.shape == (3, 64)
    torch.testing.assert_close(feats.norm(dim=1), torch.ones(3))
    text, n_trunc = extract_text_features(clip, ["a photo of sks heart", "a red star"])
    assert text.shape == (2, 64) and n_trunc == 0
    assert count_text_tokens(clip, "top left, a sks heart") == 7
    dino = load_backbone("dino", "toy-ssl", None, loader=LOADER)
    assert extract_image_features(dino, images).shape == (3, 256)


def test_loader_errors() -> None:
    with pytest.raises(ValueError, match="did you mean 'toy-ssl'"):
        load_ruler("dino", "toy-sl", None)
    with pytest.raises(ValueError, match="is a 'dino' backbone"):
        load_ruler("clip", "toy-ssl", None)
    with pytest.raises(BackboneUnavailable, match="checkpoint /nowhere does not exist"):
        load_ruler("clip", "toy-contrastive", "/nowhere")


def test_a_trained_checkpoint_loads_from_its_folder_with_a_file_tag(tmp_path: Path) -> None:
    train_ruler(tmp_path, 2, config=_tiny("ssl"))
    bb = load_ruler("dino", "toy-ssl", tmp_path)
    assert bb.weights.startswith("file:") and len(bb.weights) == 5 + 16
    with pytest.raises(ValueError, match="not 'toy-contrastive'"):
        load_ruler("clip", "toy-contrastive", tmp_path)


@pytest.mark.parametrize("name,kind,dim", [("toy-contrastive", "clip", 64), ("toy-ssl", "dino", 256)])
def test_shipped_assets_pass_their_sums_and_load(name: str, kind: str, dim: int) -> None:
    from benchmark.toy.assets import RULERS
    from benchmark.toy.io import verify_sha256_manifest

    assert verify_sha256_manifest(RULERS / name) == []
    record = json.loads((RULERS / name / "training_record.json").read_text())
    assert record["steps_done"] == record["total_steps"] > 0
    assert sorted(map(tuple, record["held_out_pairs"])) == sorted(HELD_OUT_PAIRS)
    bb = load_ruler(kind, name, "toy")
    assert bb.weights.startswith("file:")
    assert extract_image_features(bb, torch.zeros(2, 3, 32, 32)).shape == (2, dim)


def test_a_tampered_asset_gives_a_one_line_error_naming_the_file(tmp_path: Path, monkeypatch) -> None:
    import benchmark.toy.assets as assets

    src = tmp_path / "src"
    train_ruler(src, 2, config=_tiny("contrastive"))
    rulers = tmp_path / "rulers"
    export(src, rulers / "toy-contrastive")
    monkeypatch.setattr(assets, "RULERS", rulers)
    assets._checked.cache_clear()
    try:
        assert load_ruler("clip", "toy-contrastive", "toy").weights.startswith("file:")
        ckpt = rulers / "toy-contrastive" / "ruler_checkpoint.pt"
        ckpt.write_bytes(ckpt.read_bytes() + b"x")
        assets._checked.cache_clear()
        with pytest.raises(ValueError) as err:
            load_ruler("clip", "toy-contrastive", "toy")
        assert "changed: ruler_checkpoint.pt" in str(err.value) and "\n" not in str(err.value)
    finally:
        assets._checked.cache_clear()


# -------------------------------------------------------------------------------------------- training


def test_the_held_out_pairs_cover_every_toy_concept() -> None:
    pairs = set()
    for suite in ("toy", "toy-tuning"):
        manifest = json.loads((ROOT / "data_manifests" / f"{suite}.json").read_text())
        pairs |= {(c["shape"], c["pattern"]) for c in manifest["config"]["concepts"]}
    assert pairs and pairs <= set(HELD_OUT_PAIRS)
    scenes = sample_ruler_scenes(np.random.default_rng(0), 2000)
    seen = {(s.shape, s.pattern) for s in scenes if s.pattern}
    assert not seen & set(HELD_OUT_PAIRS) and len(seen) == 8 * 6 - len(HELD_OUT_PAIRS)


@pytest.mark.parametrize("which", ["contrastive", "ssl"])
def test_two_sittings_equal_one(tmp_path: Path, which: str) -> None:
    cfg = _tiny(which)
    whole = train_ruler(tmp_path / "one", 4, seed=7, config=cfg)
    train_ruler(tmp_path / "two", 4, seed=7, config=cfg, steps_this_call=3)
    split = train_ruler(tmp_path / "two", 4, seed=7, config=cfg)
    assert split.steps_done == whole.steps_done == 4
    assert split.loss_curve == whole.loss_curve and len(whole.loss_curve) == 2
    a = torch.load(tmp_path / "one" / "ruler_checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "two" / "ruler_checkpoint.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not any(k.startswith("projector") for k in a)  # the SSL head is not exported


def test_export_refuses_an_unfinished_run(tmp_path: Path) -> None:
    train_ruler(tmp_path / "run", 4, config=_tiny("ssl"), steps_this_call=2)
    with pytest.raises(ValueError, match="stopped at step 2/4"):
        export(tmp_path / "run", tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
    shutil.rmtree(tmp_path / "run")
    with pytest.raises(FileNotFoundError):
        export(tmp_path / "run", tmp_path / "dest")
