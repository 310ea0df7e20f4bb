"""One method's paired differences against the reference method, for the terminal
(``overfit-bench leaderboard --show METHOD``): the page's row for it, per suite version, and whether it
learned."""

from __future__ import annotations

from .aggregate import Leaderboard
from .paired import paired_rows


def shown_lines(board: Leaderboard, method: str) -> list[str]:
    """Lines that print ``method``'s row of each section's paired-difference table (a section without the
    method, or without the reference's rows, says so)."""
    out: list[str] = []
    for section in board.sections:
        if not any(key.method == method for key in section.methods):
            continue
        table = board.paired_for(section)
        if table is None:
            out.append(
                f"{method} on {section.label}: no paired differences (the reference method has no rows)"
            )
            continue
        if method == table.reference:
            out.append(
                f"{method} on {section.label}: it is the reference method (choose another with --reference)"
            )
            continue
        unranked = section.learning.unranked if section.learning is not None else frozenset()
        header, body = paired_rows(table, frozenset(m for m, _ in unranked))
        row = next((r for r in body if r[0] == method), None)
        if row is None:
            out.append(
                f"{method} on {section.label}: no concept shared with {table.reference} at the tuned budget"
            )
            continue
        out.append(
            f"{method} minus {table.reference} on {section.label} (same concepts, prompts and seeds; tuned "
            "budget; 95% interval over the concepts' clusters):"
        )
        out.extend(f"  {name}: {cell}" for name, cell in zip(header[1:], row[1:], strict=True))
        if table.reference in {m for m, _ in unranked}:
            out.append(
                f"  note: the reference {table.reference} did not learn on {section.label} (its fidelity is not "
                "above the base model's), so these are differences against a model that barely moved; "
                "--reference names another"
            )
        verdicts = [
            v.sentence()
            for (m, _), v in (section.learning.methods.items() if section.learning else ())
            if m == method
        ]
        said = [s for s in verdicts if s]
        out.extend(f"  {s}" for s in said)
        if verdicts and not said:
            out.append(f"  {method} learned on every assessed concept")
    if not out:
        out.append(f"{method}: no section of these rows has it")
    return out
