"""Ground-truth control image sets of the toy suite: a 2 × 2 of (learned) × (collapsed) per concept.

Every metric is read against four image sets laid out on the suite's own generation plan (prompts ×
seeds, :func:`benchmark.stages.generation_plan`):

=================  =======  =========  ====================================================================
control            learned  collapsed  images
=================  =======  =========  ====================================================================
``ideal``          yes      no         the concept (shape and pattern) exactly as each prompt asks
``copy``           yes      yes        the training images, cycled over the plan
``context-only``   no       yes        the class noun's plain object on the training scenes' backgrounds
``base``           no       no         the base model's own generations for the plan (not rendered)
=================  =======  =========  ====================================================================

The three rendered controls are scenes (:func:`control_scenes`, pure) drawn by
:func:`benchmark.toy.render.render`; :func:`write_controls` lays all four out as image folders in the
layout ``overfit-bench score --images`` reads (``DIR/<control>/<concept>/<prompt_index>_<seed>.png``) and
:func:`score_controls` scores each folder through that same path and reads it with the oracle (which
grades the controls and never enters a metric).

Command line::

    python -m benchmark.toy.controls --out DIR [--concepts a,b] [--cache DIR] [--data-root DIR]

writes the four folders, ``DIR/controls.jsonl`` (the image-folder rows, method ``control:<name>``) and
``DIR/controls_oracle.json`` (the validity study's oracle readout per control × concept).
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import io
import json
import logging
import shutil
import sys
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.toy.world import COLOURS, POSITIONS, Scene, draw_details

log = logging.getLogger(__name__)

IDEAL, COPY, CONTEXT_ONLY, BASE = "ideal", "copy", "context-only", "base"
CONTROLS: tuple[str, ...] = (IDEAL, COPY, CONTEXT_ONLY, BASE)
RENDERED: tuple[str, ...] = (IDEAL, COPY, CONTEXT_ONLY)
# what each control is, as ground truth: (learned, collapsed)
TRUTH: Mapping[str, tuple[bool, bool]] = {
    IDEAL: (True, False),
    COPY: (True, True),
    CONTEXT_ONLY: (False, True),
    BASE: (False, False),
}
PREFIX = "control:"  # method name of a control's rows: ``control:ideal``
ROWS_FILE = "controls.jsonl"
ORACLE_FILE = "controls_oracle.json"
_KEY = "overfit-bench toy controls v1"  # salt of the controls' random draws


class ControlError(ValueError):
    """Bad input to the controls (an unknown concept or control); the message is one line."""


def method_name(control: str) -> str:
    """The method name a control's rows carry, e.g. ``control:ideal``."""
    return f"{PREFIX}{control}"


# ----------------------------------------------------------------------------------------------------
# Scenes (pure)


def _concept_key(concept_id: str) -> int:
    """A stable 63-bit integer of a concept id (numpy seeds must be integers)."""
    return int.from_bytes(hashlib.sha256(f"{_KEY}|{concept_id}".encode()).digest()[:8], "big") >> 1


def _rng(control: str, concept_id: str, prompt_index: int, seed: int) -> np.random.Generator:
    """The generator of one (control, concept, prompt, seed) image: the same call, the same draws."""
    return np.random.default_rng([CONTROLS.index(control), _concept_key(concept_id), prompt_index, seed])


