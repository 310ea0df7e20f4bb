"""``overfit-bench metrics``: list the metrics with their versions and orientation."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "metrics",
        help="list the metrics, their versions and definitions",
        description="Every metric the suite computes (metrics/spec.py): versioned id, orientation (↑ higher "
        "is better, ↓ lower), the named inputs it is computed from and its definition.",
    )
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from metrics.spec import METRICS

    if args.json:
        print(
            json.dumps(
                [
                    {
                        "key": s.key,
                        "id": s.id,
                        "name": s.name,
                        "higher_is_better": s.higher_is_better,
                        "inputs": list(s.inputs),
                        "definition": s.definition,
                    }
                    for s in METRICS.values()
                ],
                indent=2,
            )
        )
        return 0
    width = max(len(s.id) for s in METRICS.values())
    for s in METRICS.values():
        print(f"{s.id:<{width}}  {s.arrow}  {s.name}")
    return 0
