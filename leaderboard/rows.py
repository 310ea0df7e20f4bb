"""Result rows: the pinned JSONL contract between the harness and the leaderboard.

One row per (method, concept, metric). Reading validates every field and raises :class:`RowError`
naming the file, the line and the field, so a bad row never turns silently into a wrong table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leaderboard.row_schema import RowError, parse_created_at, validate_row

__all__ = [
    "IDENTITY_FIELDS",
    "REQUIRED_FIELDS",
    "ResultRow",
    "RowError",
    "check_unique",
    "expand_paths",
    "parse_created_at",
    "parse_row",
    "read_jsonl",
    "read_rows",
    "row_identity",
    "version_sort_key",
]

Version = int | str
"""A suite or method version: an integer, or a non-empty string such as ``"2024-06"``."""

REQUIRED_FIELDS: tuple[str, ...] = (
    "suite",
    "suite_version",
    "method",
    "method_version",
    "rung",
    "concept",
    "metric",
    "metric_version",
    "value",
    "n",
    "backbone",
    "config_hash",
    "created_at",
    "package_version",
    "git_rev",
)
"""Fields every row carries (``extra`` is optional and defaults to an empty dict). ``rung`` is the training
budget as a multiple of the method's tuned steps (``1.0``: the tuned budget; ``null`` for rows of no
training run: ``base``, ``real``, image folders); a row written before the field existed reads as null."""

IDENTITY_FIELDS: tuple[str, ...] = (
    "suite",
    "suite_version",
    "method",
    "method_version",
    "rung",
    "concept",
    "metric",
    "metric_version",
    "backbone",
)
"""What makes a row unique; the harness keeps one row per identity in a results file."""


def row_identity(row: Mapping[str, Any]) -> tuple[str, ...]:
    """A row's identity (:data:`IDENTITY_FIELDS` as strings; a missing backbone or rung is ``""``)."""
    return tuple("" if row.get(k) is None else str(row.get(k)) for k in IDENTITY_FIELDS)


def rung_label(rung: float | None) -> str:
    """How a rung is printed: ``×0.25``, ``×1``; ``—`` for none."""
    return "—" if rung is None else f"×{rung:g}"


