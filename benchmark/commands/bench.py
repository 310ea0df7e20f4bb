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
        "the cost table run --plan reads (SD-1.5 architecture: training steps, UNet calls, LFD, features)",
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    module, _ = BENCHES[args.name]
    return int(resolve(f"{module}:main", "benchmark script")(quick=args.quick))
