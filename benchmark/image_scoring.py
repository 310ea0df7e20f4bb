"""Score a folder of generated images (no model needed except the base model for W2's reference set).

Layout: ``DIR/<concept>/<prompt_index>_<seed>.png`` for every (prompt, seed) of the suite. Missing and
extra files are named; nothing is scored until the folder is complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmark.context import RunContext

ABOUT = "about.json"  # a run folder's note of which method and rung its images are
MODEL_NOTE = "needs the customized model (images alone cannot give it)"  # benchmark.scoring.servable's note


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
    suite_ids = {c.id for c in ctx.suite.concepts}
    if not root.is_dir():
        raise ImageFolderError(f"{root}: not a folder")
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or entry.name == ABOUT:
            continue
        # folders of the suite's other concepts are fine when only some concepts are scored
        if not entry.is_dir() or entry.name not in suite_ids:
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
    if not problems:
        problems += _size_problems(ctx, [f for files in expected.values() for f in files])
    if problems:
        raise ImageFolderError("\n".join(problems))
    return expected


def _size_problems(ctx: RunContext, files: list[Path]) -> list[str]:
    """One line per image whose size differs from the suite's (the size most of the folder's images have
    when that is not the suite's resolution); reads only the image headers (sizes as displayed)."""
    from collections import Counter

    from benchmark.io import image_size

    sizes: dict[Path, tuple[int, int]] = {}
    problems: list[str] = []
    for f in files:
        try:
            sizes[f] = image_size(f)
        except (OSError, ValueError) as err:
            problems.append(f"unreadable: {f} ({err})")
    if problems or not sizes:
        return problems
    res = int(ctx.settings.resolution)
    counts = Counter(sizes.values())
    expected = (res, res) if (res, res) in counts else counts.most_common(1)[0][0]
    return [
        f"wrong size: {f} is {w}x{h}, the folder's other images are {expected[0]}x{expected[1]} "
        f"(the suite generates {res}x{res}); resize it or regenerate it"
        for f, (w, h) in sizes.items()
        if (w, h) != expected
    ]


def score_folder(ctx: RunContext, root: Path, concepts: list[Any], name: str) -> list[dict[str, Any]]:
    """Rows of every metric that needs no model (CLIP-T, CLIP-I, DINO, W2, ...) for the images in
    ``root`` under method name ``name``.

    Raises:
        ImageFolderError: as :func:`check_folder`.
    """
    from benchmark.scoring import score_images

    files = check_folder(ctx, root, concepts)
    rows: list[dict[str, Any]] = []
    for concept in concepts:
        rows += score_images(ctx, concept, files[concept.id], name, extra={"source": str(root)})
    return rows


def model_notes(ctx: RunContext, concepts: list[Any]) -> list[str]:
    """The suite's metrics an image folder cannot give because they need the customized model (LFD), as
    :func:`benchmark.scoring.servable` notes them, without repeats."""
    from benchmark.scoring import ImageInputs, servable

    notes: dict[str, None] = {}
    for concept in concepts:
        notes.update(dict.fromkeys(servable(ctx, ImageInputs(ctx, concept, [], "notes"))[1]))
    return list(notes)


def model_line(notes: list[str]) -> str:
    """One terminal line naming the metrics of :func:`model_notes` that need the customized model and how
    to get them (empty when there are none)."""
    needs = [n.split(" ", 1)[0] for n in notes if n.endswith(MODEL_NOTE)]
    if not needs:
        return ""
    them = "it" if len(needs) == 1 else "them"
    return (
        f"not scored: {', '.join(needs)} need{'s' if len(needs) == 1 else ''} the customized model (images "
        f"alone cannot give {them}); score the method itself with `overfit-bench score --method "
        f"package.module:Class` to get {them}"
    )


def base_rows(ctx: RunContext, concepts: list[Any]) -> list[dict[str, Any]]:
    """The base model's rows of every image metric (its own generations, the cached stages its job uses),
    to compare a scored method's fidelity with when the results hold no base-model rows."""
    from baselines import load_method
    from benchmark import stages
    from benchmark.scoring import ImageInputs, evaluate, make_rows

    base = load_method("base")
    ident = stages.method_identity(ctx, base)
    rows: list[dict[str, Any]] = []
    for concept in concepts:
        path, key = stages.generate(ctx, base, concept)
        files = stages.image_files(path, stages.generation_plan(ctx, concept))
        rows += make_rows(
            ctx,
            evaluate(ctx, ImageInputs(ctx, concept, files, key)),
            method="base",
            method_version=ident["method_version"],
            concept=concept.id,
            config_hash=stages.row_config_hash(ctx, ident),
        )
    return rows
