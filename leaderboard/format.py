"""Text shared by the Markdown and HTML renderers: number formats, headers, notes."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from metrics.spec import METRICS, floor_of

from .aggregate import Group, Leaderboard, MethodKey, MethodStat, Section
from .clustered import MIN_UNITS
from .learning import NOT_RANKED
from .references import REFERENCE_NOTE

DEFAULT_DIGITS = 3


def decimals_for(values: Iterable[float], digits: int = DEFAULT_DIGITS) -> int:
    """Decimal places that show ``digits`` significant digits of the largest magnitude in ``values``.

    Returns:
        A count in [0, 12]; ``digits - 1`` when all values are zero or there are none.
    """
    largest = max((abs(v) for v in values), default=0.0)
    if largest == 0.0:
        return max(0, digits - 1)
    return min(12, max(0, digits - 1 - math.floor(math.log10(largest))))


def significant_digits(text: str) -> int:
    """How many significant digits a fixed-point text shows (``"0.0012"`` → 2, ``"0.0000"`` → 0)."""
    mantissa = text.lstrip("-").split("e")[0]
    return len(mantissa.replace(".", "").lstrip("0"))


def fmt(value: float, decimals: int) -> str:
    """Fixed-point text of ``value`` with the column's ``decimals``; a nonzero value that would show fewer
    than two significant digits is written in scientific notation with two (``1.3e-05``), so nothing
    nonzero ever reads as 0. Never prints ``-0``."""
    text = f"{value:.{decimals}f}"
    if value != 0.0 and significant_digits(text) < 2:
        return f"{value:.1e}"
    if text.startswith("-") and float(text) == 0.0:
        text = text[1:]
    return text


def group_decimals(group: Group, digits: int = DEFAULT_DIGITS) -> int:
    """Decimal places for one group's displayed means (one precision per column)."""
    return decimals_for((group.scale(s.interval.mean) for s in group.stats), digits)


def displayed(group: Group, stat: MethodStat) -> tuple[float, float, float]:
    """``(mean, low, high)`` on the group's display scale."""
    return (
        group.scale(stat.interval.mean),
        group.scale(stat.interval.low),
        group.scale(stat.interval.high),
    )


STRUCTURAL = "0 (structural)"
TOO_FEW = "n too small"
STRUCTURAL_NOTE = "zero by construction: not ranked"


def structural(group: Group, stat: MethodStat) -> bool:
    """Whether the method's value is 0 on every concept of a metric whose exact zeros are structural
    (``MetricSpec.structural_zero``): not a measurement, so never ranked."""
    i = stat.interval
    return bool(group.spec.structural_zero) and i.mean == 0.0 and i.low == 0.0 and i.high == 0.0


def cell_text(group: Group, stat: MethodStat, decimals: int) -> str:
    """``mean [low, high]`` on the group's display scale; ``0 (structural)`` for a structural zero; ``mean
    (n too small)`` where there were too few concepts for an interval."""
    if structural(group, stat):
        return STRUCTURAL
    return interval_text(*displayed(group, stat), stat.interval.too_few, decimals)


def interval_text(mean: float, low: float, high: float, too_few: bool, decimals: int) -> str:
    """``mean [low, high]``, or ``mean (n too small)`` where there is no interval."""
    if too_few:
        return f"{fmt(mean, decimals)} ({TOO_FEW})"
    return f"{fmt(mean, decimals)} [{fmt(low, decimals)}, {fmt(high, decimals)}]"


def column_title(section: Section, group: Group) -> str:
    """``metric@version`` plus the backbone when the same metric version appears on several backbones."""
    clash = sum(1 for g in section.groups if g.metric_id == group.metric_id) > 1
    return f"{group.metric_id} [{group.backbone or 'no backbone'}]" if clash else group.metric_id


def column_header(section: Section, group: Group) -> str:
    """Column header with the orientation arrow and the display scale, e.g. ``clip_t@1 ↑ (raw)``."""
    return f"{column_title(section, group)} {group.arrow} ({group.scale.label})"


