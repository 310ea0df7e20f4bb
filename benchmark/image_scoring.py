"""Score a folder of generated images (no model needed except the base model for W2's reference set).

Layout: ``DIR/<concept>/<prompt_index>_<seed>.png`` for every (prompt, seed) of the suite. Missing and
extra files are named; nothing is scored until the folder is complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmark.context import RunContext


class ImageFolderError(ValueError):
    """The folder does not match the suite's layout (the message lists every problem)."""


def check_folder(ctx: RunContext, root: Path, concepts: list[Any]) -> dict[str, list[Path]]:
    """The expected files per concept, in generation order.

    Raises:
        ImageFolderError: missing or extra files/folders (all of them, one per line).
    """
    from benchmark.stages import generation_plan

    problems: list[str] = []
    expected: dict[str, list[Path]] = {}
    wanted_ids = {c.id for c in concepts}
    if not root.is_dir():
        raise ImageFolderError(f"{root}: not a folder")
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir() or entry.name not in wanted_ids:
            problems.append(f"extra: {entry} (not a concept folder of suite {ctx.suite.name!r})")
    for concept in concepts:
        files = [root / concept.id / f"{i}_{seed}.png" for i, _, seed in generation_plan(ctx, concept)]
        expected[concept.id] = files
        for f in files:
            if not f.is_file():
                problems.append(f"missing: {f}")
        folder = root / concept.id
        if folder.is_dir():
            names = {f.name for f in files}
            for f in sorted(folder.iterdir()):
                if f.name not in names and not f.name.startswith("."):
                    problems.append(f"extra: {f} (expected <prompt_index>_<seed>.png for this suite)")
    if problems:
        raise ImageFolderError("\n".join(problems))
    return expected


def score_folder(ctx: RunContext, root: Path, concepts: list[Any], name: str) -> list[dict[str, Any]]:
    """CLIP-T, CLIP-I, DINO and W2 rows for the images in ``root`` under method name ``name``."""
    from baselines import get_method
    from benchmark import stages
    from benchmark.cache import hash_inputs
    from benchmark.results import make_row
    from metrics.similarity import all_pairs_cosine_mean, paired_cosine_mean
    from metrics.wasserstein import wasserstein2

    files = check_folder(ctx, root, concepts)
    s = ctx.settings
    base = get_method("base")
    rows = []
    for concept in concepts:
        paths = files[concept.id]
        source = "folder:" + hash_inputs({"files": [_file_digest(p) for p in paths]})[:24]
        clip_gen = stages.image_features(ctx, paths, s.clip, source)
        dino_gen = stages.image_features(ctx, paths, s.dino, source)
        base_path, base_key = stages.generate(ctx, base, concept)
        plan = stages.generation_plan(ctx, concept)
        clip_base = stages.image_features(ctx, stages.image_files(base_path, plan), s.clip, base_key)
        text, n_trunc = stages.class_text_features(ctx, concept)
        clip_tag, dino_tag = ctx.backbone(s.clip).tag, ctx.backbone(s.dino).tag
        chash = hash_inputs({"source": source, **ctx.suite_id, "settings": s.identity()})[:16]
        values = [
            ("clip_t", paired_cosine_mean(clip_gen, text), clip_tag, {"truncated": n_trunc}),
            (
                "clip_i",
                all_pairs_cosine_mean(clip_gen, stages.reference_features(ctx, concept, s.clip)),
                clip_tag,
                {},
            ),
            (
                "dino",
                all_pairs_cosine_mean(dino_gen, stages.reference_features(ctx, concept, s.dino)),
                dino_tag,
                {},
            ),
            ("w2", wasserstein2(clip_gen, clip_base), clip_tag, {}),
        ]
        for metric, value, backbone, extra in values:
            rows.append(
                make_row(
                    suite=ctx.suite.name,
                    suite_version=ctx.suite.version,
                    method=name,
                    method_version="images",
                    concept=concept.id,
                    metric=metric,
                    value=value,
                    n=len(paths),
                    backbone=backbone,
                    config_hash=chash,
                    extra={**extra, "source": str(root)},
                )
            )
    return rows


def _file_digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()
