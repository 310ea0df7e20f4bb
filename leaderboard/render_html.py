"""``index.html``: a self-contained page (inline CSS, JS and SVG; no network requests).

The page is the Jinja2 template ``templates/page.html.j2`` (with ``page.css`` and ``sort.js`` inlined);
this module only prepares what the template shows. The metric-definitions block is shared with the
Markdown page (``templates/_definitions.j2``).
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from .aggregate import Leaderboard, Section
from .format import (
    DEFAULT_DIGITS,
    MISSING_MARK,
    STRUCTURAL,
    STRUCTURAL_NOTE,
    TOO_FEW,
    absent_notes,
    column_title,
    concept_count,
    concepts_text,
    displayed,
    fmt,
    group_decimals,
    headline_sentences,
    headline_tables,
    image_folder_notes,
    learning_notes,
    learning_sentence,
    method_label,
    method_sentence,
    metric_definitions,
    missing_notes,
    no_mixing_sentence,
    structural,
    summary_groups,
    summary_sentence,
    template,
    unranked_methods,
    unranked_note,
    w2_display,
)
from .paired import PairedTable, paired_rows, paired_sentence
from .plots import PLOTS, method_colors, render_scatter, render_trajectories
from .trajectory import Headline


def _better(group: Any) -> str:
    return "higher" if group.spec.higher_is_better else "lower"


def _headline_view(
    headline: Headline | None, digits: int, colors: dict[str, str], unranked: frozenset[str] = frozenset()
) -> dict[str, Any] | None:
    if headline is None:
        return None
    metrics = list(headline.shown())
    return {
        "fidelity": headline.fidelity,
        "sentences": headline_sentences(headline),
        "tables": [
            {"caption": caption, "header": header, "rows": body}
            for caption, header, body in headline_tables(headline, digits, unranked)
        ],
        "figures": [Markup(render_trajectories(headline, m, colors)) for m in metrics],
    }


def _section_view(
    section: Section,
    digits: int,
    level: str,
    headline: Headline | None = None,
    paired: PairedTable | None = None,
) -> dict[str, Any]:
    summary = summary_groups(section)
    decimals = [group_decimals(g, digits) for g in summary]
    headers = [
        {
            "better": _better(g),
            "metric_id": g.metric_id,
            "title": f"{g.spec.name} — {_better(g)} is better",
            "text": column_title(section, g),
            "arrow": g.arrow,
            "scale": g.scale.label,
        }
        for g in summary
    ]
    rows = []
    for key in section.methods:
        cells: list[dict[str, Any] | None] = []
        for group, d in zip(summary, decimals, strict=True):
            stat = group.stat_for(key)
            if stat is None:
                cells.append(None)
                continue
            mean, low, high = displayed(group, stat)
            special = w2_display(section, group, key, headline)
            floor_cell = bool(special and special[0] == "floor")  # its text carries its own interval
            notes = [TOO_FEW] if stat.interval.too_few and not floor_cell else []
            if special and special[0] == "same":
                notes.append(special[1])
            if structural(group, stat):
                cells.append(
                    {
                        "value": repr(mean),
                        "mean": STRUCTURAL,
                        "low": "",
                        "high": "",
                        "flag": MISSING_MARK if stat.missing else "",
                        "note": "",
                        "ci": False,
                        "unranked": STRUCTURAL_NOTE,
                    }
                )
                continue
            cells.append(
                {
                    "value": repr(mean),
                    "mean": special[1] if special and floor_cell else fmt(mean, d),
                    "low": fmt(low, d),
                    "high": fmt(high, d),
                    "flag": MISSING_MARK if stat.missing else "",
                    "note": " ".join(notes),
                    "ci": not floor_cell and not stat.interval.too_few,
                    "unranked": unranked_note(section, key),
                }
            )
        rows.append(
            {
                "reference": key.is_reference,
                "key": key.label,
                "label": method_label(key),
                "version": str(key.version),
                "have": len(section.concepts_of(key)),
                "count": concept_count(section, key),
                "cells": cells,
            }
        )
    notes = [f"{MISSING_MARK} {n}" for n in missing_notes(section)] + [
        f"— {n}" for n in absent_notes(section)
    ]
    notes += image_folder_notes(section)

    colors = method_colors(section)
    by_name = {k.method: c for k, c in colors.items()}
    figures: list[dict[str, Any]] = []
    for plot in PLOTS:
        # the concept-specific plot follows the measure that heads the suite's headline column
        ykey = headline.lead if plot.slug == "specific-vs-fidelity" and headline and headline.lead else plot.y
        xgroups, ygroups = section.groups_for(plot.x), section.groups_for(ykey)
        if not xgroups or not ygroups:
            lacking = plot.x if not xgroups else ykey
            figures.append({"svg": None, "caption": f"{plot.title}: this suite has no {lacking} rows."})
            continue
        for xg in xgroups:
            for yg in ygroups:
                svg, left_out = render_scatter(section, plot, xg, yg, colors)
                caption = (
                    plot.caption.format(x=xg.metric, y=yg.metric)
                    + f" Whiskers: {level} cluster-t intervals over concepts (none where {TOO_FEW})."
                    + " Hollow points are not ranked: the references, methods that did not learn, and "
                    "structural zeros (their tooltips say which)."
                )
                if left_out:
                    caption += f" Not shown (lacking one of the two metrics): {', '.join(left_out)}."
                figures.append({"svg": Markup(svg), "caption": caption})

    tables = []
    for group in section.groups:
        d = group_decimals(group, digits)
        tables.append(
            {
                "title": column_title(section, group),
                "arrow": group.arrow,
                "name": group.spec.name,
                "backbone": group.backbone or "none recorded",
                "scale": group.scale.label,
                "better": _better(group),
                "columns": ("mean", f"{level} CI low", f"{level} CI high"),
                "rows": [_metric_row(section, group, stat, d) for stat in group.stats],
            }
        )
    return {
        "suite": section.suite,
        "version": section.suite_version,
        "label": section.label,
        "n_concepts": len(section.concepts),
        "concepts_text": concepts_text(section),
        "n_methods": len(section.methods),
        "n_rows": section.n_rows,
        "headers": headers,
        "rows": rows,
        "notes": notes,
        "learning": {"sentence": learning_sentence(section), "lines": learning_notes(section)},
        "figures": figures,
        "tables": tables,
        "headline": _headline_view(headline, digits, by_name, unranked_methods(section)),
        "paired": _paired_view(paired, unranked_methods(section)),
    }


def _metric_row(section: Section, group: Any, stat: Any, d: int) -> dict[str, Any]:
    """One method's row of a metric's own table: mean and interval, or ``0 (structural)`` alone."""
    zero = structural(group, stat)
    return {
        "reference": stat.key.is_reference,
        "label": method_label(stat.key),
        "version": str(stat.key.version),
        "have": stat.n_concepts,
        "count": f"{stat.n_concepts}/{len(section.concepts)}",
        "numbers": [
            {
                "value": repr(v),
                "text": (STRUCTURAL if i == 0 else "")
                if zero
                else (TOO_FEW if stat.interval.too_few and i else fmt(v, d)),
            }
            for i, v in enumerate(displayed(group, stat))
        ],
        "unranked": STRUCTURAL_NOTE if zero else unranked_note(section, stat.key),
    }


def _paired_view(table: PairedTable | None, unranked: frozenset[str]) -> dict[str, Any] | None:
    if table is None:
        return None
    header, rows = paired_rows(table, unranked)
    return {
        "reference": table.reference,
        "sentence": paired_sentence(table, unranked),
        "header": header,
        "rows": rows,
    }


def render_html(board: Leaderboard, *, digits: int = DEFAULT_DIGITS) -> str:
    """Render the self-contained leaderboard page.

    The page makes no network request: styles, the sort script and the SVG plots are inline. Its only
    date is the latest ``created_at`` of the rows, so regenerating from the same rows gives identical
    bytes.

    Returns:
        The HTML document, ending in a newline.
    """
    level = f"{board.level:.0%}"
    text = template("page.html.j2").render(
        summary=summary_sentence(board),
        method_sentence=method_sentence(board),
        no_mixing=no_mixing_sentence(),
        level=level,
        sections=[
            _section_view(s, digits, level, board.headline_for(s), board.paired_for(s))
            for s in board.sections
        ],
        defs=metric_definitions(board),
    )
    return text if text.endswith("\n") else text + "\n"
