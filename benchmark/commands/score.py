"""``overfit-bench score``: score an outside method (import path) or a folder of generated images."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    from benchmark.data.manifest import available_suites

    p = sub.add_parser(
        "score",
        help="score an outside method (package.module:Class) or a folder of images",
        description="Score an outside method through the harness (every metric, LFD included) or a folder "
        "of images laid out DIR/<concept>/<prompt_index>_<seed>.png (`overfit-bench prompts` lists the "
        "files; every metric that needs no model). Exit codes: 0 done, 1 the folder does not match the "
        "suite (every problem listed), 2 bad arguments, 3 data or model unavailable, 4 the method failed.",
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--suite", help=f"suite name: {', '.join(available_suites())}")
    where.add_argument("--manifest", type=Path, help="a suite manifest file (instead of a shipped suite)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--method", help="package.module:Class (full scoring, LFD included)")
    src.add_argument(
        "--images",
        type=Path,
        help="a folder DIR/<concept>/<prompt_index>_<seed>.png, or a dataset written by `overfit-bench export`",
    )
    p.add_argument("--name", help="method name for image-folder rows (default: the folder's name)")
    p.add_argument("--concepts", help="comma-separated concept ids (default: all)")
    p.add_argument("--model", help="base model id or local path (default: the suite's)")
    p.add_argument("--out", type=Path, help="run folder (default: runs/<suite>-score)")
    p.add_argument(
        "--cache", type=Path, help="cache folder (default: $OVERFIT_BENCH_CACHE or the user cache dir)"
    )
    p.add_argument("--data-root", help="data root (default: $OVERFIT_BENCH_DATA or the user cache dir)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where models run (default: cpu)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Score; failures reach ``benchmark.cli.main`` (one line and the exit code), but a folder that does
    not match the suite's layout lists every problem (exit 1)."""
    from benchmark.cache import StageCache
    from benchmark.commands.run import suite_source
    from benchmark.context import RunContext
    from benchmark.image_scoring import ImageFolderError, score_folder
    from benchmark.paths import check_device, checked_cache_dir, checked_out_dir
    from benchmark.results import append_rows
    from benchmark.runner import run_suite, summary_table
    from benchmark.settings import settings_for
    from benchmark.suites import load_suite, select_concepts

    concepts = args.concepts.split(",") if args.concepts else None
    suite_ref, name = suite_source(args)
    out = checked_out_dir(args.out or Path("runs") / f"{name}-score")
    settings = settings_for(suite_ref, model=args.model)
    check_device(args.device)
    cache = checked_cache_dir(args.cache)
    if args.method:
        from benchmark.budget_report import budget_lines

        for line in budget_lines(suite_ref, [args.method], settings, cache):  # which budget, from where
            print(line, flush=True)
        result = run_suite(
            suite=suite_ref,
            methods=[args.method],
            concepts=concepts,
            settings=settings,
            run_dir=out,
            cache_root=cache,
            data_root=args.data_root,
            device=args.device,
            progress=not args.no_progress,
        )
        results = result.results
    else:
        from benchmark.export import dataset_as_folders, is_exported_dataset

        suite = load_suite(suite_ref, args.data_root, cache=cache)
        ctx = RunContext(suite, settings, StageCache(cache), out, args.device, not args.no_progress)
        chosen = select_concepts(suite, concepts)
        results = out / "results.jsonl"
        try:
            if is_exported_dataset(args.images):  # an `overfit-bench export`: every method and rung in it
                with dataset_as_folders(args.images) as sets:
                    for method, _, rung, folder in sets:
                        present = [c for c in chosen if (folder / c.id).is_dir()]
                        rows = score_folder(ctx, folder, present, args.name or method)
                        append_rows(results, [{**r, "rung": rung} for r in rows])
            else:
                rows = score_folder(ctx, args.images, chosen, args.name or args.images.resolve().name)
                append_rows(results, rows)
        except ImageFolderError as err:
            where = args.suite or str(args.manifest)
            print(
                f"overfit-bench score: the image folder does not match suite {where!r}:\n{err}",
                file=sys.stderr,
            )
            return 1
    print(summary_table(results))
    if args.method:  # the base model's stages are in the cache: its image rows are compared with
        suite = load_suite(suite_ref, args.data_root, cache=cache)
        ctx = RunContext(suite, settings, StageCache(cache), out, args.device, not args.no_progress)
        chosen = select_concepts(suite, concepts)
    else:
        from benchmark.image_scoring import model_line, model_notes

        if line := model_line(model_notes(ctx, chosen)):
            print(line)
    for line in learning_lines(ctx, chosen, results):
        print(line)
    print(f"rows in {results}")
    return 0


def learning_lines(ctx: Any, concepts: list[Any], results: Path) -> list[str]:
    """One line per scored method that did not learn (:mod:`leaderboard.learning`): its fidelity against
    the base model's rows, computed from the cached base stages when the results hold none."""
    from benchmark.image_scoring import base_rows
    from leaderboard import read_rows
    from leaderboard.learning import learning_lines as lines
    from leaderboard.rows import parse_row

    rows = read_rows([results])
    scored = {r.concept for r in rows if r.method not in ("base", "real")}
    have = {r.concept for r in rows if r.method == "base" and r.rung is None}
    chosen = [c for c in concepts if c.id in scored - have]
    rows += [parse_row(r, "base model's images") for r in base_rows(ctx, chosen)]
    return lines(rows)
