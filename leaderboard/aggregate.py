"""Aggregate result rows per method: mean over concepts with a cluster-robust t interval.

Concepts that share the base model's images (:func:`leaderboard.paired.clusters_from_base`) are one
independent unit, so each cell's interval is :func:`leaderboard.clustered.cluster_t_interval` — the same
interval as the paired differences and the headline, with the simulated coverage in docs/METRICS.md — and
fewer than :data:`leaderboard.clustered.MIN_UNITS` concepts give the mean and "n too small".

Rows are grouped by (suite, suite_version, metric, metric_version, backbone). Rows from different
groups are never averaged together: each (suite, suite_version) is its own section, and each
(metric, metric_version, backbone) within it its own column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from metrics.spec import METRICS, MetricSpec

from .clustered import cluster_t_interval
from .frame import rows_frame
from .learning import Assessment, assess
from .paired import DEFAULT_REFERENCE, PairedCell, PairedTable, all_pairs, clusters_from_base, paired_table
from .references import REFERENCE_METHODS
from .rows import ResultRow, RowError, Version, parse_created_at, version_sort_key
from .scale import RAW, DisplayScale
from .stats import DEFAULT_LEVEL, Interval
from .trajectory import Headline, build_headline


def clustered_mean(values: Mapping[str, float], clusters: Mapping[str, str], level: float) -> Interval:
    """The concept-weighted mean of ``values`` (concept -> value) with its cluster-t interval; with fewer
    than :data:`leaderboard.clustered.MIN_UNITS` concepts (or one cluster) the mean and ``too_few``."""
    got = cluster_t_interval(values, clusters, level)
    if got.low is None or got.high is None:
        return Interval(got.mean, got.mean, got.mean, too_few=True, clusters=got.clusters)
    return Interval(got.mean, got.low, got.high, clusters=got.clusters)


AGGREGATORS = {"mean": clustered_mean}
"""How rows combine over concepts, by a spec's ``aggregation``: the mean with its cluster-t interval."""


@dataclass(frozen=True)
class MethodKey:
    """A method at one version; different versions of a method are never averaged together."""

    method: str
    version: Version

    @property
    def is_reference(self) -> bool:
        """Whether this is one of the reference rows (``base``, ``real``)."""
        return self.method in REFERENCE_METHODS

    @property
    def label(self) -> str:
        """``method@version``."""
        return f"{self.method}@{self.version}"

    def sort_key(self) -> tuple[int, int, str, tuple[int, int, str]]:
        """Customization methods by name, then the references in SPEC order."""
        ref = REFERENCE_METHODS.index(self.method) if self.is_reference else -1
        return (int(self.is_reference), ref, self.method, version_sort_key(self.version))


@dataclass(frozen=True)
class MethodStat:
    """One method's aggregate in one group."""

    key: MethodKey
    interval: Interval
    concepts: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def n_concepts(self) -> int:
        """Number of concepts this method has rows for in the group."""
        return len(self.concepts)


@dataclass(frozen=True)
class Group:
    """All rows of one metric definition version on one backbone within one suite version."""

    metric: str
    metric_version: int
    backbone: str | None
    spec: MetricSpec
    scale: DisplayScale
    stats: tuple[MethodStat, ...]

    @property
    def metric_id(self) -> str:
        """``metric@version``."""
        return f"{self.metric}@{self.metric_version}"

    @property
    def definition_known(self) -> bool:
        """False when the rows use a metric version this package does not define."""
        return self.spec.version == self.metric_version

    @property
    def arrow(self) -> str:
        """Orientation arrow read from the metric spec."""
        return self.spec.arrow

    def stat_for(self, key: MethodKey) -> MethodStat | None:
        """This group's aggregate for ``key``, or None when the method has no rows here."""
        for stat in self.stats:
            if stat.key == key:
                return stat
        return None


