"""Result rows as a ``pandas.DataFrame``: one row per result, typed columns, the pinned fields.

For people who plot their own figures::

    from leaderboard import load_results
    df = load_results(["runs/toy/results.jsonl"])
    df[df.metric == "w2"].pivot_table(index="method", columns="concept", values="value")

The leaderboard's own aggregation reads rows through :func:`rows_frame` too.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import pandas as pd

from .check import read_results
from .rows import REQUIRED_FIELDS, ResultRow

COLUMNS: tuple[str, ...] = (*REQUIRED_FIELDS, "extra", "source")
"""The frame's columns: the pinned fields, ``extra`` (a dict per row) and ``source`` (``path:line``)."""

_TEXT = (
    "suite",
    "method",
    "concept",
    "metric",
    "backbone",
    "config_hash",
    "package_version",
    "git_rev",
    "source",
)


def rows_frame(rows: Iterable[ResultRow]) -> pd.DataFrame:
    """A frame of validated rows (in the given order), with typed columns.

    ``value`` and ``rung`` are float64 (a row of no training run has rung NaN), ``n`` and ``metric_version`` int64, ``created_at`` a UTC timestamp, the text
    fields pandas strings; ``suite_version`` and ``method_version`` keep their int-or-string values
    (object columns); ``extra`` holds each row's dict.
    """
    records = [
        {
            **{name: getattr(row, name) for name in REQUIRED_FIELDS},
            "extra": dict(row.extra),
            "source": row.source,
        }
        for row in rows
    ]
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    frame = frame.astype({"value": "float64", "n": "int64", "metric_version": "int64", "rung": "float64"})
    frame = frame.astype({c: "string" for c in _TEXT})
    frame["suite_version"] = frame["suite_version"].astype(object)
    frame["method_version"] = frame["method_version"].astype(object)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True, format="ISO8601")
    return frame


def load_results(paths: Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """Read and validate results files (or folders of ``*.jsonl``) into one frame.

    Raises:
        RowError: as :func:`leaderboard.check.read_results` (bad rows, disagreeing copies, no input).
    """
    return rows_frame(read_results(paths))
