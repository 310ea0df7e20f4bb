"""Markdown tables: the one writer behind every generated page (LEADERBOARD.md, docs/gate/tolerances.md,
the generated blocks of docs/VALIDITY.md).

Pure text in, text out.
"""

from __future__ import annotations

from collections.abc import Sequence

_RULES = {"left": "---", "right": "---:", "center": ":---:"}


def cell(text: str) -> str:
    """``text`` safe inside a table cell: backslashes and pipes escaped, newlines as spaces."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def table_lines(
    header: Sequence[str], rows: Sequence[Sequence[str]], align: Sequence[str] | None = None
) -> list[str]:
    """The lines of a Markdown table: header, rule, one line per row (every cell escaped by :func:`cell`).

    Args:
        align: per column ``"left"`` (the default), ``"right"`` or ``"center"``.

    Raises:
        ValueError: a row or ``align`` whose length differs from the header's, or an unknown alignment.
    """
    width = len(header)
    rules = list(align) if align is not None else ["left"] * width
    if len(rules) != width:
        raise ValueError(f"markdown table: {len(rules)} alignments for {width} columns")
    unknown = sorted({a for a in rules if a not in _RULES})
    if unknown:
        raise ValueError(f"markdown table: unknown alignment(s) {unknown}; use {', '.join(_RULES)}")
    for i, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(f"markdown table: row {i} has {len(row)} cells for {width} columns")
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "".join(_RULES[a] + "|" for a in rules)]
    lines.extend("| " + " | ".join(cell(c) for c in row) + " |" for row in rows)
    return lines


def markdown_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], align: Sequence[str] | None = None
) -> str:
    """:func:`table_lines` as one string (no trailing newline)."""
    return "\n".join(table_lines(header, rows, align))
