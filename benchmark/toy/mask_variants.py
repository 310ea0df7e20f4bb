"""``python -m benchmark.toy.mask_variants``: the candidates for leakage's context and subject fidelity's
crop, scored on the toy controls, and the choice by the rule committed first (docs/DECISIONS.md,
2026-12-07, "how leakage's context and subject fidelity's crop are chosen").

Every candidate reads each image through its *own* cached noise-difference mask (the masks
``leakage@1`` and ``subject_dino@1`` use; nothing is recomputed but the features) and changes only what is
painted grey before the suite's ruler embeds the image:

- leakage: the mask grown by ``growth`` × the side, or that grown mask's bounding box, painted grey;
  features from the CLIP slot or the DINO slot; then :func:`metrics.leakage.leakage_metric` unchanged.
- subject fidelity: the mask first shrunk by ``shrink`` × the side, then
  :func:`benchmark.masks.subject_crop`; DINO-slot features; then the mean cosine to the reference crops
  (``subject_dino``'s definition).

``--suite toy-tuning`` (the default) applies the rule and writes ``OUT/mask_variants.json``; ``--suite toy
--choice T/mask_variants.json`` scores the evaluated concepts' controls and every run of the committed
validity study with the current recipe and the tuning phase's winner, for the report only (never used by
the choice), and writes ``OUT/mask_variants.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LeakageCandidate:
    growth: float
    box: bool
    slot: str  # "clip" or "dino"

    @property
    def name(self) -> str:
        return f"grow {self.growth:g}, {'box' if self.box else 'mask'}, {self.slot}"


@dataclass(frozen=True)
class SubjectCandidate:
    shrink: float

    @property
    def name(self) -> str:
        return f"shrink {self.shrink:g}"


CURRENT_LEAKAGE = LeakageCandidate(1 / 16, False, "clip")
# in tie-break order: the current first, then the smaller change
LEAKAGE_CANDIDATES: tuple[LeakageCandidate, ...] = tuple(
    LeakageCandidate(g, box, slot)
    for slot in ("clip", "dino")
    for g in (1 / 16, 1 / 8, 1 / 4)
    for box in (False, True)
)
SUBJECT_CANDIDATES: tuple[SubjectCandidate, ...] = (
    SubjectCandidate(0.0),
    SubjectCandidate(1 / 32),
    SubjectCandidate(1 / 16),
)


def shrink(masks: np.ndarray, amount: float) -> np.ndarray:
    """Masks eroded by ``amount`` × the side (a square structuring element); a mask that would vanish is
    kept as it was (the crop then still finds its subject)."""
    from benchmark.masks import dilate

    if amount <= 0:
        return masks
    eroded = ~dilate(~np.asarray(masks, dtype=bool), amount)
    keep = np.asarray(eroded.reshape(len(eroded), -1).any(axis=1), dtype=bool)
    return np.asarray(np.where(keep[:, None, None], eroded, masks), dtype=bool)


class Sets:
    """The image sets of one concept with their own masks (from the cache) and features per variant."""

    def __init__(self, ctx: Any, concept: Any) -> None:
        self.ctx, self.concept = ctx, concept
        self._masks: dict[str, tuple[list[Path], np.ndarray]] = {}
        # features per (label, candidate): the reference and base sets are read once, not once per run
        self._features: dict[tuple[str, Any], np.ndarray] = {}

    def add(self, label: str, files: Sequence[Path] | None, source: str | None) -> None:
        """``label``'s images and their own masks; ``files`` None: the reference photos or base_alt."""
        from benchmark.scoring import ImageInputs

        inputs = ImageInputs(self.ctx, self.concept, list(files or []), source or "none")
        which = label if files is None else "generated"
        got_files, _, (path, _) = inputs._own_masked(which)
        self._masks[label] = (list(got_files), np.load(path / "masks.npy"))

    def context(self, label: str, cand: LeakageCandidate) -> np.ndarray:
        if (label, cand) not in self._features:
            self._features[(label, cand)] = self._context(label, cand)
        return self._features[(label, cand)]

    def subject(self, label: str, cand: SubjectCandidate) -> np.ndarray:
        if (label, cand) not in self._features:
            self._features[(label, cand)] = self._subject(label, cand)
        return self._features[(label, cand)]

    def _context(self, label: str, cand: LeakageCandidate) -> np.ndarray:
        from benchmark.io import open_rgb
        from benchmark.masks import blank, bounding_boxes, dilate
        from metrics.backbones import extract_image_features

        files, masks = self._masks[label]
        grown = dilate(masks, cand.growth)
        if cand.box:
            grown = bounding_boxes(grown)
        pil = [blank(open_rgb(p), m) for p, m in zip(files, grown, strict=True)]
        spec = self.ctx.settings.extractor(cand.slot)
        return extract_image_features(self.ctx.backbone(spec), pil, device=self.ctx.device).double().numpy()

    def _subject(self, label: str, cand: SubjectCandidate) -> np.ndarray:
        from benchmark.io import open_rgb
        from benchmark.masks import subject_crop
        from metrics.backbones import extract_image_features

        files, masks = self._masks[label]
        size = self.ctx.settings.resolution
        pil = [
            subject_crop(open_rgb(p), m, size) for p, m in zip(files, shrink(masks, cand.shrink), strict=True)
        ]
        spec = self.ctx.settings.extractor("dino")
        return extract_image_features(self.ctx.backbone(spec), pil, device=self.ctx.device).double().numpy()


