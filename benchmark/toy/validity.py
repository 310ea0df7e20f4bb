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
import itertools
import json
import logging
import math
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

STUDY_METHOD = "dreambooth"
OVERTRAIN_FACTOR = 3
# the main run's tuned budget (rung 1, or null for the base model): the population the study read until
# 2026-12-07; since then it reads every rung of the run and reports this part beside it (docs/DECISIONS.md)
TUNED_RUNGS: tuple[float | None, ...] = (None, 1.0)
# rungs of the over-trained run: ×1, ×2 and ×3 the tuned steps, from one training run (the ladder)
LADDER = (1 / 3, 2 / 3, 1.0)
COPY = "copy"
BASE_QUALITY_N = 200
BEGIN = "<!-- validity:begin -->"
END = "<!-- validity:end -->"
ATTRS = ("shape", "colour", "background", "position")
# the damage readout of an entry without a model to prompt (copy, rendered controls)
NO_DAMAGE: dict[str, float] = {
    "nonconcept_acc": float("nan"),
    **{f"nonconcept_{k}_acc": float("nan") for k in ATTRS},
}


# ----------------------------------------------------------------------------------------------------
# Statistics


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation (``scipy.stats.spearmanr``: average ranks for ties); NaN when a side
    is constant.

    Raises:
        ValueError: different lengths or fewer than 3 pairs.
    """
    from scipy.stats import spearmanr

    if len(a) != len(b) or len(a) < 3:
        raise ValueError(f"spearman: need two equal-length lists of >= 3 values, got {len(a)} and {len(b)}")
    if len(set(a)) < 2 or len(set(b)) < 2:
        return float("nan")
    return float(spearmanr(a, b).statistic)


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


PROBE_SEEDS = 20
PROBE_SCENE = "a red star on a snow background"


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


def rung_label(method: str, rung: float | None) -> str:
    """A run's label in the study: the method's name at its tuned budget (and for the base model), else
    ``"<method> ×<rung>"``."""
    return method if rung in TUNED_RUNGS else f"{method} ×{rung:g}"


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


# ----------------------------------------------------------------------------------------------------
# Report


def _by_label(runs: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in runs:
        out[r["label"]].append(r)
    return dict(out)


def _avg(items: Sequence[Mapping[str, Any]], part: str, key: str) -> float:
    vals = [float(r[part].get(key, float("nan"))) for r in items]
    vals = [v for v in vals if not math.isnan(v)]
    return _mean(vals)


def _f(x: float, digits: int = 3) -> str:
    return "—" if isinstance(x, float) and math.isnan(x) else f"{x:.{digits}f}"


AGREEMENT: tuple[tuple[str, str, str, str], ...] = (
    # metric, oracle measure, expected sign, what it checks
    ("subject_dino", "identity", "+", "subject DINO vs oracle concept identity (shape and pattern)"),
    ("subject_clip_i", "identity", "+", "subject CLIP-I vs oracle concept identity"),
    ("clip_i", "identity", "+", "CLIP-I (full image) vs oracle concept identity"),
    ("dino", "identity", "+", "DINO (full image) vs oracle concept identity"),
    ("clip_t", "fidelity", "+", "CLIP-T vs oracle prompt fidelity"),
    ("w2", "train_background", "+", "W2 vs share of images stuck on a training background"),
    ("w2", "background_acc", "-", "W2 vs oracle accuracy of the asked new background"),
    ("leakage", "train_background", "+", "leakage vs share of images stuck on a training background"),
    ("leakage", "background_acc", "-", "leakage vs oracle accuracy of the asked new background"),
    ("mmd_base", "train_background", "+", "MMD² from base vs share of images stuck on a training background"),
    (
        "heldout_gap",
        "train_background",
        "+",
        "held-out gap vs share of images stuck on a training background",
    ),
    ("layout", "train_position", "+", "layout vs share of subjects at the training images' position"),
    ("layout", "position_acc", "-", "layout vs oracle accuracy of the asked position"),
    ("collapse", "train_background", "+", "collapse vs share of images stuck on a training background"),
    ("collapse", "background_acc", "-", "collapse vs oracle accuracy of the asked new background"),
    ("lfd", "nonconcept_drop", "+", "LFD vs drop of oracle accuracy on non-concept prompts (base − method)"),
    *(
        (
            "lfd",
            f"nonconcept_drop_{k}",
            "+",
            f"LFD vs drop of the oracle's {k} accuracy on non-concept prompts",
        )
        for k in ATTRS
    ),
)
# fidelity metrics whose independence from the training background is read (partial ρ given identity)
CONTEXT_FREE = ("subject_dino", "subject_clip_i", "clip_i", "dino")


def _oracle_reader(runs: Sequence[Mapping[str, Any]], measure: str) -> Any:
    if not measure.startswith("nonconcept_drop"):
        return lambda r: float(r["oracle"][measure])
    attr = measure.removeprefix("nonconcept_drop")
    key = f"nonconcept{attr}_acc"  # nonconcept_acc, nonconcept_shape_acc, ...
    base_nc = {r["concept"]: r["oracle"].get(key, float("nan")) for r in runs if r["label"] == "base"}
    return lambda r: (
        float(base_nc.get(r["concept"], float("nan"))) - float(r["oracle"].get(key, float("nan")))
    )


def damage_power(runs: Sequence[Mapping[str, Any]], methods: Sequence[str]) -> dict[str, Any]:
    """The damage oracle's power: each (run, concept)'s pooled-drop standard error (the prompt as the unit,
    paired with the base model's images of the same captions and seeds) against the spread between the
    methods' mean drops at their tuned budgets (issue 24's target: s.e. below a quarter of it)."""
    from benchmark.toy.damage import drop_se

    base = {r["concept"]: r["oracle"] for r in runs if r["label"] == "base"}
    ses = [
        drop_se(base[r["concept"]]["nonconcept_per_prompt"], r["oracle"]["nonconcept_per_prompt"])
        for r in runs
        if r["label"] != "base" and "nonconcept_per_prompt" in r["oracle"] and r["concept"] in base
    ]
    reader = _oracle_reader(runs, "nonconcept_drop")
    means = [_mean([reader(r) for r in runs if r["label"] == m]) for m in methods if m != "base"]
    means = [m for m in means if not math.isnan(m)]
    if not ses or len(means) < 2:
        return {}
    spread = float(np.std(means, ddof=1))
    return {
        "median_se": float(np.median(ses)),
        "max_se": float(np.max(ses)),
        "spread_methods_sd": spread,
        "n_runs": len(ses),
        "n_methods": len(means),
        "met": bool(np.median(ses) < spread / 4),
    }


def agreement(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Spearman ρ of each metric with its oracle counterpart, read every way
    (:func:`benchmark.toy.agreement.agreement_row`); ``rho`` and ``n`` are the pooled ρ over every run."""
    from benchmark.toy.agreement import agreement_row

    out = []
    for metric, measure, sign, what in AGREEMENT:
        row = agreement_row(runs, metric, _oracle_reader(runs, measure))
        out.append(
            {
                "metric": metric,
                "oracle": measure,
                "expected": sign,
                "rho": row["all"]["pooled"],
                "n": row["all"]["n"],
                "what": what,
                "ways": row,
            }
        )
    return out


