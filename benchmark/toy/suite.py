"""The ``toy`` suite's generator: concepts rendered from the manifest's ``config``, checked pixel-exactly.

``data_manifests/toy.json`` (and ``toy-tuning.json``, the tuning concepts) is a ``generated`` manifest:
its ``config`` names every concept (a shape with a colour and a pattern, in one of two *tiers*:
``recombination`` — a pretrained pattern on a pretrained shape, as a (shape, pattern) pair held out of
pretraining, :data:`benchmark.toy.world.RESERVED_PAIRS`; ``novel`` — a pattern the base model never saw,
:data:`benchmark.toy.world.NOVEL_PATTERNS`), the scenes of its training images (1–2 backgrounds, one
layout), the evaluation prompts, the non-customized ``lfd`` prompts (which name no concept's shape), the
``lfd_class`` templates and the seeds. :func:`build_suite` renders the training images into the suite folder (once; later
loads reuse them), checks each image's pixels against the ``pixels_sha256`` the manifest pins (so a
changed renderer cannot silently change the suite), and returns an ordinary
:class:`benchmark.suites.Suite`.

Training scenes are drawn from ``numpy.random.default_rng([seed, k])`` for image ``k``: size and
jitter uniform in the world's ranges, background cycling through the concept's list.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from benchmark.data.errors import ManifestError
from benchmark.data.manifest import ConceptSpec, FileEntry, Manifest, mentions
from benchmark.io import atomic_write_bytes, open_rgb, sha256_file
from benchmark.toy.render import render_array
from benchmark.toy.world import (
    MAX_JITTER,
    NOVEL_PATTERNS,
    PRETRAIN_PATTERNS,
    RESERVED_PAIRS,
    SIZE_RANGE,
    WORLD_VERSION,
    Scene,
)

TIERS: tuple[str, ...] = ("recombination", "novel")
_CONCEPT_KEYS = {
    "id",
    "tier",
    "shape",
    "colour",
    "pattern",
    "backgrounds",
    "position",
    "n_images",
    "seed",
    "pixels_sha256",
}
_CONFIG_KEYS = {"image_size", "world_version", "concepts", "prompts", "lfd_prompts", "class_prompts", "seeds"}


def _fail(manifest: Manifest, where: str, problem: str) -> ManifestError:
    return ManifestError(f"{manifest.origin}: config.{where}: {problem}")


def concept_scenes(spec: Mapping[str, Any]) -> list[Scene]:
    """The training scenes of one concept entry of the manifest's ``config.concepts``.

    Raises:
        ValueError: a field outside the world's vocabulary (the message names it).
    """
    scenes = []
    backgrounds = list(spec["backgrounds"])
    for k in range(int(spec["n_images"])):
        rng = np.random.default_rng([int(spec["seed"]), k])
        size = float(rng.uniform(*SIZE_RANGE))
        jitter = (float(rng.uniform(-MAX_JITTER, MAX_JITTER)), float(rng.uniform(-MAX_JITTER, MAX_JITTER)))
        scenes.append(
            Scene(
                shape=spec["shape"],
                colour=spec["colour"],
                background=backgrounds[k % len(backgrounds)],
                position=spec["position"],
                size=size,
                jitter=jitter,
                pattern=spec["pattern"],
                seed=int(rng.integers(2**31 - 1)),
            )
        )
    return scenes


def pixels_sha256(pixels: np.ndarray) -> str:
    """sha256 of a uint8 image array's shape and bytes (independent of how a PNG encoder compresses)."""
    h = hashlib.sha256(f"{pixels.shape}|{pixels.dtype}".encode())
    h.update(np.ascontiguousarray(pixels).tobytes())
    return h.hexdigest()


def _write_png(path: Path, pixels: np.ndarray) -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format="PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())


def _read_pixels(path: Path) -> np.ndarray | None:
    try:
        return np.asarray(open_rgb(path), dtype=np.uint8)
    except (OSError, ValueError):
        return None