def leakage_value(sets: Sets, label: str, cand: LeakageCandidate) -> float:
    from metrics.leakage import leakage_metric

    return float(
        leakage_metric(
            sets.context(label, cand), sets.context("reference", cand), sets.context("base_alt", cand)
        ).value
    )


def subject_value(sets: Sets, label: str, cand: SubjectCandidate) -> float:
    from metrics.similarity import subject_similarity_metric

    return float(subject_similarity_metric(sets.subject(label, cand), sets.subject("reference", cand)).value)


def control_sets(ctx: Any, concepts: Sequence[Any], root: Path) -> dict[str, Sets]:
    """Write the four controls under ``root`` and register them (with the reference photos and the base
    model's disjoint-seed images) per concept."""
    from benchmark.image_scoring import check_folder
    from benchmark.scoring import files_digest
    from benchmark.toy.controls import CONTROLS, write_controls

    out = {c.id: Sets(ctx, c) for c in concepts}
    for control, folder in write_controls(ctx, concepts, root, CONTROLS).items():
        files = check_folder(ctx, folder, list(concepts))
        for c in concepts:
            out[c.id].add(f"control:{control}", files[c.id], "folder:" + files_digest(files[c.id])[:24])
    for c in concepts:
        out[c.id].add("reference", None, None)
        out[c.id].add("base_alt", None, None)
    return out


def control_table(sets: Mapping[str, Sets]) -> dict[str, Any]:
    """Every candidate's value on every control of every concept."""
    from benchmark.toy.controls import CONTROLS

    table: dict[str, Any] = {"leakage": {}, "subject": {}}
    for cand in LEAKAGE_CANDIDATES:
        table["leakage"][cand.name] = {
            cid: {ctl: leakage_value(s, f"control:{ctl}", cand) for ctl in CONTROLS}
            for cid, s in sets.items()
        }
    for scand in SUBJECT_CANDIDATES:
        table["subject"][scand.name] = {
            cid: {ctl: subject_value(s, f"control:{ctl}", scand) for ctl in CONTROLS}
            for cid, s in sets.items()
        }
    return table


def leakage_score(per_concept: Mapping[str, Mapping[str, float]]) -> float:
    """The rule's score: the smallest control margin over concepts (issue 23's targets as margins)."""
    margins = []
    for v in per_concept.values():
        copy = v["copy"]
        if copy <= 0:
            return -np.inf
        margins += [v["context-only"] / copy - 0.7, 0.1 - v["ideal"] / copy, 0.1 - v["base"] / copy]
    return float(min(margins))


def subject_score(per_concept: Mapping[str, Mapping[str, float]]) -> float:
    """The rule's score: the smallest control margin over concepts (issue 22's targets as margins)."""
    margins = []
    for v in per_concept.values():
        margins += [
            v["ideal"] / v["copy"] - 0.8,
            v["base"] + 0.1 * (v["copy"] - v["base"]) - v["context-only"],
        ]
    return float(min(margins))


