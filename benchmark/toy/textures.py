"""Procedural background textures, shape masks and surface patterns (numpy, float RGB in [0, 1]).

Every function works on normalised coordinates, so a texture looks the same at any resolution, and
draws its randomness only from the ``numpy.random.Generator`` it is given.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

FloatArray = np.ndarray


def grid(n: int) -> tuple[FloatArray, FloatArray]:
    """Pixel-centre coordinates (x, y) in [0, 1) of an ``n × n`` image, each of shape [n, n]."""
    c = (np.arange(n, dtype=np.float64) + 0.5) / n
    y, x = np.meshgrid(c, c, indexing="ij")
    return x, y


def smooth_noise(rng: np.random.Generator, n: int, cells_y: int, cells_x: int) -> FloatArray:
    """Bilinear value noise in [-1, 1] of shape [n, n] from a (cells_y+1)×(cells_x+1) random lattice."""
    lattice = rng.uniform(-1.0, 1.0, size=(cells_y + 1, cells_x + 1))
    x, y = grid(n)
    fx, fy = x * cells_x, y * cells_y
    ix, iy = np.minimum(fx.astype(int), cells_x - 1), np.minimum(fy.astype(int), cells_y - 1)
    tx, ty = fx - ix, fy - iy
    tx, ty = tx * tx * (3 - 2 * tx), ty * ty * (3 - 2 * ty)  # smoothstep: no visible lattice creases
    top = lattice[iy, ix] * (1 - tx) + lattice[iy, ix + 1] * tx
    bottom = lattice[iy + 1, ix] * (1 - tx) + lattice[iy + 1, ix + 1] * tx
    return np.asarray(top * (1 - ty) + bottom * ty)


def _tint(base: tuple[float, float, float], shade: FloatArray) -> FloatArray:
    """An [n, n, 3] image of ``base`` multiplied by ``1 + shade``."""
    return np.asarray(np.array(base)[None, None, :] * (1.0 + shade[..., None]))


def _grass(rng: np.random.Generator, n: int) -> FloatArray:
    blades = smooth_noise(rng, n, 3, 28)
    patches = smooth_noise(rng, n, 3, 3)
    grain = rng.normal(0.0, 0.06, size=(n, n))
    return _tint((0.30, 0.56, 0.20), 0.30 * blades + 0.12 * patches + grain)


def _sand(rng: np.random.Generator, n: int) -> FloatArray:
    x, y = grid(n)
    warp = smooth_noise(rng, n, 2, 2)
    ripples = np.sin(2 * np.pi * (7 * y + 0.6 * warp + 0.8 * x))
    grain = rng.normal(0.0, 0.05, size=(n, n))
    return _tint((0.86, 0.75, 0.52), 0.06 * ripples + grain)


def _snow(rng: np.random.Generator, n: int) -> FloatArray:
    drifts = smooth_noise(rng, n, 3, 3)
    img = _tint((0.90, 0.93, 0.98), 0.04 * drifts + rng.normal(0.0, 0.015, size=(n, n)))
    sparkle = rng.random((n, n)) < 0.004
    img[sparkle] = 1.0
    return img


def _bricks(rng: np.random.Generator, n: int) -> FloatArray:
    x, y = grid(n)
    rows, per_row, mortar = 6, 3, 0.022
    row = np.floor(y * rows).astype(int)
    xs = x * per_row + 0.5 * (row % 2)
    col = np.floor(xs).astype(int)
    shades = rng.uniform(-0.10, 0.10, size=(rows + 1, per_row + 2))
    img = _tint((0.64, 0.27, 0.19), shades[row, col] + rng.normal(0.0, 0.04, size=(n, n)))
    in_mortar = ((y * rows) % 1.0 < mortar * rows) | ((xs % 1.0) < mortar * per_row)
    img[in_mortar] = (0.80, 0.78, 0.72)
    return img


def _water(rng: np.random.Generator, n: int) -> FloatArray:
    x, y = grid(n)
    warp = smooth_noise(rng, n, 2, 4)
    waves = np.sin(2 * np.pi * (6 * y + 0.9 * warp + 0.3 * x))
    img = _tint((0.12, 0.38, 0.68), 0.10 * waves + rng.normal(0.0, 0.03, size=(n, n)))
    highlights = waves > 0.93
    img[highlights] = img[highlights] * 0.4 + np.array([0.85, 0.92, 1.0]) * 0.6
    return img


def _night_sky(rng: np.random.Generator, n: int) -> FloatArray:
    _, y = grid(n)
    top, bottom = np.array([0.02, 0.03, 0.12]), np.array([0.08, 0.08, 0.26])
    img = top[None, None, :] * (1 - y[..., None]) + bottom[None, None, :] * y[..., None]
    img = img + rng.normal(0.0, 0.01, size=(n, n, 1))
    n_stars = int(rng.integers(14, 26))
    radius = max(1, round(n * 0.012))
    for sx, sy in rng.integers(0, n, size=(n_stars, 2)):
        brightness = rng.uniform(0.75, 1.0)
        img[max(0, sy - radius) : sy + radius + 1, max(0, sx - radius) : sx + radius + 1] = brightness
    return np.asarray(img)


def _wooden_floor(rng: np.random.Generator, n: int) -> FloatArray:
    x, y = grid(n)
    planks, seam = 4, 0.02
    row = np.floor(y * planks).astype(int)
    offsets = rng.uniform(0.0, 1.0, size=planks + 1)
    xs = x * 1.5 + offsets[row]
    col = np.floor(xs).astype(int)
    shades = rng.uniform(-0.12, 0.12, size=(planks + 1, 4))
    warp = smooth_noise(rng, n, 2, 6)
    grain = np.sin(2 * np.pi * (22 * y + 2.0 * warp))
    img = _tint((0.58, 0.37, 0.19), shades[row, col] + 0.07 * grain + rng.normal(0.0, 0.02, size=(n, n)))
    in_seam = ((y * planks) % 1.0 < seam * planks) | ((xs % 1.0) < seam)
    img[in_seam] = (0.25, 0.15, 0.08)
    return img


def _fabric(rng: np.random.Generator, n: int) -> FloatArray:
    x, y = grid(n)
    phase = rng.uniform(0.0, 1.0, size=2)
    bands_x = (((x + phase[0]) * 5) % 1.0) < 0.3
    bands_y = (((y + phase[1]) * 5) % 1.0) < 0.3
    weave = 0.05 * np.sign(np.sin(2 * np.pi * 40 * x) * np.sin(2 * np.pi * 40 * y))
    shade = -0.16 * bands_x - 0.16 * bands_y + weave + rng.normal(0.0, 0.03, size=(n, n))
    return _tint((0.62, 0.55, 0.66), shade)


BACKGROUND_TEXTURES: dict[str, Callable[[np.random.Generator, int], FloatArray]] = {
    "grass": _grass,
    "sand": _sand,
    "snow": _snow,
    "bricks": _bricks,
    "water": _water,
    "night sky": _night_sky,
    "wooden floor": _wooden_floor,
    "fabric": _fabric,
}


# ----------------------------------------------------------------------------------------------------
# Shapes: masks over object-local coordinates (u, v) in units of the object radius, v downwards.


def _polygon(u: FloatArray, v: FloatArray, verts: list[tuple[float, float]]) -> FloatArray:
    """Even-odd point-in-polygon test, vectorised over the grid."""
    inside = np.zeros(u.shape, dtype=bool)
    for (x0, y0), (x1, y1) in zip(verts, verts[1:] + verts[:1], strict=True):
        crosses = (y0 > v) != (y1 > v)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x0 + (v - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (u < x_at)
    return inside


def _regular(k: int, radius: float, start_deg: float) -> list[tuple[float, float]]:
    angles = np.deg2rad(start_deg + 360.0 * np.arange(k) / k)
    return [(float(radius * np.cos(a)), float(radius * np.sin(a))) for a in angles]


def _star_vertices() -> list[tuple[float, float]]:
    outer, inner = _regular(5, 1.0, -90.0), _regular(5, 0.42, -54.0)
    return [p for pair in zip(outer, inner, strict=True) for p in pair]


def _heart(u: FloatArray, v: FloatArray) -> FloatArray:
    x, y = u * 1.15, -v * 1.15 + 0.15
    x2, r = x * x, x * x + y * y - 1.0
    return np.asarray(r * r * r - x2 * y * y * y <= 0.0)


SHAPE_MASKS: dict[str, Callable[[FloatArray, FloatArray], FloatArray]] = {
    "circle": lambda u, v: u * u + v * v <= 0.92**2,
    "square": lambda u, v: (np.abs(u) <= 0.8) & (np.abs(v) <= 0.8),
    "triangle": lambda u, v: _polygon(u, v, [(0.0, -0.95), (0.98, 0.78), (-0.98, 0.78)]),
    "star": lambda u, v: _polygon(u, v, [(x, y * 1.0 + 0.08) for x, y in _star_vertices()]),
    "heart": _heart,
    "cross": lambda u, v: (
        ((np.abs(u) <= 0.33) & (np.abs(v) <= 0.95)) | ((np.abs(v) <= 0.33) & (np.abs(u) <= 0.95))
    ),
    "hexagon": lambda u, v: _polygon(u, v, _regular(6, 0.95, 0.0)),
    "diamond": lambda u, v: np.abs(u) / 0.78 + np.abs(v) / 0.98 <= 1.0,
}


# Patterns: boolean masks of the pattern colour over (u, v); coarse enough to survive 32 px.
PATTERN_MASKS: dict[str, Callable[[FloatArray, FloatArray], FloatArray]] = {
    "stripes": lambda u, v: np.floor((v + 1.0) * 2.5).astype(int) % 2 == 1,
    "dots": lambda u, v: ((u + 1.0) % 0.7 - 0.35) ** 2 + ((v + 1.0) % 0.7 - 0.35) ** 2 <= 0.17**2,
    "checker": lambda u, v: (
        (np.floor((u + 1.0) * 2.0).astype(int) + np.floor((v + 1.0) * 2.0).astype(int)) % 2 == 1
    ),
    "zigzag": lambda u, v: (
        np.floor((v + 0.35 * np.abs(((u + 1.0) * 1.5) % 2.0 - 1.0) + 1.0) * 2.2).astype(int) % 2 == 1
    ),
    "rings": lambda u, v: np.floor(np.sqrt(u * u + v * v) * 3.2).astype(int) % 2 == 1,
    "diagonal": lambda u, v: np.floor((u + v + 2.0) * 1.8).astype(int) % 2 == 1,
}
