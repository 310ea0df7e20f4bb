"""Rank agreement between the measured metrics and the oracle's ground truth, read every way the brief asks.

Every agreement is reported pooled over (run, concept) pairs and as the mean of the per-concept ρ, each
with and without the endpoints (the base model, the copy control and the rendered controls, whose places
at the ends of every scale are known in advance) and with the runs whose metric value is exactly 0 left
out (a float that is exactly 0.0 is zero by construction: a method that cannot touch those prompts, the
base model paired with itself; never a measurement). The zeros are counted, never ranked.

:func:`partial_spearman` gives the partial rank correlation of two measures given a third (Pearson on the
ranks after regressing the third's ranks out of both); scipy and pandas have no partial correlation and
pingouin is not installed, so it is written here (docs/DECISIONS.md).

:func:`control_table` reads every metric on the rendered 2 × 2 controls (ideal, copy, context-only, base).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

# the labels of runs whose place on every scale is fixed in advance
ENDPOINT_LABELS = frozenset({"base", "copy"})
CONTROL_PREFIX = "control:"
CONTROLS = ("ideal", "copy", "context-only", "base")


def is_endpoint(label: str) -> bool:
    """Whether a run is an endpoint: the base model, the copy control or a rendered control."""
    return label in ENDPOINT_LABELS or label.startswith(CONTROL_PREFIX)


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's ρ (``scipy.stats.spearmanr``, average ranks for ties); NaN with < 3 pairs or a constant side."""
    from scipy.stats import spearmanr

    if len(a) != len(b):
        raise ValueError(f"spearman: lengths differ ({len(a)} and {len(b)})")
    if len(a) < 3 or len(set(a)) < 2 or len(set(b)) < 2:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def partial_spearman(x: Sequence[float], y: Sequence[float], z: Sequence[float]) -> float:
    """Partial Spearman ρ of ``x`` and ``y`` given ``z``: the Pearson correlation of the residuals of
    rank(x) and rank(y) after a least-squares fit on rank(z) (with intercept). NaN with < 4 triples or a
    constant residual.

    Raises:
        ValueError: lengths differ.
    """
    from scipy.stats import rankdata

    if not len(x) == len(y) == len(z):
        raise ValueError(f"partial_spearman: lengths differ ({len(x)}, {len(y)}, {len(z)})")
    if len(x) < 4:
        return float("nan")
    rx, ry, rz = (rankdata(v) for v in (x, y, z))
    design = np.column_stack([np.ones(len(rz)), rz])

    def residual(v: np.ndarray) -> np.ndarray:
        coef, *_ = np.linalg.lstsq(design, v, rcond=None)
        return np.asarray(v - design @ coef)

    ex, ey = residual(rx), residual(ry)
    if float(np.std(ex)) < 1e-12 or float(np.std(ey)) < 1e-12:
        return float("nan")
    return float(np.corrcoef(ex, ey)[0, 1])


Reader = Callable[[Mapping[str, Any]], float]


def _pairs(
    runs: Sequence[Mapping[str, Any]], metric: str, oracle: Reader
) -> list[tuple[str, str, float, float]]:
    out = []
    for r in runs:
        x = r["metrics"].get(metric)
        if x is None:
            continue
        y = oracle(r)
        if math.isnan(float(x)) or math.isnan(float(y)):
            continue
        out.append((str(r["label"]), str(r["concept"]), float(x), float(y)))
    return out


def _within(pairs: Sequence[tuple[str, str, float, float]]) -> tuple[float, int]:
    by: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for _, concept, x, y in pairs:
        by[concept].append((x, y))
    rhos = [spearman([a for a, _ in v], [b for _, b in v]) for v in by.values()]
    rhos = [r for r in rhos if not math.isnan(r)]
    return (float(np.mean(rhos)) if rhos else float("nan")), len(rhos)


def agreement_row(runs: Sequence[Mapping[str, Any]], metric: str, oracle: Reader) -> dict[str, Any]:
    """ρ of ``metric`` with ``oracle(run)`` over ``runs``, every way (see the module docstring).

    Returns:
        ``{"all": {...}, "no_endpoints": {...}, "no_endpoints_no_zeros": {...}, "zeros": int}``, each part
        ``{"pooled": ρ, "n": pairs, "within": mean per-concept ρ, "concepts": concepts with a ρ}``.
    """
    pairs = _pairs(runs, metric, oracle)
    parts = {
        "all": pairs,
        "no_endpoints": [p for p in pairs if not is_endpoint(p[0])],
    }
    parts["no_endpoints_no_zeros"] = [p for p in parts["no_endpoints"] if p[2] != 0.0]
    out: dict[str, Any] = {"zeros": sum(1 for p in parts["no_endpoints"] if p[2] == 0.0)}
    for name, chosen in parts.items():
        within, k = _within(chosen)
        out[name] = {
            "pooled": spearman([p[2] for p in chosen], [p[3] for p in chosen]),
            "n": len(chosen),
            "within": within,
            "concepts": k,
        }
    return out


def control_table(
    runs: Sequence[Mapping[str, Any]], metrics: Sequence[str]
) -> dict[str, dict[str, dict[str, float]]]:
    """``{metric: {concept: {control: value}}}`` for the rendered controls (labels ``control:<name>``)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for metric in metrics:
        table: dict[str, dict[str, float]] = defaultdict(dict)
        for r in runs:
            label = str(r["label"])
            if not label.startswith(CONTROL_PREFIX) or metric not in r["metrics"]:
                continue
            table[str(r["concept"])][label.removeprefix(CONTROL_PREFIX)] = float(r["metrics"][metric])
        if table:
            out[metric] = dict(table)
    return out


def fidelity_targets(per_concept: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """Issue 22's control targets for a fidelity metric, per concept: ideal ≥ 0.8 × copy, and context-only
    ≤ base + 0.1 × (copy − base). Returns the concepts meeting each and both."""
    ideal_ok, context_ok = [], []
    for concept, v in sorted(per_concept.items()):
        if not all(k in v for k in CONTROLS):
            continue
        if v["ideal"] >= 0.8 * v["copy"]:
            ideal_ok.append(concept)
        if v["context-only"] <= v["base"] + 0.1 * (v["copy"] - v["base"]):
            context_ok.append(concept)
    complete = [c for c, v in per_concept.items() if all(k in v for k in CONTROLS)]
    return {
        "concepts": len(complete),
        "ideal_ok": ideal_ok,
        "context_ok": context_ok,
        "both_ok": sorted(set(ideal_ok) & set(context_ok)),
    }


def collapse_targets(per_concept: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """Issue 23's control targets for a concept-specific overfitting measure, per concept: context-only ≥
    0.7 × copy, and ideal and base both ≤ 0.1 × copy (a copy that reads ≤ 0 meets none)."""
    context_ok, ideal_ok, base_ok = [], [], []
    for concept, v in sorted(per_concept.items()):
        if not all(k in v for k in CONTROLS) or v["copy"] <= 0:
            continue
        if v["context-only"] >= 0.7 * v["copy"]:
            context_ok.append(concept)
        if v["ideal"] <= 0.1 * v["copy"]:
            ideal_ok.append(concept)
        if v["base"] <= 0.1 * v["copy"]:
            base_ok.append(concept)
    complete = [c for c, v in per_concept.items() if all(k in v for k in CONTROLS)]
    return {
        "concepts": len(complete),
        "context_ok": context_ok,
        "ideal_ok": ideal_ok,
        "base_ok": base_ok,
        "all_ok": sorted(set(context_ok) & set(ideal_ok) & set(base_ok)),
    }
