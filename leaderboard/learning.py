"""Did a method learn? Its fidelity against the base model's, concept by concept and over concepts.

The suite's first principle: a method that changes nothing must not look best on any column. A method
that did not learn the concept leaves the base model's images (nearly) as they were, so its overfitting
measures (W2, LFD, ...) read near zero: the best on the board, for the wrong reason. So before anything
is ranked, each method's *fidelity* (the suite's headline fidelity: the first present of
:func:`leaderboard.trajectory.fidelity_metrics`, ``subject_dino`` on every built-in suite; never the
oracle's ``identity``, which grades the metrics and is left off the page) is compared with the base
model's, at the method's tuned budget (rung 1) or its only rows:

- per concept, the method *learned* the concept when its fidelity is above the base model's by more than
  sampling noise: a one-sided Welch test from the two rows' summary statistics (mean = the row's value,
  std = se·sqrt(n), nobs = n) at :data:`ALPHA`. The standard error of a metric whose value is a share of
  images (spec ``share``, e.g. identity) is the binomial sqrt(p(1-p)/n) of the row itself; otherwise the
  row's ``extra["se"]``; with neither, the concept is *not assessed*. Identical values, or zero spread with
  a difference <= 0, are "not learned"; zero spread with a difference > 0 is "learned".
- per method, it is *flagged* (did not learn; none of its cells is ranked) when its mean
  fidelity over concepts is not above the base model's: a one-sided paired t-test over concepts of
  (method - base) at :data:`ALPHA`; every difference <= 0 (or zero spread with mean <= 0) flags it. With a
  single concept the per-concept verdict decides (not assessed and above base: not flagged).

Reads rows and metric specs only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .rows import ResultRow, Version, version_sort_key
from .trajectory import fidelity_metrics

ALPHA = 0.05
"""Significance level of both tests (fixed before any rows were assessed; docs/DECISIONS.md)."""

REFERENCES = ("base", "real")
NOT_RANKED = "not ranked: did not learn"


@dataclass(frozen=True)
class Learning:
    """One method's learning verdict in one suite version.

    Attributes:
        method, version: the method.
        fidelity: the fidelity metric the verdict reads.
        concepts: concepts with both a method row and a base-model row (M).
        not_learned: concepts whose fidelity is not above the base model's by more than noise (N of them).
        not_assessed: concepts without a recorded spread (no per-concept verdict).
        mean_method, mean_base: mean fidelity over ``concepts``.
        p_value: the one-sided paired t-test's p-value (None when the rule decided without it).
        flagged: did not learn: none of its numbers is ranked.
        reason: how the over-concepts verdict was reached, in words.
    """

    method: str
    version: Version
    fidelity: str
    concepts: tuple[str, ...]
    not_learned: tuple[str, ...]
    not_assessed: tuple[str, ...]
    mean_method: float
    mean_base: float
    p_value: float | None
    flagged: bool
    reason: str = ""

    @property
    def label(self) -> str:
        """``method@version``."""
        return f"{self.method}@{self.version}"

    @property
    def count_text(self) -> str:
        """``did not learn on N of M concepts`` (empty when N = 0)."""
        if not self.not_learned:
            return ""
        return f"did not learn on {len(self.not_learned)} of {_concepts(len(self.concepts))}"

    def sentence(self) -> str:
        """One line for the terminal and the page (empty for a method that is not flagged and learned on
        every assessed concept)."""
        parts = []
        if self.flagged:
            parts.append(
                f"did not learn ({self.fidelity} {self.mean_method:.3f} against the base model's "
                f"{self.mean_base:.3f} over {_concepts(len(self.concepts))}: {self.reason}); none of its "
                "numbers is ranked"
            )
        if self.not_learned:
            parts.append(
                f"{self.count_text} ({self.fidelity} not above the base model's by more than sampling noise)"
            )
        return f"{self.label}: " + "; ".join(parts) if parts else ""


@dataclass(frozen=True)
class Assessment:
    """Every method's verdict in one suite version, and why some could not be given.

    Attributes:
        fidelity: the fidelity metric (None: the rows have none).
        methods: (method, version) -> verdict, for each customization method with rows of ``fidelity``.
        no_base: True when there are customization methods but no base-model rows of ``fidelity``.
        spread_missing: True when some concept could not be assessed (its rows record no spread).
    """

    fidelity: str | None
    methods: Mapping[tuple[str, Version], Learning]
    no_base: bool = False
    spread_missing: bool = False

    def notes(self) -> list[str]:
        """The page's and the terminal's lines: one per method that did not learn somewhere, then what
        could not be assessed."""
        out = [s for _, v in sorted(self.methods.items(), key=_order) if (s := v.sentence())]
        if self.no_base:
            out.append(
                f"learning not assessed: no base-model rows of {self.fidelity} to compare with (run the "
                "base method too)"
            )
        if self.spread_missing:
            out.append(
                f"per-concept learning not assessed: the {self.fidelity} rows record no fidelity spread "
                "(extra.se); the over-concepts test still applies"
            )
        return out

    @property
    def unranked(self) -> frozenset[tuple[str, Version]]:
        """The flagged methods: none of their numbers is ranked."""
        return frozenset(k for k, v in self.methods.items() if v.flagged)


def _concepts(n: int) -> str:
    return f"{n} concept" if n == 1 else f"{n} concepts"


def _order(item: tuple[tuple[str, Version], Learning]) -> tuple[str, tuple[int, int, str]]:
    return item[0][0], version_sort_key(item[0][1])


def standard_error(spec: Any, value: float, n: int, extra: Mapping[str, Any]) -> float | None:
    """A row's standard error: binomial for a share of images (spec ``share``), else ``extra["se"]``;
    None when neither is available (or the recorded one is not a finite number >= 0)."""
    if getattr(spec, "share", False):
        if n > 0 and 0.0 <= value <= 1.0:
            return math.sqrt(value * (1.0 - value) / n)
        return None
    se = extra.get("se")
    if isinstance(se, int | float) and not isinstance(se, bool) and math.isfinite(se) and se >= 0:
        return float(se)
    return None


def concept_learned(
    spec: Any,
    method: tuple[float, int, Mapping[str, Any]],
    base: tuple[float, int, Mapping[str, Any]],
    alpha: float = ALPHA,
) -> bool | None:
    """Whether the method's fidelity row (value, n, extra) is above the base model's by more than sampling
    noise: one-sided Welch test from summary statistics. None: not assessed (no spread recorded)."""
    from scipy.stats import ttest_ind_from_stats

    (mv, mn, mx), (bv, bn, bx) = method, base
    diff = mv - bv
    if diff == 0.0:
        return False  # identical rows
    se_m, se_b = standard_error(spec, mv, mn, mx), standard_error(spec, bv, bn, bx)
    if se_m is None or se_b is None:
        return None
    if se_m == 0.0 and se_b == 0.0:
        return diff > 0.0
    p = ttest_ind_from_stats(
        mv, se_m * math.sqrt(mn), mn, bv, se_b * math.sqrt(bn), bn, equal_var=False, alternative="greater"
    ).pvalue
    if not math.isfinite(float(p)):
        return None
    return bool(p < alpha)


def method_flagged(
    method: np.ndarray, base: np.ndarray, single: bool | None = None, alpha: float = ALPHA
) -> tuple[bool, float | None, str]:
    """(flagged, p-value, reason) from per-concept fidelity of the method and the base model (paired arrays).

    Flagged when the mean is not above the base model's: one-sided paired t-test at ``alpha``; every
    difference <= 0, or zero spread with mean <= 0, flags without a test. One concept: its per-concept
    verdict ``single`` decides (None, not assessed: flagged only when its difference is <= 0)."""
    from scipy.stats import ttest_rel

    diff = method - base
    if diff.size == 0:
        return False, None, "no concept to compare"
    if np.all(diff <= 0.0):
        return True, None, "not above it on any concept"
    if diff.size == 1:
        if single is None:
            return False, None, "one concept, above the base model's, spread not recorded"
        return not single, None, "one concept: the per-concept test"
    if np.allclose(diff, diff[0], rtol=1e-9, atol=1e-12):  # zero spread, up to float rounding
        return False, None, "above it by the same amount on every concept"
    p = float(ttest_rel(method, base, alternative="greater").pvalue)
    return not p < alpha, p, f"one-sided paired t-test p = {p:.2g}, alpha {alpha:g}"


def assess(frame: pd.DataFrame) -> Assessment:
    """The verdicts in one suite version's rows (a :func:`leaderboard.frame.rows_frame` frame); a method's
    rows at its tuned budget (rung 1), or its only rows (rung null), are read; the base model's are its
    rows with rung null."""
    from metrics.spec import METRICS

    present = set(frame["metric"])
    fid = next((m for m in fidelity_metrics() if m in present), None)
    if fid is None:
        return Assessment(None, {})
    spec = METRICS[fid]
    rows = frame[(frame["metric"] == fid) & (frame["rung"].isna() | (frame["rung"] == 1.0))]
    base = rows[(rows["method"] == "base") & rows["rung"].isna()]
    base_by: dict[tuple[str, int, str], Any] = {}
    for _, r in base.sort_values("method_version", key=lambda s: s.map(version_sort_key)).iterrows():
        base_by[(str(r["concept"]), int(r["metric_version"]), str(r["backbone"]))] = r
    others = rows[~rows["method"].isin(REFERENCES)]
    if others.empty:
        return Assessment(fid, {})
    if not base_by:
        return Assessment(fid, {}, no_base=True)
    verdicts: dict[tuple[str, Version], Learning] = {}
    spread_missing = False
    for (method, version), part in others.groupby(["method", "method_version"], sort=True):
        concepts, m_vals, b_vals, lost, unknown, singles = [], [], [], [], [], []
        for _, r in part.sort_values("concept").iterrows():
            b = base_by.get((str(r["concept"]), int(r["metric_version"]), str(r["backbone"])))
            if b is None:
                continue
            c = str(r["concept"])
            learned = concept_learned(
                spec,
                (float(r["value"]), int(r["n"]), r["extra"]),
                (float(b["value"]), int(b["n"]), b["extra"]),
            )
            concepts.append(c)
            m_vals.append(float(r["value"]))
            b_vals.append(float(b["value"]))
            singles.append(learned)
            if learned is None:
                unknown.append(c)
            elif not learned:
                lost.append(c)
        if not concepts:
            continue
        spread_missing = spread_missing or bool(unknown)
        m_arr, b_arr = np.asarray(m_vals, dtype=np.float64), np.asarray(b_vals, dtype=np.float64)
        flagged, p, reason = method_flagged(m_arr, b_arr, singles[0] if len(singles) == 1 else None)
        verdicts[(str(method), version)] = Learning(
            method=str(method),
            version=version,
            fidelity=fid,
            concepts=tuple(concepts),
            not_learned=tuple(lost),
            not_assessed=tuple(unknown),
            mean_method=float(m_arr.mean()),
            mean_base=float(b_arr.mean()),
            p_value=p,
            flagged=flagged,
            reason=reason,
        )
    return Assessment(fid, verdicts, spread_missing=spread_missing)


def learning_lines(rows: Iterable[ResultRow]) -> list[str]:
    """The terminal's lines after ``run`` / ``score``: per suite version, one per method that did not learn
    on some concept or is flagged, and what could not be assessed (each prefixed with the suite)."""
    from .frame import rows_frame

    frame = rows_frame(rows)
    out = []
    for (suite, version), part in frame.groupby(["suite", "suite_version"], sort=True):
        out += [f"{suite}@{version} {line}" for line in assess(part).notes()]
    return out