def method_label(key: MethodKey) -> str:
    """Method name, marked when it is a reference row."""
    return f"{key.method} (reference)" if key.is_reference else key.method


def concept_count(section: Section, key: MethodKey) -> str:
    """``have/total`` concepts of the method over the whole section."""
    return f"{len(section.concepts_of(key))}/{len(section.concepts)}"


MISSING_MARK = "†"


def missing_notes(section: Section) -> list[str]:
    """One sentence per (method, group) that lacks some of the section's concepts."""
    notes = []
    for key in section.methods:
        for group in section.groups:
            stat = group.stat_for(key)
            if stat is not None and stat.missing:
                notes.append(
                    f"{key.label}, {column_title(section, group)}: {stat.n_concepts}/{len(section.concepts)} "
                    f"concepts (missing: {', '.join(stat.missing)})"
                )
    return notes


def absent_notes(section: Section) -> list[str]:
    """One sentence per method with no rows at all for some metric group of the summary table (W2's floor
    is a base-model metric, shown in the base row, so no other method lacks it). Image folders lacking
    only the metrics that need a model are explained by :func:`image_folder_notes` instead."""
    from metrics.spec import MODEL_INPUTS

    notes = []
    for key in section.methods:
        if str(key.version) == "images":
            absent = [
                column_title(section, g)
                for g in summary_groups(section)
                if g.stat_for(key) is None
                and not (g.metric in METRICS and MODEL_INPUTS & set(METRICS[g.metric].refs))
            ]
            if absent:
                notes.append(f"{key.label} has no rows for {', '.join(absent)}")
            continue
        absent = [column_title(section, g) for g in summary_groups(section) if g.stat_for(key) is None]
        if absent:
            notes.append(f"{key.label} has no rows for {', '.join(absent)}")
    return notes


REFERENCES_SENTENCE = (
    "Reference rows are shown for reading and never ranked: base is the base model itself, which changes "
    "nothing (it reads 0 on every measure paired with it, and its W2 cell is the sampling floor), and real "
    "is the reference photos scored against each other."
)


def unranked_note(section: Section, key: MethodKey) -> str:
    """Why ``key``'s cells are greyed and kept out of the ranking, or "": a reference row (the base model
    changes nothing, so it would win every overfitting column and read 0 where a measure is paired with
    it; the reference photos are no method), or a method that did not learn, on every column (it keeps the
    base model's prompt fidelity, so it would win CLIP-T as well as the overfitting ones)."""
    if key.is_reference:
        return REFERENCE_NOTE
    if section.did_not_learn(key):
        return NOT_RANKED
    return ""


def unranked_methods(section: Section) -> frozenset[str]:
    """Names of the section's flagged methods (the headline leaves their overfitting numbers out)."""
    return frozenset(m for m, _ in section.learning.unranked) if section.learning is not None else frozenset()


def learning_notes(section: Section) -> list[str]:
    """The section's learning lines: each method that did not learn on some concepts or at all (flagged:
    none of its numbers is ranked), and what could not be assessed."""
    return section.learning.notes() if section.learning is not None else []


def learning_sentence(section: Section) -> str:
    """What the learning lines mean (empty when there are none)."""
    if not learning_notes(section) or section.learning is None:
        return ""
    return (
        f"Did each method learn? Its {section.learning.fidelity} against the base model's, per concept (one-sided "
        "Welch test on the two rows at alpha 0.05) and over concepts (one-sided paired t-test at alpha 0.05). "
        f'A method whose mean is not above the base model\'s is flagged and its cells read "{NOT_RANKED}", '
        "and the reference rows are never ranked: a method that changes nothing must not look best on any "
        "column."
    )


def image_folder_notes(section: Section) -> list[str]:
    """One line per image-folder method (method version ``images``) that lacks metrics needing the
    customized model (what a folder cannot give, read from the specs)."""
    from metrics.spec import MODEL_INPUTS

    needs = [
        g
        for g in summary_groups(section)
        if g.metric in METRICS and MODEL_INPUTS & set(METRICS[g.metric].refs)
    ]
    out = []
    for key in section.methods:
        lacking = [column_title(section, g) for g in needs if g.stat_for(key) is None]
        if str(key.version) == "images" and lacking:
            out.append(
                f"{key.label} is an image folder: {', '.join(lacking)} "
                f"{'needs' if len(lacking) == 1 else 'need'} the customized model (images alone cannot give "
                f"{'it' if len(lacking) == 1 else 'them'}); score the method itself with `overfit-bench score "
                "--method package.module:Class` to get LFD"
            )
    return out


