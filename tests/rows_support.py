"""Result rows as plain dicts for assertions (validated by the one reader, ``leaderboard.read_rows``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from leaderboard import read_rows as _read_validated


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of one results file (empty when it does not exist), as written."""
    return [r.to_dict() for r in _read_validated([path])] if Path(path).exists() else []
