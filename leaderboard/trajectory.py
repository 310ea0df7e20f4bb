"""The headline: each method's overfitting at a matched subject fidelity, read along its training trajectory.

A method's *trajectory* is its rows at several rungs (training budgets, ``rung`` × its tuned steps), with
the base model as the start (rung 0: the untrained model, overfitting 0 by construction). Along it, the
mean over concepts of the suite's *fidelity* metric (the first present of the fidelity metrics in their
specs' headline order: ``identity`` where the suite has a ground-truth scorer, else ``dino``) and of each
overfitting metric give a curve. Roles, floors and tests come from the metric specs (``metrics.spec``). At a fidelity *level* L every method's
overfitting is read off its curve by linear interpolation at the first point where its fidelity reaches
L; a method whose curve never reaches L is reported as such.

The level, unless given: the lowest peak fidelity among the methods that got at least a quarter of the
way from the base model's fidelity to the best method's peak (so every such method reaches it).
Intervals: 95% percentile bootstrap over concepts (the same resampled concept sets for every method, the
level held fixed); a resample whose curve does not reach L is left out and the share reaching is shown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


def fidelity_metrics() -> tuple[str, ...]:
    """The fidelity axes the headline may use, preferred first (specs with role fidelity and a headline)."""
    from metrics.spec import headline_metrics

    return headline_metrics("fidelity")


def overfitting_metrics() -> tuple[str, ...]:
    """The headline's overfitting columns in order (specs with role overfitting and a headline)."""
    from metrics.spec import headline_metrics

    return headline_metrics("overfitting")


def floored_metric() -> tuple[str, str] | None:
    """(overfitting metric, its floor metric) for the first headline overfitting metric with a floor."""
    from metrics.spec import floor_of

    return next(((m, f) for m in overfitting_metrics() if (f := floor_of(m))), None)


def tested_metric() -> tuple[str, str] | None:
    """(overfitting metric, extra field of its p-value) for the first headline metric with a test."""
    from metrics.spec import get_metric

    return next(
        ((m, get_metric(m).significance) for m in overfitting_metrics() if get_metric(m).significance), None
    )


LEVEL_SHARE = 0.25
ALPHA = 0.05


