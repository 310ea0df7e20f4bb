"""The regression gate: compare fresh result rows with committed baseline rows, in two tiers.

Rows are keyed by (suite, method, rung, concept, metric). A change of suite, method or metric version, of
backbone or of sample count ``n`` is reported as a change (values are not comparable then); keys only
in the baseline are *missing*, keys only in the fresh rows are *new*. Values are compared by tier:

- **fixed** rows (:func:`row_tier`: ``base``, ``real`` and image-folder rows — no training between the
  committed inputs and the value) row by row: ``|fresh - baseline| <= atol + rtol * |baseline|``. This tier
  catches a changed metric, backbone, sampler or suite prompt.
- **trained** rows (everything a training run produced), for suites whose tolerance file has a section,
  as the mean over concepts of each (method, rung, metric): another machine's float32 kernels round a
  few hundred training steps into different images on some concepts, so one row is not a stable unit,
  while the mean over concepts is. This tier catches a changed method, budget or suite.

The tolerances come from a measurement of that variation (``python -m benchmark.gate.variation``, rule in
docs/DECISIONS.md); a tolerance file without suite sections compares every row row by row.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from metrics.spec import METRICS

from .rows import ResultRow, read_rows

DEFAULT_RTOL = 1e-3
DEFAULT_ATOL = 1e-6

COMPARED_FIELDS: tuple[str, ...] = ("suite_version", "method_version", "metric_version", "backbone", "n")
"""Fields that must be equal before two values are compared at all."""

TIERS: tuple[str, ...] = ("fixed", "trained")
FIXED_INPUT_METHODS = frozenset({"base", "real"})
"""Rows of these methods involve no training: the base model's images and the reference photos."""

# informational fields a tolerance file may carry (what the measurement found, which runs it used)
_INFO_FIELDS = {"rule", "margin", "generated_by", "runs", "description", "measured", "compared_as"}

_KIND_ORDER = {"drift": 0, "changed": 1, "missing": 2, "new": 3}


COMMITTED_RESULTS = Path(__file__).resolve().parent / "results"
"""Where the committed result rows and the committed tolerance file live."""


def committed_tolerances() -> Tolerances:
    """The committed tolerance file (``leaderboard/results/tolerances.json``), or the defaults where it
    is absent."""
    path = COMMITTED_RESULTS / "tolerances.json"
    return make_tolerances(path if path.is_file() else None)


def is_committed(row: ResultRow) -> bool:
    """Whether ``row`` was read from a file under ``leaderboard/results/``."""
    file = row.source.rpartition(":")[0]
    try:
        return Path(file).resolve().is_relative_to(COMMITTED_RESULTS)
    except (OSError, ValueError):
        return False


def merge_tolerance(tolerances: Tolerances, row: ResultRow) -> Tolerance | None:
    """The tolerance within which two copies of ``row`` from different files are the same row: its
    suite's fixed tier (or the file's defaults for a suite without a section) for a row no training
    produced; None (exact agreement needed) for a trained row, which other machines legitimately move
    further than one row can be checked (the gate compares those as means)."""
    if row_tier(row) != "fixed":
        return None
    suite = tolerances.for_suite(row.suite)
    if suite is None:
        return tolerances.for_metric(row.metric, row.metric_version)
    return suite.fixed.for_metric(row.metric, row.metric_version)


def copies_merger(tolerances: Tolerances | None = None) -> Callable[[ResultRow, ResultRow], ResultRow | None]:
    """For :func:`leaderboard.rows.read_rows`: two copies of a fixed-tier row (same identity and
    configuration hash, from two files) are one row when they agree within :func:`merge_tolerance`
    (``tolerances``, default: the committed file); the committed copy is kept where one is committed."""
    loaded: list[Tolerances] = [] if tolerances is None else [tolerances]

    def merge(first: ResultRow, other: ResultRow) -> ResultRow | None:
        if not loaded:  # the committed file, read only when two copies need comparing
            loaded.append(committed_tolerances())
        tol = merge_tolerance(loaded[0], first)
        if tol is None or abs(first.value - other.value) > tol.bound(first.value):
            return None
        return other if is_committed(other) and not is_committed(first) else first

    return merge


def read_results(
    paths: Iterable[str | os.PathLike[str]], tolerances: Tolerances | None = None
) -> list[ResultRow]:
    """:func:`leaderboard.rows.read_rows` with shared reference rows merged within the fixed-tier
    tolerance (:func:`copies_merger`): several runs' files, and a run's file with the committed rows,
    read together although their ``real``/``base`` rows differ in the last digits.

    Raises:
        RowError: as :func:`leaderboard.rows.read_rows`.
    """
    return read_rows(paths, merge=copies_merger(tolerances))


