"""The toy suite's validity study: do the metrics see the overfitting that the ground truth shows?

Reads the rows and images of a finished toy run (``overfit-bench run``; its cache makes every fit and
generation here a cache hit) and adds what only the toy world can give: the oracle's reading of every
generated image. Three studies (docs/VALIDITY.md):

1. base-model quality — oracle accuracy of shape, colour, background and position on base generations
   of held-out (never pretrained) and held-in attribute combinations;
2. concept-specific overfitting — one method trained normally, the same method over-trained
   (``factor`` × steps) and a ``copy`` control that returns the training images: oracle background
   accuracy on prompts that ask for new backgrounds, and W2;
3. concept-agnostic overfitting — LFD and the oracle's accuracy on the non-concept (``lfd``) prompts,
   base vs each method;

plus Spearman rank agreement between each metric and its oracle counterpart over every run.

Command line::

    python -m benchmark.toy.controls --out runs/toy/controls   # the rendered 2 × 2 controls
    python -m benchmark.toy.validity [--run runs/toy] [--doc docs/VALIDITY.md] [--controls DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.toy.validity_design import (
    ATTRS,
    COPY,
    LADDER,
    OVERTRAIN_FACTOR,
    PROBE_SCENE,
    STUDY_METHOD,
    TUNED_RUNGS,
    rung_label,
)
from benchmark.toy.validity_report import render_report, write_outputs

log = logging.getLogger(__name__)

BASE_QUALITY_N = 200
# the damage readout of an entry without a model to prompt (copy, rendered controls)
NO_DAMAGE: dict[str, float] = {
    "nonconcept_acc": float("nan"),
    **{f"nonconcept_{k}_acc": float("nan") for k in ATTRS},
}
PROBE_SEEDS = 20


# ----------------------------------------------------------------------------------------------------
# Oracle reading


def asked(prompt: str) -> dict[str, str]:
    """The world attributes a (class-rendered) prompt names, e.g. ``{"background": "snow"}``."""
    from benchmark.toy.backbones import parse_caption

    return {k: v for k, v in parse_caption(prompt).items() if k in ATTRS}


def read_images(oracle: Any, paths: Sequence[Path]) -> list[dict[str, str]]:
    """The oracle's reading of image files (shape, colour, background, position, pattern)."""
    from benchmark.io import open_rgb
    from benchmark.toy.oracle import predict

    return predict(oracle, [open_rgb(p) for p in paths])


def _mean(xs: Sequence[float]) -> float:
    return float(np.mean(xs)) if len(xs) else float("nan")


def concept_readout(
    readings: Sequence[Mapping[str, str]], prompts: Sequence[str], concept: Mapping[str, Any]
) -> dict[str, float]:
    """Oracle measures of one (run, concept) from its images and the class-rendered prompts behind them.

    ``background_acc``: images showing the background their prompt asks for; ``train_background``:
    images showing one of the concept's training backgrounds; ``train_position``: images whose subject
    stands at the training images' position; ``position_acc`` / ``colour_acc``: the
    same for prompts that ask for a position / a colour; ``fidelity``: mean over images of the fraction
    of asked attributes shown; ``identity``: images showing the concept's shape and pattern.
    """
    bg, train_bg, train_pos, pos, col, fid, ident = [], [], [], [], [], [], []
    for r, prompt in zip(readings, prompts, strict=True):
        want = asked(prompt)
        if "background" in want:
            bg.append(float(r["background"] == want["background"]))
        train_bg.append(float(r["background"] in concept["backgrounds"]))
        train_pos.append(float(r["position"] == concept["position"]))
        if "position" in want:
            pos.append(float(r["position"] == want["position"]))
        if "colour" in want:
            col.append(float(r["colour"] == want["colour"]))
        # the concept's own shape (and colour, unless the prompt asks for another) count as asked
        target = {"shape": concept["shape"], "colour": concept["colour"], **want}
        fid.append(_mean([float(r[k] == v) for k, v in target.items()]))
        ident.append(float(r["shape"] == concept["shape"] and r["pattern"] == concept["pattern"]))
    return {
        "background_acc": _mean(bg),
        "train_background": _mean(train_bg),
        "train_position": _mean(train_pos),
        "position_acc": _mean(pos),
        "colour_acc": _mean(col),
        "fidelity": _mean(fid),
        "identity": _mean(ident),
    }


