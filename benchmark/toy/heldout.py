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
# the candidate of docs/DECISIONS.md (2026-12-08): the same views, each at the training position
RECIPE_AT_TRAINING_POSITION = "toy-heldout@2"
VIEWS = 8


def heldout_scenes(
    concept: Mapping[str, Any], n: int = VIEWS, *, at_training_position: bool = False
) -> list[Scene]:
    """``n`` scenes of the concept on backgrounds and at positions its training images do not show; with
    ``at_training_position``, the same scenes (the same draws) each moved to the training position.

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
        drawn = int(rng.integers(len(positions)))  # drawn either way, so the other draws stay the same
        scenes.append(
            Scene(
                shape=concept["shape"],
                colour=concept["colour"],
                background=backgrounds[k % len(backgrounds)],
                position=concept["position"] if at_training_position else positions[drawn],
                pattern=concept["pattern"],
                **draw_details(rng),
            )
        )
    return scenes


def heldout_views(concept: Mapping[str, Any], size: int) -> list[Any]:
    """The held-out views as RGB images of ``size`` × ``size`` (the profile's ``heldout_views`` loader)."""
    return [render(scene, size) for scene in heldout_scenes(concept)]


def heldout_views_at_training_position(concept: Mapping[str, Any], size: int) -> list[Any]:
    """The candidate views (``toy-heldout@2``): :func:`heldout_views` with every view at the training
    position (a profile's ``heldout_views`` loader)."""
    return [render(scene, size) for scene in heldout_scenes(concept, at_training_position=True)]
