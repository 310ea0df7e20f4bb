"""The toy world's vocabulary, scenes, captions, held-out combinations and scene sampling.

A scene is one object — a shape class with a colour and, for customization concepts only, a unique
surface pattern — at one of five positions on a textured background. Everything here is pure Python
(plus a numpy ``Generator`` for sampling); pixels live in :mod:`benchmark.toy.render`.

Two things are held out of pretraining:

- a fixed 15% of the (shape, colour, background) combinations, chosen by a keyed sha256 ranking (so it
  does not depend on the order of the lists), to measure the base model's compositional generalisation;
- the (shape, pattern) pairs of :data:`RESERVED_PAIRS`, which the suite's *recombination* concepts are
  made of (every pattern and every shape is pretrained, but never these pairs).

Patterns come in two kinds: :data:`PRETRAIN_PATTERNS` appear in pretraining (on every shape, but for the
reserved pairs) and are always said in the caption; :data:`NOVEL_PATTERNS` never appear in pretraining,
so a concept wearing one has a look that only changing the model's weights can reach.

World version 2 (toy suite v2): objects are bigger (46–56% of the side) and patterns are pretrained, so a
concept's identity is visible at 32 px and recombination concepts exist.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

WORLD_VERSION = 2

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "heart", "cross", "hexagon", "diamond")
COLOURS: Mapping[str, tuple[int, int, int]] = MappingProxyType(
    {
        "red": (220, 38, 38),
        "orange": (245, 135, 20),
        "yellow": (246, 214, 36),
        "green": (46, 190, 64),
        "cyan": (40, 210, 220),
        "blue": (38, 82, 232),
        "purple": (140, 56, 204),
        "pink": (246, 120, 196),
    }
)
BACKGROUNDS: tuple[str, ...] = (
    "grass",
    "sand",
    "snow",
    "bricks",
    "water",
    "night sky",
    "wooden floor",
    "fabric",
)
# Object centre (x, y) as fractions of the image side; y grows downwards.
POSITIONS: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "top left": (0.3, 0.3),
        "top right": (0.7, 0.3),
        "center": (0.5, 0.5),
        "bottom left": (0.3, 0.7),
        "bottom right": (0.7, 0.7),
    }
)
# Surface patterns and how a caption says them.
PATTERNS: Mapping[str, str] = MappingProxyType(
    {
        "stripes": "with stripes",
        "dots": "with dots",
        "checker": "with a checker pattern",
        "zigzag": "with zigzags",
        "rings": "with rings",
        "diagonal": "with diagonal stripes",
    }
)
# Seen in pretraining (said in the caption) / never seen in pretraining (novel concepts only).
PRETRAIN_PATTERNS: tuple[str, ...] = ("stripes", "dots", "checker", "diagonal")
NOVEL_PATTERNS: tuple[str, ...] = ("zigzag", "rings")
# (shape, pattern) pairs never pretrained: the material of the recombination concepts.
RESERVED_PAIRS: frozenset[tuple[str, str]] = frozenset(
    {
        ("heart", "stripes"),
        ("square", "dots"),
        ("circle", "checker"),
        ("hexagon", "diagonal"),
        ("hexagon", "dots"),
    }
)
SIZE_RANGE: tuple[float, float] = (0.46, 0.56)  # object diameter as a fraction of the image side
MAX_JITTER = 0.03  # largest centre offset from the position's anchor, as a fraction of the side
HELD_OUT_FRACTION = 0.15
_HELD_OUT_KEY = "overfit-bench toy held-out v1"

CaptionOrder = Literal["position_first", "position_last"]
CAPTION_ORDERS: tuple[str, ...] = ("position_first", "position_last")
CAPTION_PARTS: tuple[str, ...] = ("colour", "pattern", "background", "position")
HeldOutMode = Literal["exclude", "only", "include"]


def _check_choice(value: Any, choices: Sequence[str], field: str) -> str:
    if not isinstance(value, str) or value not in choices:
        close = difflib.get_close_matches(str(value), list(choices), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"Scene.{field}: {value!r} is not one of {list(choices)}{hint}")
    return value


@dataclass(frozen=True)
class Scene:
    """One toy image, fully described.

    Attributes:
        shape, colour, background, position: names from :data:`SHAPES`, :data:`COLOURS`,
            :data:`BACKGROUNDS`, :data:`POSITIONS`.
        size: object diameter as a fraction of the image side (inside :data:`SIZE_RANGE`).
        jitter: (dx, dy) offset of the centre from the position's anchor, each within ±:data:`MAX_JITTER`.
        pattern: a key of :data:`PATTERNS` or ``None``.
        seed: seed of the background texture's noise.

    Raises:
        ValueError: (on construction) a field outside its vocabulary or range; the message names it.
    """

    shape: str
    colour: str
    background: str
    position: str
    size: float = 0.51
    jitter: tuple[float, float] = (0.0, 0.0)
    pattern: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        _check_choice(self.shape, SHAPES, "shape")
        _check_choice(self.colour, tuple(COLOURS), "colour")
        _check_choice(self.background, BACKGROUNDS, "background")
        _check_choice(self.position, tuple(POSITIONS), "position")
        if self.pattern is not None:
            _check_choice(self.pattern, tuple(PATTERNS), "pattern")
        lo, hi = SIZE_RANGE
        if not isinstance(self.size, (int, float)) or not lo - 1e-9 <= float(self.size) <= hi + 1e-9:
            raise ValueError(f"Scene.size: {self.size!r} is outside {list(SIZE_RANGE)}")
        if (
            not isinstance(self.jitter, tuple)
            or len(self.jitter) != 2
            or any(not isinstance(j, (int, float)) or abs(float(j)) > MAX_JITTER + 1e-9 for j in self.jitter)
        ):
            raise ValueError(f"Scene.jitter: {self.jitter!r} is not a pair within ±{MAX_JITTER}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"Scene.seed: {self.seed!r} is not a non-negative integer")

    @property
    def combo(self) -> tuple[str, str, str]:
        """The (shape, colour, background) combination."""
        return (self.shape, self.colour, self.background)

    @property
    def center(self) -> tuple[float, float]:
        """Object centre (x, y) as fractions of the image side."""
        ax, ay = POSITIONS[self.position]
        return (ax + float(self.jitter[0]), ay + float(self.jitter[1]))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` inverts it."""
        d = asdict(self)
        d["jitter"] = list(self.jitter)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scene:
        """Build a scene from :meth:`to_dict` output.

        Raises:
            ValueError: unknown or missing keys, or an invalid field.
        """
        fields = {"shape", "colour", "background", "position", "size", "jitter", "pattern", "seed"}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(f"Scene.from_dict: unknown keys {unknown}; expected {sorted(fields)}")
        kwargs = dict(data)
        if "jitter" in kwargs:
            kwargs["jitter"] = tuple(kwargs["jitter"])
        try:
            return cls(**kwargs)
        except TypeError as err:
            raise ValueError(f"Scene.from_dict: {err}") from err