def prompt_accuracy(readings: Sequence[Mapping[str, str]], prompts: Sequence[str]) -> float:
    """Mean over images of the fraction of the prompt's named attributes the oracle reads back."""
    scores = []
    for r, prompt in zip(readings, prompts, strict=True):
        want = asked(prompt)
        if want:
            scores.append(_mean([float(r[k] == v) for k, v in want.items()]))
    return _mean(scores)


# ----------------------------------------------------------------------------------------------------
# The studies


def base_quality(
    ctx: Any, oracle: Any, n: int = BASE_QUALITY_N, seed: int = 777
) -> dict[str, dict[str, float]]:
    """Oracle accuracy on base generations of full captions of held-out and held-in combinations."""
    from baselines import load_method
    from benchmark.stages import load_customized
    from benchmark.toy.oracle import labels_of, predict_indices
    from benchmark.toy.world import caption, sample_scenes

    base = load_method("base")
    pipe, _ = load_customized(ctx, base, ctx.suite.concepts[0])
    s = ctx.settings
    out: dict[str, dict[str, float]] = {}
    for split, mode in (("held_out", "only"), ("held_in", "exclude")):
        rng = np.random.default_rng([seed, 1 if split == "held_out" else 2])
        scenes = sample_scenes(rng, n, held_out=mode)  # type: ignore[arg-type]
        prompts = [caption(sc) for sc in scenes]
        result = pipe.generate(
            prompts,
            list(range(n)),
            **s.sampler_kwargs(),
        )
        pred = predict_indices(oracle, result.images)
        truth = labels_of(scenes)
        out[split] = {k: float((pred[k] == truth[k]).double().mean()) for k in ATTRS}
        out[split]["n"] = float(n)
    out["position_probe"] = position_probe(pipe, oracle, s)
    return out


def position_probe(pipe: Any, oracle: Any, settings: Any, seeds: int = PROBE_SEEDS) -> dict[str, float]:
    """Does the caption or the starting noise set the object's position?

    Generates ``"<position>, a red star on a snow background"`` for each of the five positions with the
    same ``seeds`` starting latents. Returns ``accuracy`` (the oracle reads the asked position) and
    ``same_for_all_prompts`` (share of seeds whose read position is the same for all five prompts:
    1.0 means the position comes from the noise alone; a model that follows the caption scores ≈ 0).
    """
    from benchmark.toy.oracle import predict_indices
    from benchmark.toy.world import POSITIONS

    names = list(POSITIONS)
    reads = []
    for name in names:
        result = pipe.generate(
            [f"{name}, {PROBE_SCENE}"] * seeds,
            list(range(seeds)),
            **settings.sampler_kwargs(),
        )
        reads.append(predict_indices(oracle, result.images)["position"].numpy())
    table = np.stack(reads)  # [position asked, seed]
    asked_idx = np.arange(len(names))[:, None]
    return {
        "accuracy": float((table == asked_idx).mean()),
        "same_for_all_prompts": float((table == table[0]).all(axis=0).mean()),
        "seeds": float(seeds),
    }


def _rows_by(path: Path) -> dict[tuple[str, float | None, str], dict[str, float]]:
    """``{(method, rung, concept): {metric: value}}`` of a results file."""
    table: dict[tuple[str, float | None, str], dict[str, float]] = defaultdict(dict)
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            rung = row.get("rung")
            table[(row["method"], None if rung is None else float(rung), row["concept"])][row["metric"]] = (
                float(row["value"])
            )
    return dict(table)


