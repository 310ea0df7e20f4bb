"""The headline: each method's overfitting at fixed levels of subject fidelity, read along its measured
training trajectory.

A method's *trajectory* is its rows at several rungs (training budgets, ``rung`` × its tuned steps, from one
training run). Along it, the mean over concepts of the suite's *fidelity* metric (the first present of the
fidelity metrics in their specs' headline order: ``subject_dino``) and of each overfitting metric give a
curve of measured points. Roles, floors and tests come from the metric specs (``metrics.spec``).

Reading (:func:`read_at`): at a fidelity *level* L a measure is read where the curve's fidelity first
reaches L, by linear interpolation between the two measured rungs around it — never from the base model
(an untrained model is not a point of any method's training), never extrapolated. A curve whose first
measured rung is already above L is "before the first rung" there; one that never reaches L is "not
reached". The base model is shown beside the curves, not joined to them.

Levels: the suite profile's ``headline_levels``, fixed before the rows by the rule the profile states
(``headline_levels_rule``; the toy suite's: :mod:`benchmark.toy.levels`). A suite whose profile fixes none
gets curves, areas and Pareto counts but no matched-fidelity reading. Levels given on the command line are
labelled as such.

Intervals (:func:`jackknife_t_interval`): concepts that share a class noun share the base model's images, so
the unit is the cluster (:func:`leaderboard.paired.clusters_from_base`). The reading's standard error is the
delete-one-cluster jackknife, the interval Student's t with G − 1 degrees of freedom; for a plain mean over
equal clusters this is exactly :func:`leaderboard.clustered.cluster_t_interval` (coverage in
docs/METRICS.md). No interval from fewer than :data:`leaderboard.clustered.MIN_UNITS` concepts ("n too
small") or when a jackknife replicate's curve does not reach the level between measured rungs.

Area (:func:`areas`): the mean of each measure over the fidelity range every compared method covers between
its measured rungs (the integral over the range divided by its width). Compared: the methods whose covered
range contains the middle headline level (the fidelity range of all methods at once is often empty: a
method that barely learns and one whose first rung is already far along share no fidelity). Pareto counts
(:func:`pareto_counts`): per method, how many of its measured rungs lie on the front of all methods' rungs
(higher fidelity, lower overfitting) and how many another method's rung dominates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd


def fidelity_metrics() -> tuple[str, ...]:
    """The fidelity axes the headline may use, preferred first (specs with role fidelity and a headline)."""
    from metrics.spec import headline_metrics

    return headline_metrics("fidelity")


def overfitting_metrics(lead: str = "") -> tuple[str, ...]:
    """The headline's overfitting columns in order (specs with role overfitting and a headline; ``lead``, a
    suite profile's ``headline_specific``, first)."""
    from metrics.spec import headline_metrics

    return headline_metrics("overfitting", lead)


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


ALPHA = 0.05
READ, BEFORE_FIRST, NOT_REACHED = "read", "before the first rung", "not reached"
AREA_GRID = 201  # points of the fidelity grid an area is averaged over


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
    """A measure read off a curve at one level: value (None unless ``status`` is READ) and its interval
    (None with ``why`` saying why not)."""

    value: float | None
    low: float | None
    high: float | None
    status: str
    why: str = ""


@dataclass(frozen=True)
class Area:
    """The mean of a measure over the common fidelity range [lo, hi] of the compared methods (None: no
    common range), per compared method."""

    lo: float | None
    hi: float | None
    values: Mapping[str, float]
    not_compared: tuple[str, ...]


@dataclass(frozen=True)
class Headline:
    """Everything the headline tables and the trajectory figures show for one suite version."""

    suite: str
    suite_version: str
    fidelity: str
    levels: tuple[float, ...]
    level_rule: str
    base_fidelity: float
    trajectories: tuple[Trajectory, ...]
    matched: Mapping[str, Mapping[str, tuple[Matched, ...]]]  # method -> metric -> one per level
    peak: Mapping[str, float]
    areas: Mapping[str, Area]  # metric -> its area over the common range
    pareto: Mapping[
        str, Mapping[str, tuple[int, int, int]]
    ]  # metric -> method -> (rungs, on front, dominated)
    floor: float | None  # mean over concepts of the floor of metric ``floored`` (its spec's pairing)
    not_detected: frozenset[
        str
    ]  # methods whose ``tested`` metric shows no difference from base (not: "same")
    combined_p: Mapping[str, float]  # Bonferroni over concepts of the ``tested`` metric's per-row p-values
    floored: str | None = None  # the overfitting metric the floor belongs to (W2)
    tested: str | None = None  # the overfitting metric whose per-row test gives ``combined_p`` (mmd_base)
    clusters: int = 0  # independent units of the intervals
    notes: tuple[str, ...] = ()  # the suite profile's headline_notes
    unranked: frozenset[str] = frozenset()  # methods that did not learn (no area, no Pareto count)
    columns: tuple[str, ...] = ()  # the overfitting measures shown, in column order
    lead: str = ""  # the suite profile's headline_specific ("": the registry's order)
    lead_rule: str = ""  # how it was chosen

    def shown(self) -> tuple[str, ...]:
        """The overfitting measures in the headline's columns, in order (the lead first)."""
        return self.columns or tuple(
            m for m in overfitting_metrics(self.lead) if any(m in t.metrics for t in self.trajectories)
        )