def choose(scores: Mapping[str, float], order: Sequence[str]) -> dict[str, Any]:
    """The rule: the highest score, ties to the earlier name in ``order`` (the current one first); a
    winner other than the current one is adopted only with a score above 0 and above the current's."""
    best = max(order, key=lambda n: (scores[n], -order.index(n)))
    current = order[0]
    adopt = best != current and scores[best] > 0 and scores[best] > scores[current]
    return {"best": best, "current": current, "adopt": bool(adopt), "scores": dict(scores)}


def over_context(ctx: Any, spec: Any) -> Any:
    """The validity study's over-trained DreamBooth context (its steps × the factor, the ladder's rungs)."""
    from baselines import load_method
    from benchmark.jobs import job_context
    from benchmark.stages import method_config
    from benchmark.toy.validity_design import LADDER, OVERTRAIN_FACTOR, STUDY_METHOD

    steps = int(method_config(ctx, load_method(STUDY_METHOD))["steps"])
    overrides = dict(ctx.settings.method_overrides)
    overrides[STUDY_METHOD] = {**overrides.get(STUDY_METHOD, {}), "steps": OVERTRAIN_FACTOR * steps}
    settings = ctx.settings.replace(method_overrides=overrides, rungs=LADDER)
    return job_context(spec.replace(settings=settings, run_dir=spec.run_dir / "validity-overtrained"))


def run_files(ctx: Any, over: Any, concept: Any, label: str) -> tuple[list[Path], str]:
    """The images (plan order) and source key of one validity-study run of the toy suite: a method at its
    tuned budget, the base model, the over-training ladder or the copy control."""
    from baselines import load_method
    from benchmark.scoring import files_digest, rung_steps
    from benchmark.stages import generate, generation_plan, image_files
    from benchmark.toy.validity_design import COPY, LADDER, OVERTRAIN_FACTOR, STUDY_METHOD

    plan = generation_plan(ctx, concept)
    if label == COPY:
        train = concept.images
        files = [Path(train[k % len(train)]) for k in range(len(plan))]
        return files, "folder:" + files_digest(files)[:24]
    if label.startswith(STUDY_METHOD + " ladder ×") or label == f"{STUDY_METHOD} ×{OVERTRAIN_FACTOR}":
        study = load_method(STUDY_METHOD)
        if label == f"{STUDY_METHOD} ×{OVERTRAIN_FACTOR}":
            handle = study
        else:
            rung = float(label.rsplit("×", 1)[1]) / OVERTRAIN_FACTOR
            rung = min(LADDER, key=lambda r: abs(r - rung))
            handle = study.with_steps(rung_steps(over, study, [rung])[rung])
        path, key = generate(over, handle, concept)
        return image_files(path, plan), key
    path, key = generate(ctx, load_method(label), concept)
    return image_files(path, plan), key


def evaluated_runs(
    ctx: Any, spec: Any, validity: Path, sets: Mapping[str, Sets], winner: LeakageCandidate
) -> list[dict[str, Any]]:
    """Every run of the committed validity study (its labels, not its numbers), re-read from this cache:
    the oracle's readout of its images and leakage by the current recipe and by ``winner``."""
    from benchmark.toy.assets import oracle_checkpoint
    from benchmark.toy.controls import oracle_readout
    from benchmark.toy.oracle import load_oracle
    from benchmark.toy.suite import concept_config

    oracle = load_oracle(oracle_checkpoint())
    labels = sorted({(r["label"], r["concept"]) for r in json.loads(validity.read_text())["runs"]})
    concepts = {c.id: c for c in ctx.suite.concepts}
    over = over_context(ctx, spec)
    runs = []
    for label, cid in labels:
        concept, group = concepts[cid], sets[cid]
        if not label.startswith("control:"):
            files, key = run_files(ctx, over, concept, label)
            group.add(label, files, key)
        files = group._masks[label][0]
        runs.append(
            {
                "label": label,
                "concept": cid,
                "tier": concept_config(ctx.suite, cid)["tier"],
                "oracle": oracle_readout(ctx, oracle, concept, files),
                "current": leakage_value(group, label, CURRENT_LEAKAGE),
                "winner": leakage_value(group, label, winner),
            }
        )
    return runs


