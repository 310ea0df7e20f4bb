"""``LEADERBOARD.md``: one summary table per suite version, then one table per metric group."""

from __future__ import annotations

from .aggregate import Leaderboard, Section
from .format import (
    DEFAULT_DIGITS,
    MISSING_MARK,
    REFERENCES_SENTENCE,
    STRUCTURAL,
    TOO_FEW,
    absent_notes,
    cell_text,
    column_header,
    column_title,
    concept_count,
    concepts_text,
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
from .markdown import table_lines
from .paired import PairedTable, paired_rows, paired_sentence
from .trajectory import Headline


def figure_name(headline: Headline, metric: str) -> str:
    """The file name of a trajectory figure, under ``figures/`` beside the page."""
    return f"{headline.suite}-{headline.suite_version}-{metric}.svg"


def paired_lines(table: PairedTable, unranked: frozenset[str] = frozenset()) -> list[str]:
    """The paired-difference section: every method against the reference method."""
    header, body = paired_rows(table, unranked)
    out = ["", f"### Paired differences against {table.reference}", "", paired_sentence(table, unranked), ""]
    return out + table_lines(header, body)


def _headline(headline: Headline, digits: int, unranked: frozenset[str] = frozenset()) -> list[str]:
    out = ["", f"### Headline: overfitting at matched {headline.fidelity}", ""]
    out.extend(headline_sentences(headline))
    out.append("")
    for caption, header, body in headline_tables(headline, digits, unranked):
        out.extend([f"**{caption[0].upper()}{caption[1:]}**", ""])
        out.extend(table_lines(header, body))
        out.append("")
    metrics = list(headline.shown())
    out.append(
        "Measured trajectories (fidelity against each overfitting metric; a dot per measured rung; dashed: "
        "the levels; hollow square: the base model, not joined to any curve; dashed with hollow dots: a "
        "method that is not ranked, because it did not learn or reads a structural 0; grey band: the Pareto "
        "front over the ranked methods' rungs):"
    )
    out.append("")
    out.extend(f"![{m} along training](figures/{figure_name(headline, m)})" for m in metrics)
    return out


def _section(
    section: Section,
    digits: int,
    level: str,
    headline: Headline | None = None,
    paired: PairedTable | None = None,
) -> list[str]:
    out = [f"## Suite `{section.label}`", ""]
    out.append(
        f"{concepts_text(section)}, {len(section.methods)} methods, {section.n_rows} rows. "
        + no_mixing_sentence()
    )
    out.append("")
    groups = summary_groups(section)
    decimals = [group_decimals(g, digits) for g in groups]
    header = ["method", "version", "concepts"] + [column_header(section, g) for g in groups]
    body = []
    for key in section.methods:
        cells = [method_label(key), str(key.version), concept_count(section, key)]
        for group, d in zip(groups, decimals, strict=True):
            stat = group.stat_for(key)
            special = w2_display(section, group, key, headline)
            if stat is None:
                cells.append("—")
                continue
            text = cell_text(group, stat, d)
            if special is not None:
                text = special[1] if special[0] == "floor" else f"{text} {special[1]}"
            note = unranked_note(section, key)
            if note and not key.is_reference:  # references: the sentence under the table
                text += f" ({note})"
            cells.append(text + (f" {MISSING_MARK}" if stat.missing else ""))
        body.append(cells)
    out.extend(table_lines(header, body))
    if any(key.is_reference for key in section.methods):
        out += ["", REFERENCES_SENTENCE]
    learned = learning_notes(section)
    if learned:
        out += ["", learning_sentence(section), ""]
        out.extend(f"- {note}" for note in learned)
    folders = image_folder_notes(section)
    if folders:
        out.append("")
        out.extend(f"- {note}" for note in folders)
    if headline is not None:
        out.extend(_headline(headline, digits, unranked_methods(section)))
    if paired is not None:
        out.extend(paired_lines(paired, unranked_methods(section)))
    decimals = [group_decimals(g, digits) for g in section.groups]
    notes = missing_notes(section)
    absent = absent_notes(section)
    if notes or absent:
        out.append("")
        out.extend(f"- {MISSING_MARK} {note}" for note in notes)
        out.extend(f"- — {note}" for note in absent)

    for group, d in zip(section.groups, decimals, strict=True):
        out += [
            "",
            f"### `{section.label}` · {column_title(section, group)} {group.arrow} — {group.spec.name}",
            "",
        ]
        out.append(f"Backbone: {group.backbone or 'none recorded'}. Display scale: {group.scale.label}.")
        if not group.definition_known:
            out.append(
                f"This package defines {group.spec.id}, not {group.metric_id}; the definition below is the "
                "current one and the orientation is assumed unchanged."
            )
        out.append("")
        scale = group.scale.label
        rows = []
        for s in group.stats:
            note = unranked_note(section, s.key)
            if structural(group, s):
                count = f"{s.n_concepts}/{len(section.concepts)}"
                rows.append([method_label(s.key), str(s.key.version), count, STRUCTURAL, "", ""])
                continue
            rows.append(
                [
                    method_label(s.key),
                    str(s.key.version),
                    f"{s.n_concepts}/{len(section.concepts)}",
                    fmt(group.scale(s.interval.mean), d) + (f" ({note})" if note else ""),
                    TOO_FEW if s.interval.too_few else fmt(group.scale(s.interval.low), d),
                    TOO_FEW if s.interval.too_few else fmt(group.scale(s.interval.high), d),
                ]
            )
        out.extend(
            table_lines(
                [
                    "method",
                    "version",
                    "concepts",
                    f"mean ({scale})",
                    f"{level} CI low ({scale})",
                    f"{level} CI high ({scale})",
                ],
                rows,
            )
        )
    return out


def render_markdown(board: Leaderboard, *, digits: int = DEFAULT_DIGITS) -> str:
    """Render the leaderboard as Markdown (no timestamps beyond those in the rows).

    Returns:
        The document text, ending in a newline.
    """
    out = ["# overfit-bench leaderboard", "", summary_sentence(board), "", method_sentence(board), ""]
    for section in board.sections:
        out.extend(
            _section(
                section, digits, f"{board.level:.0%}", board.headline_for(section), board.paired_for(section)
            )
        )
        out.append("")
    out.append(template("definitions.md.j2").render(defs=metric_definitions(board)).rstrip("\n"))
    return "\n".join(out) + "\n"