def _points(fidelity: Any, values: Any) -> list[tuple[float, float]]:
    return [
        (float(f), float(v))
        for f, v in zip(fidelity, values, strict=True)
        if not (math.isnan(float(f)) or math.isnan(float(v)))
    ]


def read_at(fidelity: Any, values: Any, level: float) -> tuple[float | None, str]:
    """``(value, READ)`` where the measured curve's fidelity first reaches ``level`` (linear between the two
    measured points around it); ``(None, BEFORE_FIRST)`` when the first measured point is already past it;
    ``(None, NOT_REACHED)`` when no point reaches it. Points in rung order, measured rungs only (NaN
    skipped)."""
    pts = _points(fidelity, values)
    if not pts:
        return None, NOT_REACHED
    if pts[0][0] >= level:
        return (pts[0][1], READ) if pts[0][0] == level else (None, BEFORE_FIRST)
    for (f0, v0), (f1, v1) in pairwise(pts):
        if f1 >= level:
            return v0 + (v1 - v0) * (level - f0) / (f1 - f0), READ
    return None, NOT_REACHED


def covered_range(fidelity: Any, values: Any) -> tuple[float, float] | None:
    """The fidelity levels :func:`read_at` reads a value at: from the first measured point's fidelity to
    the highest one (None without two points)."""
    pts = _points(fidelity, values)
    if len(pts) < 2:
        return None
    return pts[0][0], max(f for f, _ in pts)


def jackknife_t_interval(
    statistic: Any, concepts: Sequence[str], clusters: Mapping[str, str], level: float = 0.95
) -> tuple[float | None, float | None, str]:
    """A Student-t interval (G − 1 df) around ``statistic(all concepts)`` with the delete-one-cluster jackknife
    standard error; ``statistic(indices)`` returns a float or None (undefined on that subset).

    Returns:
        (low, high, why): low/high None with a reason when there is no interval.
    """
    from scipy.stats import t as student_t

    from .clustered import MIN_UNITS

    if len(concepts) < MIN_UNITS:
        return None, None, "n too small"
    keys = [clusters.get(c, c) for c in concepts]
    groups = sorted(set(keys))
    if len(groups) < 2:
        return None, None, "n too small"
    full = statistic(np.arange(len(concepts)))
    reps = []
    for g in groups:
        rep = statistic(np.array([i for i, k in enumerate(keys) if k != g]))
        if rep is None:
            return None, None, "a cluster left out moves the curve off the level"
        reps.append(rep)
    arr = np.array(reps, dtype=np.float64)
    n = len(groups)
    se = math.sqrt((n - 1) / n * float(((arr - arr.mean()) ** 2).sum()))
    half = float(student_t.ppf(0.5 + level / 2, n - 1)) * se
    return full - half, full + half, ""


def _read(t: Trajectory, metric: str, level: float, idx: np.ndarray | None) -> tuple[float | None, str]:
    fid, val = t.mean_curve(metric, idx)
    return read_at(fid[1:], val[1:], level)  # measured rungs only: row 0 is the base model


def matched_at(t: Trajectory, metric: str, level: float, clusters: Mapping[str, str]) -> Matched:
    """``metric`` of ``t`` read at ``level`` with its cluster-jackknife interval."""
    value, status = _read(t, metric, level, None)
    if value is None:
        return Matched(None, None, None, status)
    # the units are the concepts the method has measured rungs for, not every concept of the section
    have = np.array(
        [
            i
            for i in range(len(t.concepts))
            if np.isfinite(t.metrics[metric][1:, i]).any() and np.isfinite(t.fidelity[1:, i]).any()
        ],
        dtype=np.int64,
    )
    low, high, why = jackknife_t_interval(
        lambda idx: _read(t, metric, level, have[idx])[0], tuple(t.concepts[i] for i in have), clusters
    )
    return Matched(value, low, high, status, why)