def _config(suite: Any, concept_id: str) -> dict[str, Any]:
    from benchmark.toy.suite import concept_config

    try:
        return concept_config(suite, concept_id)
    except KeyError:
        ids = [c["id"] for c in (suite.manifest.config or {}).get("concepts", [])]
        close = difflib.get_close_matches(concept_id, ids, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; it has {', '.join(ids)}"
        raise ControlError(f"suite {suite.name!r} has no concept {concept_id!r}{hint}") from None


def class_prompts(suite: Any, concept_id: str, plan: Sequence[tuple[int, str, int]]) -> list[str]:
    """The plan's prompts with the concept slot rendered as the class noun (what the oracle reads
    against, as in the validity study)."""
    from metrics.similarity import render_slot

    noun = _config(suite, concept_id)["shape"]
    return [render_slot(tpl, noun) for _, tpl, _ in plan]


def ideal_scenes(suite: Any, concept_id: str, plan: Sequence[tuple[int, str, int]]) -> list[Scene]:
    """The concept exactly as each prompt asks: its shape and pattern; the asked background, position and
    colour; an unasked colour is the concept's own; an unasked background or position is drawn from the
    world's prior (uniform, as in pretraining: where the base model's noise would put it, not the
    training layout, which would be collapse); size, jitter and texture seed drawn from
    (concept, prompt index, seed).

    Raises:
        ControlError: unknown concept.
    """
    from benchmark.toy.validity import asked
    from benchmark.toy.world import BACKGROUNDS

    cfg = _config(suite, concept_id)
    scenes = []
    for (i, _, seed), prompt in zip(plan, class_prompts(suite, concept_id, plan), strict=True):
        want = asked(prompt)
        rng = _rng(IDEAL, concept_id, i, seed)
        # every draw is made whether or not the prompt asks, so one attribute never shifts another's
        background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
        position = list(POSITIONS)[int(rng.integers(len(POSITIONS)))]
        scenes.append(
            Scene(
                shape=cfg["shape"],
                colour=want.get("colour", cfg["colour"]),
                background=want.get("background", background),
                position=want.get("position", position),
                pattern=cfg["pattern"],
                **draw_details(rng),
            )
        )
    return scenes


def copy_scenes(suite: Any, concept_id: str, plan: Sequence[tuple[int, str, int]]) -> list[Scene]:
    """The training scenes cycled over the plan (image ``k`` of the plan is training image ``k mod n``, as
    the validity study's copy control).

    Raises:
        ControlError: unknown concept.
    """
    from benchmark.toy.suite import concept_scenes

    train = concept_scenes(_config(suite, concept_id))
    return [train[k % len(train)] for k in range(len(plan))]


def context_only_scenes(suite: Any, concept_id: str, plan: Sequence[tuple[int, str, int]]) -> list[Scene]:
    """The class noun's plain object (the concept's shape, no pattern) on the training scenes, cycled as
    :func:`copy_scenes`: their background, position, size, jitter and texture seed. Colour: the asked
    one, else drawn uniformly from the world's colours per (concept, prompt index, seed), as the base
    model's plain "a heart" would be.

    Raises:
        ControlError: unknown concept.
    """
    from benchmark.toy.validity import asked

    colours = list(COLOURS)
    out = []
    for (i, _, seed), prompt, train in zip(
        plan, class_prompts(suite, concept_id, plan), copy_scenes(suite, concept_id, plan), strict=True
    ):
        drawn = colours[int(_rng(CONTEXT_ONLY, concept_id, i, seed).integers(len(colours)))]
        out.append(
            Scene(
                shape=train.shape,
                colour=asked(prompt).get("colour", drawn),
                background=train.background,
                position=train.position,
                size=train.size,
                jitter=train.jitter,
                pattern=None,
                seed=train.seed,
            )
        )
    return out


def control_scenes(
    suite: Any, concept_id: str, plan: Sequence[tuple[int, str, int]]
) -> dict[str, list[Scene]]:
    """The scenes of each rendered control (``ideal``, ``copy``, ``context-only``), one per plan entry, in
    plan order; ``base`` has none (it is the base model's own images).

    Raises:
        ControlError: unknown concept.
    """
    return {
        IDEAL: ideal_scenes(suite, concept_id, plan),
        COPY: copy_scenes(suite, concept_id, plan),
        CONTEXT_ONLY: context_only_scenes(suite, concept_id, plan),
    }


# ----------------------------------------------------------------------------------------------------
# Image folders


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format="PNG")
    return buf.getvalue()


