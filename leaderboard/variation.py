"""How far fresh rows legitimately move from the committed ones, and the tolerance rule built on it.

:func:`deviations` pairs each run's rows with the baseline and measures, per (suite, tier, metric), the
units the gate compares (:mod:`leaderboard.check`): fixed rows one by one, trained rows as the mean over
concepts of each (method, rung, metric). :func:`summarize` keeps each unit's largest deviation over all
runs; :func:`derive_tolerances` turns that into a tolerance file by the rule below (docs/DECISIONS.md):

    per (suite, tier, metric), with m = margin, d_i the largest measured |deviation| of unit i and v_i its
    baseline value, split at the median |v|:
        rtol = m · max d_i / |v_i| over the units above the median (0 when there are none)
        atol = m · max d_i over the units at or below it
    raised to the floors RTOL_FLOOR and ATOL_FLOOR, so every measured deviation times m passes: a small
    unit is covered by atol, a large one by rtol·|v| — small values (W2 near 0) vary relatively more.
    In the fixed tier the relative part is pooled: every metric gets the largest rtol of the tier's
    metrics. Its rows move only when a pixel of a base image rounds the other way, which moves whichever
    metric reads that image by a similar relative amount; which metric a kernel set happens to move is
    luck (clip_t moved 35 times more under avx2 than under default on the smoke suite), so per-metric
    rtols learned from one kernel set did not cover another (leave-one-kernel-set-out, docs/GATE.md).

Pure Python on result rows: no torch.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .check import TIERS, row_tier
from .rows import ResultRow

RTOL_FLOOR = 1e-6
"""The smallest relative tolerance the rule gives (float64 statistics of float32 features)."""
ATOL_FLOOR = 1e-9
"""The smallest absolute tolerance the rule gives."""
DEFAULT_MARGIN = 3.0


def _row_key(row: ResultRow) -> tuple[Any, ...]:
    return (row.suite, row.method, row.rung, row.concept, row.metric, row.metric_version, row.backbone)


def _group_key(row: ResultRow) -> tuple[Any, ...]:
    return (row.suite, row.method, row.rung, row.metric, row.metric_version, row.backbone)


def deviations(fresh: Iterable[ResultRow], baseline: Iterable[ResultRow]) -> list[dict[str, Any]]:
    """Every compared unit of ``fresh`` against ``baseline``: fixed rows one by one, trained rows as
    the mean over the concepts both have of each (method, rung, metric).

    Returns:
        Dicts with suite, tier, metric (``key@version``: a measurement never carries over to another
        version), unit (``method rung concept`` or ``method rung mean``), baseline, fresh and abs
        (|fresh - baseline|); a mean also has ``concepts``. Rows only one side has are left out (the gate reports them).
    """
    base = {_row_key(r): r for r in baseline}
    groups: dict[tuple[Any, ...], list[tuple[float, float]]] = defaultdict(list)
    out: list[dict[str, Any]] = []
    for row in fresh:
        b = base.get(_row_key(row))
        if b is None:
            continue
        rung = "" if row.rung is None else f" ×{row.rung:g}"
        if row_tier(b) == "fixed":
            out.append(
                {
                    "suite": row.suite,
                    "tier": "fixed",
                    "metric": f"{row.metric}@{row.metric_version}",
                    "unit": f"{row.method}{rung} {row.concept}",
                    "baseline": b.value,
                    "fresh": row.value,
                    "abs": abs(row.value - b.value),
                }
            )
        else:
            groups[_group_key(b)].append((row.value, b.value))
    for key, pairs in sorted(groups.items(), key=lambda kv: str(kv[0])):
        suite, method, rung, metric, version = key[:5]
        mean_f = math.fsum(p[0] for p in pairs) / len(pairs)
        mean_b = math.fsum(p[1] for p in pairs) / len(pairs)
        label = "" if rung is None else f" ×{rung:g}"
        out.append(
            {
                "suite": suite,
                "tier": "trained",
                "metric": f"{metric}@{version}",
                "unit": f"{method}{label} mean",
                "concepts": len(pairs),
                "baseline": mean_b,
                "fresh": mean_f,
                "abs": abs(mean_f - mean_b),
            }
        )
    return out


def summarize(runs: Mapping[str, Sequence[ResultRow]], baseline: Sequence[ResultRow]) -> dict[str, Any]:
    """The largest deviation of every unit over ``runs`` (name -> rows), per suite, tier and metric.

    Returns:
        ``{suite: {tier: {metric: {"units": [[baseline, max_abs, unit, run], ...], "max_abs": ..,
        "max_rel": .., "worst": {...}}}}}`` (max_rel over units with a nonzero baseline).
    """
    best: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for name, rows in runs.items():
        for dev in deviations(rows, baseline):
            key = (dev["suite"], dev["tier"], dev["metric"], dev["unit"])
            if key not in best or dev["abs"] > best[key]["abs"]:
                best[key] = {**dev, "run": name}
    out: dict[str, Any] = {}
    for (suite, tier, metric, _), dev in sorted(best.items()):
        entry = out.setdefault(suite, {}).setdefault(tier, {}).setdefault(metric, {"units": []})
        entry["units"].append([dev["baseline"], dev["abs"], dev["unit"], dev["run"]])
    for tiers in out.values():
        for metrics in tiers.values():
            for entry in metrics.values():
                _finish(entry)
    return out


def _finish(entry: dict[str, Any]) -> None:
    units = entry["units"]
    worst = max(units, key=lambda u: u[1])
    rel = [u[1] / abs(u[0]) for u in units if u[0] != 0]
    entry["max_abs"] = worst[1]
    entry["max_rel"] = max(rel, default=0.0)
    entry["worst"] = {"unit": worst[2], "run": worst[3], "baseline": worst[0], "abs": worst[1]}


def rebase(
    tiers: Mapping[str, Any], old: Sequence[ResultRow], new: Sequence[ResultRow], name: str
) -> dict[str, Any]:
    """One suite's measurement (``summarize(...)[suite]``) carried from committed rows ``old`` to ``new``
    when the committed rows are regenerated on another machine.

    The old committed rows are themselves a run of that other machine, measured against the new baseline
    (run ``name``). A run measured earlier deviated by d from the old baseline; from the new one it deviates
    by at most d + |old − new| (triangle inequality), and that bound is what each earlier unit keeps (run
    ``earlier+name``), with the new baseline value. Units only the new measurement has are added."""
    shift = {(d["tier"], d["metric"], d["unit"]): d for d in deviations(old, new)}
    out: dict[str, Any] = {}
    seen: set[tuple[str, str, str]] = set()
    for tier, metrics in tiers.items():
        for metric, entry in metrics.items():
            units = []
            for baseline, dev, unit, run in entry["units"]:
                s = shift.get((tier, metric, unit))
                if s is None:
                    units.append([baseline, dev, unit, run])
                    continue
                seen.add((tier, metric, unit))
                units.append([s["baseline"], dev + s["abs"], unit, f"{run}+{name}"])
            out.setdefault(tier, {})[metric] = {"units": units}
    for key, s in sorted(shift.items()):
        if key not in seen:
            tier, metric, unit = key
            entry = out.setdefault(tier, {}).setdefault(metric, {"units": []})
            entry["units"].append([s["baseline"], s["abs"], unit, name])
    for metrics in out.values():
        for entry in metrics.values():
            _finish(entry)
    return out


def merge(tiers: Mapping[str, Any], more: Mapping[str, Any]) -> dict[str, Any]:
    """One suite's measurement (``summarize(...)[suite]``) with another measurement of the same suite
    against the same committed rows (runs measured later, on another machine): per (tier, metric, unit)
    the larger deviation and the run it came from; units only one side has are kept."""
    best: dict[tuple[str, str, str], list[Any]] = {}
    for source in (tiers, more):
        for tier, metrics in source.items():
            for metric, entry in metrics.items():
                for baseline, dev, unit, run in entry["units"]:
                    key = (tier, metric, unit)
                    if key not in best or float(dev) > float(best[key][1]):
                        best[key] = [baseline, dev, unit, run]
    out: dict[str, Any] = {}
    for (tier, metric, _), unit in sorted(best.items()):
        out.setdefault(tier, {}).setdefault(metric, {"units": []})["units"].append(unit)
    for metrics in out.values():
        for entry in metrics.values():
            _finish(entry)
    return out


def tier_rule(units: Sequence[Sequence[Any]], margin: float) -> dict[str, float]:
    """rtol and atol for one (suite, tier, metric) from its units ``[baseline, max_abs, ...]`` (module rule)."""
    if not units:
        return {"rtol": RTOL_FLOOR, "atol": ATOL_FLOOR}
    med = statistics.median(abs(float(u[0])) for u in units)
    large = [u for u in units if abs(float(u[0])) > med]
    small = [u for u in units if abs(float(u[0])) <= med]
    rtol = margin * max((float(u[1]) / abs(float(u[0])) for u in large), default=0.0)
    atol = margin * max((float(u[1]) for u in small), default=0.0)
    return {"rtol": max(rtol, RTOL_FLOOR), "atol": max(atol, ATOL_FLOOR)}


def derive_tolerances(
    variation: Mapping[str, Any],
    *,
    margin: float = DEFAULT_MARGIN,
    runs: Sequence[Any] = (),
    command: str = "",
) -> dict[str, Any]:
    """A tolerance file (:func:`leaderboard.check.make_tolerances` format) from :func:`summarize`'s output.

    Each per-metric entry carries what was measured (largest deviation, the unit and run it came from);
    a tier's default is the largest tolerance of its metrics, for a metric the measurement did not see.
    """
    suites: dict[str, Any] = {}
    for suite, tiers in sorted(variation.items()):
        section: dict[str, Any] = {}
        for tier in TIERS:
            if not tiers.get(tier):
                raise ValueError(
                    f"suite {suite!r}: the measurement has no {tier} rows; measure them before deriving tolerances "
                    "(a tier without a measurement would get the floors and fail on any machine)"
                )
            metrics: dict[str, Any] = {}
            pooled_rtol = max(
                (tier_rule(e["units"], margin)["rtol"] for e in tiers.get(tier, {}).values()),
                default=RTOL_FLOOR,
            )
            for metric, entry in sorted(tiers.get(tier, {}).items()):
                tol = tier_rule(entry["units"], margin)
                if tier == "fixed":
                    tol["rtol"] = pooled_rtol
                metrics[metric] = {
                    **tol,
                    "measured": {
                        "max_abs": entry["max_abs"],
                        "max_rel": entry["max_rel"],
                        "units": len(entry["units"]),
                        "worst": entry["worst"],
                    },
                }
            default = {
                "rtol": max((m["rtol"] for m in metrics.values()), default=RTOL_FLOOR),
                "atol": max((m["atol"] for m in metrics.values()), default=ATOL_FLOOR),
            }
            section[tier] = {
                **default,
                "compared_as": "row by row"
                if tier == "fixed"
                else "mean over concepts per (method, rung, metric)",
                "metrics": metrics,
            }
        suites[suite] = section
    return {
        "description": "Regression-gate tolerances measured from CPU-kernel, thread and worker variation "
        "(leaderboard/variation.py; docs/GATE.md). Suites not listed are compared row by row with rtol/atol.",
        "rule": "per (suite, tier, metric): rtol = margin * max d/|v| over units above the median |v|, "
        "atol = margin * max d over the rest; floors rtol 1e-6, atol 1e-9; in the fixed tier every metric "
        "takes the tier's largest rtol",
        "margin": margin,
        "generated_by": command,
        "runs": list(runs),
        "rtol": 1e-3,
        "atol": 1e-6,
        "suites": suites,
    }


def tolerance_table(tolerances: Mapping[str, Any]) -> str:
    """The Markdown table of a derived tolerance file: suite, tier, metric, tolerance, largest measured
    deviation (absolute and relative), where it was measured, and the margin."""
    from .markdown import markdown_table

    margin = tolerances.get("margin")
    rows: list[list[str]] = []
    for suite, section in sorted(tolerances.get("suites", {}).items()):
        for tier in TIERS:
            for metric, entry in sorted(section[tier]["metrics"].items()):
                m = entry.get("measured", {})
                worst = m.get("worst", {})
                rows.append(
                    [
                        suite,
                        tier,
                        metric,
                        f"{entry['atol']:.3g} + {entry['rtol']:.3g}·|v|",
                        f"{m.get('max_abs', 0):.3g}",
                        f"{m.get('max_rel', 0):.3g}",
                        f"{worst.get('unit', '')} ({worst.get('run', '')})",
                        f"{margin:g}" if margin is not None else "",
                    ]
                )
    header = [
        "suite",
        "tier",
        "metric",
        "tolerance",
        "largest |dev|",
        "largest |dev|/|v|",
        "where (run)",
        "margin",
    ]
    return markdown_table(header, rows)