def summary_sentence(board: Leaderboard) -> str:
    """Provenance line derived from the rows only (no clock), so regenerating gives identical bytes."""
    revs = ", ".join(board.git_revs) if board.git_revs else "none recorded"
    return (
        f"Built from {board.n_rows} result rows; latest row created_at {board.latest_created_at}; "
        f"package versions {', '.join(board.package_versions)}; git revisions {revs}."
        + (f" {board.grader_sentence()}" if board.graders else "")
    )


def concepts_text(section: Section) -> str:
    """``8 concepts in 4 independent units ...`` (or ``8 concepts`` when every concept is its own unit)."""
    n = len(section.concepts)
    if section.units and section.units != n:
        return (
            f"{n} concepts in {section.units} independent units (concepts that share base images count once)"
        )
    return f"{n} concepts"


def method_sentence(board: Leaderboard) -> str:
    """How the numbers are aggregated."""
    return (
        f"Each cell is the mean over concepts with a {board.level:.0%} cluster-robust Student-t interval: "
        "concepts that share the base model's images (read from the base rows) are one independent unit, "
        f"G − 1 degrees of freedom for G units; fewer than {MIN_UNITS} concepts, or a single unit, give the "
        f'mean and "{TOO_FEW}" (coverage: docs/METRICS.md). Orientation: ↑ higher is better, '
        "↓ lower is better (read from each metric's own spec). The scale of each column is printed in its "
        "header; stored values are raw."
    )


def no_mixing_sentence() -> str:
    """The promise that versions are never averaged together."""
    return (
        "Rows from different suite versions, metric versions or backbones are never averaged together: "
        "each suite@version is its own section and each metric@version its own column and table."
    )


@dataclass(frozen=True)
class Definition:
    """One metric version used on a page, as the shared definitions block shows it."""

    metric: str
    version: int
    arrow: str
    name: str
    better: str
    text: str
    note: str


def metric_definitions(board: Leaderboard) -> list[Definition]:
    """The definitions of every metric version the board shows, in metric-registry order."""
    used = sorted(
        {(g.metric, g.metric_version) for s in board.sections for g in s.groups},
        key=lambda mv: (list(METRICS).index(mv[0]), mv[1]),
    )
    out = []
    for metric, version in used:
        spec = METRICS[metric]
        note = (
            ""
            if spec.version == version
            else f" This package defines {spec.id}, not {metric}@{version}: the text is the {spec.id} "
            "definition and the orientation is assumed unchanged."
        )
        better = "higher is better" if spec.higher_is_better else "lower is better"
        out.append(Definition(metric, version, spec.arrow, spec.name, better, spec.definition, note))
    return out


@functools.cache
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("leaderboard", "templates"),
        autoescape=lambda name: (name or "").endswith(".html.j2"),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def template(name: str) -> Any:
    """A page template from ``leaderboard/templates/`` (HTML templates autoescape)."""
    return _environment().get_template(name)


# ----------------------------------------------------------------------------------------------------
# The matched-fidelity headline and the calibrated W2 cells (shared by Markdown and HTML)

NOT_DETECTED = "no difference from base detected"


def _matched_text(cell: Any, d: int) -> str:
    from .trajectory import BEFORE_FIRST, NOT_REACHED

    if cell.status == NOT_REACHED:
        return "not reached"
    if cell.status == BEFORE_FIRST:
        return "passed before the first rung"
    text = fmt(cell.value, d)
    if cell.low is not None and cell.high is not None:
        return f"{text} [{fmt(cell.low, d)}, {fmt(cell.high, d)}]"
    return f"{text} ({cell.why})" if cell.why else text