@dataclass(frozen=True)
class ResultRow:
    """One validated result row.

    ``source`` (``"path:line"``) is kept for error messages and is not part of equality.
    """

    suite: str
    suite_version: Version
    method: str
    method_version: Version
    rung: float | None
    concept: str
    metric: str
    metric_version: int
    value: float
    n: int
    backbone: str | None
    config_hash: str
    created_at: str
    package_version: str
    git_rev: str | None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    source: str = field(default="", compare=False, hash=False)

    @property
    def metric_id(self) -> str:
        """Versioned metric identifier, e.g. ``lfd@1``."""
        return f"{self.metric}@{self.metric_version}"

    @property
    def identity(self) -> tuple[str, ...]:
        """What makes a row unique: two rows with the same identity would be averaged twice."""
        return row_identity(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The row as written to a results file (the pinned fields and ``extra``)."""
        return {**{name: getattr(self, name) for name in REQUIRED_FIELDS}, "extra": dict(self.extra)}

    def describe(self) -> str:
        """Short human-readable key, e.g. ``dreambench@1 dreambooth@1 dog clip_t@1`` (``×2`` for rung 2)."""
        rung = "" if self.rung is None or self.rung == 1.0 else f" {rung_label(self.rung)}"
        return (
            f"{self.suite}@{self.suite_version} {self.method}@{self.method_version}{rung} "
            f"{self.concept} {self.metric_id}"
        )


def version_sort_key(version: Version) -> tuple[int, int, str]:
    """Sort key that orders integer versions numerically and before string versions."""
    if isinstance(version, int):
        return (0, version, "")
    return (1, 0, version)


def parse_row(obj: Any, where: str) -> ResultRow:
    """Validate one decoded JSON object (against :class:`leaderboard.row_schema.RowModel`).

    Args:
        obj: the decoded JSON value of one line.
        where: ``"path:line"``, used in error messages and kept as ``ResultRow.source``.

    Returns:
        The validated row. Fields beyond the contract are ignored.

    Raises:
        RowError: ``obj`` is not an object, a required field is missing, a field has the wrong type,
            ``value`` is NaN or infinite, or ``metric`` is not a known metric key.
    """
    row = validate_row(obj, where)
    return ResultRow(
        **{name: getattr(row, name) for name in REQUIRED_FIELDS},
        extra=obj.get("extra") or {},
        source=where,
    )


def read_jsonl(path: str | os.PathLike[str]) -> list[ResultRow]:
    """Read and validate one JSONL results file. Blank lines are skipped.

    Returns:
        The rows in file order.

    Raises:
        RowError: the file cannot be read, a line is not JSON, a row is invalid, or two rows have the
            same identity (suite, versions, method, concept, metric, backbone).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RowError(f"{path}: cannot read results file: {exc}") from exc
    rows: list[ResultRow] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RowError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        rows.append(parse_row(obj, where))
    check_unique(rows)
    return rows


def check_unique(rows: Iterable[ResultRow]) -> None:
    """Raise when two rows share an identity.

    Raises:
        RowError: naming both locations and the duplicated key.
    """
    seen: dict[tuple[str, ...], ResultRow] = {}
    for row in rows:
        first = seen.setdefault(row.identity, row)
        if first is not row:
            hashes = (
                f" with config_hash {first.config_hash!r} and {row.config_hash!r} (a config changed without a "
                "method_version bump? keep one set of rows or bump the version)"
                if first.config_hash != row.config_hash
                else ""
            )
            raise RowError(
                f"{row.source}: duplicate row {row.describe()} (backbone {row.backbone!r}); first seen at "
                f"{first.source}{hashes}; a leaderboard never averages two rows of one concept"
            )


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Turn the command-line RESULTS arguments into files: a directory stands for its ``*.jsonl``.

    Returns:
        Files in argument order; a directory's files sorted by path.

    Raises:
        RowError: a path does not exist, or a directory holds no ``*.jsonl`` file.
    """
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(path.rglob("*.jsonl"))
            if not found:
                raise RowError(f"{path}: directory holds no *.jsonl results file")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise RowError(f"{path}: no such results file")
    return files


def read_rows(
    paths: Iterable[str | os.PathLike[str]],
    merge: Callable[[ResultRow, ResultRow], ResultRow | None] | None = None,
) -> list[ResultRow]:
    """Read and validate every results file (or directory of ``*.jsonl`` files).

    A row that several files hold (the ``real`` and ``base`` reference rows every run of a suite writes)
    is kept once when both copies have the same configuration hash and are the same row: equal values,
    or what ``merge(first, other)`` says — the copy to keep, or None when they differ
    (:func:`leaderboard.check.read_results` merges within the gate's fixed-tier tolerance).

    Returns:
        All rows, in the order read.

    Raises:
        RowError: as :func:`read_jsonl`, also for copies that disagree, duplicates within a file and for
            no input at all.
    """
    rows: list[ResultRow] = []
    files = expand_paths(paths)
    if not files:
        raise RowError("no results files given")
    seen: dict[tuple[str, ...], int] = {}
    for path in files:
        for row in read_jsonl(path):
            index = seen.get(row.identity)
            if index is not None and rows[index].source.rpartition(":")[0] != row.source.rpartition(":")[0]:
                first = rows[index]
                if first.config_hash == row.config_hash:
                    if first.value == row.value:
                        continue  # the same row in two runs (a shared reference row): one copy
                    kept = merge(first, row) if merge is not None else None
                    if kept is not None:
                        rows[index] = kept
                        continue
                raise RowError(
                    f"{row.source}: row {row.describe()} differs from the one in {first.source} "
                    f"(value {first.value!r} vs {row.value!r}, config_hash {first.config_hash!r} vs "
                    f"{row.config_hash!r}); keep one of the two files or regenerate one"
                )
            seen.setdefault(row.identity, len(rows))
            rows.append(row)
    check_unique(rows)
    return rows
