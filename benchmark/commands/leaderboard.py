"""``overfit-bench leaderboard``: Markdown, CSV and a static HTML page from result rows."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add the ``leaderboard`` subcommand."""
    p = sub.add_parser(
        "leaderboard",
        help="build LEADERBOARD.md, leaderboard.csv and index.html from result rows",
        description="Aggregate result rows per method (mean over concepts, 95% cluster-robust t interval) and "
        "write LEADERBOARD.md, leaderboard.csv, a self-contained index.html and, for suites with trajectory "
        "rows, the matched-fidelity headline and its figures (figures/*.svg). Output depends only on the "
        "rows, so regenerating from the same rows gives identical files.",
    )
    p.add_argument(
        "results", nargs="+", metavar="RESULTS", help="JSONL result files (or directories of *.jsonl)"
    )
    p.add_argument("--out", default="runs/leaderboard", help="output directory (default: %(default)s)")
    p.add_argument(
        "--scale",
        action="append",
        default=[],
        metavar="KEYS=SCALE",
        help="display scale for some metrics, e.g. clip_t,clip_i,dino=x100; scales: raw (default), x100, "
        "clipscore (2.5*max(cos,0)). Repeatable. The scale is printed in every header.",
    )
    p.add_argument(
        "--digits", type=int, default=3, help="significant digits shown per column (default: %(default)s)"
    )
    p.add_argument(
        "--level",
        action="append",
        default=[],
        metavar="SUITE=V1,V2",
        help="fidelity levels of a suite's matched-fidelity headline, ascending (default: the suite profile's "
        "headline_levels, fixed before the rows; levels given here are labelled as such on the page). Repeatable.",
    )
    p.add_argument(
        "--reference",
        default=None,
        metavar="METHOD",
        help="the method every other is compared with in the paired differences (default: each suite "
        "profile's reference_method, infusion)",
    )
    p.add_argument(
        "--show",
        default=None,
        metavar="METHOD",
        help="also print METHOD's paired differences against the reference method on the terminal (the "
        "page's row for it, per suite), and whether it learned",
    )
    p.set_defaults(func=run)


def _levels(options: list[str]) -> dict[str, tuple[float, ...]]:
    out = {}
    for option in options:
        suite, sep, value = option.partition("=")
        try:
            levels = tuple(float(v) for v in value.split(","))
        except ValueError:
            sep = ""
        if not sep or not suite.strip() or list(levels) != sorted(set(levels)):
            raise ValueError(
                f"--level {option!r}: expected SUITE=V1,V2 with ascending levels, e.g. toy=0.5,0.6"
            )
        out[suite.strip()] = levels
    return out


def _profiles(rows: list[Any]) -> dict[str, Any]:
    """Per suite in the rows: its profile's settings (a suite this installation has no manifest for is left
    out)."""
    from benchmark.settings import settings_for

    out = {}
    for suite in sorted({r.suite for r in rows}):
        try:
            out[suite] = settings_for(suite)
        except Exception:  # rows of a suite this installation has no manifest for
            continue
    return out


def _profile_levels(
    given: dict[str, tuple[float, ...]], rows: list[Any]
) -> tuple[dict[str, tuple[float, ...]], dict[str, str], dict[str, tuple[str, ...]]]:
    """Per suite in the rows: the ``--level`` values (labelled as given here) or the suite profile's
    ``headline_levels`` and their rule, and the profile's ``headline_notes`` (a suite this installation does
    not know gets none)."""
    levels: dict[str, tuple[float, ...]] = {}
    rules: dict[str, str] = {}
    notes: dict[str, tuple[str, ...]] = {}
    profiles = _profiles(rows)
    for suite in sorted({r.suite for r in rows}):
        settings = profiles.get(suite)
        if settings is not None:
            levels[suite] = settings.headline_levels
            rules[suite] = settings.headline_levels_rule
            notes[suite] = settings.headline_notes
        if suite in given:
            levels[suite] = given[suite]
            rules[suite] = (
                "given on the command line (--level), not the profile's levels fixed before the rows"
            )
    return levels, rules, notes


def _leads(rows: list[Any]) -> dict[str, tuple[str, str]]:
    """Per suite in the rows whose profile names one: its ``headline_specific`` and the rule that chose it
    (a suite this installation does not know keeps the metric registry's order)."""
    return {
        suite: (s.headline_specific, s.headline_specific_rule)
        for suite, s in _profiles(rows).items()
        if s.headline_specific
    }


def _references(option: str | None, rows: list[Any]) -> dict[str, str]:
    """Per suite in the rows: ``--reference`` or the suite profile's ``reference_method`` (a suite this
    installation does not know keeps the leaderboard's default)."""
    if option:
        out = {suite: option for suite in sorted({r.suite for r in rows})}
    else:
        out = {suite: s.reference_method for suite, s in _profiles(rows).items()}
    if option and not any(r.method == option for r in rows):
        methods = ", ".join(sorted({r.method for r in rows}))
        raise ValueError(f"--reference {option!r}: no row has that method (methods in the rows: {methods})")
    return out


def run(args: argparse.Namespace) -> int:
    """Build and write the leaderboard.

    Returns:
        0 on success, 2 on invalid rows or options (the error is printed to stderr).
    """
    from leaderboard import RowError, build_leaderboard, parse_scale_options, read_rows, write_leaderboard

    try:
        if args.digits < 1:
            raise ValueError(f"--digits must be >= 1, got {args.digits}")
        scales = parse_scale_options(args.scale)
        given = _levels(args.level)
        rows = read_rows(args.results)
        unknown = sorted(set(given) - {r.suite for r in rows})
        if unknown:
            raise ValueError(
                f"--level names suite(s) {', '.join(unknown)} that no row belongs to "
                f"(suites in the rows: {', '.join(sorted({r.suite for r in rows}))})"
            )
        levels, rules, notes = _profile_levels(given, rows)
        board = build_leaderboard(
            rows,
            scales=scales,
            fidelity_levels=levels,
            level_rules=rules,
            headline_notes=notes,
            references=_references(args.reference, rows),
            leads=_leads(rows),
        )
        if args.show and not any(r.method == args.show for r in rows):
            methods = ", ".join(sorted({r.method for r in rows}))
            raise ValueError(f"--show {args.show!r}: no row has that method (methods in the rows: {methods})")
        paths = write_leaderboard(board, args.out, digits=args.digits)
    except (RowError, ValueError, OSError) as exc:
        print(f"overfit-bench leaderboard: error: {exc}", file=sys.stderr)
        return 2
    groups = sum(len(s.groups) for s in board.sections)
    print(
        f"leaderboard: {board.n_rows} rows, {len(board.sections)} suite version(s), {groups} metric group(s) -> "
        + ", ".join(str(p) for p in paths)
    )
    if args.show:
        from leaderboard.show import shown_lines

        for line in shown_lines(board, args.show):
            print(line)
    return 0
