"""Oracle-backed toy backbones: caption parsing, the attribute-space cosine, and loading through metrics."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.toy.backbones import (
    EMBED_DIM,
    AttributeTokenizer,
    attribute_phrases,
    load_toy_backbone,
    parse_caption,
)
from benchmark.toy.io import atomic_torch_save
from benchmark.toy.oracle import CHECKPOINT, HEADS, ORACLE_VERSION, Oracle, OracleConfig, to_tensor
from benchmark.toy.render import render
from benchmark.toy.world import caption, sample_scenes
from metrics.backbones import (
    BackboneUnavailable,
    extract_image_features,
    extract_text_features,
    load_backbone,
)

TOY_LOADER = "benchmark.toy.backbones:load_toy_backbone"  # how the toy suite's profile names the loader

SIZES = [len(v) for v in HEADS.values()]
SMALL = OracleConfig(width=8, hidden=32)


@pytest.fixture(autouse=True)
def _threads() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _save_oracle(folder: Path, seed: int, cfg: OracleConfig = SMALL) -> Path:
    """A random-weight oracle checkpoint in the layout train_oracle writes."""
    torch.manual_seed(seed)
    model = Oracle(cfg.image_size, cfg.width, cfg.hidden)
    return atomic_torch_save(
        folder / CHECKPOINT,
        {
            "model": model.state_dict(),
            "config": asdict(cfg),
            "seed": seed,
            "heads": {k: list(v) for k, v in HEADS.items()},
            "version": ORACLE_VERSION,
        },
    )


def _images(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=g) * 2 - 1


def _blocks(x: torch.Tensor) -> list[torch.Tensor]:
    return list(x.split(SIZES, dim=-1))


# ----------------------------------------------------------------------------------------------------
# Parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "top left, a sks star with diagonal stripes on a night sky background",
            {"shape": "star", "background": "night sky", "position": "top left", "pattern": "diagonal"},
        ),
        (
            "a photo of a red circle with stripes on a wooden floor background, bottom right",
            {
                "shape": "circle",
                "colour": "red",
                "background": "wooden floor",
                "position": "bottom right",
                "pattern": "stripes",
            },
        ),
        ("<new1> heart with a checker pattern", {"shape": "heart", "pattern": "checker"}),
        ("A RED blue Star", {"shape": "star", "colour": "red"}),  # first colour wins
        ("a star, then a circle", {"shape": "star"}),  # first shape wins
        ("stars in the Center", {"position": "center"}),  # "stars" is not the word "star"
        ("snowy grass", {"background": "grass"}),  # "snowy" is not "snow"
        ("night\n  sky, top   right", {"background": "night sky", "position": "top right"}),
        ("a photo of sks", {}),
        ("", {}),
    ],
)
def test_parse_caption_golden(text: str, expected: dict[str, str]) -> None:
    assert parse_caption(text) == expected


def test_tokenizer_rows_hold_indices_or_minus_one() -> None:
    tok = AttributeTokenizer()
    rows = tok(["top left, a sks star with diagonal stripes on a night sky background", "nothing here"])
    assert rows.dtype == torch.long and tuple(rows.shape) == (2, len(HEADS))
    assert rows[0].tolist() == [
        HEADS["shape"].index("star"),
        -1,
        HEADS["background"].index("night sky"),
        HEADS["position"].index("top left"),
        HEADS["pattern"].index("diagonal"),
    ]
    assert rows[1].tolist() == [-1] * len(HEADS)
    assert tok("a red star").tolist() == tok(["a red star"]).tolist()
    assert tok.encode("a photo of  sks") == ["a", "photo", "of", "sks"]
    assert tok.context_length == 77


def test_every_world_caption_parses_back_to_its_scene() -> None:
    scenes = sample_scenes(np.random.default_rng(5), 60, held_out="include", pattern_prob=0.5)
    for i, scene in enumerate(scenes):
        order = ("position_first", "position_last")[i % 2]
        got = parse_caption(caption(scene, order=order, prefix="a photo of sks"))
        want = {
            "shape": scene.shape,
            "colour": scene.colour,
            "background": scene.background,
            "position": scene.position,
        }
        if scene.pattern is not None:
            want["pattern"] = scene.pattern
        assert got == want, scene


def test_phrases_are_unambiguous_and_cover_the_vocabulary() -> None:
    table = attribute_phrases()
    # every attribute has one phrase except the "none" pattern
    assert len(table) == EMBED_DIM - 1 == 35
    assert len(set(table.values())) == len(table)
    assert table["with diagonal stripes"] == ("pattern", HEADS["pattern"].index("diagonal"))
    assert "none" not in table


def test_words_past_the_context_are_not_read() -> None:
    filler = " ".join(["sks"] * 75)
    tok = AttributeTokenizer()
    assert tok([f"{filler} red star"]).tolist() == [[-1] * len(HEADS)]
    assert tok([f"{' '.join(['sks'] * 73)} red star"])[0, :2].tolist() == [
        HEADS["shape"].index("star"),
        HEADS["colour"].index("red"),
    ]


# ----------------------------------------------------------------------------------------------------
# Embeddings


def test_encode_text_is_one_hot_per_named_head() -> None:
    bb = load_toy_backbone("clip", "toy-clip", None, seed=0)
    texts = ["a red star", "top left, a sks star with diagonal stripes on a night sky background", "sks"]
    emb = bb.model.encode_text(bb.tokenizer(texts))
    assert tuple(emb.shape) == (3, EMBED_DIM)
    assert torch.allclose(emb.norm(dim=-1), torch.tensor([math.sqrt(2), 2.0, 0.0]))
    for block in _blocks(emb):
        assert set(block.sum(dim=-1).tolist()) <= {0.0, 1.0}
        assert set(block.unique().tolist()) <= {0.0, 1.0}


def test_encode_text_rejects_bad_tokens() -> None:
    bb = load_toy_backbone("clip", "toy-clip", None)
    with pytest.raises(ValueError, match=r"expected \[N, 5\]"):
        bb.model.encode_text(torch.zeros(2, 4, dtype=torch.long))
    bad = torch.full((1, 5), -1, dtype=torch.long)
    bad[0, 3] = 5  # position has 5 values: 0..4
    with pytest.raises(ValueError, match="position"):
        bb.model.encode_text(bad)


def test_image_features_are_per_head_probabilities() -> None:
    bb = load_toy_backbone("clip", "toy-clip", None, seed=1)
    x = _images(6)
    with torch.no_grad():
        emb = bb.model.encode_image(x)
        logits = bb.model.oracle(x)
    assert tuple(emb.shape) == (6, EMBED_DIM) and torch.isfinite(emb).all()
    for head, block in zip(HEADS, _blocks(emb), strict=True):
        assert torch.allclose(block.sum(dim=-1), torch.ones(6), atol=1e-6)
        assert torch.allclose(block, logits[head].softmax(-1))


def test_cosine_has_the_closed_form() -> None:
    """cos(img, txt) = sum_h p_h[a_h] / (sqrt(k) ||p||) for a caption naming k heads (float32: 1e-6)."""
    bb = load_toy_backbone("clip", "toy-clip", None, seed=2)
    texts = [
        "a red star",
        "top left, a sks star with diagonal stripes on a night sky background",
        "a blue hexagon with dots on a sand background, center",
        "grass",
    ]
    x = _images(5, seed=3)
    with torch.no_grad():
        img = bb.model.encode_image(x)
    tokens = bb.tokenizer(texts)
    txt = bb.model.encode_text(tokens)
    direct = torch.nn.functional.cosine_similarity(img[:, None, :], txt[None, :, :], dim=-1)
    probs = _blocks(img)
    closed = torch.zeros(5, len(texts))
    for j in range(len(texts)):
        named = [(h, int(a)) for h, a in enumerate(tokens[j]) if a >= 0]
        hits = sum(probs[h][:, a] for h, a in named)
        closed[:, j] = hits / (math.sqrt(len(named)) * img.norm(dim=-1))
    assert torch.allclose(direct, closed, atol=1e-6)
    # and through the metrics extractors (both sides L2-normalised)
    fi = extract_image_features(bb, x)
    ft, n_trunc = extract_text_features(bb, texts)
    assert n_trunc == 0
    assert torch.allclose(fi @ ft.T, closed, atol=1e-6)


def test_a_caption_naming_nothing_scores_zero() -> None:
    bb = load_toy_backbone("clip", "toy-clip", None)
    ft, _ = extract_text_features(bb, ["a photo of sks"])
    fi = extract_image_features(bb, _images(2))
    assert torch.equal(fi @ ft.T, torch.zeros(2, 1))


def test_toy_dino_is_the_oracle_penultimate_layer() -> None:
    bb = load_toy_backbone("dino", "toy-dino", None, seed=4)
    x = _images(3)
    with torch.no_grad():
        h = bb.model(x)
        logits = bb.model.oracle(x)
    assert tuple(h.shape) == (3, OracleConfig().hidden) and torch.isfinite(h).all()
    assert torch.allclose(bb.model.oracle.heads["shape"](h), logits["shape"], atol=1e-6)
    assert bb.tokenizer is None and bb.context_length is None


def test_random_oracle_is_seeded_and_leaves_the_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = load_toy_backbone("dino", "toy-dino", None, seed=7)
    after = torch.rand(3)
    b = load_toy_backbone("dino", "toy-dino", None, seed=7)
    c = load_toy_backbone("dino", "toy-dino", None, seed=8)
    assert torch.equal(after, expected)
    x = _images(2)
    with torch.no_grad():
        assert torch.equal(a.model(x), b.model(x))
        assert not torch.equal(a.model(x), c.model(x))
    assert a.weights == "random(seed=7)"


# ----------------------------------------------------------------------------------------------------
# Loading through metrics.backbones


def test_end_to_end_through_load_backbone(tmp_path: Path) -> None:
    ckpt = _save_oracle(tmp_path, seed=0)
    bb = load_backbone("clip", "toy-clip", str(ckpt), loader=TOY_LOADER)
    assert (bb.kind, bb.name) == ("clip", "toy-clip")
    assert bb.weights.startswith("file:") and len(bb.weights) == len("file:") + 16
    assert bb.identity()["preprocess"] == "toy: resize 32 bilinear antialias, [-1,1]"
    scenes = sample_scenes(np.random.default_rng(0), 4, held_out="include", pattern_prob=0.5)
    pil = [render(s, 48) for s in scenes]  # another size: the preprocess resizes to 32
    feats = extract_image_features(bb, pil, batch_size=3)
    assert tuple(feats.shape) == (4, EMBED_DIM)
    assert torch.allclose(feats.norm(dim=-1), torch.ones(4), atol=1e-6)
    # PIL path == preprocessed-tensor path
    assert torch.allclose(feats, extract_image_features(bb, to_tensor(pil, 32)), atol=1e-6)
    texts = [caption(s, prefix="a photo of sks") for s in scenes]
    ft, n_trunc = extract_text_features(bb, texts)
    assert tuple(ft.shape) == (4, EMBED_DIM) and n_trunc == 0
    # the folder resolves to the same checkpoint, and toy-dino loads from it too
    assert load_backbone("clip", "toy-clip", tmp_path, loader=TOY_LOADER).weights == bb.weights
    dino = load_backbone("dino", "toy-dino", tmp_path, loader=TOY_LOADER)
    assert dino.weights == bb.weights
    assert tuple(extract_image_features(dino, pil).shape) == (4, SMALL.hidden)


def test_long_prompts_follow_the_truncation_rule() -> None:
    bb = load_toy_backbone("clip", "toy-clip", None)
    long = " ".join(["sks"] * 80) + " red star"
    with pytest.raises(ValueError, match="more than the text encoder's context of 77"):
        extract_text_features(bb, [long])
    ft, n_trunc = extract_text_features(bb, [long, "a red star"], allow_truncation=True)
    assert n_trunc == 1 and torch.equal(ft[0], torch.zeros(EMBED_DIM))


def test_weights_tag_follows_the_checkpoint(tmp_path: Path) -> None:
    a = load_toy_backbone("clip", "toy-clip", _save_oracle(tmp_path / "a", seed=0))
    b = load_toy_backbone("clip", "toy-clip", _save_oracle(tmp_path / "b", seed=1))
    again = load_toy_backbone("clip", "toy-clip", tmp_path / "a")
    assert a.weights != b.weights
    assert again.weights == a.weights
    _save_oracle(tmp_path / "a", seed=2)  # overwrite: a new checkpoint, a new tag
    assert load_toy_backbone("clip", "toy-clip", tmp_path / "a").weights not in (a.weights, b.weights)


def test_missing_checkpoint_is_unavailable(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / CHECKPOINT
    with pytest.raises(BackboneUnavailable, match=re.escape(str(missing))):
        load_backbone("clip", "toy-clip", missing, loader=TOY_LOADER)
    with pytest.raises(BackboneUnavailable, match=CHECKPOINT):
        load_backbone("dino", "toy-dino", tmp_path, loader=TOY_LOADER)  # a folder without a checkpoint


def test_unknown_names_and_kinds_are_rejected() -> None:
    with pytest.raises(ValueError, match="did you mean 'toy-clip'"):
        load_toy_backbone("clip", "toy-clp", None)
    with pytest.raises(ValueError, match="'dino'"):
        load_toy_backbone("clip", "toy-dino", None)
    with pytest.raises(ValueError, match="a 'clip' backbone, not 'dino'"):
        load_backbone("dino", "toy-clip", None, loader=TOY_LOADER)
    with pytest.raises(ValueError, match="unknown backbone kind"):
        load_backbone("vae", "toy-clip", None, loader=TOY_LOADER)


def test_importing_metrics_does_not_import_the_toy_backbones() -> None:
    code = (
        "import sys, metrics.backbones as m; "
        "print(any(k.startswith('benchmark.toy') for k in sys.modules), 'open_clip' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert out.stdout.split() == ["False", "False"]