def headline_tables(
    headline: Any, digits: int = DEFAULT_DIGITS, unranked: Iterable[str] = ()
) -> list[tuple[str, list[str], list[list[str]]]]:
    """(caption, header, rows) of the headline's tables: one per fidelity level (per method, each overfitting
    metric read off its measured curve there, with its cluster-jackknife interval, or why not), then the
    areas over the common fidelity range with the Pareto counts. A method in ``unranked`` (it did not
    learn) shows the not-ranked note instead of its overfitting numbers; a metric that is 0 at every
    measured rung by construction shows the structural zero."""
    unranked = set(unranked)
    from .trajectory import structural_zero

    metrics = list(headline.shown())
    values = [
        c.value
        for per in headline.matched.values()
        for cells in per.values()
        for c in cells
        if c.value is not None
    ]
    d = decimals_for(values or [0.0], digits)
    ordered = sorted(headline.trajectories, key=lambda t: t.method)
    tables = []
    for k, level in enumerate(headline.levels):
        header = ["method", f"measured {headline.fidelity} range ↑"] + [f"{m} ↓" for m in metrics]
        body = []
        for t in ordered:
            fid = [float(v) for v in _row_means(t.fidelity[1:])]
            row = [t.method, f"{fmt(min(fid), 3)}–{fmt(max(fid), 3)}" if fid else "—"]
            for m in metrics:
                cells = headline.matched[t.method].get(m)
                if t.method in unranked:
                    row.append(NOT_RANKED)
                elif cells is None:
                    row.append("—")
                elif structural_zero(t, m):
                    row.append(STRUCTURAL)  # every measured rung exactly 0: nothing to read off the curve
                else:
                    text = _matched_text(cells[k], d)
                    if m == headline.tested and t.method in headline.not_detected:
                        text += f" — {NOT_DETECTED}"
                    row.append(text)
            body.append(row)
        body.append(_base_row(headline, metrics, d))
        tables.append((f"at {headline.fidelity} = {fmt(level, 3)}", header, body))
    header = ["method"] + [f"{m}: mean over the common range ↓ · rungs on front / dominated" for m in metrics]
    body = []
    for t in ordered:
        row = [t.method]
        for m in metrics:
            area, counts = headline.areas.get(m), headline.pareto.get(m, {}).get(t.method)
            if t.method in unranked:
                row.append(NOT_RANKED)
                continue
            if structural_zero(t, m):
                row.append(STRUCTURAL)
                continue
            text = (
                fmt(area.values[t.method], d)
                if area is not None and t.method in area.values
                else "not compared"
            )
            if counts is not None:
                text += f" · {counts[1]}/{counts[0]} on front, {counts[2]} dominated"
            row.append(text)
        body.append(row)
    ranges = "; ".join(
        f"{m} {fmt(a.lo, 3)}–{fmt(a.hi, 3)}" if a.lo is not None else f"{m}: no common range"
        for m, a in headline.areas.items()
    )
    tables.append(
        (f"area over the common {headline.fidelity} range ({ranges}) and Pareto counts", header, body)
    )
    return tables


def _row_means(table: Any) -> list[float]:
    out = []
    for row in table:
        finite = [float(v) for v in row if not math.isnan(float(v))]
        if finite:
            out.append(sum(finite) / len(finite))
    return out


BASE_ROW_LABEL = "base (reference at its own fidelity, not at this level; not ranked)"


def _base_row(headline: Any, metrics: list[str], d: int) -> list[str]:
    base = [BASE_ROW_LABEL, fmt(headline.base_fidelity, 3)]
    for m in metrics:
        if m == headline.floored and headline.floor is not None:
            base.append(f"floor {fmt(headline.floor, d)}")
            continue
        # the base model's own measured mean (row 0 of every trajectory: the same base rows)
        row0: Any = next((t.metrics[m][0] for t in headline.trajectories if m in t.metrics), [])
        measured = [float(v) for v in row0 if not math.isnan(float(v))]
        if measured and METRICS[m].structural_zero and all(v == 0.0 for v in measured):
            base.append(STRUCTURAL)
            continue
        base.append(fmt(sum(measured) / len(measured), d) if measured else "—")
    return base


