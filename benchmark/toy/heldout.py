"""Held-out views of a toy concept: the concept itself in contexts its training images never show.

``heldout_gap@1`` (``metrics.heldout``) compares a generated image's similarity to the training images
with its similarity to views of the same concept in other contexts. On the toy suite those views are
rendered: the concept's shape, colour and pattern on every background its training images do not use, at
positions other than the training position, with size, jitter and texture drawn from a generator seeded by
the concept's facts (:data:`RECIPE`). The suite's profile names this function as its ``heldout_views``; the
metric reads only the views' features, never the scenes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from benchmark.toy.render import render
from benchmark.toy.world import BACKGROUNDS, POSITIONS, Scene, draw_details

RECIPE = "toy-heldout@1"
VIEWS = 8


def heldout_scenes(concept: Mapping[str, Any], n: int = VIEWS) -> list[Scene]:
    """``n`` scenes of the concept on backgrounds and at positions its training images do not show.

    Raises:
        KeyError: the concept config lacks shape, colour, pattern, backgrounds or position.
    """
    backgrounds = [b for b in BACKGROUNDS if b not in set(concept["backgrounds"])]
    positions = [p for p in POSITIONS if p != concept["position"]]
    facts = json.dumps({k: concept[k] for k in ("shape", "colour", "pattern", "backgrounds", "position")})
    key = hashlib.sha256(f"{RECIPE}|{facts}".encode()).digest()[:8]
    rng = np.random.default_rng(int.from_bytes(key, "big") >> 1)
    scenes = []
    for k in range(n):
        scenes.append(
            Scene(
                shape=concept["shape"],
                colour=concept["colour"],
                background=backgrounds[k % len(backgrounds)],
                position=positions[int(rng.integers(len(positions)))],
                pattern=concept["pattern"],
                **draw_details(rng),
            )
        )
    return scenes


def heldout_views(concept: Mapping[str, Any], size: int) -> list[Any]:
    """The held-out views as RGB images of ``size`` × ``size`` (the profile's ``heldout_views`` loader)."""
    return [render(scene, size) for scene in heldout_scenes(concept)]