@dataclass(frozen=True)
class Trajectory:
    """One method's curve: per rung (base first, rung 0), per-concept values of fidelity and each metric."""

    method: str
    version: str
    rungs: tuple[float, ...]
    concepts: tuple[str, ...]
    fidelity: np.ndarray  # [rungs, concepts]
    metrics: Mapping[str, np.ndarray]  # metric -> [rungs, concepts] (NaN where missing)

    def mean_curve(self, metric: str, idx: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Mean over (resampled) concepts of fidelity and ``metric`` per rung."""
        cols = slice(None) if idx is None else idx
        return _nanmean(self.fidelity[:, cols]), _nanmean(self.metrics[metric][:, cols])


def _nanmean(table: np.ndarray) -> np.ndarray:
    """Row means ignoring NaN; NaN for a row with no value (a rung a metric was not computed at)."""
    counts = np.sum(~np.isnan(table), axis=1)
    sums = np.nansum(table, axis=1)
    return np.divide(sums, counts, out=np.full(len(table), np.nan), where=counts > 0)


@dataclass(frozen=True)
class Matched:
    """A metric read off a curve at the level: value and interval (None: never reaches), share reaching."""

    value: float | None
    low: float | None
    high: float | None
    reached: float


@dataclass(frozen=True)
class Headline:
    """Everything the headline table and the trajectory figures show for one suite version."""

    suite: str
    suite_version: str
    fidelity: str
    level: float
    level_rule: str
    base_fidelity: float
    trajectories: tuple[Trajectory, ...]
    matched: Mapping[str, Mapping[str, Matched]]  # method -> metric -> Matched
    peak: Mapping[str, float]
    floor: float | None  # mean over concepts of the floor of metric ``floored`` (its spec's pairing)
    not_detected: frozenset[
        str
    ]  # methods whose ``tested`` metric shows no difference from base (not: "same")
    combined_p: Mapping[str, float]  # Bonferroni over concepts of the ``tested`` metric's per-row p-values
    floored: str | None = None  # the overfitting metric the floor belongs to (W2)
    tested: str | None = None  # the overfitting metric whose per-row test gives ``combined_p`` (mmd_base)


def interpolate_at(fidelity: Any, values: Any, level: float) -> float | None:
    """The value where the curve's fidelity first reaches ``level`` (linear between consecutive points),
    or None when it never does. NaN points are skipped."""
    pts = [
        (float(f), float(v))
        for f, v in zip(fidelity, values, strict=True)
        if not (math.isnan(f) or math.isnan(v))
    ]
    for i, (f, v) in enumerate(pts):
        if f >= level:
            if i == 0:
                return v
            f0, v0 = pts[i - 1]
            return v0 + (v - v0) * (level - f0) / (f - f0) if f > f0 else v
    return None


def default_level(peaks: Mapping[str, float], base: float) -> float:
    """The lowest peak among methods that got :data:`LEVEL_SHARE` of the way from ``base`` to the best peak."""
    finite = [p for p in peaks.values() if math.isfinite(p)]
    if not finite:
        return base
    best = max(finite)
    bar = base + LEVEL_SHARE * (best - base) if math.isfinite(base) else -math.inf  # no base rows: every peak
    return min(p for p in finite if p >= bar)


def _fidelity_metric(frame: pd.DataFrame) -> str | None:
    present = set(frame["metric"])
    return next((m for m in fidelity_metrics() if m in present), None)


def _matrix(
    part: pd.DataFrame, rungs: Sequence[float], concepts: Sequence[str], base: pd.DataFrame
) -> np.ndarray:
    """[1 + rungs, concepts] of values: the base model's row first, then each rung (NaN where missing)."""
    out = np.full((1 + len(rungs), len(concepts)), np.nan)
    col = {c: j for j, c in enumerate(concepts)}
    for c, v in zip(base["concept"], base["value"], strict=True):
        out[0, col[c]] = v
    index = {r: i + 1 for i, r in enumerate(rungs)}
    for r, c, v in zip(part["rung"], part["concept"], part["value"], strict=True):
        out[index[float(r)], col[c]] = v
    return out


def build_headline(
    rows: pd.DataFrame, *, level: float | None = None, resamples: int = 2000, seed: int = 0
) -> Headline | None:
    """The headline of one suite version from its rows (all rungs), or None without trajectory data
    (no method with rungs, or no fidelity metric)."""
    fid_metric = _fidelity_metric(rows)
    trained = rows[rows["rung"].notna()]
    if fid_metric is None or trained.empty:
        return None
    concepts = tuple(sorted(set(rows["concept"])))
    base_rows = rows[(rows["method"] == "base") & rows["rung"].isna()]
    base_fid = float(base_rows.loc[base_rows["metric"] == fid_metric, "value"].mean())
    trajectories = []
    for (method, version), part in trained.groupby(["method", "method_version"], sort=True):
        rungs = tuple(sorted({float(r) for r in part["rung"]}))
        fid = _matrix(
            part[part["metric"] == fid_metric], rungs, concepts, base_rows[base_rows["metric"] == fid_metric]
        )
        metrics = {
            m: _matrix(part[part["metric"] == m], rungs, concepts, base_rows[base_rows["metric"] == m])
            for m in overfitting_metrics()
            if (part["metric"] == m).any()
        }
        trajectories.append(Trajectory(str(method), str(version), (0.0, *rungs), concepts, fid, metrics))
    peaks = {t.method: float(np.nanmax(_nanmean(t.fidelity))) for t in trajectories}
    rule = "given"
    if level is None:
        level = default_level(peaks, base_fid)
        rule = (
            f"the lowest peak {fid_metric} among methods that got {LEVEL_SHARE:.0%} of the way from the base "
            f"model's {fid_metric} to the best peak"
        )
    rng = np.random.Generator(np.random.PCG64(seed))
    samples = rng.integers(0, len(concepts), size=(resamples, len(concepts)))
    matched: dict[str, dict[str, Matched]] = {}
    for t in trajectories:
        matched[t.method] = {}
        for m in t.metrics:
            fid, val = t.mean_curve(m)
            point = interpolate_at(fid, val, level)
            boot = [interpolate_at(*t.mean_curve(m, idx), level) for idx in samples]
            got = np.array([b for b in boot if b is not None], dtype=np.float64)
            lo = hi = None
            if point is not None and got.size:
                lo, hi = (float(x) for x in np.percentile(got, [2.5, 97.5]))
            matched[t.method][m] = Matched(point, lo, hi, got.size / resamples)
    floored = floored_metric()
    floor_rows = base_rows[base_rows["metric"] == floored[1]] if floored else base_rows.iloc[:0]
    floor = float(floor_rows["value"].mean()) if len(floor_rows) else None
    combined: dict[str, float] = {}
    tested = tested_metric()
    at_tuned = rows[(rows["metric"] == (tested[0] if tested else None)) & (rows["rung"] == 1.0)]
    for method, part in at_tuned.groupby("method", sort=True):
        ps = [float(e.get(tested[1], np.nan)) for e in part["extra"]]  # type: ignore[index]
        ps = [p for p in ps if not math.isnan(p)]
        if ps:
            combined[str(method)] = bonferroni(ps)
    same = frozenset(m for m, p in combined.items() if p >= ALPHA)
    return Headline(
        suite=str(rows["suite"].iloc[0]),
        suite_version=str(rows["suite_version"].iloc[0]),
        fidelity=fid_metric,
        level=float(level),
        level_rule=rule,
        base_fidelity=base_fid,
        trajectories=tuple(trajectories),
        matched=matched,
        peak=peaks,
        floor=floor,
        not_detected=same,
        combined_p=combined,
        floored=floored[0] if floored else None,
        tested=tested[0] if tested else None,
    )


def bonferroni(p_values: Sequence[float]) -> float:
    """min(1, k · min p) over k tests: a combined p-value valid under any dependence between them (concepts
    that share a class noun share their base images; every method uses the same permutation draws), which
    Fisher's method, which assumes independence, is not."""
    return min(1.0, len(p_values) * min(p_values))


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (higher fidelity x, lower overfitting y)."""
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any(
            (x2 >= x and y2 <= y) and (x2 > x or y2 < y) for j, (x2, y2) in enumerate(points) if j != i
        )
        if not dominated:
            front.append(i)
    return front
