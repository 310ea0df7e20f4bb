"""The toy world's procedural renderer: ``render(scene, size) -> PIL.Image``, deterministic from the scene.

A scene is drawn at ``supersample``× the output side (textures, shape and pattern masks in numpy) and
box-filtered down with Pillow, so edges are anti-aliased and the same scene always gives the same
pixels. The world's vocabulary, :class:`Scene`, :func:`caption` and :func:`sample_scenes` are
re-exported from :mod:`benchmark.toy.world`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from benchmark.toy.textures import BACKGROUND_TEXTURES, PATTERN_MASKS, SHAPE_MASKS, grid
from benchmark.toy.world import (
    BACKGROUNDS,
    COLOURS,
    PATTERNS,
    POSITIONS,
    SHAPES,
    Scene,
    caption,
    held_out_combos,
    is_held_out,
    sample_scenes,
)

__all__ = [
    "BACKGROUNDS",
    "COLOURS",
    "DEFAULT_SIZE",
    "PATTERNS",
    "POSITIONS",
    "SHAPES",
    "Scene",
    "caption",
    "held_out_combos",
    "is_held_out",
    "pattern_colour",
    "render",
    "render_array",
    "render_batch",
    "sample_scenes",
]

DEFAULT_SIZE = 32
DEFAULT_SUPERSAMPLE = 4
_MAX_SIZE = 1024
_PATTERN_INSET = 0.8

if (
    set(SHAPE_MASKS) != set(SHAPES)
    or set(BACKGROUND_TEXTURES) != set(BACKGROUNDS)
    or set(PATTERN_MASKS) != set(PATTERNS)
):  # pragma: no cover - a developer error caught by the first import in any test
    raise RuntimeError("benchmark.toy.textures and benchmark.toy.world disagree on the vocabulary")


def pattern_colour(colour: str) -> tuple[float, float, float]:
    """The pattern's paint for an object of ``colour``: near-white on dark colours, near-black on light.

    Raises:
        KeyError: unknown colour.
    """
    r, g, b = (c / 255.0 for c in COLOURS[colour])
    luminance = 0.299 * r + 0.587 * g + 0.114 * b
    return (0.96, 0.96, 0.96) if luminance < 0.55 else (0.08, 0.08, 0.10)


def render_array(
    scene: Scene, size: int = DEFAULT_SIZE, *, supersample: int = DEFAULT_SUPERSAMPLE
) -> np.ndarray:
    """The scene's pixels as a uint8 array [size, size, 3].

    Raises:
        TypeError: ``scene`` is not a :class:`Scene`.
        ValueError: ``size`` outside [8, 1024] or ``supersample`` outside [1, 8].
    """
    if not isinstance(scene, Scene):
        raise TypeError(f"render: expected a Scene, got {type(scene).__name__}")
    if isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= _MAX_SIZE:
        raise ValueError(f"render: size must be an integer in [8, {_MAX_SIZE}], got {size!r}")
    if isinstance(supersample, bool) or not isinstance(supersample, int) or not 1 <= supersample <= 8:
        raise ValueError(f"render: supersample must be an integer in [1, 8], got {supersample!r}")
    n = size * supersample
    rng = np.random.default_rng(scene.seed)
    img = BACKGROUND_TEXTURES[scene.background](rng, n)
    x, y = grid(n)
    cx, cy = scene.center
    radius = scene.size / 2.0
    u, v = (x - cx) / radius, (y - cy) / radius
    mask = SHAPE_MASKS[scene.shape](u, v)
    paint = np.empty((n, n, 3), dtype=np.float64)
    paint[:] = np.array(COLOURS[scene.colour], dtype=np.float64) / 255.0
    if scene.pattern is not None:
        # The pattern stays inside a rim of the object's own colour, so the silhouette stays readable.
        inner = SHAPE_MASKS[scene.shape](u / _PATTERN_INSET, v / _PATTERN_INSET)
        paint[PATTERN_MASKS[scene.pattern](u, v) & inner] = pattern_colour(scene.colour)
    img = np.where(mask[..., None], paint, img)
    big = Image.fromarray(np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8), "RGB")
    if supersample > 1:
        big = big.resize((size, size), Image.Resampling.BOX)
    return np.asarray(big, dtype=np.uint8)


def render(scene: Scene, size: int = DEFAULT_SIZE, *, supersample: int = DEFAULT_SUPERSAMPLE) -> Image.Image:
    """The scene as an RGB ``PIL.Image`` of ``size × size`` pixels (same scene ⇒ same pixels).

    Raises:
        TypeError, ValueError: as :func:`render_array`.
    """
    return Image.fromarray(render_array(scene, size, supersample=supersample), "RGB")


def render_batch(
    scenes: Sequence[Scene], size: int = DEFAULT_SIZE, *, supersample: int = DEFAULT_SUPERSAMPLE
) -> np.ndarray:
    """Pixels of many scenes, uint8 [N, size, size, 3].

    Raises:
        TypeError, ValueError: as :func:`render_array`.
    """
    out = np.empty((len(scenes), size, size, 3), dtype=np.uint8)
    for i, scene in enumerate(scenes):
        out[i] = render_array(scene, size, supersample=supersample)
    return out