def _damage_readout(ctx: Any, oracle: Any, method: Any, concept: Any) -> dict[str, Any]:
    """The damage oracle (:mod:`benchmark.toy.damage`) on a method's images for non-concept captions: oracle
    accuracy pooled, per attribute and per prompt."""
    from benchmark.stages import load_customized
    from benchmark.toy.damage import accuracy_table, damage_prompts, readings, readout
    from benchmark.toy.suite import concept_config

    pipe, _ = load_customized(ctx, method, concept)
    prompts = damage_prompts(concept_config(ctx.suite, concept.id)["shape"])
    read = readings(oracle, pipe, prompts, ctx.settings.sampler_kwargs())
    rows = [p for p in prompts for _ in range(len(read) // len(prompts))]
    return readout(accuracy_table(read, rows), len(prompts))


def _copy_rows(ctx: Any, concept: Any) -> dict[str, float]:
    """Metrics of the ``copy`` control: the training images, cycled over the generation plan, scored like
    any folder of images."""
    from benchmark.scoring import score_images
    from benchmark.stages import generation_plan

    train = concept.images
    files = [train[k % len(train)] for k in range(len(generation_plan(ctx, concept)))]
    return {r["metric"]: r["value"] for r in score_images(ctx, concept, files, COPY)}


CONTROL_PREFIX = "control:"  # the method name of a ground-truth control's rows (benchmark.toy.controls)


def control_runs(folder: Path, suite: Any) -> list[dict[str, Any]]:
    """The ground-truth controls (``python -m benchmark.toy.controls --out FOLDER``: ideal, copy,
    context-only, base) as entries shaped like :func:`run_study`'s ``runs`` items, one per control ×
    concept: ``label`` ``control:<name>``, ``rung`` None, ``concept``, ``tier``, ``metrics``
    ``{metric: value}`` (the image-folder rows of ``controls.jsonl``) and ``oracle`` (the readout of
    ``controls_oracle.json``; ``nonconcept_acc`` NaN: a control has no model to prompt).

    Raises:
        FileNotFoundError: ``folder`` lacks ``controls.jsonl`` or ``controls_oracle.json``.
    """
    from benchmark.toy.suite import concept_config

    rows_path, oracle_path = folder / "controls.jsonl", folder / "controls_oracle.json"
    for p in (rows_path, oracle_path):
        if not p.is_file():
            raise FileNotFoundError(
                f"{p}: no controls there; run `python -m benchmark.toy.controls --out {folder}`"
            )
    metrics: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for line in rows_path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            metrics[(row["method"], row["concept"])][row["metric"]] = float(row["value"])
    readouts = json.loads(oracle_path.read_text(encoding="utf-8"))
    return [
        {
            "label": f"{CONTROL_PREFIX}{control}",
            "rung": None,
            "concept": cid,
            "tier": concept_config(suite, cid)["tier"],
            "metrics": dict(metrics.get((f"{CONTROL_PREFIX}{control}", cid), {})),
            "oracle": {**readout, **NO_DAMAGE},
        }
        for control, per_concept in readouts.items()
        for cid, readout in per_concept.items()
    ]


def run_study(
    run_dir: Path,
    cache_root: Path,
    *,
    methods: Sequence[str],
    progress: bool = False,
    controls: Path | None = None,
) -> dict[str, Any]:
    """Every number of docs/VALIDITY.md, from the toy run in ``run_dir`` and the shared cache.

    Runs the over-trained variant of :data:`STUDY_METHOD` through the harness (its own run folder
    ``<run_dir>/validity-overtrained``), so it is cached and resumable like any run.
    """
    from baselines import load_method
    from benchmark.io import atomic_write_json
    from benchmark.jobs import job_context
    from benchmark.jobspec import JobSpec
    from benchmark.runner import run_suite
    from benchmark.scoring import rung_steps
    from benchmark.settings import settings_for
    from benchmark.stages import generation_plan, method_config
    from benchmark.toy.assets import oracle_checkpoint
    from benchmark.toy.oracle import load_oracle
    from benchmark.toy.suite import concept_config
    from metrics.similarity import render_slot

    results_path = run_dir / "results.jsonl"
    # each (run, concept)'s oracle readout is saved as it is made, so a killed study resumes, and two
    # studies of one run with disjoint --methods share their work (the ladder and copy are read by both)
    readout_dir = run_dir / READOUT_DIR
    if not results_path.is_file():
        raise FileNotFoundError(f"{results_path}: no toy run there; run `overfit-bench run` first")
    settings = settings_for("toy")
    spec = JobSpec(suite="toy", settings=settings, cache=cache_root, run_dir=run_dir, progress=progress)
    ctx = job_context(spec)
    checkpoint = oracle_checkpoint()
    oracle = load_oracle(checkpoint)
    oracle_sum = hashlib.sha256(checkpoint.read_bytes()).hexdigest()

    # over-trained variant, through the harness
    study = load_method(STUDY_METHOD)
    steps = int(method_config(ctx, study)["steps"])
    over_overrides = dict(settings.method_overrides)
    over_overrides[STUDY_METHOD] = {**over_overrides.get(STUDY_METHOD, {}), "steps": OVERTRAIN_FACTOR * steps}
    over_settings = settings.replace(method_overrides=over_overrides, rungs=LADDER)
    over_dir = run_dir / "validity-overtrained"
    run_suite(
        suite="toy",
        methods=[STUDY_METHOD],
        concepts=None,
        settings=over_settings,
        run_dir=over_dir,
        cache_root=cache_root,
        progress=progress,
    )
    over_ctx = job_context(spec.replace(settings=over_settings, run_dir=over_dir))
    over_label = f"{STUDY_METHOD} ×{OVERTRAIN_FACTOR}"
    ladder_steps = rung_steps(over_ctx, study, LADDER)

    # every (method, rung, concept) of the main run (issue 23: "over every (method, rung, concept) run"; the
    # rule of docs/DECISIONS.md 2026-12-07, committed before the study read the other rungs)
    rows = _rows_by(results_path)
    over_rows = _rows_by(over_dir / "results.jsonl")
    # every (method, rung) of the run: its label, its image folder under run_dir/images and its handle
    entries_of: list[tuple[str, float | None, str, Any]] = []
    for name in methods:
        handle = load_method(name)
        rungs = sorted({r for (m, r, _) in rows if m == name}, key=lambda r: -1.0 if r is None else r)
        for rung in rungs:
            if rung is None or rung == 1.0:
                entries_of.append((name, rung, name, handle))
                continue
            steps = rung_steps(ctx, handle, [rung])[rung]
            entries_of.append((rung_label(name, rung), rung, f"{name}@{steps}", handle.with_steps(steps)))
    runs: list[dict[str, Any]] = []
    for concept in ctx.suite.concepts:
        cfg = concept_config(ctx.suite, concept.id)
        plan = generation_plan(ctx, concept)
        class_prompts = [render_slot(tpl, concept.class_noun) for _, tpl, _ in plan]
        entries: list[tuple[str, float | None, list[Path], dict[str, float], Any, Any]] = []
        for label, rung, folder, handle in entries_of:
            files = [run_dir / "images" / folder / concept.id / f"{i}_{s}.png" for i, _, s in plan]
            entries.append((label, rung, files, rows[(handle.name, rung, concept.id)], ctx, handle))
        for rung, n_steps in ladder_steps.items():
            folder = STUDY_METHOD if rung == 1.0 else f"{STUDY_METHOD}@{n_steps}"
            over_files = [over_dir / "images" / folder / concept.id / f"{i}_{s}.png" for i, _, s in plan]
            label = over_label if rung == 1.0 else f"{STUDY_METHOD} ladder ×{OVERTRAIN_FACTOR * rung:g}"
            handle = study if rung == 1.0 else study.with_steps(n_steps)
            rows_of = over_rows[(STUDY_METHOD, rung, concept.id)]
            entries.append((label, None, over_files, rows_of, over_ctx, handle))
        train = concept.images
        copy_files = [train[k % len(train)] for k in range(len(plan))]
        entries.append((COPY, None, copy_files, _copy_rows(ctx, concept), None, None))
        for label, rung, files, metrics, mctx, method in entries:
            saved = readout_dir / concept.id / f"{label.replace(' ', '_')}.json"
            key = readout_key(label, files, oracle_sum)
            found = _saved_readout(saved, key)
            if found is None:
                readout = concept_readout(read_images(oracle, files), class_prompts, cfg)
                damage = _damage_readout(mctx, oracle, method, concept) if method is not None else NO_DAMAGE
                found = {**readout, **damage}
                atomic_write_json(saved, {"key": key, "label": label, "concept": concept.id, "oracle": found})
                log.info("validity: read %s on %s", label, concept.id)
            runs.append(
                {
                    "label": label,
                    "rung": rung,
                    "concept": concept.id,
                    "tier": cfg["tier"],
                    "metrics": metrics,
                    "oracle": found,
                }
            )
    if controls is not None:
        runs += control_runs(controls, ctx.suite)
    quality = base_quality(ctx, oracle)
    quality["text_reachability"] = text_reachability(ctx, oracle)
    return {
        "base_quality": quality,
        "runs": runs,
        "study_method": STUDY_METHOD,
        "factor": OVERTRAIN_FACTOR,
        "oracle_eval": oracle_accuracy(),
        "budgets": {
            label: _budget(ctx, load_method(handle.name))
            | ({} if rung in TUNED_RUNGS else {"steps": folder_steps(folder)})
            for label, rung, folder, handle in entries_of
        },
    }


def folder_steps(folder: str) -> int:
    """The steps in a rung's image folder name ``<method>@<steps>``."""
    return int(folder.rsplit("@", 1)[1])


READOUT_DIR = "validity-readouts"


def readout_key(label: str, files: Sequence[Path], oracle_sum: str) -> str:
    """What a saved readout was made from: the run's label, the bytes of the images the oracle read and the
    oracle's checksum (the damage readout's model is the one that drew those images)."""
    h = hashlib.sha256(f"{label}\n{oracle_sum}\n".encode())
    for f in files:
        h.update(Path(f).read_bytes())
    return h.hexdigest()


def _saved_readout(path: Path, key: str) -> dict[str, Any] | None:
    """The readout saved at ``path`` when it was made from ``key``, else None."""
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return dict(saved["oracle"]) if isinstance(saved, dict) and saved.get("key") == key else None


def _budget(ctx: Any, method: Any) -> dict[str, Any]:
    from benchmark.stages import method_config

    cfg = method_config(ctx, method)
    return {k: cfg[k] for k in ("lr", "steps", "batch_size") if k in cfg}


def oracle_accuracy() -> dict[str, Any]:
    """The shipped oracle's own accuracy on freshly rendered scenes (its training record's evaluation)."""
    from benchmark.toy.assets import oracle_checkpoint

    path = oracle_checkpoint().parent / "oracle_eval.json"
    return dict(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else {}


def text_reachability(ctx: Any, oracle: Any, seeds: int = 16) -> dict[str, float]:
    """Can the base model draw each recombination concept when the caption says its look in words
    ("a red heart with stripes")? Share of ``seeds`` base images the oracle reads with the concept's
    shape and pattern, per concept — what a textual handle on an already-drawable look can reach."""
    from benchmark.toy.oracle import predict
    from benchmark.toy.suite import concept_config
    from benchmark.toy.world import PATTERNS

    pipe = ctx.base_pipeline()
    s = ctx.settings
    out: dict[str, float] = {}
    for concept in ctx.suite.concepts:
        cfg = concept_config(ctx.suite, concept.id)
        if cfg["tier"] != "recombination":
            continue
        prompt = f"a {cfg['colour']} {cfg['shape']} {PATTERNS[cfg['pattern']]}"
        result = pipe.generate(
            [prompt] * seeds,
            list(range(seeds)),
            **s.sampler_kwargs(),
        )
        reads = predict(oracle, result.images)
        out[concept.id] = _mean(
            [float(r["shape"] == cfg["shape"] and r["pattern"] == cfg["pattern"]) for r in reads]
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from benchmark.paths import cache_dir

    parser = argparse.ArgumentParser(
        prog="python -m benchmark.toy.validity", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--run", type=Path, default=Path("runs/toy"), help="a finished toy run (default runs/toy)"
    )
    parser.add_argument("--doc", type=Path, default=Path("docs/VALIDITY.md"), help="document to refresh")
    parser.add_argument(
        "--cache", type=Path, default=None, help="cache folder (default as `overfit-bench run`)"
    )
    parser.add_argument("--methods", default=None, help="comma-separated methods (default: all built-in)")
    parser.add_argument(
        "--controls",
        type=Path,
        default=None,
        help="the rendered controls (`python -m benchmark.toy.controls --out DIR`; default RUN/controls)",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="re-render the document's tables from its saved study (docs/validity/validity.json) without "
        "running anything",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.report_only:
        saved = args.doc.parent / "validity" / "validity.json"
        if not saved.is_file():
            print(
                f"validity: error: {saved}: no saved study; run without --report-only first", file=sys.stderr
            )
            return 2
        write_outputs(
            json.loads(saved.read_text(encoding="utf-8")), args.doc, "python -m benchmark.toy.validity"
        )
        return 0
    from baselines import list_methods

    methods = args.methods.split(",") if args.methods else list(list_methods())
    try:
        controls = args.controls or args.run / "controls"
        if not (controls / "controls.jsonl").is_file():
            raise FileNotFoundError(
                f"{controls}: no controls there; run `python -m benchmark.toy.controls --out {controls}` first"
            )
        study = run_study(args.run, cache_dir(args.cache), methods=methods, controls=controls)
    except (FileNotFoundError, KeyError, ValueError) as err:
        print(f"validity: error: {err}", file=sys.stderr)
        return 2
    write_outputs(study, args.doc, "python -m benchmark.toy.validity")
    print(render_report(study, "python -m benchmark.toy.validity"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
