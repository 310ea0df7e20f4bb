"""``python -m benchmark.toy.ruler_choice --candidate DIR --out OUT``: the shipped SSL ruler against a
retrained one, scored on the tuning concepts' controls, and the choice by the rule committed first
(docs/DECISIONS.md, 2026-12-08, "a longer-trained SSL ruler, chosen on the tuning concepts").

Each ruler fills the suite's DINO slot in turn; everything else is the suite's profile. A ruler's score is
the smaller of ``subject_dino@1``'s and ``leakage@2``'s control scores on the two tuning concepts, both
exactly as :mod:`benchmark.toy.mask_variants` defines them (issue 22's and issue 23's control targets as
margins). Only the tuning suite's four rendered controls are read: no evaluated concept, no method's run,
no row.

The written record (``OUT/ruler_choice.json``; the committed one is ``docs/validity/ruler_choice.json``)
also holds, for information only, the candidate's training record (steps, wall time, loss curve) and both
rulers' linear probes (:mod:`benchmark.toy.ruler_probe`; the shipped ruler's from its committed
``probe.json``). Neither enters the choice.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SUITE = "toy-tuning"
SHIPPED = "shipped"
CANDIDATE = "candidate"


def with_dino(settings: Any, weights: str) -> Any:
    """``settings`` with the DINO slot's weights replaced (a checkpoint path, or ``"toy"``: the shipped)."""
    import dataclasses

    extractors = dict(settings.extractors)
    extractors["dino"] = dataclasses.replace(extractors["dino"], weights=weights)
    return settings.replace(extractors=extractors)


def ruler_table(ctx: Any, root: Path) -> dict[str, dict[str, dict[str, float]]]:
    """``subject_dino@1`` and ``leakage@2`` on every control of every concept of ``ctx``'s suite."""
    from benchmark.toy.controls import CONTROLS
    from benchmark.toy.mask_variants import (
        LeakageCandidate,
        SubjectCandidate,
        control_sets,
        leakage_value,
        subject_value,
    )

    leakage2 = LeakageCandidate(1 / 16, True, "dino")
    subject1 = SubjectCandidate(0.0)
    sets = control_sets(ctx, list(ctx.suite.concepts), root)
    return {
        "subject_dino": {
            cid: {ctl: subject_value(s, f"control:{ctl}", subject1) for ctl in CONTROLS}
            for cid, s in sets.items()
        },
        "leakage": {
            cid: {ctl: leakage_value(s, f"control:{ctl}", leakage2) for ctl in CONTROLS}
            for cid, s in sets.items()
        },
    }


def ruler_score(table: Mapping[str, Mapping[str, Mapping[str, float]]]) -> dict[str, float]:
    """The two control scores and the rule's score (their minimum)."""
    from benchmark.toy.mask_variants import leakage_score, subject_score

    subject = subject_score(table["subject_dino"])
    leakage = leakage_score(table["leakage"])
    return {"subject_dino": subject, "leakage": leakage, "score": min(subject, leakage)}


def choose(scores: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """The rule: the candidate replaces the shipped ruler only with a strictly higher score."""
    adopt = scores[CANDIDATE]["score"] > scores[SHIPPED]["score"]
    return {"adopt": bool(adopt), "winner": CANDIDATE if adopt else SHIPPED}


def training_summary(folder: Path) -> dict[str, Any] | None:
    """The parts of a ruler run's ``training_record.json`` worth keeping beside the choice (None: no record)."""
    path = folder / "training_record.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    keep = ("name", "seed", "steps_done", "total_steps", "wall_s", "torch_threads", "n_params", "config")
    return {**{k: record[k] for k in keep if k in record}, "loss_curve": record.get("loss_curve", [])}


def probes(candidate: Path) -> dict[str, Any]:
    """The linear probes of the shipped ``toy-ssl`` (from the committed probe file) and of the candidate."""
    from benchmark.toy.ruler_probe import PROBE_FILE, probe
    from benchmark.toy.rulers import load_ruler

    shipped = json.loads(PROBE_FILE.read_text(encoding="utf-8"))["rulers"]["toy-ssl"]
    return {SHIPPED: shipped, CANDIDATE: probe(load_ruler("dino", "toy-ssl", candidate))}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.toy.ruler_choice", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--candidate", type=Path, required=True, help="the retrained ruler's folder")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=None)
    args = parser.parse_args(argv)
    from benchmark.jobs import job_context
    from benchmark.jobspec import JobSpec
    from benchmark.paths import cache_dir
    from benchmark.settings import settings_for

    if not (args.candidate / "ruler_checkpoint.pt").is_file():
        print(f"error: {args.candidate} has no ruler_checkpoint.pt; train one first", file=sys.stderr)
        return 2
    result: dict[str, Any] = {"suite": SUITE, "candidate": str(args.candidate), "tables": {}, "scores": {}}
    for which, weights in ((SHIPPED, "toy"), (CANDIDATE, str(args.candidate.resolve()))):
        spec = JobSpec(
            suite=SUITE,
            settings=with_dino(settings_for(SUITE), weights),
            cache=cache_dir(args.cache),
            run_dir=args.out / which / "run",
        )
        ctx = job_context(spec)
        table = ruler_table(ctx, args.out / which / "controls")
        result["tables"][which] = table
        result["scores"][which] = ruler_score(table)
    result["choice"] = choose(result["scores"])
    result["candidate_training"] = training_summary(args.candidate)
    result["probes"] = probes(args.candidate)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ruler_choice.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({"scores": result["scores"], "choice": result["choice"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