@dataclass(frozen=True)
class Section:
    """One suite at one version: its concepts, methods and metric groups."""

    suite: str
    suite_version: Version
    concepts: tuple[str, ...]
    methods: tuple[MethodKey, ...]
    groups: tuple[Group, ...]
    n_rows: int
    learning: Assessment | None = None
    units: int = 0  # independent units of the intervals: concepts that share base images count once

    @property
    def label(self) -> str:
        """``suite@version``."""
        return f"{self.suite}@{self.suite_version}"

    def did_not_learn(self, key: MethodKey) -> bool:
        """Whether ``key`` is flagged (its fidelity is not above the base model's: :mod:`leaderboard.learning`),
        so none of its numbers is ranked."""
        return self.learning is not None and (key.method, key.version) in self.learning.unranked

    def concepts_of(self, key: MethodKey) -> tuple[str, ...]:
        """Concepts the method has at least one row for, in any group of this section."""
        found: set[str] = set()
        for group in self.groups:
            stat = group.stat_for(key)
            if stat is not None:
                found.update(stat.concepts)
        return tuple(sorted(found))

    def groups_for(self, metric: str) -> tuple[Group, ...]:
        """Groups of this section whose metric key is ``metric``."""
        return tuple(g for g in self.groups if g.metric == metric)


@dataclass(frozen=True)
class Leaderboard:
    """Everything the renderers need; built only from rows and metric specs."""

    sections: tuple[Section, ...]
    n_rows: int
    latest_created_at: str
    package_versions: tuple[str, ...]
    git_revs: tuple[str, ...]
    level: float
    headlines: tuple[Headline | None, ...] = ()
    paired: tuple[PairedTable | None, ...] = ()
    pairs: tuple[tuple[PairedCell, ...], ...] = ()
    graders: tuple[str, ...] = ()  # metrics of role grader whose rows were read and left off the page
    n_grader_rows: int = 0

    def grader_sentence(self) -> str:
        """Which rows the page leaves out and why ("" when there are none)."""
        if not self.graders:
            return ""
        return (
            f"The {self.n_grader_rows} rows of {', '.join(self.graders)} (a synthetic suite's ground truth, "
            "the oracle) are left off this page: the oracle grades the metrics (docs/VALIDITY.md), it is never "
            "one of them."
        )

    def headline_for(self, section: Section) -> Headline | None:
        """The matched-fidelity headline of ``section`` (None without trajectory data)."""
        for s, h in zip(self.sections, self.headlines, strict=False):
            if s is section:
                return h
        return None

    def paired_for(self, section: Section) -> PairedTable | None:
        """Every method against the reference method on ``section`` (None: the reference has no rows)."""
        for s, p in zip(self.sections, self.paired, strict=False):
            if s is section:
                return p
        return None


def _metric_order(metric: str) -> int:
    return list(METRICS).index(metric)


