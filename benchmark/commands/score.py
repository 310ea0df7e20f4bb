"""``overfit-bench score``: score an outside method (import path) or a folder of generated images."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("score", help="score an outside method (package.module:Class) or a folder of images")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--suite", help="suite name")
    where.add_argument("--manifest", type=Path, help="a suite manifest file (instead of a shipped suite)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--method", help="package.module:Class (full scoring, LFD included)")
    src.add_argument("--images", type=Path, help="folder DIR/<concept>/<prompt_index>_<seed>.png")
    p.add_argument("--name", help="method name for image-folder rows (default: the folder's name)")
    p.add_argument("--concepts", help="comma-separated concept ids (default: all)")
    p.add_argument("--model", help="base model id or local path (default: the suite's)")
    p.add_argument("--out", type=Path, help="run folder (default: runs/<suite>-score)")
    p.add_argument("--cache", type=Path, help="cache folder")
    p.add_argument("--data-root", help="data root")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from benchmark.cache import StageCache
    from benchmark.commands.run import suite_source
    from benchmark.context import ModelUnavailable, RunContext
    from benchmark.data.errors import DataError
    from benchmark.image_scoring import ImageFolderError, score_folder
    from benchmark.paths import cache_dir
    from benchmark.results import append_rows
    from benchmark.runner import run_suite, summary_table
    from benchmark.settings import settings_for
    from benchmark.suites import load_suite, select_concepts

    concepts = args.concepts.split(",") if args.concepts else None
    try:
        suite_ref, name = suite_source(args)
        out = args.out or Path("runs") / f"{name}-score"
        settings = settings_for(suite_ref, model=args.model)
        if args.method:
            result = run_suite(
                suite=suite_ref,
                methods=[args.method],
                concepts=concepts,
                settings=settings,
                run_dir=out,
                cache_root=cache_dir(args.cache),
                data_root=args.data_root,
                device=args.device,
                progress=not args.no_progress,
            )
            results = result.results
        else:
            cache = cache_dir(args.cache)
            suite = load_suite(suite_ref, args.data_root, cache=cache)
            ctx = RunContext(suite, settings, StageCache(cache), out, args.device, not args.no_progress)
            chosen = select_concepts(suite, concepts)
            rows = score_folder(ctx, args.images, chosen, args.name or args.images.resolve().name)
            results = out / "results.jsonl"
            append_rows(results, rows)
    except ImageFolderError as err:
        print(
            f"overfit-bench score: the image folder does not match suite {(args.suite or str(args.manifest))!r}:\n{err}",
            file=sys.stderr,
        )
        return 1
    except (KeyError, ValueError, FileNotFoundError, ModelUnavailable, DataError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"overfit-bench score: error: {msg}", file=sys.stderr)
        return 2
    print(summary_table(results))
    print(f"rows in {results}")
    return 0
