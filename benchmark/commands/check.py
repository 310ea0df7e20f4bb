"""``overfit-bench check``: the CI regression gate, fresh result rows against committed ones."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add the ``check`` subcommand."""
    p = sub.add_parser(
        "check",
        help="compare fresh result rows with committed baseline rows within tolerances",
        description="A fresh value passes when |fresh - baseline| <= atol + rtol*|baseline|. Exits 1 listing "
        "every drifted, version-changed, missing or new row; exits 0 with a one-line summary otherwise.",
    )
    p.add_argument("fresh", metavar="FRESH", help="fresh results (JSONL file or directory of *.jsonl)")
    p.add_argument(
        "--baseline", required=True, metavar="COMMITTED", help="committed results (JSONL file or directory)"
    )
    p.add_argument("--rtol", type=float, default=None, help="relative tolerance (default: 1e-3)")
    p.add_argument("--atol", type=float, default=None, help="absolute tolerance (default: 1e-6)")
    p.add_argument(
        "--tolerances",
        metavar="FILE",
        default=None,
        help='JSON/YAML file: {"rtol": .., "atol": .., "metrics": {"lfd": {"atol": ..}, "w2@1": {"rtol": ..}}}',
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Compare and print the verdict.

    Returns:
        0 when every row matches, 1 when any row drifted, changed version, is missing or is new,
        2 on invalid input (printed to stderr).
    """
    from leaderboard import RowError, ToleranceError, compare_rows, make_tolerances, read_rows

    try:
        tolerances = make_tolerances(args.tolerances, rtol=args.rtol, atol=args.atol)
        fresh = read_rows([args.fresh])
        baseline = read_rows([args.baseline])
    except (RowError, ToleranceError) as exc:
        print(f"overfit-bench check: error: {exc}", file=sys.stderr)
        return 2
    report = compare_rows(fresh, baseline, tolerances)
    for finding in report.findings:
        print(finding.message)
    print(report.summary())
    return 0 if report.ok else 1