def row_tier(row: ResultRow) -> str:
    """``"fixed"`` for a row no training run produced (``base``, ``real``, an image folder), else
    ``"trained"``."""
    if row.method in FIXED_INPUT_METHODS or str(row.method_version) == "images":
        return "fixed"
    return "trained"


class ToleranceError(ValueError):
    """A tolerance value or tolerance file is invalid; the message names the file and entry."""


@dataclass(frozen=True)
class Tolerance:
    """Absolute and relative tolerance: pass when ``|fresh - base| <= atol + rtol * |base|``."""

    rtol: float
    atol: float

    def bound(self, base: float) -> float:
        """The largest allowed ``|fresh - base|``."""
        return self.atol + self.rtol * abs(base)

    def describe(self) -> str:
        """``atol A + rtol R·|baseline|``."""
        return f"atol {self.atol:g} + rtol {self.rtol:g}·|baseline|"


@dataclass(frozen=True)
class TierTolerances:
    """A default tolerance plus per-metric overrides keyed by metric key (``lfd``) or id (``lfd@2``)."""

    default: Tolerance = Tolerance(DEFAULT_RTOL, DEFAULT_ATOL)
    per_metric: Mapping[str, Tolerance] = field(default_factory=dict)

    def for_metric(self, metric: str, version: int) -> Tolerance:
        """The tolerance for ``metric@version``: its id entry, else its key entry, else the default."""
        return self.per_metric.get(f"{metric}@{version}") or self.per_metric.get(metric) or self.default


@dataclass(frozen=True)
class SuiteTolerances:
    """One suite's two tiers: ``fixed`` row by row, ``trained`` as means over concepts."""

    fixed: TierTolerances
    trained: TierTolerances


@dataclass(frozen=True)
class Tolerances(TierTolerances):
    """Tolerances for every row: per-suite tiers where the file has them (``suites``), else the default
    and per-metric entries, row by row."""

    suites: Mapping[str, SuiteTolerances] = field(default_factory=dict)

    def for_suite(self, suite: str) -> SuiteTolerances | None:
        """The suite's tiers, or None when rows of ``suite`` are compared row by row with the defaults."""
        return self.suites.get(suite)


def _tol_value(where: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ToleranceError(f"{where}: {name!r} must be a finite number >= 0, got {value!r}")
    return float(value)


def _tol_entry(where: str, entry: Any, inherit: Tolerance) -> Tolerance:
    if not isinstance(entry, dict):
        raise ToleranceError(f"{where}: expected an object with 'rtol' and/or 'atol', got {entry!r}")
    unknown = sorted(set(entry) - {"rtol", "atol"} - _INFO_FIELDS)
    if unknown:
        raise ToleranceError(
            f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; expected rtol, atol"
        )
    return Tolerance(
        rtol=_tol_value(where, "rtol", entry["rtol"]) if "rtol" in entry else inherit.rtol,
        atol=_tol_value(where, "atol", entry["atol"]) if "atol" in entry else inherit.atol,
    )


def _per_metric(where: str, metrics_doc: Any, default: Tolerance) -> dict[str, Tolerance]:
    if not isinstance(metrics_doc, dict):
        raise ToleranceError(f"{where}: 'metrics' must be an object of metric -> {{rtol, atol}}")
    out: dict[str, Tolerance] = {}
    for name, entry in metrics_doc.items():
        key, _, version = str(name).partition("@")
        if key not in METRICS or (version and not version.isdigit()):
            raise ToleranceError(
                f"{where}: metrics.{name}: unknown metric (expected a key or key@version of {', '.join(METRICS)})"
            )
        out[str(name)] = _tol_entry(f"{where}: metrics.{name}", entry, default)
    return out


def _tier(where: str, doc: Any, inherit: Tolerance) -> TierTolerances:
    if not isinstance(doc, dict):
        raise ToleranceError(f"{where}: expected an object with rtol, atol and metrics")
    unknown = sorted(set(doc) - {"rtol", "atol", "metrics"} - _INFO_FIELDS)
    if unknown:
        raise ToleranceError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}")
    default = _tol_entry(where, {k: doc[k] for k in ("rtol", "atol") if k in doc}, inherit)
    return TierTolerances(default, _per_metric(where, doc.get("metrics", {}), default))