# ----------------------------------------------------------------------------------------------------
# Held-out combinations


def all_combos() -> list[tuple[str, str, str]]:
    """Every (shape, colour, background) combination, in vocabulary order."""
    return list(itertools.product(SHAPES, COLOURS, BACKGROUNDS))


@functools.lru_cache(maxsize=1)
def held_out_combos() -> frozenset[tuple[str, str, str]]:
    """The combinations excluded from pretraining: the ``round(15%)`` lowest by keyed sha256.

    Ranking by a hash of the names (not by list position) keeps the set stable and independent of
    the order of the vocabulary lists.
    """

    def rank(combo: tuple[str, str, str]) -> str:
        return hashlib.sha256(f"{_HELD_OUT_KEY}|{'|'.join(combo)}".encode()).hexdigest()

    combos = sorted(all_combos(), key=rank)
    return frozenset(combos[: round(HELD_OUT_FRACTION * len(combos))])


def is_held_out(scene_or_combo: Scene | tuple[str, str, str]) -> bool:
    """Whether a scene's (or a combination's) (shape, colour, background) is held out of pretraining."""
    combo = scene_or_combo.combo if isinstance(scene_or_combo, Scene) else tuple(scene_or_combo)
    return combo in held_out_combos()


# ----------------------------------------------------------------------------------------------------
# Captions


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def caption(
    scene: Scene,
    *,
    order: str = "position_first",
    parts: Sequence[str] | None = None,
    prefix: str = "",
) -> str:
    """The caption of a scene, e.g. ``"top left, a red star on a snow background"``.

    Args:
        scene: the scene.
        order: ``"position_first"`` (``"top left, a red star on a snow background"``) or
            ``"position_last"`` (``"a red star on a snow background, top left"``).
        parts: which optional attributes to say, a subset of :data:`CAPTION_PARTS`; default all
            (the pattern is said only when the scene has one). The shape is always said.
        prefix: words before the object phrase, e.g. ``"a photo of"`` (``"a photo of a red star …"``).

    Returns:
        The caption (lowercase, no trailing punctuation).

    Raises:
        ValueError: an unknown ``order`` or part.
    """
    if order not in CAPTION_ORDERS:
        raise ValueError(f"caption order {order!r} is not one of {list(CAPTION_ORDERS)}")
    chosen = set(CAPTION_PARTS if parts is None else parts)
    unknown = sorted(chosen - set(CAPTION_PARTS))
    if unknown:
        raise ValueError(f"caption parts {unknown} are not among {list(CAPTION_PARTS)}")
    noun = f"{scene.colour} {scene.shape}" if "colour" in chosen else scene.shape
    text = f"{_article(noun)} {noun}"
    if prefix.strip():
        text = f"{prefix.strip()} {text}"
    if "pattern" in chosen and scene.pattern is not None:
        text += f" {PATTERNS[scene.pattern]}"
    if "background" in chosen:
        text += f" on a {scene.background} background"
    if "position" in chosen:
        text = f"{scene.position}, {text}" if order == "position_first" else f"{text}, {scene.position}"
    return text