def areas(trajectories: Sequence[Trajectory], metric: str, levels: Sequence[float]) -> Area:
    """The mean of ``metric`` over the fidelity range common to the compared methods (module docstring)."""
    covered = {}
    for t in trajectories:
        if metric in t.metrics:
            fid, val = t.mean_curve(metric)
            rng = covered_range(fid[1:], val[1:])
            if rng is not None:
                covered[t.method] = rng
    middle = levels[len(levels) // 2] if levels else None
    compared = {m: r for m, r in covered.items() if middle is None or r[0] <= middle <= r[1]}
    left = tuple(sorted(set(covered) - set(compared)))
    if not compared:
        return Area(None, None, {}, left)
    lo, hi = max(r[0] for r in compared.values()), min(r[1] for r in compared.values())
    if not hi > lo:
        return Area(None, None, {}, left)
    grid = np.linspace(lo, hi, AREA_GRID)
    values = {}
    for t in trajectories:
        if t.method in compared:
            fid, val = t.mean_curve(metric)
            read = [read_at(fid[1:], val[1:], float(g))[0] for g in grid]
            values[t.method] = float(np.mean([r for r in read if r is not None]))
    return Area(float(lo), float(hi), values, left)


def pareto_counts(trajectories: Sequence[Trajectory], metric: str) -> dict[str, tuple[int, int, int]]:
    """Per method: (measured rungs, rungs on the front of every method's rungs, rungs another method's rung
    dominates) in (mean fidelity ↑, mean ``metric`` ↓)."""
    points: list[tuple[str, float, float]] = []
    for t in trajectories:
        if metric in t.metrics:
            fid, val = t.mean_curve(metric)
            points += [(t.method, f, v) for f, v in _points(fid[1:], val[1:])]
    front = set(pareto_front([(f, v) for _, f, v in points]))
    out: dict[str, tuple[int, int, int]] = {}
    for i, (method, f, v) in enumerate(points):
        dominated = any(m2 != method and f2 >= f and v2 <= v and (f2 > f or v2 < v) for m2, f2, v2 in points)
        n, on, dom = out.get(method, (0, 0, 0))
        out[method] = (n + 1, on + (i in front), dom + dominated)
    return out


def structural_zero(t: Trajectory, metric: str) -> bool:
    """Whether ``metric`` is 0 at every measured rung of ``t`` and its spec says such zeros are zeros by
    construction (the method cannot touch those prompts): not a measurement to rank."""
    from metrics.spec import METRICS

    if metric not in t.metrics or not METRICS[metric].structural_zero:
        return False
    finite = t.metrics[metric][1:][~np.isnan(t.metrics[metric][1:])]
    return bool(finite.size) and bool((finite == 0.0).all())


def ranked(
    trajectories: Sequence[Trajectory], metric: str, unranked: frozenset[str] = frozenset()
) -> list[Trajectory]:
    """The trajectories whose ``metric`` is measured, not zero by construction, of methods that learned
    (areas and Pareto counts leave structural zeros and unranked methods out, as every rank statistic
    does)."""
    return [t for t in trajectories if t.method not in unranked and not structural_zero(t, metric)]


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
    rows: pd.DataFrame,
    *,
    levels: Sequence[float] = (),
    level_rule: str = "",
    notes: Sequence[str] = (),
    unranked: frozenset[str] = frozenset(),
    clusters: Mapping[str, str] | None = None,
    lead: str = "",
    lead_rule: str = "",
) -> Headline | None:
    """The headline of one suite version from its rows (all rungs), or None without trajectory data
    (no method with rungs, or no fidelity metric). ``levels``: the profile's ``headline_levels``;
    ``unranked``: methods that did not learn (left out of the areas and Pareto counts, like structural
    zeros: a method that changes nothing must not shape what the others are compared against);
    ``clusters``: concept -> cluster of concepts that share base images
    (:func:`leaderboard.paired.clusters_from_base`; None: every concept its own); ``lead``: the profile's
    ``headline_specific``, the concept-specific measure in the first overfitting column (``lead_rule``: how
    it was chosen)."""
    fid_metric = _fidelity_metric(rows)
    trained = rows[rows["rung"].notna()]
    if fid_metric is None or trained.empty:
        return None
    concepts = tuple(sorted(set(rows["concept"])))
    clusters = dict(clusters or {})
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
            for m in overfitting_metrics(lead)
            if (part["metric"] == m).any()
        }
        trajectories.append(Trajectory(str(method), str(version), (0.0, *rungs), concepts, fid, metrics))
    peaks = {t.method: float(np.nanmax(_nanmean(t.fidelity[1:]))) for t in trajectories}
    levels = tuple(float(x) for x in levels)
    rule = level_rule or ("" if levels else "the suite's profile fixes no headline levels")
    matched = {
        t.method: {m: tuple(matched_at(t, m, lv, clusters) for lv in levels) for m in t.metrics}
        for t in trajectories
    }
    metrics_present = [m for m in overfitting_metrics(lead) if any(m in t.metrics for t in trajectories)]
    if lead and lead not in metrics_present:  # the profile names a measure these rows lack
        lead, lead_rule = "", f"the profile names {lead}, which these rows lack"
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
        levels=levels,
        level_rule=rule,
        base_fidelity=base_fid,
        trajectories=tuple(trajectories),
        matched=matched,
        peak=peaks,
        areas={m: areas(ranked(trajectories, m, unranked), m, levels) for m in metrics_present},
        pareto={m: pareto_counts(ranked(trajectories, m, unranked), m) for m in metrics_present},
        floor=floor,
        not_detected=same,
        combined_p=combined,
        floored=floored[0] if floored else None,
        tested=tested[0] if tested else None,
        clusters=len({clusters.get(c, c) for c in concepts}),
        notes=tuple(notes),
        unranked=unranked,
        columns=tuple(metrics_present),
        lead=lead,
        lead_rule=lead_rule,
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
