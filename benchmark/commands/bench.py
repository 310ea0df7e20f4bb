"""``overfit-bench bench NAME``: speed/memory benchmark scripts whose output is quoted in notes."""

from __future__ import annotations

import argparse
from typing import Any

from benchmark.io import resolve

# benchmark name -> (module, description); each module has main(quick: bool) -> int
BENCHES: dict[str, tuple[str, str]] = {
    "metrics": ("benchmark.perf.metrics_bench", "W2 exact/Gaussian and CLIP/DINO feature throughput"),
    "train": ("benchmark.perf.train_step", "one SD-1.5 training step per method: time and peak memory"),
    "costs": (
        "benchmark.perf.costs",
        "the cost table run --plan reads (SD-1.5 architecture: training steps, UNet calls, LFD, features; "
        "--suite NAME: that suite's own model)",
    ),
}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="run a speed/memory benchmark and print a table",
        description="Time a piece of the suite and print a table: "
        + "; ".join(f"{k}: {v[1]}" for k, v in BENCHES.items())
        + ".",
    )
    p.add_argument(
        "name", choices=sorted(BENCHES), help="; ".join(f"{k}: {v[1]}" for k, v in BENCHES.items())
    )
    p.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke check")
    p.add_argument(
        "--suite",
        help="costs only: measure the table of this suite's own model (its base model, backbones and "
        "recipes, on this machine) and write benchmark/perf/costs-<model>.json",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run one benchmark; ``--suite`` is only for ``costs`` (a usage error elsewhere)."""
    module, _ = BENCHES[args.name]
    main = resolve(f"{module}:main", "benchmark script")
    if getattr(args, "suite", None) is None:
        return int(main(quick=args.quick))
    if args.name != "costs":
        raise ValueError(f"--suite applies to `bench costs` only, not `bench {args.name}`; drop --suite")
    return int(main(quick=args.quick, suite=args.suite))