# ----------------------------------------------------------------------------------------------------
# Sampling


def draw_details(rng: np.random.Generator) -> dict[str, Any]:
    """A scene's size, centre jitter and texture seed, drawn from ``rng`` in that order (the fields a
    scene sampler leaves to chance once shape, colour, pattern, background and position are set)."""
    return {
        "size": float(rng.uniform(*SIZE_RANGE)),
        "jitter": (float(rng.uniform(-MAX_JITTER, MAX_JITTER)), float(rng.uniform(-MAX_JITTER, MAX_JITTER))),
        "seed": int(rng.integers(2**31 - 1)),
    }


def sample_scenes(
    rng: np.random.Generator,
    n: int,
    *,
    held_out: HeldOutMode = "exclude",
    pattern_prob: float = 0.0,
    patterns: Sequence[str] | None = None,
) -> list[Scene]:
    """Draw ``n`` random scenes: uniform over the allowed combinations and positions, size and
    jitter uniform in their ranges, a fresh texture seed each.

    Args:
        rng: the numpy generator (the only source of randomness: same state, same scenes).
        n: number of scenes (>= 0).
        held_out: ``"exclude"`` (pretraining: never a held-out combination and never a
            :data:`RESERVED_PAIRS` pair), ``"only"`` (only held-out combinations, for evaluation) or
            ``"include"`` (every combination and pair).
        pattern_prob: probability that a scene carries a pattern, uniform over the patterns allowed for
            its shape. Pretraining uses 0.5 with the :data:`PRETRAIN_PATTERNS`; the oracle trains on all.
        patterns: the patterns to draw from (default: every pattern of :data:`PATTERNS`).

    Returns:
        The scenes.

    Raises:
        ValueError: negative ``n``, unknown ``held_out`` mode, ``pattern_prob`` outside [0, 1], an
            unknown pattern.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"sample_scenes: n must be a non-negative integer, got {n!r}")
    if not 0.0 <= pattern_prob <= 1.0:
        raise ValueError(f"sample_scenes: pattern_prob must lie in [0, 1], got {pattern_prob!r}")
    pool = list(PATTERNS) if patterns is None else list(patterns)
    for p in pool:
        _check_choice(p, tuple(PATTERNS), "pattern")
    held = held_out_combos()
    if held_out == "exclude":
        combos = [c for c in all_combos() if c not in held]
    elif held_out == "only":
        combos = sorted(held)
    elif held_out == "include":
        combos = all_combos()
    else:
        raise ValueError(f"sample_scenes: held_out must be 'exclude', 'only' or 'include', got {held_out!r}")
    reserved = RESERVED_PAIRS if held_out == "exclude" else frozenset()
    allowed = {s: [p for p in pool if (s, p) not in reserved] for s in SHAPES}
    positions = list(POSITIONS)
    scenes = []
    for _ in range(n):
        shape, colour, background = combos[int(rng.integers(len(combos)))]
        position = positions[int(rng.integers(len(positions)))]
        size = float(rng.uniform(*SIZE_RANGE))
        jitter = (float(rng.uniform(-MAX_JITTER, MAX_JITTER)), float(rng.uniform(-MAX_JITTER, MAX_JITTER)))
        choices = allowed[shape]
        pattern = (
            choices[int(rng.integers(len(choices)))] if choices and rng.random() < pattern_prob else None
        )
        seed = int(rng.integers(2**31 - 1))
        scenes.append(Scene(shape, colour, background, position, size, jitter, pattern, seed))
    return scenes


def world_description() -> dict[str, Any]:
    """The world's vocabulary and held-out set as JSON-ready data (recorded next to trained models)."""
    return {
        "world_version": WORLD_VERSION,
        "shapes": list(SHAPES),
        "colours": {k: list(v) for k, v in COLOURS.items()},
        "backgrounds": list(BACKGROUNDS),
        "positions": {k: list(v) for k, v in POSITIONS.items()},
        "patterns": dict(PATTERNS),
        "pretrain_patterns": list(PRETRAIN_PATTERNS),
        "novel_patterns": list(NOVEL_PATTERNS),
        "reserved_pairs": sorted(list(p) for p in RESERVED_PAIRS),
        "size_range": list(SIZE_RANGE),
        "max_jitter": MAX_JITTER,
        "held_out_fraction": HELD_OUT_FRACTION,
        "held_out": sorted(list(c) for c in held_out_combos()),
    }
