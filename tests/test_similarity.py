"""CLIP-T / CLIP-I / DINO: references, golden values, invariances, truncation and backbone loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from metrics.backbones import (
    BackboneUnavailable,
    extract_image_features,
    extract_text_features,
    load_clip,
    load_dino,
)
from metrics.similarity import (
    all_pairs_cosine_mean,
    clip_i,
    clip_t,
    dino,
    leave_one_out_cosine_mean,
    paired_cosine_mean,
    render_slot,
)


@pytest.fixture(scope="module")
def tiny_clip():
    return load_clip("tiny-clip", None, seed=0)


@pytest.fixture(scope="module")
def tiny_dino():
    return load_dino("tiny-dino", None, seed=0)


def _images(n: int, seed: int = 0, size: tuple[int, int] = (48, 40)) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)) for _ in range(n)]


# --- functional core --------------------------------------------------------------------------------


def test_cosine_means_match_loops() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 8)), rng.standard_normal((7, 8))
    cos = lambda u, v: float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))  # noqa: E731
    assert all_pairs_cosine_mean(a, b) == pytest.approx(np.mean([cos(x, y) for x in a for y in b]), rel=1e-12)
    assert paired_cosine_mean(a, a[::-1] * 3) == pytest.approx(
        np.mean([cos(a[i], a[4 - i]) for i in range(5)])
    )
    loo = np.mean([cos(a[i], a[j]) for i in range(5) for j in range(5) if i != j])
    assert leave_one_out_cosine_mean(a) == pytest.approx(loo, rel=1e-12)


def test_golden_cosines() -> None:
    # Exact: cos((1,0),(1,1)) = 1/sqrt(2); cos((1,0),(0,1)) = 0.
    assert paired_cosine_mean([[1, 0], [1, 0]], [[1, 1], [0, 1]]) == pytest.approx(
        0.5 / np.sqrt(2), abs=1e-15
    )
    assert all_pairs_cosine_mean([[1, 0]], [[1, 0], [-1, 0]]) == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize(
    ("fn", "args", "message"),
    [
        (paired_cosine_mean, ([[1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]), "equal shapes"),
        (all_pairs_cosine_mean, (np.zeros((0, 2)), [[1.0, 0.0]]), "empty"),
        (all_pairs_cosine_mean, ([[0.0, 0.0]], [[1.0, 0.0]]), "zero-norm"),
        (all_pairs_cosine_mean, ([[np.nan, 0.0]], [[1.0, 0.0]]), "NaN"),
        (all_pairs_cosine_mean, ([[1.0, 0.0]], [[1.0, 0.0, 0.0]]), "dimensions differ"),
        (leave_one_out_cosine_mean, ([[1.0, 0.0]],), "at least 2"),
    ],
)
def test_functional_bad_input(fn, args, message) -> None:
    with pytest.raises(ValueError, match=message):
        fn(*args)


def test_render_slot() -> None:
    assert render_slot("a {concept} in the snow", "dog") == "a dog in the snow"
    with pytest.raises(ValueError, match="no {concept} slot"):
        render_slot("a dog in the snow", "dog")
    with pytest.raises(ValueError, match="unknown field"):
        render_slot("a {concept} {style}", "dog")


# --- CLIP-T against a direct cosine on tiny random open_clip --------------------------------------


def test_clip_t_matches_direct_cosine(tiny_clip) -> None:
    images = _images(3)
    prompts = ["a dog in the snow", "a red backpack", "a cat on a beach"]
    res = clip_t(images, prompts, tiny_clip, batch_size=2)
    model = tiny_clip.model
    with torch.no_grad():
        img = model.encode_image(torch.stack([tiny_clip.preprocess(i) for i in images]))
        txt = model.encode_text(tiny_clip.tokenizer(prompts))
    direct = torch.nn.functional.cosine_similarity(img.double(), txt.double()).mean().item()
    assert res.value == pytest.approx(direct, abs=1e-6)  # float32 model, float64 reduction
    assert res.n == 3 and res.n_truncated == 0
    assert res.backbone["name"] == "tiny-clip" and "Resize" in res.backbone["preprocess"]


def test_clip_t_prompt_too_long(tiny_clip) -> None:
    long_prompt = "a " + "very " * 80 + "long prompt"
    with pytest.raises(ValueError, match=r"more than the text encoder's context of 77"):
        clip_t(_images(1), [long_prompt], tiny_clip)
    res = clip_t(_images(2), [long_prompt, "a dog"], tiny_clip, allow_truncation=True)
    assert res.n_truncated == 1
    with pytest.raises(ValueError, match="one prompt per image"):
        clip_t(_images(2), ["a dog"], tiny_clip)


def test_clip_i_and_dino_match_feature_definition(tiny_clip, tiny_dino) -> None:
    gen, ref = _images(4, seed=1), _images(3, seed=2)
    for backbone, fn in ((tiny_clip, clip_i), (tiny_dino, dino)):
        res = fn(gen, ref, backbone)
        g = extract_image_features(backbone, gen).double()
        r = extract_image_features(backbone, ref).double()
        # 1e-6: features are normalised in float32 here, re-normalised in float64 by the metric.
        assert res.value == pytest.approx(float((g @ r.T).mean()), abs=1e-6)
        assert res.n == 12
    with pytest.raises(ValueError, match="needs a DINO backbone"):
        dino(gen, ref, tiny_clip)
    with pytest.raises(ValueError, match="needs a CLIP backbone"):
        clip_i(gen, ref, tiny_dino)


def test_feature_extraction_batch_and_order_invariance(tiny_dino) -> None:
    images = _images(5, seed=3)
    f1 = extract_image_features(tiny_dino, images, batch_size=1)
    f5 = extract_image_features(tiny_dino, images, batch_size=5, device="cpu")
    # 1e-5: float32 matmuls may block differently per batch size.
    assert torch.allclose(f1, f5, atol=1e-5)
    rev = extract_image_features(tiny_dino, images[::-1], batch_size=2)
    assert torch.allclose(rev.flip(0), f1, atol=1e-5)
    assert torch.allclose(f1.norm(dim=1), torch.ones(5), atol=1e-6)


def test_images_from_paths_rgba_and_bad_file(tmp_path: Path, tiny_dino) -> None:
    img = _images(1)[0]
    img.save(tmp_path / "a.png")
    img.convert("RGBA").save(tmp_path / "b.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    f = extract_image_features(tiny_dino, [tmp_path / "a.png", tmp_path / "b.png", img])
    assert torch.allclose(f[0], f[1], atol=1e-6) and torch.allclose(f[0], f[2], atol=1e-6)
    with pytest.raises(ValueError, match="bad.png"):
        extract_image_features(tiny_dino, [tmp_path / "bad.png"])


# --- loading: local files, identity, no implicit downloads ---------------------------------------


def test_clip_local_file_round_trip(tmp_path: Path, tiny_clip) -> None:
    path = tmp_path / "tiny_clip.pt"
    torch.save(tiny_clip.model.state_dict(), path)
    loaded = load_clip("tiny-clip", path)
    assert loaded.weights.startswith("file:")
    imgs = _images(2)
    assert torch.allclose(
        extract_image_features(loaded, imgs), extract_image_features(tiny_clip, imgs), atol=1e-6
    )
    t1, _ = extract_text_features(loaded, ["a dog"])
    t2, _ = extract_text_features(tiny_clip, ["a dog"])
    assert torch.allclose(t1, t2, atol=1e-6)


def test_dino_local_file_round_trip_and_identity(tmp_path: Path, tiny_dino) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "tiny_dino.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_dino.model.state_dict().items()}, str(path))
    loaded = load_dino("tiny-dino", path)
    imgs = _images(2)
    assert torch.allclose(
        extract_image_features(loaded, imgs), extract_image_features(tiny_dino, imgs), atol=1e-6
    )
    ident = loaded.identity()
    assert ident["preprocess"] == "resize_shorter=37 bicubic; center_crop=32; imagenet mean/std"
    assert ident["weights"] == loaded.weights and ident["kind"] == "dino"


def test_real_weights_never_download(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub

    def forbidden(*args, **kwargs):
        if not kwargs.get("local_files_only"):
            raise AssertionError("a download was attempted")
        raise FileNotFoundError("not cached")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", forbidden)
    with pytest.raises(BackboneUnavailable, match="vit_base_patch32_clip_224.openai"):
        load_clip("ViT-B-32", "openai")
    with pytest.raises(BackboneUnavailable, match="vit_small_patch16_224.dino"):
        load_dino()


def test_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown open_clip architecture"):
        load_clip("ViT-Z-99", None)
    with pytest.raises(ValueError, match="unknown DINO backbone"):
        load_dino("dino-xxl", None)
    with pytest.raises(ValueError, match="no weights tag"):
        load_clip("ViT-B-32", "no-such-tag")