def make_tolerances(
    path: str | os.PathLike[str] | None = None, *, rtol: float | None = None, atol: float | None = None
) -> Tolerances:
    """Resolve tolerances from built-in defaults, an optional file and command-line values.

    The file is JSON (or YAML when it ends in ``.yaml``/``.yml``)::

        {"rtol": 1e-3, "atol": 1e-6, "metrics": {"lfd": {"atol": 1e-5}, "w2@1": {"rtol": 0.01}},
         "suites": {"toy": {"fixed":   {"rtol": .., "atol": .., "metrics": {...}},
                            "trained": {"rtol": .., "atol": .., "metrics": {...}}}}}

    Precedence, lowest first: built-in defaults, the file's top level, ``rtol``/``atol`` arguments,
    the file's per-metric key entry, its per-metric id entry. A per-metric entry that gives only one of
    rtol/atol inherits the other from the resolved default. A suite section's tier without rtol or atol
    inherits the resolved default; a measured tier (``python -m benchmark.gate.variation``) states both. Informational fields (``measured``, ``runs``,
    ``rule``, ``margin``, ``generated_by``, ``description``, ``compared_as``) are allowed and ignored.

    Returns:
        The resolved :class:`Tolerances`.

    Raises:
        ToleranceError: unreadable file, bad syntax, unknown field or metric, negative or NaN values.
    """
    where = "tolerance"
    if rtol is not None:
        _tol_value("--rtol", "rtol", rtol)
    if atol is not None:
        _tol_value("--atol", "atol", atol)
    doc: dict[str, Any] = {}
    if path is not None:
        where = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ToleranceError(f"{where}: cannot read tolerance file: {exc}") from exc
        try:
            if Path(path).suffix.lower() in (".yaml", ".yml"):
                import yaml

                loaded = yaml.safe_load(text)
            else:
                loaded = json.loads(text)
        except Exception as exc:  # json and yaml raise different types; both mean bad syntax
            raise ToleranceError(f"{where}: cannot parse tolerance file: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ToleranceError(f"{where}: expected an object at the top level, got {type(loaded).__name__}")
        unknown = sorted(set(loaded) - {"rtol", "atol", "metrics", "suites"} - _INFO_FIELDS)
        if unknown:
            raise ToleranceError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}")
        doc = loaded

    top = _tol_entry(
        where, {k: doc[k] for k in ("rtol", "atol") if k in doc}, Tolerance(DEFAULT_RTOL, DEFAULT_ATOL)
    )
    default = Tolerance(rtol=top.rtol if rtol is None else rtol, atol=top.atol if atol is None else atol)
    per_metric = _per_metric(where, doc.get("metrics", {}), default)
    suites_doc = doc.get("suites", {})
    if not isinstance(suites_doc, dict):
        raise ToleranceError(f"{where}: 'suites' must be an object of suite -> {{fixed, trained}}")
    suites: dict[str, SuiteTolerances] = {}
    for name, section in suites_doc.items():
        at = f"{where}: suites.{name}"
        if not isinstance(section, dict) or set(section) - _INFO_FIELDS != set(TIERS):
            raise ToleranceError(f"{at}: expected an object with exactly the tiers 'fixed' and 'trained'")
        suites[str(name)] = SuiteTolerances(
            fixed=_tier(f"{at}.fixed", section["fixed"], default),
            trained=_tier(f"{at}.trained", section["trained"], default),
        )
    return Tolerances(default=default, per_metric=per_metric, suites=suites)


@dataclass(frozen=True)
class Finding:
    """One reason the gate fails."""

    kind: str
    key: tuple[str, ...]
    message: str
    tier: str = ""  # for drift: the tier that compared it ("fixed", "trained" or "row")