def check_controls(names: Sequence[str]) -> list[str]:
    """``names`` after checking each is a control.

    Raises:
        ControlError: an unknown name.
    """
    for n in names:
        if n not in CONTROLS:
            raise ControlError(f"unknown control {n!r}; the controls are {', '.join(CONTROLS)}")
    return list(names)


def write_control(ctx: Any, control: str, concepts: Sequence[Any], root: Path) -> Path:
    """Lay one control's images out as ``root/<control>/<concept>/<prompt_index>_<seed>.png`` for every
    (prompt, seed) of each concept's generation plan. Rendered controls are drawn at the suite's image
    size; ``base`` copies the base model's cached generations (computed once if the cache has none).

    Returns:
        The control's folder.

    Raises:
        ControlError: unknown control or concept.
    """
    from benchmark import stages
    from benchmark.io import atomic_write, atomic_write_bytes
    from benchmark.toy.render import render_array

    check_controls([control])
    folder = root / control
    size = int((ctx.suite.manifest.config or {}).get("image_size", ctx.settings.resolution))
    for concept in concepts:
        plan = stages.generation_plan(ctx, concept)
        dest = folder / concept.id
        dest.mkdir(parents=True, exist_ok=True)
        targets = [dest / f"{i}_{seed}.png" for i, _, seed in plan]
        if control == BASE:
            from baselines import load_method

            path, _ = stages.generate(ctx, load_method("base"), concept)
            for src, dst in zip(stages.image_files(path, plan), targets, strict=True):
                atomic_write(dst, partial(shutil.copyfile, src))
            continue
        scenes = control_scenes(ctx.suite, concept.id, plan)[control]
        for scene, dst in zip(scenes, targets, strict=True):
            atomic_write_bytes(dst, _png(render_array(scene, size)))
    return folder


def write_controls(
    ctx: Any, concepts: Sequence[Any], root: Path, controls: Sequence[str] = CONTROLS
) -> dict[str, Path]:
    """:func:`write_control` for each control: ``{control: folder}``.

    Raises:
        ControlError: unknown control or concept.
    """
    return {c: write_control(ctx, c, concepts, root) for c in check_controls(controls)}


# ----------------------------------------------------------------------------------------------------
# Scoring and the oracle's reading


def oracle_readout(ctx: Any, oracle: Any, concept: Any, files: Sequence[Path]) -> dict[str, float]:
    """The validity study's oracle measures (:func:`benchmark.toy.validity.concept_readout`: identity,
    training-background share, asked background / position / colour shown, fidelity) of one concept's
    images, in plan order."""
    from benchmark.stages import generation_plan
    from benchmark.toy.validity import concept_readout, read_images

    prompts = class_prompts(ctx.suite, concept.id, generation_plan(ctx, concept))
    return concept_readout(read_images(oracle, files), prompts, _config(ctx.suite, concept.id))


def score_controls(
    ctx: Any, concepts: Sequence[Any], root: Path, oracle: Any, controls: Sequence[str] = CONTROLS
) -> tuple[list[dict[str, Any]], dict[str, dict[str, dict[str, float]]]]:
    """Write the controls' folders under ``root`` and score each through the image-folder path
    (:func:`benchmark.image_scoring.score_folder`, as ``overfit-bench score --images``), rows named
    ``control:<name>``; read each with the oracle.

    Returns:
        (rows, ``{control: {concept: oracle readout}}``).

    Raises:
        ControlError: unknown control or concept.
        benchmark.image_scoring.ImageFolderError: a written folder does not match the suite (a bug).
    """
    from benchmark.image_scoring import check_folder, score_folder

    rows: list[dict[str, Any]] = []
    readouts: dict[str, dict[str, dict[str, float]]] = {}
    for control, folder in write_controls(ctx, concepts, root, controls).items():
        files = check_folder(ctx, folder, list(concepts))
        rows += [
            {**r, "extra": {**r["extra"], "control": control}}
            for r in score_folder(ctx, folder, list(concepts), method_name(control))
        ]
        readouts[control] = {c.id: oracle_readout(ctx, oracle, c, files[c.id]) for c in concepts}
        log.info("control %s: %d rows", control, len(rows))
    return rows, readouts


