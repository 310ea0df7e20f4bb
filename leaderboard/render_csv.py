"""``leaderboard.csv``: one line per (suite version, metric group, method), raw stored units."""

from __future__ import annotations

import csv
import io

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
    "resamples",
    "seed",
)


def render_csv(board: Leaderboard) -> str:
    """Render every aggregate as CSV.

    Values are in the stored (raw) units whatever the display scale, printed with Python's shortest
    round-trip ``repr`` so they parse back to the exact floats. Missing concepts are ``;``-separated.

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
                        repr(stat.interval.low),
                        repr(stat.interval.high),
                        repr(board.level),
                        board.resamples,
                        board.seed,
                    ]
                )
    return buffer.getvalue()