def report(runs: Sequence[Mapping[str, Any]], which: str) -> dict[str, Any]:
    """The validity study's readings of leakage (:mod:`benchmark.toy.validity_report`) for ``which`` recipe."""
    from benchmark.toy.agreement import agreement_row, collapse_targets, control_table
    from benchmark.toy.validity_design import OVERTRAIN_FACTOR, STUDY_METHOD
    from benchmark.toy.validity_report import (
        _oracle_reader,
        collapse_given_identity,
        ladder_labels,
        ladder_monotone,
        learning_independence,
    )

    shaped = [{**r, "rung": None, "metrics": {"leakage": r[which]}} for r in runs]
    targets = collapse_targets(control_table(shaped, ["leakage"])["leakage"])
    ladder = ladder_monotone(
        shaped, ladder_labels({"study_method": STUDY_METHOD, "factor": OVERTRAIN_FACTOR}), "leakage"
    )
    partial = next(p for p in collapse_given_identity(shaped) if p["metric"] == "leakage")
    return {
        "agreement": agreement_row(shaped, "leakage", _oracle_reader(shaped, "train_background")),
        "controls": {k: (len(v) if isinstance(v, list) else v) for k, v in targets.items()},
        "partial_rho": partial["partial_rho"],
        "at_zero_share": learning_independence(shaped, "leakage"),
        "ladder": {"concepts": ladder["concepts"], "non_decreasing": len(ladder["non_decreasing"])},
    }


COMMAND = (
    "python -m benchmark.toy.mask_variants --out T && "
    "python -m benchmark.toy.mask_variants --suite toy --choice T/mask_variants.json --out E"
)


def _f(x: float) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{x:.3f}"


