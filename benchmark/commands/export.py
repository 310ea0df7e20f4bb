"""``overfit-bench export``: a run's images and per-image scores as a Hugging Face dataset."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="write a run's images and per-image scores as a Hugging Face dataset",
        description="Write every generated image of RUN_DIR with its method, rung, concept, prompt, seed and its "
        "own CLIP-T, CLIP-I and DINO as a datasets.Dataset (save_to_disk), Parquet shards (OUT/parquet/) and "
        "a dataset card (OUT/README.md). datasets.load_from_disk(OUT) reads it; `overfit-bench score --images "
        "OUT` scores it again.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a folder written by `overfit-bench run`")
    p.add_argument("--out", type=Path, required=True, help="an empty or new folder for the dataset")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from benchmark.export import export_run

    ds = export_run(args.run_dir, args.out)
    methods = sorted(set(ds["method"]))
    print(f"exported {len(ds)} images ({', '.join(methods)}) to {args.out}")
    return 0
