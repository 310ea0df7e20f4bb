"""Paired differences between methods on the same concepts and seeds, with intervals that respect the
concepts' clusters.

Every method is trained and sampled on the same concepts, prompts and seeds, so a comparison between two
methods is the mean over concepts of their per-concept difference — not two marginal intervals side by
side. Each method is read at its tuned budget (rung 1; rows without a rung for untrained sources). The
interval is :func:`leaderboard.clustered.cluster_t_interval`: concepts that share the base model's images
(the same class noun) form a cluster. The leaderboard has no manifests, so it reads the clusters from the
rows: concepts whose base-model rows of a *reference* metric (one computed from the base model's images
alone, such as W2's floor) are bit-identical share their base images.

:func:`paired_table` compares every method with one reference method (the suite profile's
``reference_method``, ``overfit-bench leaderboard --reference NAME``); :func:`all_pairs` gives every
ordered pair, for the CSV.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from metrics.spec import METRICS

from .clustered import MIN_UNITS, ClusteredMean, cluster_t_interval

DEFAULT_REFERENCE = "infusion"  # the method the suite exists to compare against (a profile may name another)
ROLES = ("fidelity", "overfitting")  # the metrics a comparison covers (floors and diagnostics are not)
UNTRAINED = ("real",)  # sources that are not methods


@dataclass(frozen=True)
class PairedCell:
    """``method − reference`` on one metric: the clustered mean difference and how many concepts favour
    the method (by the metric's orientation)."""

    method: str
    reference: str
    metric: str
    diff: ClusteredMean
    better: int


@dataclass(frozen=True)
class PairedTable:
    """Every method against the reference on one suite version."""

    reference: str
    cells: tuple[PairedCell, ...]
    clusters: int
    concepts: int

    def cell(self, method: str, metric: str) -> PairedCell | None:
        return next((c for c in self.cells if c.method == method and c.metric == metric), None)

    reference_zero: frozenset[str] = frozenset()  # metrics on which the reference is a structural 0
    lead: str = ""  # the suite profile's headline_specific: the first overfitting column

    def structural_reference(self, metric: str) -> bool:
        return metric in self.reference_zero

    def methods(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.method for c in self.cells))


def clusters_from_base(rows: pd.DataFrame) -> dict[str, str]:
    """Concept -> cluster: concepts whose base-model rows of every reference metric are bit-identical
    (their base images are the same). Without such rows every concept is its own cluster."""
    reference_metrics = [k for k, s in METRICS.items() if s.reference]
    base = rows[(rows["method"] == "base") & rows["rung"].isna() & rows["metric"].isin(reference_metrics)]
    keys: dict[str, list[str]] = {}
    for concept, part in base.groupby("concept", sort=True):
        keys[str(concept)] = [
            f"{m}={float(v).hex()}" for m, v in sorted(zip(part["metric"], part["value"], strict=True))
        ]
    return {c: "|".join(k) for c, k in keys.items()}


def main_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Each method's rows at its tuned budget (rung 1) or, for untrained sources, without a rung."""
    keep = rows["rung"].isna() | (rows["rung"] == 1.0)
    return rows[keep & ~rows["method"].isin(UNTRAINED) & rows["metric"].isin(compared_metrics())]


def compared_metrics() -> tuple[str, ...]:
    return tuple(k for k, s in METRICS.items() if s.role in ROLES)


def _values(rows: pd.DataFrame) -> dict[tuple[str, str], dict[str, float]]:
    out: dict[tuple[str, str], dict[str, float]] = {}
    for (method, metric), part in rows.groupby(["method", "metric"], sort=True):
        out[(str(method), str(metric))] = {
            str(c): float(v) for c, v in zip(part["concept"], part["value"], strict=True)
        }
    return out


def _compare(
    table: Mapping[tuple[str, str], Mapping[str, float]],
    method: str,
    reference: str,
    metric: str,
    clusters: Mapping[str, str],
) -> PairedCell | None:
    mine, theirs = table.get((method, metric), {}), table.get((reference, metric), {})
    shared = sorted(set(mine) & set(theirs))
    if not shared:
        return None
    if METRICS[metric].structural_zero and all(mine[c] == 0.0 for c in shared):
        return None  # a structural zero is not a measurement: nothing to compare
    diffs = {c: mine[c] - theirs[c] for c in shared}
    if not all(math.isfinite(d) for d in diffs.values()):
        return None
    sign = 1.0 if METRICS[metric].higher_is_better else -1.0
    better = sum(1 for d in diffs.values() if sign * d > 0)
    return PairedCell(method, reference, metric, cluster_t_interval(diffs, clusters), better)


