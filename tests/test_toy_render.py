"""The toy world's renderer, captions, held-out rule and scene sampling."""

from __future__ import annotations

import hashlib
import itertools

import numpy as np
import pytest

from benchmark.toy.render import render, render_array, render_batch
from benchmark.toy.world import (
    BACKGROUNDS,
    COLOURS,
    HELD_OUT_FRACTION,
    PATTERNS,
    POSITIONS,
    SHAPES,
    Scene,
    all_combos,
    caption,
    held_out_combos,
    is_held_out,
    sample_scenes,
)


def _scene(**kw: object) -> Scene:
    base: dict[str, object] = {
        "shape": "star",
        "colour": "red",
        "background": "snow",
        "position": "top left",
        "size": 0.5,
        "seed": 3,
    }
    base.update(kw)
    return Scene(**base)  # type: ignore[arg-type]


def test_same_scene_gives_identical_pixels_and_a_different_seed_changes_only_the_texture() -> None:
    a = render_array(_scene(background="grass"), 32)
    b = render_array(_scene(background="grass"), 32)
    c = render_array(_scene(background="grass", seed=4), 32)
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # The object (top left, half the side) looks the same whatever the texture seed: its core pixels match.
    assert np.array_equal(a[8:10, 8:10], c[8:10, 8:10])


def test_sampled_scenes_render_identically_from_the_same_seed() -> None:
    first = render_batch(sample_scenes(np.random.default_rng(5), 6, pattern_prob=0.5), 24)
    second = render_batch(sample_scenes(np.random.default_rng(5), 6, pattern_prob=0.5), 24)
    third = render_batch(sample_scenes(np.random.default_rng(6), 6, pattern_prob=0.5), 24)
    assert first.shape == (6, 24, 24, 3)
    assert hashlib.sha256(first.tobytes()).hexdigest() == hashlib.sha256(second.tobytes()).hexdigest()
    assert not np.array_equal(first, third)


def test_render_returns_an_rgb_image_of_the_requested_size() -> None:
    img = render(_scene(), 40)
    assert img.mode == "RGB" and img.size == (40, 40)
    assert np.array_equal(np.asarray(img), render_array(_scene(), 40))


def test_object_pixels_have_the_palette_colour_at_the_requested_position() -> None:
    for position, (fx, fy) in POSITIONS.items():
        px = render_array(_scene(shape="square", colour="blue", background="sand", position=position), 32)
        x, y = round(fx * 32), round(fy * 32)
        centre = px[y - 1 : y + 1, x - 1 : x + 1].reshape(-1, 3)
        assert np.abs(centre.astype(int) - np.array(COLOURS["blue"])).max() <= 1, position
        # The opposite corner of the image is background (sand), not the object.
        corner = px[31 - y, 31 - x] if position != "center" else px[1, 1]
        assert np.abs(corner.astype(int) - np.array(COLOURS["blue"])).max() > 60, position


def test_each_shape_has_its_own_silhouette_and_each_background_its_own_texture() -> None:
    masks = {}
    for shape in SHAPES:
        px = render_array(_scene(shape=shape, colour="red", background="snow", position="center"), 32)
        masks[shape] = np.abs(px.astype(int) - np.array(COLOURS["red"])).max(axis=-1) < 40
    for a, b in itertools.combinations(SHAPES, 2):
        assert (masks[a] != masks[b]).sum() >= 6, (a, b)
    means = [render_array(_scene(background=bg), 32)[20:, 20:].reshape(-1, 3).mean(0) for bg in BACKGROUNDS]
    for i, j in itertools.combinations(range(len(BACKGROUNDS)), 2):
        assert np.abs(means[i] - means[j]).max() > 10, (BACKGROUNDS[i], BACKGROUNDS[j])


def test_a_pattern_changes_pixels_inside_the_object_only() -> None:
    plain = render_array(_scene(position="center", background="grass"), 32)
    for pattern in PATTERNS:
        patterned = render_array(_scene(position="center", background="grass", pattern=pattern), 32)
        changed = np.abs(plain.astype(int) - patterned.astype(int)).max(axis=-1) > 0
        assert changed.sum() >= 4, pattern
        ys, xs = np.nonzero(changed)
        assert ys.min() >= 9 and ys.max() <= 23 and xs.min() >= 9 and xs.max() <= 23, pattern


def test_captions_say_the_scene_attributes_in_the_chosen_order() -> None:
    s = _scene(colour="orange", shape="heart", background="night sky", position="bottom right")
    assert caption(s) == "bottom right, an orange heart on a night sky background"
    assert caption(s, order="position_last") == "an orange heart on a night sky background, bottom right"
    assert caption(s, parts=["background"]) == "a heart on a night sky background"
    assert caption(s, parts=[], prefix="a photo of") == "a photo of a heart"
    patterned = _scene(pattern="checker")
    assert caption(patterned, order="position_last") == (
        "a red star with a checker pattern on a snow background, top left"
    )
    assert caption(patterned, parts=["colour"]) == "a red star"


