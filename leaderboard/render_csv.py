"""``leaderboard.csv``: one line per (suite version, metric group, method), raw stored units."""

from __future__ import annotations

import csv
import io

from metrics.spec import METRICS

from .aggregate import Leaderboard

CSV_COLUMNS: tuple[str, ...] = (
    "suite",
    "suite_version",
    "metric",
    "metric_version",
    "metric_id",
    "backbone",
    "higher_is_better",
    "method",
    "method_version",
    "reference",
    "n_concepts",
    "n_concepts_suite",
    "missing_concepts",
    "mean",
    "ci_low",
    "ci_high",
    "ci_level",
    "n_clusters",
)


def render_csv(board: Leaderboard) -> str:
    """Render every aggregate as CSV.

    Values are in the stored (raw) units whatever the display scale, printed with Python's shortest
    round-trip ``repr`` so they parse back to the exact floats. Missing concepts are ``;``-separated.
    ``ci_low``/``ci_high`` are empty where there were too few concepts for an interval; ``n_clusters`` is
    the number of independent units (concepts sharing base images count once).

    Returns:
        The CSV text with ``\\n`` line endings.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for section in board.sections:
        for group in section.groups:
            for stat in group.stats:
                writer.writerow(
                    [
                        section.suite,
                        section.suite_version,
                        group.metric,
                        group.metric_version,
                        group.metric_id,
                        group.backbone or "",
                        "true" if group.spec.higher_is_better else "false",
                        stat.key.method,
                        stat.key.version,
                        "true" if stat.key.is_reference else "false",
                        stat.n_concepts,
                        len(section.concepts),
                        ";".join(stat.missing),
                        repr(stat.interval.mean),
                        "" if stat.interval.too_few else repr(stat.interval.low),
                        "" if stat.interval.too_few else repr(stat.interval.high),
                        repr(board.level),
                        stat.interval.clusters,
                    ]
                )
    return buffer.getvalue()


PAIRED_COLUMNS: tuple[str, ...] = (
    "suite",
    "suite_version",
    "metric",
    "higher_is_better",
    "method",
    "reference",
    "n_concepts",
    "n_clusters",
    "mean_difference",
    "ci_low",
    "ci_high",
    "better_on",
)


def render_paired_csv(board: Leaderboard) -> str:
    """Every ordered pair of methods on every fidelity and overfitting metric: ``method − reference`` on
    their shared concepts at the tuned budget, with the clustered 95% interval (empty when there are too
    few concepts; ``leaderboard.paired``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(PAIRED_COLUMNS)
    for section, cells in zip(board.sections, board.pairs, strict=False):
        for c in cells:
            writer.writerow(
                [
                    section.suite,
                    section.suite_version,
                    c.metric,
                    "true" if METRICS[c.metric].higher_is_better else "false",
                    c.method,
                    c.reference,
                    c.diff.n,
                    c.diff.clusters,
                    repr(c.diff.mean),
                    "" if c.diff.low is None else repr(c.diff.low),
                    "" if c.diff.high is None else repr(c.diff.high),
                    c.better,
                ]
            )
    return buffer.getvalue()