def write_outputs(root: Path, rows: Sequence[Mapping[str, Any]], readouts: Mapping[str, Any]) -> None:
    """``root/controls.jsonl`` (the rows, replaced whole) and ``root/controls_oracle.json``."""
    from benchmark.io import atomic_write_json, atomic_write_text

    atomic_write_text(root / ROWS_FILE, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    atomic_write_json(root / ORACLE_FILE, dict(readouts), indent=1)


# ----------------------------------------------------------------------------------------------------
# Command line


def _table(
    rows: Sequence[Mapping[str, Any]], readouts: Mapping[str, Mapping[str, Mapping[str, float]]]
) -> str:
    """A compact text table: per concept × control, oracle identity and training-background share and
    every metric row's value."""
    metrics = sorted({str(r["metric"]) for r in rows})
    values = {(r["method"], r["concept"], r["metric"]): float(r["value"]) for r in rows}
    head = ["concept", "control", "oracle identity", "oracle train_bg", *metrics]
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    concepts = list(dict.fromkeys(cid for per in readouts.values() for cid in per))
    for cid in concepts:
        for control, per in readouts.items():
            o = per[cid]
            cells = [cid, control, f"{o['identity']:.3f}", f"{o['train_background']:.3f}"]
            cells += [f"{values.get((method_name(control), cid, m), float('nan')):.4f}" for m in metrics]
            lines.append(" | ".join(cells))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Write, score and read the controls. Exit codes: 0 done, 2 bad input (one line on stderr)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.toy.controls", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the control folders and outputs")
    parser.add_argument("--concepts", default=None, help="comma-separated concept ids (default: all)")
    parser.add_argument(
        "--controls", default=None, help=f"comma-separated controls (default: {','.join(CONTROLS)})"
    )
    parser.add_argument("--suite", default="toy", help="a toy suite (default toy)")
    parser.add_argument(
        "--cache", type=Path, default=None, help="cache folder (default as `overfit-bench run`)"
    )
    parser.add_argument(
        "--data-root", default=None, help="data root (default: $OVERFIT_BENCH_DATA or the user cache)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from benchmark.jobs import job_context
    from benchmark.jobspec import JobSpec
    from benchmark.paths import cache_dir
    from benchmark.settings import settings_for
    from benchmark.suites import select_concepts

    try:
        controls = check_controls(args.controls.split(",") if args.controls else CONTROLS)
        spec = JobSpec(
            suite=args.suite,
            settings=settings_for(args.suite),
            cache=cache_dir(args.cache),
            run_dir=args.out / "run",
            data_root=args.data_root,
            progress=False,
        )
        ctx = job_context(spec)
        if not (ctx.suite.manifest.config or {}).get("concepts"):
            raise ControlError(
                f"suite {args.suite!r} is not a toy suite (its manifest has no config.concepts)"
            )
        try:
            concepts = select_concepts(ctx.suite, args.concepts.split(",") if args.concepts else None)
        except KeyError as err:
            raise ControlError(str(err.args[0])) from None
        from benchmark.toy.assets import oracle_checkpoint
        from benchmark.toy.oracle import load_oracle

        oracle = load_oracle(oracle_checkpoint())
        rows, readouts = score_controls(ctx, concepts, args.out, oracle, controls)
    except (ControlError, FileNotFoundError) as err:
        print(f"controls: error: {err}", file=sys.stderr)
        return 2
    write_outputs(args.out, rows, readouts)
    print(_table(rows, readouts))
    print(f"rows in {args.out / ROWS_FILE}; oracle readout in {args.out / ORACLE_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