def test_captions_of_sampled_scenes_name_exactly_their_attributes() -> None:
    for s in sample_scenes(np.random.default_rng(1), 200, held_out="include", pattern_prob=0.3):
        text = caption(s, order="position_last")
        assert text.startswith(f"a{'n' if s.colour[0] in 'aeiou' else ''} {s.colour} {s.shape}")
        assert f" on a {s.background} background, {s.position}" in text
        assert text.endswith(s.position)
        object_phrase = text.split(" on a ")[0]
        if s.pattern is None:
            assert " with " not in object_phrase
        else:
            assert object_phrase.endswith(PATTERNS[s.pattern])
        others = [c for c in COLOURS if c != s.colour]
        assert not any(f" {c} " in f" {text} " for c in others)


def test_bad_attributes_and_caption_options_raise_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"Scene\.shape.*'strar'.*did you mean 'star'"):
        _scene(shape="strar")
    with pytest.raises(ValueError, match=r"Scene\.size"):
        _scene(size=0.9)
    with pytest.raises(ValueError, match=r"Scene\.jitter"):
        _scene(jitter=(0.2, 0.0))
    with pytest.raises(ValueError, match=r"Scene\.pattern"):
        _scene(pattern="plaid")
    with pytest.raises(ValueError, match="caption order"):
        caption(_scene(), order="sideways")
    with pytest.raises(ValueError, match="caption parts"):
        caption(_scene(), parts=["shape"])
    with pytest.raises(ValueError, match="size must be an integer"):
        render_array(_scene(), 4)
    with pytest.raises(ValueError, match="held_out"):
        sample_scenes(np.random.default_rng(0), 1, held_out="some")  # type: ignore[arg-type]


def test_scene_round_trips_through_a_dict() -> None:
    s = _scene(pattern="dots", jitter=(0.01, -0.02))
    assert Scene.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError, match="unknown keys"):
        Scene.from_dict({**s.to_dict(), "angle": 3})


def test_held_out_set_is_fifteen_percent_fixed_and_leaves_every_pair_in_pretraining() -> None:
    held = held_out_combos()
    combos = all_combos()
    assert len(combos) == len(SHAPES) * len(COLOURS) * len(BACKGROUNDS) == 512
    assert len(held) == round(HELD_OUT_FRACTION * 512) == 77
    assert held <= set(combos)
    # Golden: the set is a function of the names only; a change here changes every toy number.
    digest = hashlib.sha256("\n".join("|".join(c) for c in sorted(held)).encode()).hexdigest()
    assert digest == "482efdf7472d57aa113d5527652478a0ebe3b2f7b32a85a8ecd519a86d5ca451"
    assert ("circle", "blue", "fabric") in held
    kept = set(combos) - held
    for a, b in ((0, 1), (0, 2), (1, 2)):
        pairs_kept = {(c[a], c[b]) for c in kept}
        pairs_all = {(c[a], c[b]) for c in combos}
        assert pairs_kept == pairs_all, f"an attribute pair ({a}, {b}) appears only in held-out combos"
    assert is_held_out(sorted(held)[0]) and not is_held_out(sorted(kept)[0])


def test_pretraining_data_wears_only_pretraining_patterns_and_never_a_reserved_pair() -> None:
    from benchmark.toy.config import PRESETS
    from benchmark.toy.data import dataset_scenes
    from benchmark.toy.world import NOVEL_PATTERNS, PRETRAIN_PATTERNS, RESERVED_PAIRS

    scenes = dataset_scenes(PRESETS["default"].replace(dataset_size=4000))
    patterned = [s for s in scenes if s.pattern is not None]
    assert 0.45 < len(patterned) / len(scenes) < 0.55
    assert {s.pattern for s in patterned} == set(PRETRAIN_PATTERNS)
    assert not {s.pattern for s in patterned} & set(NOVEL_PATTERNS)
    assert not any((s.shape, s.pattern) in RESERVED_PAIRS for s in patterned)
    # every reserved pair's shape and pattern still appear in pretraining, only not together
    for shape, pattern in RESERVED_PAIRS:
        assert any(s.shape == shape for s in patterned) and any(s.pattern == pattern for s in patterned)
    assert not any(is_held_out(s) for s in scenes)


def test_pretraining_samples_never_use_held_out_combinations_or_patterns() -> None:
    scenes = sample_scenes(np.random.default_rng(0), 3000)
    assert not any(is_held_out(s) for s in scenes)
    assert all(s.pattern is None for s in scenes)
    # …while covering every non-held-out combination's parts and every position.
    assert {s.shape for s in scenes} == set(SHAPES)
    assert {s.background for s in scenes} == set(BACKGROUNDS)
    assert {s.position for s in scenes} == set(POSITIONS)
    only = sample_scenes(np.random.default_rng(0), 300, held_out="only")
    assert all(is_held_out(s) for s in only)
    patterned = sample_scenes(np.random.default_rng(0), 400, held_out="include", pattern_prob=0.5)
    share = sum(s.pattern is not None for s in patterned) / 400
    assert 0.4 < share < 0.6