def build_leaderboard(
    rows: Iterable[ResultRow],
    *,
    scales: Mapping[str, DisplayScale] | None = None,
    level: float = DEFAULT_LEVEL,
    fidelity_levels: Mapping[str, Sequence[float]] | None = None,
    level_rules: Mapping[str, str] | None = None,
    headline_notes: Mapping[str, Sequence[str]] | None = None,
    references: Mapping[str, str] | None = None,
    leads: Mapping[str, tuple[str, str]] | None = None,
) -> Leaderboard:
    """Group rows and aggregate each method over concepts.

    The result depends only on the set of rows (not their order), so rendering it twice gives
    identical bytes.

    Args:
        rows: validated rows (see :func:`leaderboard.rows.read_rows`).
        scales: display scale per metric key; unnamed metrics are shown raw.
        level: the intervals' confidence level (:func:`clustered_mean`).
        fidelity_levels: per suite name, the fidelity levels of the matched-fidelity headline (the CLI
            passes the suite profile's ``headline_levels``; none: no matched-fidelity reading).
        level_rules: per suite name, how those levels were fixed (shown on the page).
        headline_notes: per suite name, the profile's measured findings printed under the headline.
        references: per suite name, the method every other is compared with in paired differences
            (default :data:`DEFAULT_REFERENCE`; the CLI passes the suite profile's ``reference_method``).
        leads: per suite name, (the concept-specific measure that heads the headline's overfitting columns,
            how it was chosen): the suite profile's ``headline_specific`` and its rule (none: the metric
            registry's order).

    Returns:
        The :class:`Leaderboard`.

    Raises:
        RowError: no rows.
        ValueError: a level outside (0, 1).
    """
    rows = list(rows)
    if not rows:
        raise RowError("no result rows to aggregate")
    if not 0.0 < level < 1.0:
        raise ValueError(f"build_leaderboard: level must be in (0, 1), got {level}; pass e.g. 0.95")
    scales = dict(scales or {})
    levels = dict(fidelity_levels or {})
    everything = rows_frame(rows)
    graded = everything["metric"].map(lambda m: m in METRICS and METRICS[m].role == "grader")
    graders = tuple(sorted(set(everything.loc[graded, "metric"])))
    everything = everything[~graded]  # the oracle grades the metrics; it is never one of them
    if everything.empty:
        raise RowError("no result rows to aggregate: only rows of grader metrics (the oracle), never shown")
    parts = sorted(
        everything.groupby(["suite", "suite_version"], sort=False),
        key=lambda item: (item[0][0], version_sort_key(item[0][1])),
    )
    sections, headlines, paired, pairs = [], [], [], []
    refs = dict(references or {})
    lead_of = dict(leads or {})
    for (suite, version), part in parts:
        # the tables show each method at its tuned budget (rung 1) and the untrained references
        tuned = part[part["rung"].isna() | (part["rung"] == 1.0)]
        clusters = clusters_from_base(part)
        lead, lead_rule = lead_of.get(str(suite), ("", ""))
        sections.append(_build_section(str(suite), version, tuned, scales, level, clusters))
        headlines.append(
            build_headline(
                part,
                unranked=frozenset(m for m, _ in sections[-1].learning.unranked)
                if sections[-1].learning is not None
                else frozenset(),
                levels=levels.get(str(suite), ()),
                level_rule=dict(level_rules or {}).get(str(suite), ""),
                notes=dict(headline_notes or {}).get(str(suite), ()),
                clusters=clusters,
                lead=lead,
                lead_rule=lead_rule,
            )
        )
        every_pair = tuple(all_pairs(part))
        paired.append(paired_table(part, refs.get(str(suite), DEFAULT_REFERENCE), every_pair, lead))
        pairs.append(every_pair)

    latest = max(rows, key=lambda r: (parse_created_at(r.created_at), r.created_at)).created_at
    return Leaderboard(
        sections=tuple(sections),
        n_rows=len(rows),
        latest_created_at=latest,
        package_versions=tuple(sorted({r.package_version for r in rows})),
        git_revs=tuple(sorted({r.git_rev for r in rows if r.git_rev is not None})),
        level=level,
        headlines=tuple(headlines),
        paired=tuple(paired),
        pairs=tuple(pairs),
        graders=graders,
        n_grader_rows=int(graded.sum()),
    )


def _build_section(
    suite: str,
    suite_version: Version,
    rows: pd.DataFrame,
    scales: Mapping[str, DisplayScale],
    level: float,
    clusters: Mapping[str, str],
) -> Section:
    concepts = tuple(sorted(set(rows["concept"])))
    keyed = rows.assign(backbone=rows["backbone"].astype(object).where(rows["backbone"].notna(), None))
    groups = []
    by_group = keyed.groupby(["metric", "metric_version", "backbone"], sort=False, dropna=False)
    for (metric, metric_version, backbone), part in sorted(
        by_group, key=lambda item: (_metric_order(item[0][0]), item[0][1], item[0][2] or "")
    ):
        per_method = {
            MethodKey(str(m), v): dict(zip(p["concept"], p["value"], strict=True))
            for (m, v), p in part.groupby(["method", "method_version"], sort=False)
        }
        stats = []
        aggregate = AGGREGATORS[METRICS[str(metric)].aggregation]
        for key in sorted(per_method, key=MethodKey.sort_key):
            values = per_method[key]
            have = tuple(sorted(values))
            interval = aggregate({c: float(values[c]) for c in have}, clusters, level)
            missing = tuple(c for c in concepts if c not in values)
            stats.append(MethodStat(key=key, interval=interval, concepts=have, missing=missing))
        groups.append(
            Group(
                metric=str(metric),
                metric_version=int(metric_version),
                backbone=None if backbone is None or pd.isna(backbone) else str(backbone),
                spec=METRICS[str(metric)],
                scale=scales.get(str(metric), RAW),
                stats=tuple(stats),
            )
        )
    methods = tuple(sorted({s.key for g in groups for s in g.stats}, key=MethodKey.sort_key))
    return Section(
        suite=suite,
        suite_version=suite_version,
        concepts=concepts,
        methods=methods,
        groups=tuple(groups),
        n_rows=len(rows),
        learning=assess(rows),
        units=len({clusters.get(c, c) for c in concepts}),
    )
