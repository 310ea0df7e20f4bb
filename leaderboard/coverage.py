"""``python -m leaderboard.coverage``: simulated coverage and median width of the clustered intervals of
:mod:`leaderboard.clustered` (nominal 95%; unit-variance data, normal and skewed, three shares of cluster
variance)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from leaderboard.clustered import coverage_and_width


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m leaderboard.coverage",
        description="Simulated coverage of the clustered intervals (nominal 95%).",
    )
    parser.add_argument("--clusters", type=int, default=4)
    parser.add_argument("--per-cluster", type=int, default=2)
    parser.add_argument("--trials", type=int, default=2000)
    args = parser.parse_args(argv)
    print(
        f"n = {args.clusters * args.per_cluster} concepts in {args.clusters} clusters, {args.trials} trials"
    )
    for method in ("boot-t", "t", "bca"):
        for skewed in (False, True):
            for within in (0.0, 0.5, 0.9):
                c, width = coverage_and_width(
                    method,
                    n_clusters=args.clusters,
                    per_cluster=args.per_cluster,
                    within=within,
                    skewed=skewed,
                    trials=args.trials,
                )
                shape = "skewed" if skewed else "normal"
                print(
                    f"{method:6s} {shape:7s} cluster share {within:.1f}: coverage {c:.3f}, median width {width:.2f}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