@dataclass(frozen=True)
class CheckReport:
    """The outcome of :func:`compare_rows`.

    ``n_compared`` counts compared row pairs; ``n_groups`` the (method, rung, metric) means compared in the
    trained tier; ``worst`` the largest |diff|/tolerance of each tier (``row`` where rows are compared
    row by row with the file's defaults)."""

    findings: tuple[Finding, ...]
    n_fresh: int
    n_baseline: int
    n_compared: int
    worst_ratio: float
    tolerances: Tolerances
    n_groups: int = 0
    worst: Mapping[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing drifted, changed, went missing or appeared."""
        return not self.findings

    def count(self, kind: str) -> int:
        """Number of findings of ``kind`` (drift, changed, missing, new)."""
        return sum(1 for f in self.findings if f.kind == kind)

    def summary(self) -> str:
        """A one-line verdict."""
        tol = self.tolerances.default
        if self.tolerances.suites:
            basis = f"measured tolerances for {', '.join(sorted(self.tolerances.suites))}"
        else:
            overrides = (
                f", {len(self.tolerances.per_metric)} per-metric override(s)"
                if self.tolerances.per_metric
                else ""
            )
            basis = f"rtol {tol.rtol:g}, atol {tol.atol:g}{overrides}"
        tiers = "; ".join(f"{tier} {ratio:.3g}" for tier, ratio in sorted(self.worst.items()))
        tiers = tiers if self.tolerances.suites else ""
        if self.ok:
            groups = f", trained rows as {self.n_groups} means over concepts" if self.n_groups else ""
            return (
                f"check OK: {self.n_compared} rows match the baseline within tolerance ({basis}{groups}); "
                f"largest |diff|/tolerance {self.worst_ratio:.3g}" + (f" ({tiers})" if tiers else "")
            )
        return (
            f"check FAILED: {self.count('drift')} drifted, {self.count('changed')} changed (version, backbone or n), "
            f"{self.count('missing')} missing, {self.count('new')} new "
            f"({self.n_baseline} baseline rows, {self.n_fresh} fresh rows; {basis})"
        )


def _sub_key(row: ResultRow) -> tuple[str, str, str, str]:
    return (str(row.suite_version), str(row.method_version), str(row.metric_version), row.backbone or "")


def _label(row: ResultRow) -> str:
    return row.describe()


def _key(row: ResultRow) -> tuple[str, ...]:
    return (row.suite, row.method, "" if row.rung is None else f"{row.rung:g}", row.concept, row.metric)


def _changed(fresh: ResultRow, base: ResultRow) -> Finding | None:
    key = _key(base)
    changes = [
        f"{name} {getattr(base, name)!r} → {getattr(fresh, name)!r}"
        for name in COMPARED_FIELDS
        if getattr(base, name) != getattr(fresh, name)
    ]
    if not changes:
        return None
    message = (
        f"CHANGED {' '.join(k for k in key if k)}: {', '.join(changes)} "
        f"(baseline → fresh; values not compared, regenerate the baseline if this is intended) "
        f"[fresh {fresh.source}, baseline {base.source}]"
    )
    return Finding("changed", key, message)


def _ratio(diff: float, bound: float) -> float:
    return diff / bound if bound > 0 else (0.0 if diff == 0 else math.inf)


def _compare_values(
    fresh: ResultRow, base: ResultRow, tol: Tolerance, tier: str
) -> tuple[Finding | None, float]:
    diff = abs(fresh.value - base.value)
    bound = tol.bound(base.value)
    ratio = _ratio(diff, bound)
    if diff <= bound:
        return None, ratio
    message = (
        f"DRIFT   {_label(base)}: fresh {fresh.value!r} vs baseline {base.value!r}, |diff| {diff:.3g} > "
        f"tolerance {bound:.3g} ({tol.describe()}; {tier} tier, row by row) "
        f"[fresh {fresh.source}, baseline {base.source}]"
    )
    return Finding("drift", _key(base), message, tier), ratio


def _compare_group(pairs: list[tuple[ResultRow, ResultRow]], tol: Tolerance) -> tuple[Finding | None, float]:
    base = pairs[0][1]
    mean_fresh = math.fsum(f.value for f, _ in pairs) / len(pairs)
    mean_base = math.fsum(b.value for _, b in pairs) / len(pairs)
    diff = abs(mean_fresh - mean_base)
    bound = tol.bound(mean_base)
    ratio = _ratio(diff, bound)
    if diff <= bound:
        return None, ratio
    rung = "" if base.rung is None else f" ×{base.rung:g}"
    worst = max(pairs, key=lambda p: abs(p[0].value - p[1].value))
    message = (
        f"DRIFT   {base.suite}@{base.suite_version} {base.method}@{base.method_version}{rung} "
        f"{base.metric}@{base.metric_version}, mean over {len(pairs)} concepts: fresh {mean_fresh!r} vs "
        f"baseline {mean_base!r}, |diff| {diff:.3g} > tolerance {bound:.3g} ({tol.describe()}; trained tier); "
        f"largest row change: {worst[1].concept} {worst[1].value!r} → {worst[0].value!r} "
        f"[fresh {worst[0].source}, baseline {worst[1].source}]"
    )
    key = (base.suite, base.method, "" if base.rung is None else f"{base.rung:g}", "", base.metric)
    return Finding("drift", key, message, "trained"), ratio


def restrict_to_fresh(fresh: Sequence[ResultRow], baseline: Sequence[ResultRow]) -> list[ResultRow]:
    """The baseline rows of the (suite, method, rung) groups the fresh rows have: a partial rerun (a few
    methods, a few rungs) checked against the whole committed board without its other rows reading as
    missing. A group the rerun has is still checked row by row, so a row it lost is still missing."""
    wanted = {(r.suite, r.method, r.rung) for r in fresh}
    return [r for r in baseline if (r.suite, r.method, r.rung) in wanted]


def compare_rows(
    fresh: Sequence[ResultRow], baseline: Sequence[ResultRow], tolerances: Tolerances | None = None
) -> CheckReport:
    """Compare fresh rows with baseline rows.

    Rows are matched on (suite, method, rung, concept, metric). When each side has exactly one row for a key
    they are compared even if their versions differ (reported as ``changed``); when a side has several
    rows for a key (several versions or backbones), rows are matched on (suite_version, method_version,
    metric_version, backbone) as well. Values are compared by tier (module docstring): fixed rows and the
    rows of suites without a tolerance section row by row, trained rows of a suite with one as the mean
    over the concepts both sides have of each (method, rung, metric).

    Returns:
        A :class:`CheckReport` whose findings are sorted by key, then kind.
    """
    tolerances = tolerances or Tolerances()
    by_key_fresh: dict[tuple[str, ...], list[ResultRow]] = defaultdict(list)
    by_key_base: dict[tuple[str, ...], list[ResultRow]] = defaultdict(list)
    for row in fresh:
        by_key_fresh[_key(row)].append(row)
    for row in baseline:
        by_key_base[_key(row)].append(row)

    findings: list[Finding] = []
    compared = 0
    worst: dict[str, float] = {}
    groups: dict[tuple[Any, ...], list[tuple[ResultRow, ResultRow]]] = defaultdict(list)
    group_tol: dict[tuple[Any, ...], Tolerance] = {}
    for key in sorted(set(by_key_fresh) | set(by_key_base)):
        f_rows, b_rows = by_key_fresh.get(key, []), by_key_base.get(key, [])
        pairs: list[tuple[ResultRow, ResultRow]] = []
        if len(f_rows) == 1 and len(b_rows) == 1:
            pairs.append((f_rows[0], b_rows[0]))
            f_rest: list[ResultRow] = []
            b_rest: list[ResultRow] = []
        else:
            f_by = {_sub_key(r): r for r in f_rows}
            b_by = {_sub_key(r): r for r in b_rows}
            pairs.extend((f_by[k], b_by[k]) for k in sorted(set(f_by) & set(b_by)))
            f_rest = [f_by[k] for k in sorted(set(f_by) - set(b_by))]
            b_rest = [b_by[k] for k in sorted(set(b_by) - set(f_by))]
        for f_row, b_row in pairs:
            compared += 1
            changed = _changed(f_row, b_row)
            if changed is not None:
                findings.append(changed)
                continue
            suite = tolerances.for_suite(b_row.suite)
            tier = row_tier(b_row)
            if suite is None:
                finding, ratio = _compare_values(
                    f_row, b_row, tolerances.for_metric(b_row.metric, b_row.metric_version), "row"
                )
                tier = "row"
            elif tier == "fixed":
                tol = suite.fixed.for_metric(b_row.metric, b_row.metric_version)
                finding, ratio = _compare_values(f_row, b_row, tol, tier)
            else:
                gkey = (
                    b_row.suite,
                    b_row.suite_version,
                    b_row.method,
                    b_row.method_version,
                    b_row.rung,
                    b_row.metric,
                    b_row.metric_version,
                    b_row.backbone,
                )
                groups[gkey].append((f_row, b_row))
                group_tol[gkey] = suite.trained.for_metric(b_row.metric, b_row.metric_version)
                continue
            worst[tier] = max(worst.get(tier, 0.0), ratio)
            if finding is not None:
                findings.append(finding)
        findings.extend(
            Finding("missing", key, f"MISSING {_label(r)}: in baseline ({r.source}), not in fresh rows")
            for r in b_rest
        )
        findings.extend(
            Finding("new", key, f"NEW     {_label(r)}: in fresh rows ({r.source}), not in baseline")
            for r in f_rest
        )
    for gkey in sorted(groups, key=str):
        finding, ratio = _compare_group(groups[gkey], group_tol[gkey])
        worst["trained"] = max(worst.get("trained", 0.0), ratio)
        if finding is not None:
            findings.append(finding)
    findings.sort(key=lambda f: (f.key, _KIND_ORDER[f.kind], f.message))
    return CheckReport(
        findings=tuple(findings),
        n_fresh=len(fresh),
        n_baseline=len(baseline),
        n_compared=compared,
        worst_ratio=max(worst.values(), default=0.0),
        tolerances=tolerances,
        n_groups=len(groups),
        worst=worst,
    )