def paired_table(
    rows: pd.DataFrame, reference: str, pairs: Sequence[PairedCell] | None = None, lead: str = ""
) -> PairedTable | None:
    """Every other method (and the base model) against ``reference`` on one suite version's rows, or None
    when the reference has no rows there. ``pairs``: :func:`all_pairs` of the same rows, when already
    computed; ``lead``: the suite profile's ``headline_specific`` (the first overfitting column)."""
    main = main_rows(rows)
    if reference not in set(main["method"]):
        return None
    clusters = clusters_from_base(rows)
    table = _values(main)
    cells = [c for c in (all_pairs(rows) if pairs is None else pairs) if c.reference == reference]
    concepts = sorted(set(main["concept"]))
    zero = frozenset(
        m
        for (method, m), values in table.items()
        if method == reference
        and METRICS[m].structural_zero
        and values
        and all(v == 0.0 for v in values.values())
    )
    n_clusters = len({clusters.get(c, c) for c in concepts})
    return PairedTable(reference, tuple(cells), n_clusters, len(concepts), zero, lead)


def all_pairs(rows: pd.DataFrame) -> list[PairedCell]:
    """Every ordered pair of methods on every compared metric (the CSV's full table)."""
    main = main_rows(rows)
    clusters = clusters_from_base(rows)
    table = _values(main)
    methods = sorted(set(main["method"]))
    out = []
    for reference in methods:
        for method in methods:
            if method == reference:
                continue
            for metric in compared_metrics():
                cell = _compare(table, method, reference, metric, clusters)
                if cell is not None:
                    out.append(cell)
    return out


def interval_text(diff: ClusteredMean) -> str:
    """``+0.123 [+0.010, +0.236]``, or the mean and "n too small" (fewer than MIN_UNITS concepts)."""
    mean = f"{diff.mean:+.3g}"
    if diff.low is None or diff.high is None:
        return f"{mean} (n {diff.n} too small: fewer than {MIN_UNITS} concepts)"
    return f"{mean} [{diff.low:+.3g}, {diff.high:+.3g}]"


def page_metrics(table: PairedTable) -> tuple[str, ...]:
    """The page's columns: the headline's fidelity axis and overfitting measures present in the table."""
    from metrics.spec import headline_metrics

    present = {c.metric for c in table.cells}
    wanted = (*headline_metrics("fidelity")[:1], *headline_metrics("overfitting", table.lead))
    return tuple(m for m in wanted if m in present)


def paired_rows(
    table: PairedTable, unranked: frozenset[str] = frozenset()
) -> tuple[list[str], list[list[str]]]:
    """Header and text rows of the page's paired-difference table (a method that did not learn shows its
    fidelity difference only)."""
    from .learning import NOT_RANKED
    from .references import REFERENCE_METHODS, REFERENCE_NOTE

    metrics = page_metrics(table)
    header = ["method"] + [f"Δ {m} {METRICS[m].arrow} (better on)" for m in metrics]
    zero_ref = {m for m in metrics if METRICS[m].structural_zero and table.structural_reference(m)}
    body = []
    for method in table.methods():
        row = [method]
        for m in metrics:
            cell = table.cell(method, m)
            if cell is None:
                row.append("— (structural 0)" if METRICS[m].structural_zero else "—")
            elif m in zero_ref:
                row.append(f"— (reference: structural 0; own {cell.diff.mean:.3g})")
            elif method in REFERENCE_METHODS and METRICS[m].role == "overfitting":
                row.append(REFERENCE_NOTE)  # the base model changes nothing: it would win every column
            elif method in unranked and METRICS[m].role == "overfitting":
                row.append(NOT_RANKED)
            elif cell.diff.mean == 0.0 and cell.diff.low == cell.diff.high == 0.0:
                row.append("0 (the same value on every concept)")
            else:
                row.append(f"{interval_text(cell.diff)} ({cell.better}/{cell.diff.n})")
        body.append(row)
    return header, body


def paired_sentence(table: PairedTable, unranked: frozenset[str] = frozenset()) -> str:
    flagged = (
        f" The reference {table.reference} itself did not learn on this suite (see above): a difference "
        "in overfitting against it is a difference against a model that barely moved."
        if table.reference in unranked
        else ""
    )
    return (
        f"Each method minus {table.reference} on the same concepts, prompts and seeds, at the tuned budget: "
        f"mean over {table.concepts} concepts, 95% interval from the concepts' {table.clusters} clusters of "
        "shared base images (cluster-robust standard error, Student's t with clusters − 1 degrees of "
        f'freedom; no interval from fewer than {MIN_UNITS} concepts). "better on": concepts where the '
        "method is better by the metric's arrow. Every pair of methods is in paired.csv." + flagged
    )