def validate_config(manifest: Manifest) -> dict[str, Any]:
    """The manifest's ``config`` after checking its keys, vocabulary and prompt slots.

    Raises:
        ManifestError: a missing or unknown key, a bad value, a duplicate concept id, or an evaluation
            prompt without a ``{concept}`` slot (the message names the field).
    """
    cfg = manifest.config
    if not isinstance(cfg, Mapping) or not cfg:
        raise ManifestError(f"{manifest.origin}: a toy manifest needs an object 'config'")
    missing = sorted(_CONFIG_KEYS - set(cfg))
    unknown = sorted(set(cfg) - _CONFIG_KEYS)
    if missing or unknown:
        raise ManifestError(f"{manifest.origin}: config: missing keys {missing}, unknown keys {unknown}")
    if cfg["world_version"] != WORLD_VERSION:
        raise _fail(
            manifest,
            "world_version",
            f"{cfg['world_version']!r} but this package's toy world is version {WORLD_VERSION}",
        )
    if not isinstance(cfg["image_size"], int) or not 8 <= cfg["image_size"] <= 1024:
        raise _fail(manifest, "image_size", f"expected an integer in [8, 1024], got {cfg['image_size']!r}")
    for key in ("prompts", "lfd_prompts", "class_prompts"):
        if not isinstance(cfg[key], list) or not cfg[key] or not all(isinstance(p, str) for p in cfg[key]):
            raise _fail(manifest, key, "expected a non-empty list of strings")
    for p in cfg["prompts"]:
        if "{concept}" not in p:
            raise _fail(manifest, "prompts", f"{p!r} has no {{concept}} slot")
    for p in cfg["class_prompts"]:
        if "{class}" not in p:
            raise _fail(manifest, "class_prompts", f"{p!r} has no {{class}} slot")
    shapes = {c.get("shape") for c in cfg["concepts"] if isinstance(c, Mapping)}
    for p in cfg["lfd_prompts"]:
        named = sorted(s for s in shapes if isinstance(s, str) and mentions(p, s))
        if named:
            raise _fail(
                manifest, "lfd_prompts", f"{p!r} names a concept's shape {named}; lfd prompts must not"
            )
    seeds = cfg["seeds"]
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
        raise _fail(manifest, "seeds", f"expected a non-empty list of non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise _fail(manifest, "seeds", f"duplicate seeds in {seeds}")
    if not isinstance(cfg["concepts"], list) or not cfg["concepts"]:
        raise _fail(manifest, "concepts", "expected a non-empty list")
    seen: set[str] = set()
    for i, c in enumerate(cfg["concepts"]):
        where = f"concepts[{i}]"
        if not isinstance(c, Mapping):
            raise _fail(manifest, where, "expected an object")
        missing = sorted(_CONCEPT_KEYS - set(c))
        unknown = sorted(set(c) - _CONCEPT_KEYS)
        if missing or unknown:
            raise _fail(manifest, where, f"missing keys {missing}, unknown keys {unknown}")
        if c["id"] in seen:
            raise _fail(manifest, where, f"duplicate concept id {c['id']!r}")
        seen.add(c["id"])
        if not isinstance(c["n_images"], int) or c["n_images"] < 1:
            raise _fail(manifest, f"{where}.n_images", f"expected a positive integer, got {c['n_images']!r}")
        if not isinstance(c["backgrounds"], list) or not c["backgrounds"]:
            raise _fail(manifest, f"{where}.backgrounds", "expected a non-empty list")
        if not isinstance(c["pixels_sha256"], list) or len(c["pixels_sha256"]) != c["n_images"]:
            raise _fail(manifest, f"{where}.pixels_sha256", f"expected {c['n_images']} hashes")
        if c["pattern"] is None:
            raise _fail(manifest, f"{where}.pattern", "a toy concept needs a pattern (its unique identity)")
        if c["tier"] not in TIERS:
            raise _fail(manifest, f"{where}.tier", f"expected one of {list(TIERS)}, got {c['tier']!r}")
        if c["tier"] == "recombination" and (
            c["pattern"] not in PRETRAIN_PATTERNS or (c["shape"], c["pattern"]) not in RESERVED_PAIRS
        ):
            raise _fail(
                manifest,
                f"{where}.tier",
                f"a recombination concept is a (shape, pattern) pair held out of pretraining, one of "
                f"{sorted(RESERVED_PAIRS)}; got {(c['shape'], c['pattern'])}",
            )
        if c["tier"] == "novel" and c["pattern"] not in NOVEL_PATTERNS:
            raise _fail(
                manifest,
                f"{where}.pattern",
                f"a novel concept wears a pattern never pretrained, one of {list(NOVEL_PATTERNS)}",
            )
        try:
            concept_scenes(c)
        except (ValueError, TypeError) as err:
            raise _fail(manifest, where, str(err)) from err
    return dict(cfg)


def build_suite(manifest: Manifest, folder: Path) -> Any:
    """Render (or reuse) the toy concepts' training images in ``folder`` and return the suite.

    Returns:
        A :class:`benchmark.suites.Suite` whose concepts have ``id``, ``class_noun`` (the shape),
        ``kind="object"`` and the shared evaluation prompts.

    Raises:
        ManifestError: a bad ``config``, or rendered pixels that differ from the manifest's
            ``pixels_sha256`` (the renderer changed: the manifest needs a new version).
    """
    from benchmark.suites import Concept, Suite

    cfg = validate_config(manifest)
    size = int(cfg["image_size"])
    prompts = tuple(cfg["prompts"])
    specs: list[ConceptSpec] = []
    concepts: list[Concept] = []
    for c in cfg["concepts"]:
        entries = []
        for k, scene in enumerate(concept_scenes(c)):
            rel = f"{c['id']}/{k:02d}.png"
            path = folder / rel
            expected = c["pixels_sha256"][k]
            on_disk = _read_pixels(path) if path.is_file() else None
            if on_disk is None or pixels_sha256(on_disk) != expected:
                pixels = render_array(scene, size)
                got = pixels_sha256(pixels)
                if got != expected:
                    raise ManifestError(
                        f"{manifest.origin}: concept {c['id']!r} image {k}: rendered pixels hash to {got}, the "
                        f"manifest pins {expected}; the toy renderer changed, so the suite needs a new version"
                    )
                _write_png(path, pixels)
            entries.append(FileEntry(rel, sha256_file(path), path.stat().st_size, is_image=True))
        spec = ConceptSpec(
            id=c["id"],
            class_noun=c["shape"],
            kind="object",
            prompt_set="toy",
            images=tuple(entries),
            upstream=MappingProxyType(
                {k: c[k] for k in ("tier", "shape", "colour", "pattern", "backgrounds", "position")}
            ),
        )
        specs.append(spec)
        concepts.append(
            Concept(
                spec,
                prompts,
                folder,
                entries,
                suite_name=manifest.name,
                repair_hint=f"delete {folder} to render the toy suite again",
                verified=True,
            )
        )
    full = replace(
        manifest,
        prompt_sets=MappingProxyType({"toy": prompts}),
        concepts=tuple(specs),
        lfd_prompts=tuple(cfg["lfd_prompts"]),
        class_prompts=tuple(cfg["class_prompts"]),
        seeds=tuple(cfg["seeds"]),
        images_per_prompt=len(cfg["seeds"]),
    )
    return Suite(full, concepts, folder)


def concept_config(suite: Any, concept_id: str) -> dict[str, Any]:
    """The manifest entry of one toy concept (shape, colour, pattern, backgrounds, position, ...)."""
    cfg = suite.manifest.config or {}
    for c in cfg["concepts"]:
        if c["id"] == concept_id:
            return dict(c)
    raise KeyError(f"toy suite has no concept {concept_id!r}")


def training_scenes(suite: Any, concept_id: str) -> Sequence[Scene]:
    """The scenes behind a toy concept's training images, in file order."""
    return concept_scenes(concept_config(suite, concept_id))
