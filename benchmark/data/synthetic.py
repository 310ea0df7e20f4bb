"""Tiny synthetic suites on disk, for tests that need real files without the shared datasets.

:func:`write_synthetic_suite` writes deterministic little PNG photos, a licence file and a manifest
pinning them, laid out the way a real suite is (``<data root>/<name>/...``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmark.io import sha256_file

CLASSES = (("dog", "live"), ("teapot", "object"), ("backpack", "object"), ("cat", "live"))


def _write_png(path: Path, seed: int, size: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, "RGB").save(path, format="PNG")


def write_synthetic_suite(
    data_root: Path,
    *,
    name: str = "synthetic",
    n_concepts: int = 2,
    images_per_concept: int = 3,
    image_size: int = 16,
    imported: bool = False,
    images_root: Path | None = None,
    url_pattern: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a small suite and its manifest.

    Args:
        data_root: the data root; files go to ``data_root/<name>/``.
        name: the suite name (also its folder).
        n_concepts: number of concepts (classes cycle through dog, teapot, backpack, cat).
        images_per_concept: PNG photos per concept (``images/<concept>/NN.png``).
        image_size: side of each square photo in pixels.
        imported: write an import-based manifest (no image checksums); the photos then go to
            ``images_root/images/<concept>/`` (an "upstream" folder to import from).
        url_pattern: optional ``source.url_pattern`` (e.g. ``file:///.../{path}``).
        extra: top-level manifest fields to add or override.

    Returns:
        The path of the manifest, ``data_root/<name>.json``.

    Raises:
        ValueError: ``imported`` is true but ``images_root`` is not given.
    """
    if imported and images_root is None:
        raise ValueError("an imported synthetic suite needs images_root (the folder to import from)")
    suite = data_root / name
    suite.mkdir(parents=True, exist_ok=True)
    (suite / "LICENSE.txt").write_text("synthetic test data, no rights reserved\n", encoding="utf-8")
    concepts = []
    for i in range(n_concepts):
        noun, kind = CLASSES[i % len(CLASSES)]
        cid = f"{noun}{i}"
        images = []
        for j in range(images_per_concept):
            rel = f"images/{cid}/{j:02d}.png"
            target = (images_root if imported and images_root is not None else suite) / rel
            _write_png(target, seed=1000 * i + j, size=image_size)
            digest, size = sha256_file(target), target.stat().st_size
            images.append({"path": rel, "sha256": digest, "bytes": size})
        concept: dict[str, Any] = {"id": cid, "class_noun": noun, "kind": kind, "prompt_set": kind}
        if imported:
            concept["image_dir"] = f"images/{cid}"
        else:
            concept["images"] = images
        concepts.append(concept)
    lic_sha, lic_size = sha256_file(suite / "LICENSE.txt"), (suite / "LICENSE.txt").stat().st_size
    source: dict[str, Any] = {"type": "imported" if imported else "pinned"}
    if imported:
        source["images"] = {"checksums": "recorded on first import"}
    if url_pattern:
        source["url_pattern"] = url_pattern
    manifest: dict[str, Any] = {
        "schema": 1,
        "name": name,
        "version": 1,
        "data_dir": name,
        "source": source,
        "license": {"name": "synthetic"},
        "files": [{"path": "LICENSE.txt", "sha256": lic_sha, "bytes": lic_size}],
        "prompt_sets": {
            "live": ["a {concept} in the jungle", "a {concept} wearing a red hat"],
            "object": ["a {concept} in the jungle", "a {concept} on the beach"],
        },
        "concepts": concepts,
        "lfd_prompts": ["a horse in a field", "a city at night"],
        "class_prompts": ["a photo of a {class}"],
        "seeds": [0, 1],
        "images_per_prompt": 2,
    }
    manifest.update(extra or {})
    path = data_root / f"{name}.json"
    path.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return path