def render(tuning: Mapping[str, Any], evaluated: Mapping[str, Any] | None, command: str) -> str:
    """docs/validity/mask_variants.md: the rule's inputs and choice, then the evaluated concepts' report."""
    from benchmark.toy.controls import CONTROLS
    from leaderboard.markdown import table_lines

    lines = [
        "# Leakage's context and subject fidelity's crop: the candidates and the rule's choice",
        "",
        f"Generated by `{command}`. The rule (docs/DECISIONS.md, 2026-12-07) was committed before any "
        "candidate was computed and reads only the two tuning concepts' controls.",
        "",
        "## The rule's inputs: the tuning concepts (`toy-tuning`)",
        "",
    ]
    for part, choice_key in (("leakage", "leakage_choice"), ("subject", "subject_choice")):
        choice = tuning[choice_key]
        rows = []
        for name, per in tuning["controls"][part].items():
            cells = [" / ".join(_f(per[c][ctl]) for c in sorted(per)) for ctl in CONTROLS]
            rows.append([name, *cells, _f(choice["scores"][name])])
        lines += table_lines(
            ["candidate", *(f"{c} ({' / '.join(sorted(per))})" for c in CONTROLS), "score"], rows
        )
        verdict = (
            "the rule adopts it as a new metric version"
            if choice["adopt"]
            else "nothing is adopted (the current one stays)"
        )
        lines += ["", f"**{part}**: best `{choice['best']}`, current `{choice['current']}`: {verdict}.", ""]
    if evaluated is None:
        return "\n".join(lines) + "\n"
    lines += [
        "## The evaluated concepts (`toy`): reported, never used by the choice",
        "",
        f"Current recipe (`leakage@1`: `{CURRENT_LEAKAGE.name}`) against the rule's winner "
        f"(`{evaluated['winner']}`), on every run of the committed validity study re-read from this machine's "
        "cache (its images read again by the oracle) and on the four controls.",
        "",
    ]
    rows = []
    for which in ("current", "winner"):
        rep = evaluated["report"][which]
        a, c = rep["agreement"], rep["controls"]
        rows.append(
            [
                which,
                f"{c['context_ok']} / {c['ideal_ok']} / {c['base_ok']} (all three: {c['all_ok']}) of {c['concepts']}",
                f"{_f(a['no_endpoints']['pooled'])} / {_f(a['no_endpoints']['within'])} (n {a['no_endpoints']['n']})",
                f"{_f(a['all']['pooled'])} / {_f(a['all']['within'])} (n {a['all']['n']})",
                f"{_f(a['no_endpoints_no_zeros']['pooled'])} / {_f(a['no_endpoints_no_zeros']['within'])} "
                f"(n {a['no_endpoints_no_zeros']['n']})",
                _f(rep["partial_rho"]),
                f"{_f(rep['at_zero_share']['rho'])} (n {rep['at_zero_share']['n']})",
                f"{rep['ladder']['non_decreasing']} of {rep['ladder']['concepts']}",
            ]
        )
    lines += table_lines(
        [
            "recipe",
            "controls: context-only ≥ 0.7×copy / ideal ≤ 0.1×copy / base ≤ 0.1×copy",
            "ρ share, no endpoints: pooled / within",
            "ρ share, all runs",
            "ρ share, no endpoints, no exact zeros",
            "partial ρ given identity",
            "ρ with identity at share 0",
            "ladder ×1→×3 non-decreasing",
        ],
        rows,
    )
    lines += [
        "",
        "Targets (issue 23): controls 7 of 8; ρ ≥ 0.8 pooled and ≥ 0.7 within; partial ρ ≥ 0.7; "
        "|ρ| at share 0 ≤ 0.2; ladder 7 of 8.",
        "",
    ]
    per_concept: dict[str, dict[str, dict[str, float]]] = {}
    for r in evaluated["runs"]:
        if r["label"].startswith("control:"):
            per_concept.setdefault(r["concept"], {})[r["label"].removeprefix("control:")] = r
    rows = [
        [cid, *(f"{_f(v[ctl]['current'])} → {_f(v[ctl]['winner'])}" for ctl in CONTROLS)]
        for cid, v in sorted(per_concept.items())
    ]
    lines += ["Controls per concept, current → winner:", ""]
    lines += table_lines(["concept", *CONTROLS], rows)
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.toy.mask_variants", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--suite", default="toy-tuning")
    parser.add_argument(
        "--render", action="store_true", help="only re-render OUT/mask_variants.md from the JSON files"
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument(
        "--choice",
        type=Path,
        default=None,
        help="toy: the tuning phase's mask_variants.json (its winner is read)",
    )
    parser.add_argument(
        "--validity",
        type=Path,
        default=Path("docs/validity/validity.json"),
        help="toy: the study whose runs to re-read",
    )
    args = parser.parse_args(argv)
    from benchmark.jobs import job_context
    from benchmark.jobspec import JobSpec
    from benchmark.paths import cache_dir
    from benchmark.settings import settings_for

    if args.render:
        tuning = json.loads(args.choice.read_text())
        stored = json.loads((args.out / "mask_variants.json").read_text())
        (args.out / "mask_variants.md").write_text(render(tuning, stored, COMMAND))
        return 0
    spec = JobSpec(
        suite=args.suite,
        settings=settings_for(args.suite),
        cache=cache_dir(args.cache),
        run_dir=args.out / "run",
    )
    ctx = job_context(spec)
    sets = control_sets(ctx, list(ctx.suite.concepts), args.out / "controls")
    table = control_table(sets)
    result: dict[str, Any] = {"suite": args.suite, "controls": table}
    if args.suite == "toy-tuning":
        result["leakage_choice"] = choose(
            {n: leakage_score(v) for n, v in table["leakage"].items()}, [c.name for c in LEAKAGE_CANDIDATES]
        )
        result["subject_choice"] = choose(
            {n: subject_score(v) for n, v in table["subject"].items()}, [c.name for c in SUBJECT_CANDIDATES]
        )
    elif args.choice is not None:
        chosen = json.loads(args.choice.read_text())["leakage_choice"]["best"]
        winner = next(c for c in LEAKAGE_CANDIDATES if c.name == chosen)
        runs = evaluated_runs(ctx, spec, args.validity, sets, winner)
        result["winner"] = chosen
        result["runs"] = runs
        result["report"] = {"current": report(runs, "current"), "winner": report(runs, "winner")}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mask_variants.json").write_text(json.dumps(result, indent=1))
    if args.choice is not None:
        tuning = json.loads(args.choice.read_text())
        (args.out / "mask_variants.md").write_text(render(tuning, result, COMMAND))
    print(json.dumps({k: v for k, v in result.items() if k != "controls"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
