"""Which held-out views ``heldout_gap`` reads on the toy suite: ``toy-heldout@1`` (the concept on other
backgrounds and at other positions) or ``toy-heldout@2`` (the same views at the training position), chosen
on the tuning concepts only by the rule docs/DECISIONS.md committed (2026-12-08) before it was computed.

The evidence and the score are the column rule's (:mod:`benchmark.toy.column_choice`): the four rendered
controls of both tuning concepts and the 60 tuning runs, each read by the oracle (which grades, never
measures), and issue 23's eight targets (:func:`benchmark.toy.column_choice.score`). Each run's gap is
computed twice through the same metric stage, once per views loader (the suite's ``heldout_views``); the
candidate replaces the current views only with a strictly higher score.

Command line (images and the partial results under ``--work``; a killed run resumes)::

    python -m benchmark.toy.heldout_choice --out docs/validity   # heldout_choice.{json,md}
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

METRIC_ID = "heldout_gap@1"
CURRENT = "heldout_gap"
CANDIDATE = "heldout_gap_at_training_position"
# scored key -> the suite's heldout_views loader; the first keeps a tie
LOADERS: dict[str, str] = {
    CURRENT: "benchmark.toy.heldout:heldout_views",
    CANDIDATE: "benchmark.toy.heldout:heldout_views_at_training_position",
}
LABELS: dict[str, str] = {
    CURRENT: "heldout_gap, toy-heldout@1 views",
    CANDIDATE: "heldout_gap, toy-heldout@2 views (training position)",
}
RUNS_FILE = "heldout_choice_runs.json"
COMMAND = "python -m benchmark.toy.heldout_choice --out docs/validity"
TITLE = "Which held-out views heldout_gap reads on the toy suite"
RULE = "docs/DECISIONS.md, 2026-12-08"


def with_views(ctx: Any, loader: str) -> Any:
    """``ctx`` scoring only ``heldout_gap`` with the held-out views of ``loader``."""
    return dataclasses.replace(ctx, settings=ctx.settings.replace(metrics=(METRIC_ID,), heldout_views=loader))


def gap_values(ctx: Any, concept: Any, files: Sequence[Path], source: str) -> dict[str, float]:
    """A run's gap under each views loader (keys of :data:`LOADERS`)."""
    from benchmark.scoring import ImageInputs, evaluate

    out: dict[str, float] = {}
    for key, loader in LOADERS.items():
        sub = with_views(ctx, loader)
        got = [float(v.value) for spec, v in evaluate(sub, ImageInputs(sub, concept, files, source))]
        if len(got) != 1:
            raise ValueError(
                f"heldout_choice: expected one {METRIC_ID} value for {concept.id}, got {len(got)}"
            )
        out[key] = got[0]
    return out


def choose(scores: Mapping[str, int]) -> str:
    """The rule: the candidate only with a strictly higher score than the current views."""
    return CANDIDATE if scores[CANDIDATE] > scores[CURRENT] else CURRENT


def analyse(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Both views scored by the column rule's eight targets, and the rule's choice."""
    from benchmark.toy.column_choice import score

    scored = {key: score(runs, key) for key in LOADERS}
    return {
        "candidates": dict(LABELS),
        "loaders": dict(LOADERS),
        "n_tuning_runs": sum(1 for r in runs if "method" in r),
        "scores": scored,
        "chosen": choose({k: int(v["score"]) for k, v in scored.items()}),
    }


def main(argv: Sequence[str] | None = None) -> int:
    from benchmark.toy.column_choice import render, rule_main

    return rule_main(
        argv,
        name="heldout_choice",
        description=__doc__.split("\n")[0],
        analyse_runs=analyse,
        render_result=lambda result: render(result, COMMAND, title=TITLE, rule=RULE),
        values=gap_values,
        runs_file=RUNS_FILE,
    )


if __name__ == "__main__":
    sys.exit(main())
