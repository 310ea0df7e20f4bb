"""Result rows (pinned schema) and the run folder's ``results.jsonl``.

One row per (method, concept, metric). Rows for a (method, concept, metric, config_hash) that are
already in the file are never written again; the file is rewritten through a temporary name under a
lock, so a killed run never leaves a torn line and two runs can append concurrently.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import subprocess
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from benchmark.io import atomic_write_text
from leaderboard.row_schema import validate_row
from leaderboard.rows import REQUIRED_FIELDS, read_jsonl, row_identity

# The pinned schema is defined once, by the reader that validates rows.
ROW_FIELDS: tuple[str, ...] = (*REQUIRED_FIELDS, "extra")
logger = logging.getLogger(__name__)

DEDUP_KEY = ("method", "concept", "metric", "config_hash")


@cache
def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("overfit-bench")
    except PackageNotFoundError:
        return "unknown"


@cache
def git_rev() -> str:
    """The checkout's commit (with ``+dirty`` when modified), or ``unknown`` outside git."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        )
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def make_row(
    *,
    suite: str,
    suite_version: int | str,
    method: str,
    method_version: int | str,
    concept: str,
    metric: str,
    value: float,
    n: int,
    backbone: str,
    config_hash: str,
    extra: dict[str, Any] | None = None,
    rung: float | None = None,
) -> dict[str, Any]:
    """A result row with the pinned fields; metric version comes from ``metrics.spec``.

    The row is checked against the row schema the leaderboard reads with
    (:class:`leaderboard.row_schema.RowModel`), so a row that would be refused is never written.

    Raises:
        RowError: a field the schema refuses, e.g. a value that is not a finite number (a ValueError).
        KeyError: unknown metric.
    """
    from metrics.spec import get_metric

    spec = get_metric(metric)
    row = {
        "suite": suite,
        "suite_version": suite_version,
        "method": method,
        "method_version": method_version,
        "rung": rung,
        "concept": concept,
        "metric": spec.key,
        "metric_version": spec.version,
        "value": value,
        "n": int(n),
        "backbone": backbone,
        "config_hash": config_hash,
        "created_at": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "package_version": package_version(),
        "git_rev": git_rev(),
        "extra": extra or {},
    }
    checked = validate_row(row, f"{method}/{concept}/{metric}")
    return {**{name: getattr(checked, name) for name in REQUIRED_FIELDS}, "extra": row["extra"]}


def append_rows(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Add rows not yet present (by method, concept, metric, config_hash); return how many were added.

    A new row that fills the same slot as a stored one (suite, method, rung, concept, metric and their
    versions, whatever the backbone) but has another ``config_hash`` *supersedes* it: the results file
    keeps one row per slot, the latest configuration's (a new base model or recipe would otherwise leave
    two rows the leaderboard refuses to average, and a profile that names another extractor would leave
    the old extractor's rows beside the new ones). Superseded rows are appended to ``<name>.superseded`` beside the
    file (JSON lines, not ``*.jsonl``, so leaderboard directory scans skip it), never deleted.
    """
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path.with_name(f".{path.name}.lock"))):
        existing = _read_existing(path)
        seen = {tuple(r.get(k) for k in DEDUP_KEY) for r in existing}
        new = []
        for row in rows:
            key = tuple(row.get(k) for k in DEDUP_KEY)
            if key not in seen:
                seen.add(key)
                new.append(row)
        if new:
            incoming = {_slot(r): r.get("config_hash") for r in new}
            touched = {(r.get("method"), r.get("concept")) for r in new}  # a cheap first filter
            kept: list[dict[str, Any]] = []
            superseded: list[dict[str, Any]] = []
            for r in existing:
                if (r.get("method"), r.get("concept")) not in touched:
                    kept.append(r)
                    continue
                other = incoming.get(_slot(r), r.get("config_hash"))
                (kept if other == r.get("config_hash") else superseded).append(r)
            if superseded:
                archive = superseded_path(path)
                with open(archive, "a") as f:
                    for row in superseded:
                        f.write(json.dumps(row, sort_keys=True) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
                logger.warning(
                    "%s: %d row(s) from another configuration superseded; moved to %s",
                    path,
                    len(superseded),
                    archive,
                )
            _write_rows_atomic(path, [*kept, *new])
    return len(new)


# The rows this process last wrote to each results file, their lines, and the file's stat signature
# then: a run appends once per job, and re-reading, re-validating and re-serialising the whole file each
# time made a warm run's appends quadratic (14 s of a 35 s warm run). Another writer changes the
# signature (every write renames a new file into place), so the file is read and validated again whenever
# it is not exactly what this process wrote.
_WRITTEN: dict[Path, tuple[tuple[int, int, int], list[dict[str, Any]], dict[int, str]]] = {}


def _signature(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _read_existing(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    known = _WRITTEN.get(path.resolve())
    if known is not None and known[0] == _signature(path):
        return list(known[1])
    return [r.to_dict() for r in read_jsonl(path)]


def _slot(row: dict[str, Any]) -> tuple[str, ...]:
    """A row's identity without its backbone: the slot a new configuration's row replaces."""
    return row_identity({**row, "backbone": None})


def superseded_path(path: Path) -> Path:
    """Where :func:`append_rows` keeps the rows it superseded in ``path``."""
    return path.with_name(f"{path.name}.superseded")


def _write_rows_atomic(path: Path, rows: list[dict[str, Any]]) -> None:
    known = _WRITTEN.get(path.resolve())
    # Lines are reused by the row object's id: every row in ``known`` is alive while ``known`` is, so no
    # new row can carry one of their ids; rows are never mutated once made.
    lines = known[2] if known is not None else {}
    text = [lines.get(id(row)) or json.dumps(row, sort_keys=True) + "\n" for row in rows]
    atomic_write_text(path, "".join(text))
    _WRITTEN[path.resolve()] = (
        _signature(path),
        rows,
        {id(row): line for row, line in zip(rows, text, strict=True)},
    )