def context_independence(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Partial Spearman ρ of each fidelity metric with the training-background share given the oracle's
    identity, over the runs that are not endpoints (a fidelity that copying cannot raise: near 0)."""
    from benchmark.toy.agreement import is_endpoint, partial_spearman

    out = []
    for metric in CONTEXT_FREE:
        kept = [r for r in runs if metric in r["metrics"] and not is_endpoint(str(r["label"]))]
        x = [float(r["metrics"][metric]) for r in kept]
        y = [float(r["oracle"]["train_background"]) for r in kept]
        z = [float(r["oracle"]["identity"]) for r in kept]
        out.append(
            {
                "metric": metric,
                "partial_rho": partial_spearman(x, y, z) if kept else float("nan"),
                "n": len(kept),
            }
        )
    return out


NO_COLLAPSE_MARGIN = 1 / 32  # one image of the 32 a concept gets


def learning_independence(runs: Sequence[Mapping[str, Any]], metric: str = "collapse") -> dict[str, Any]:
    """Spearman ρ of ``metric`` with the oracle's identity among the runs (not endpoints) that do not
    collapse: ``rho`` over those whose training-background share is 0 (issue 23's reading), ``rho_margin``
    over those at most the base model's share for the concept plus one image in 32. Learning the
    subject's look should move neither."""
    from benchmark.toy.agreement import is_endpoint

    base_tb = {r["concept"]: r["oracle"]["train_background"] for r in runs if r["label"] == "base"}
    kept = [r for r in runs if metric in r["metrics"] and not is_endpoint(str(r["label"]))]
    zero = [r for r in kept if float(r["oracle"]["train_background"]) == 0.0]
    margin = [
        r
        for r in kept
        if r["oracle"]["train_background"] <= base_tb.get(r["concept"], 0.0) + NO_COLLAPSE_MARGIN
    ]

    def rho(part: list[Mapping[str, Any]]) -> float:
        xs = [float(r["metrics"][metric]) for r in part]
        ys = [float(r["oracle"]["identity"]) for r in part]
        return spearman(xs, ys) if len(xs) >= 3 else float("nan")

    return {"rho": rho(zero), "n": len(zero), "rho_margin": rho(margin), "n_margin": len(margin)}


# concept-specific measures: the oracle share each should follow, read with identity partialled out
COLLAPSE_COUNTERPART = {
    "leakage": "train_background",
    "w2": "train_background",
    "mmd_base": "train_background",
    "heldout_gap": "train_background",
    "collapse": "train_background",
    "layout": "train_position",
}


def collapse_given_identity(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Partial Spearman ρ of each concept-specific measure with its oracle share given the oracle's
    identity, over the runs that are not endpoints (a measure learning cannot fake: high)."""
    from benchmark.toy.agreement import is_endpoint, partial_spearman

    out = []
    for metric, share in COLLAPSE_COUNTERPART.items():
        kept = [r for r in runs if metric in r["metrics"] and not is_endpoint(str(r["label"]))]
        x = [float(r["metrics"][metric]) for r in kept]
        y = [float(r["oracle"][share]) for r in kept if share in r["oracle"]]
        z = [float(r["oracle"]["identity"]) for r in kept]
        ok = kept and len(y) == len(x)
        out.append(
            {
                "metric": metric,
                "share": share,
                "partial_rho": partial_spearman(x, y, z) if ok else float("nan"),
                "n": len(kept),
            }
        )
    return out


def render_report(study: Mapping[str, Any], command: str) -> str:
    """The generated part of docs/VALIDITY.md (tables from :func:`run_study`'s output)."""
    from leaderboard.markdown import table_lines

    lines = [f"_Generated by `{command}`; do not edit between the markers._", ""]
    q = study["base_quality"]
    lines += ["### 1. Base-model quality (oracle accuracy on base generations)", ""]
    lines += table_lines(
        ["split", "n", "shape", "colour", "background", "position"],
        [
            [split.replace("_", "-"), str(int(q[split]["n"])), *(f"{100 * q[split][k]:.1f}%" for k in ATTRS)]
            for split in ("held_out", "held_in")
        ],
    )
    probe = q.get("position_probe")
    if probe is not None:
        lines += [
            "",
            f'Position probe ({int(probe["seeds"])} seeds × the five positions, "{PROBE_SCENE}"): '
            f"asked position read {100 * probe['accuracy']:.1f}%; the read position is the same for all "
            f"five prompts on {100 * probe['same_for_all_prompts']:.0f}% of seeds (100%: the starting "
            "noise, not the caption, sets the position).",
        ]
    reach = q.get("text_reachability") or {}
    if reach:
        lines += [
            "",
            'Recombination concepts said in words to the base model ("a red heart with stripes", 16 seeds): '
            "the oracle reads the concept's shape and pattern on "
            + ", ".join(f"{cid} {100 * v:.0f}%" for cid, v in reach.items())
            + " of the images.",
        ]
    oracle_eval = study.get("oracle_eval") or {}
    held = oracle_eval.get("held_out") if isinstance(oracle_eval, Mapping) else None
    if isinstance(held, Mapping):
        lines += [
            "",
            "The oracle on freshly rendered scenes of held-out combinations: "
            + ", ".join(f"{k} {100 * float(v):.1f}%" for k, v in held.items() if k != "n")
            + ".",
        ]
    groups = _by_label(study["runs"])
    label_over = f"{study['study_method']} ×{study['factor']}"
    budgets = study.get("budgets") or {}
    lines += [
        "",
        "### Identity of every run (oracle: share of images showing the concept's shape and pattern)",
        "",
    ]
    rows = []
    for label, items in groups.items():
        recomb = [r for r in items if r.get("tier") == "recombination"]
        novel = [r for r in items if r.get("tier") == "novel"]
        b = budgets.get(label, {})
        budget = f"{b['lr']:g}, {b['steps']}" if "lr" in b and "steps" in b else "—"
        rows.append(
            [
                label,
                budget,
                _f(_avg(items, "oracle", "identity")),
                _f(_avg(recomb, "oracle", "identity")),
                _f(_avg(novel, "oracle", "identity")),
            ]
        )
    lines += table_lines(["run", "lr, steps", "all concepts", "recombination", "novel"], rows)
    tuned = {r["concept"]: r["oracle"]["train_background"] for r in groups.get(study["study_method"], [])}
    over = {r["concept"]: r["oracle"]["train_background"] for r in groups.get(label_over, [])}
    more = sum(1 for c in tuned if c in over and over[c] > tuned[c])
    lines += [
        "",
        f"Over-training shows on {more} of {len(tuned)} concepts: {label_over}'s training-background share "
        f"exceeds {study['study_method']}'s there.",
    ]
    lines += ["", "### 2. Concept-specific overfitting (mean over concepts)", ""]
    lines += table_lines(
        [
            "run",
            "oracle: asked background shown ↑",
            "oracle: training background shown ↓",
            "oracle: asked position ↑",
            "oracle: identity ↑",
            "W2 ↓",
        ],
        [
            [
                label,
                _f(_avg(items, "oracle", "background_acc")),
                _f(_avg(items, "oracle", "train_background")),
                _f(_avg(items, "oracle", "position_acc")),
                _f(_avg(items, "oracle", "identity")),
                _f(_avg(items, "metrics", "w2")),
            ]
            for label in ("base", study["study_method"], label_over, COPY)
            for items in [groups.get(label, [])]
        ],
    )
    lines += ["", "### 3. Concept-agnostic overfitting (mean over concepts)", ""]
    lines += table_lines(
        ["run", "LFD ↓", "LFD (class prompts) ↓", "oracle accuracy on non-concept prompts ↑"],
        [
            [
                label,
                _f(_avg(items, "metrics", "lfd"), 4),
                _f(_avg(items, "metrics", "lfd_class"), 4),
                _f(_avg(items, "oracle", "nonconcept_acc")),
            ]
            for label, items in groups.items()
            if label != COPY
        ],
    )
    # the spread between methods at their tuned budgets (a rung's label is "<method> ×<rung>")
    power = damage_power(study["runs"], [label for label in budgets if " ×" not in label])
    if power:
        from benchmark.toy.damage import DAMAGE_SEEDS, N_PROMPTS

        lines += [
            "",
            f"Non-concept prompts: {N_PROMPTS} held-in captions without the concept's shape × "
            f"{len(DAMAGE_SEEDS)} seeds per run and concept (`benchmark.toy.damage`). Standard error of a "
            f"run's drop (the prompt as the unit): median {power['median_se']:.4f}, max {power['max_se']:.4f} "
            f"over {power['n_runs']} (run, concept) pairs; s.d. of the {power['n_methods']} methods' mean drops "
            f"at their tuned budgets {power['spread_methods_sd']:.4f}; median s.e. below a quarter of it: "
            f"{'yes' if power['met'] else 'no'}.",
        ]
    lines += ["", "### 4. Rank agreement (Spearman ρ over every run × rung × concept)", ""]
    lines += [
        "Pooled over (run, concept) pairs and the mean of the per-concept ρ; *all* includes the endpoints "
        "(base, copy and the rendered controls), *runs* leaves them out, *runs, no zeros* also leaves out "
        "the runs whose value is exactly 0 by construction (counted in *zeros*, never ranked).",
        "",
    ]
    rank = []
    for a in agreement(study["runs"]):
        w = a["ways"]
        cells = []
        for part in ("all", "no_endpoints", "no_endpoints_no_zeros"):
            cells += [_f(w[part]["pooled"], 2), _f(w[part]["within"], 2), str(w[part]["n"])]
        rank.append([a["metric"], a["what"], a["expected"], *cells, str(w["zeros"])])
    lines += table_lines(
        [
            "metric",
            "oracle counterpart",
            "sign",
            "all: pooled",
            "all: within",
            "n",
            "runs: pooled",
            "runs: within",
            "n",
            "runs, no zeros: pooled",
            "runs, no zeros: within",
            "n",
            "zeros",
        ],
        rank,
    )
    lines += [
        "",
        "Concept-specific measures vs oracle identity among runs (not endpoints) that do not collapse — "
        "learning alone must not move them: "
        + "; ".join(
            f"{m} ρ {_f(i['rho'], 2)} over {i['n']} runs with training-background share 0, "
            f"{_f(i['rho_margin'], 2)} over {i['n_margin']} within one image of the base model's share"
            for m in ("leakage", "heldout_gap", "layout", "mmd_base", "w2", "collapse")
            for i in [learning_independence(study["runs"], m)]
        )
        + ".",
        "",
        "Partial ρ of each concept-specific measure with its oracle share given the oracle's identity, runs "
        "only (learning cannot fake it: high): "
        + "; ".join(
            f"{c['metric']} with {c['share']} {_f(c['partial_rho'], 2)} (n {c['n']})"
            for c in collapse_given_identity(study["runs"])
        )
        + ".",
        "",
        "Partial ρ with the training-background share given the oracle's identity, runs only (a fidelity "
        "that copying cannot raise: near 0): "
        + "; ".join(
            f"{c['metric']} {_f(c['partial_rho'], 2)} (n {c['n']})"
            for c in context_independence(study["runs"])
        )
        + ".",
    ]
    lines += _population_section(study["runs"])
    lines += _control_section(study["runs"])
    ladder = ladder_labels(study)
    lines += [
        "",
        f"### 6. The over-training ladder ({', '.join(ladder)}: one training run, its rungs)",
        "",
    ]
    lad_rows = []
    for key, part in (
        ("train_background", "oracle"),
        ("identity", "oracle"),
        ("leakage", "metrics"),
        ("heldout_gap", "metrics"),
        ("layout", "metrics"),
        ("mmd_base", "metrics"),
        ("w2", "metrics"),
        ("collapse", "metrics"),
        ("subject_dino", "metrics"),
    ):
        mono = ladder_monotone(study["runs"], ladder, key, part)
        means = [_f(_avg(_by_label(study["runs"]).get(lab, []), part, key)) for lab in ladder]
        name = f"oracle: {key}" if part == "oracle" else key
        lad_rows.append([name, *means, f"{len(mono['non_decreasing'])}/{mono['concepts']}"])
    lines += table_lines(["measure", *ladder, "non-decreasing on"], lad_rows)
    lines += [
        "",
        "Per-run numbers: `docs/validity/validity.json`. Figure: `docs/validity/w2_vs_oracle.svg`.",
        "",
    ]
    return "\n".join(lines)


def ladder_labels(study: Mapping[str, Any]) -> list[str]:
    """The over-training ladder's labels, ×1 to ×factor."""
    method, factor = study["study_method"], study["factor"]
    return [f"{method} ladder ×{factor * r:g}" for r in LADDER[:-1]] + [f"{method} ×{factor}"]


def ladder_monotone(
    runs: Sequence[Mapping[str, Any]], labels: Sequence[str], key: str, part: str = "metrics"
) -> dict[str, Any]:
    """Concepts on which ``key`` never decreases along the ladder ``labels`` (every rung present)."""
    by: dict[str, dict[str, float]] = defaultdict(dict)
    for r in runs:
        if r["label"] in labels and key in r[part]:
            by[r["concept"]][r["label"]] = float(r[part][key])
    complete = {c: [v[lab] for lab in labels] for c, v in by.items() if all(lab in v for lab in labels)}
    ok = sorted(c for c, vals in complete.items() if all(b >= a for a, b in itertools.pairwise(vals)))
    return {"concepts": len(complete), "non_decreasing": ok}


CONTROL_METRICS = (
    "subject_dino",
    "subject_clip_i",
    "clip_i",
    "dino",
    "clip_t",
    "w2",
    "mmd_base",
    "leakage",
    "heldout_gap",
    "layout",
    "collapse",
)
# The concept-specific overfitting measures read against issue 23's control targets.
COLLAPSE_MEASURES = ("w2", "mmd_base", "leakage", "heldout_gap", "layout", "collapse")


def tuned_only(runs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The runs the study read until 2026-12-07: the main run at its tuned budget and the base model, the
    ladder, the copy and the rendered controls (every entry whose ``rung`` is in :data:`TUNED_RUNGS`)."""
    return [r for r in runs if r.get("rung") in TUNED_RUNGS]


def population_targets(runs: Sequence[Mapping[str, Any]]) -> list[tuple[str, float, int]]:
    """Issue 22's and 23's rank targets over ``runs`` (runs only: no endpoints), as ``(what, value, n)``."""
    from benchmark.toy.agreement import agreement_row

    out: list[tuple[str, float, int]] = []
    for metric in ("heldout_gap", "leakage"):
        row = agreement_row(runs, metric, _oracle_reader(runs, "train_background"))["no_endpoints"]
        out.append((f"{metric}: ρ with training-background share, pooled (≥ 0.8)", row["pooled"], row["n"]))
        out.append((f"{metric}: ρ with training-background share, within (≥ 0.7)", row["within"], row["n"]))
        part = next(c for c in collapse_given_identity(runs) if c["metric"] == metric)
        out.append((f"{metric}: partial ρ given identity (≥ 0.7)", part["partial_rho"], part["n"]))
        ind = learning_independence(runs, metric)
        out.append((f"{metric}: ρ with identity at share 0 (|ρ| ≤ 0.2)", ind["rho"], ind["n"]))
    for metric in ("subject_dino", "subject_clip_i"):
        row = agreement_row(runs, metric, _oracle_reader(runs, "identity"))["no_endpoints"]
        out.append((f"{metric}: ρ with identity, pooled (≥ 0.8)", row["pooled"], row["n"]))
        out.append((f"{metric}: ρ with identity, within", row["within"], row["n"]))
        part = next(c for c in context_independence(runs) if c["metric"] == metric)
        out.append(
            (
                f"{metric}: partial ρ with training-background share given identity (≤ 0.2)",
                part["partial_rho"],
                part["n"],
            )
        )
    row = agreement_row(runs, "lfd", _oracle_reader(runs, "nonconcept_drop"))
    for key in ("no_endpoints", "no_endpoints_no_zeros"):
        for way in ("pooled", "within"):
            what = "runs" if key == "no_endpoints" else "runs, no zeros"
            out.append(
                (f"lfd: ρ with the non-concept accuracy drop, {what}, {way}", row[key][way], row[key]["n"])
            )
    return out


def _population_section(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Issue 22's and 23's rank targets over every rung of the main run and over its tuned budget only."""
    from leaderboard.markdown import table_lines

    every, tuned = population_targets(runs), population_targets(tuned_only(runs))
    lines = [
        "",
        "### 4b. The rank targets over every rung and over the tuned budget only",
        "",
        "Runs only (the endpoints — base, copy, rendered controls — left out; n counts (run, concept) pairs). "
        "*Every rung*: every rung of the main run for every trainable method (the default run's ¼, ½, 1, 2×) "
        "and the DreamBooth ladder, the population of the tables above. *Tuned budget only*: the main run's "
        "rung 1 and the ladder, the population this study read until 2026-12-07.",
        "",
    ]
    rows = [
        [what, _f(a, 2), str(n_a), _f(b, 2), str(n_b)]
        for (what, a, n_a), (_, b, n_b) in zip(every, tuned, strict=True)
    ]
    return lines + table_lines(["target", "every rung", "n", "tuned budget only", "n"], rows)


def _control_section(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every metric on the rendered 2 × 2 controls, mean over concepts, and the fidelity targets."""
    from benchmark.toy.agreement import CONTROLS, collapse_targets, control_table, fidelity_targets
    from leaderboard.markdown import table_lines

    table = control_table(runs, CONTROL_METRICS)
    if not table:
        return []
    lines = [
        "",
        "### 5. The rendered controls (learned × collapsed), mean over concepts",
        "",
        "*ideal*: the concept as each prompt asks (learned, not collapsed); *copy*: the training images "
        "(learned, collapsed); *context-only*: the class noun's plain object on the training images' "
        "backgrounds and positions (collapsed, not learned); *base*: the base model (neither).",
        "",
    ]
    rows = []
    for metric, per in table.items():
        means = [_mean([v[c] for v in per.values() if c in v]) for c in CONTROLS]
        cells = [_f(m) for m in means]
        if metric in CONTEXT_FREE:
            t = fidelity_targets(per)
            verdict = (
                f"ideal ≥ 0.8 × copy on {len(t['ideal_ok'])}/{t['concepts']}; "
                f"context-only ≤ base + 0.1 × (copy − base) on {len(t['context_ok'])}/{t['concepts']}"
            )
        elif metric in COLLAPSE_MEASURES:
            t = collapse_targets(per)
            verdict = (
                f"context-only ≥ 0.7 × copy on {len(t['context_ok'])}/{t['concepts']}; ideal ≤ 0.1 × copy on "
                f"{len(t['ideal_ok'])}/{t['concepts']}; base ≤ 0.1 × copy on {len(t['base_ok'])}/{t['concepts']}; "
                f"all three on {len(t['all_ok'])}/{t['concepts']}"
            )
        else:
            verdict = ""
        rows.append([metric, *cells, verdict])
    lines += table_lines(["metric", *CONTROLS, "targets (per concept)"], rows)
    return lines


def w2_figure(study: Mapping[str, Any]) -> str:
    """An SVG scatter of W2 against the oracle's training-background share, one point per run × concept."""
    pts = [
        (float(r["metrics"]["w2"]), float(r["oracle"]["train_background"]), r["label"])
        for r in study["runs"]
        if "w2" in r["metrics"]
    ]
    labels = sorted({p[2] for p in pts})
    palette = [
        "#1f77b4",
        "#ff7f0e",
        "#2ca02c",
        "#d62728",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#7f7f7f",
        "#bcbd22",
        "#17becf",
    ]
    colour = {lab: palette[i % len(palette)] for i, lab in enumerate(labels)}
    from leaderboard.svg import Axes, AxesStyle, draw_axes

    w, h, left, bottom, top, right = 640, 400, 60, 50, 20, 170
    xmax = max((p[0] for p in pts), default=1.0) * 1.05 or 1.0
    ax = Axes(left, top, w - left - right, h - bottom - top, 0.0, xmax, 0.0, 1.0)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
    ]
    out += draw_axes(
        ax,
        [(xmax * t / 5, f"{xmax * t / 5:.2f}") for t in range(6)],
        [(t / 5, f"{t / 5:.1f}") for t in range(6)],
        "W2 (clip-slot features, vs base)",
        "oracle: share on a training background",
        title_y=h - 12,
        style=AxesStyle(frame=None, spines='stroke="black"', grid=None, tick="", title=""),
    )
    for x, y, lab in pts:
        out.append(
            f'<circle cx="{ax.px(x):.1f}" cy="{ax.py(y):.1f}" r="4" fill="{colour[lab]}" fill-opacity="0.8"/>'
        )
    for i, lab in enumerate(labels):
        yy = top + 16 * i + 8
        out.append(f'<circle cx="{w - right + 16}" cy="{yy}" r="4" fill="{colour[lab]}"/>')
        out.append(f'<text x="{w - right + 26}" y="{yy + 4}">{lab}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_outputs(study: Mapping[str, Any], doc: Path, command: str) -> None:
    """Write ``validity.json`` and the figure next to ``doc`` and refresh the tables inside ``doc``.

    Raises:
        ValueError: ``doc`` exists but lacks the begin/end markers.
    """
    folder = doc.parent / "validity"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "validity.json").write_text(
        json.dumps(study, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    (folder / "w2_vs_oracle.svg").write_text(w2_figure(study), encoding="utf-8")
    block = f"{BEGIN}\n{render_report(study, command)}{END}"
    if doc.exists():
        text = doc.read_text(encoding="utf-8")
        if BEGIN not in text or END not in text:
            raise ValueError(f"{doc}: missing the markers {BEGIN} / {END}")
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        doc.write_text(head + block + tail, encoding="utf-8")
    else:
        doc.write_text(f"# Validity of the toy suite\n\n{block}\n", encoding="utf-8")


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
