"""The toy suite's headline fidelity levels, fixed by a rule that reads no method's rows.

The headline (:mod:`leaderboard.trajectory`) reads every overfitting measure at fixed levels of the
suite's fidelity axis (``subject_dino``). On the toy suite the levels come from two rendered ground-truth
references, never from a method: the **base** control (the base model's own images: where every method
starts) and the **ideal** control (the concept rendered exactly as each prompt asks: what perfect
learning would show, :mod:`benchmark.toy.controls`). Level *k* is the fraction ``FRACTIONS[k]`` of the way
from the base control's mean fidelity over the suite's concepts to the ideal control's::

    level_k = base + f_k · (ideal − base),   f = ¼, ½, ¾

rounded to :data:`DIGITS` decimals. The levels are written into the suite profile
(``headline_levels``) by ``python -m benchmark.toy.levels --write`` in a commit that precedes the rows
they are applied to; a test recomputes them from the committed validity study's control rows.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

FRACTIONS: tuple[float, ...] = (0.25, 0.5, 0.75)
DIGITS = 3
FIDELITY = "subject_dino"
BASE, IDEAL = "control:base", "control:ideal"
ROOT = Path(__file__).resolve().parents[2]
VALIDITY_JSON = ROOT / "docs" / "validity" / "validity.json"
RULE = (
    f"{FIDELITY} levels 1/4, 1/2 and 3/4 of the way from the base control's mean (the base model's own images) to "
    "the ideal control's mean (the concept rendered as each prompt asks) over the suite's concepts; from "
    "the control rows only, never a method's (python -m benchmark.toy.levels)"
)


class LevelsError(ValueError):
    """The control rows cannot give the levels (a control or concept missing)."""


def control_means(
    rows: Iterable[Mapping[str, Any]], concepts: Sequence[str] | None = None
) -> dict[str, float]:
    """Mean ``FIDELITY`` over concepts of the base and ideal controls from rows with ``method``/``label``,
    ``concept`` and ``metric``/``value`` (a controls.jsonl) or ``metrics`` (the validity study's runs).

    Raises:
        LevelsError: a control has no value for a concept (or none at all).
    """
    values: dict[str, dict[str, float]] = {BASE: {}, IDEAL: {}}
    for r in rows:
        who = r.get("method", r.get("label"))
        if who not in values:
            continue
        if "metrics" in r:
            value = r["metrics"].get(FIDELITY)
        else:
            value = r["value"] if r.get("metric") == FIDELITY else None
        if value is not None:
            values[who][str(r["concept"])] = float(value)
    out = {}
    for who, per in values.items():
        wanted = list(concepts) if concepts is not None else sorted(per)
        missing = [c for c in wanted if c not in per]
        if not wanted or missing:
            raise LevelsError(
                f"{who} has no {FIDELITY} for {missing or 'any concept'}; run python -m benchmark.toy.controls first"
            )
        out[who] = sum(per[c] for c in wanted) / len(wanted)
    return out


def levels_from_means(base: float, ideal: float) -> tuple[float, ...]:
    """The rule: ``round(base + f · (ideal − base), DIGITS)`` for each fraction f."""
    return tuple(round(base + f * (ideal - base), DIGITS) for f in FRACTIONS)


def levels_from_rows(
    rows: Iterable[Mapping[str, Any]], concepts: Sequence[str] | None = None
) -> tuple[float, ...]:
    means = control_means(rows, concepts)
    return levels_from_means(means[BASE], means[IDEAL])


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Control rows from a controls.jsonl or a validity.json (its ``runs``)."""
    if path.suffix == ".json":
        return list(json.loads(path.read_text())["runs"])
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_profile(levels: Sequence[float], profile: Path) -> None:
    """Set ``headline_levels`` and ``headline_levels_rule`` in a profile file (other fields kept in order)."""
    from benchmark.io import atomic_write_text

    data = json.loads(profile.read_text())
    data["headline_levels"] = list(levels)
    data["headline_levels_rule"] = RULE
    atomic_write_text(profile, json.dumps(data, indent=2) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.toy.levels",
        description="The toy suite's headline fidelity levels from its base and ideal controls (no method rows).",
    )
    parser.add_argument(
        "--rows",
        type=Path,
        default=VALIDITY_JSON,
        help="a controls.jsonl (python -m benchmark.toy.controls) or a validity.json (default: the committed study)",
    )
    parser.add_argument("--write", action="store_true", help="write the levels into the toy profile")
    args = parser.parse_args(argv)
    from benchmark.suites import load_suite, select_concepts

    concepts = [c.id for c in select_concepts(load_suite("toy"), None)]
    try:
        means = control_means(read_rows(args.rows), concepts)
    except (LevelsError, OSError, KeyError, json.JSONDecodeError) as err:
        raise SystemExit(f"python -m benchmark.toy.levels: error: {err}") from None
    levels = levels_from_means(means[BASE], means[IDEAL])
    print(
        f"base control {means[BASE]:.4f}, ideal control {means[IDEAL]:.4f} ({FIDELITY}, {len(concepts)} concepts)"
    )
    print("levels " + ", ".join(f"{f:g}: {v:.{DIGITS}f}" for f, v in zip(FRACTIONS, levels, strict=True)))
    if args.write:
        profile = ROOT / "data_manifests" / "profiles" / "toy.json"
        write_profile(levels, profile)
        print(f"written to {profile.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