def headline_sentences(headline: Any) -> list[str]:
    """What the headline tables show and how the levels were fixed."""
    rungs = ", ".join(f"×{r:g}" for r in sorted({r for t in headline.trajectories for r in t.rungs if r}))
    levels = ", ".join(fmt(v, 3) for v in headline.levels)
    out = [
        f"Overfitting at matched subject fidelity, measured: each method's measures read off its measured "
        f"training trajectory (rungs {rungs}, one training run per method and concept) where its mean "
        f"{headline.fidelity} first reaches each level, by linear interpolation between the two measured "
        'rungs around it — never from the base model, never extrapolated. "passed before the first rung": '
        'the first measured rung is already above the level; "not reached": no rung reaches it.',
        f"Levels {levels or '(none)'}: {headline.level_rule}."
        if headline.levels
        else f"{headline.level_rule}.",
        f"Intervals: 95% Student-t with the delete-one-cluster jackknife over {headline.clusters} clusters of "
        "concepts that share base images (G − 1 degrees of freedom); none from fewer than 5 concepts.",
        f"Areas: the mean of each measure over the {headline.fidelity} range that every compared method covers "
        "between its measured rungs (compared: the methods whose range holds the middle level). Pareto counts: "
        "of a method's measured rungs, how many lie on the front of every method's rungs and how many another "
        "method's rung beats on both axes.",
    ]
    shown = headline.shown()
    if shown:
        lead = headline.lead or shown[0]
        rest = [m for m in shown if m != lead]
        out.append(
            f"Concept-specific column: {lead} heads it"
            + (f"; {', '.join(rest)} beside it. " if rest else ". ")
            + (f"Why: {headline.lead_rule}." if headline.lead_rule else "Why: the metric registry's order.")
        )
    out.extend(headline.notes)
    if headline.floor is not None:
        name = str(headline.floored).upper()
        out.append(
            f"{name}'s sampling floor (base vs base on disjoint seeds, mean over concepts) is "
            f"{fmt(headline.floor, 3)}. It is not a threshold: {name} pairs each image with the base image of "
            f"the same prompt and seed, so an unchanged model reads 0 and a method below the floor can still "
            f"differ from the base model. Whether it does is read from {headline.tested or 'a calibrated measure'}."
        )
    if headline.combined_p:
        same = sorted(headline.not_detected)
        differs = sorted(set(headline.combined_p) - set(same))
        out.append(
            f"{headline.tested} test (label permutation of the pooled images per concept at the tuned budget, "
            "Bonferroni over concepts, valid when concepts share base images): "
            + (f"{', '.join(differs)} differ from base" if differs else "no method differs from base")
            + (
                f"; for {', '.join(same)} no difference was detected — not evidence that "
                f"{'it is' if len(same) == 1 else 'they are'} the same as base"
                if same
                else ""
            )
            + ". Read the size of each difference from the interval, not the p-value."
        )
    return out


def w2_display(section: Section, group: Group, key: MethodKey, headline: Any) -> tuple[str, str] | None:
    """For the summary table's W2 column: the base row's floor cell ``("floor", text)``, or the
    not-detected note for a method whose calibrated test finds no difference from base; None otherwise."""

    if headline is None or group.metric not in (headline.floored, headline.tested):
        return None
    if key.method == "base":
        floor = next((g for g in section.groups if g.metric == floor_of(group.metric)), None)
        stat = floor.stat_for(key) if floor is not None else None
        if stat is None:
            return None
        d = group_decimals(group)
        return "floor", f"floor {cell_text(floor, stat, d)}"  # type: ignore[arg-type]
    if group.metric == headline.tested and key.method in headline.not_detected:
        return "same", f"({NOT_DETECTED})"
    return None


def summary_groups(section: Section) -> list[Group]:
    """The summary table's columns: every group but the floors (each shown in the base row's cell of the
    metric it is the floor of)."""
    from metrics.spec import METRICS

    return [g for g in section.groups if g.metric not in METRICS or METRICS[g.metric].role != "floor"]
