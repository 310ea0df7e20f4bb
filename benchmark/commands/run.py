"""``overfit-bench run``: run a suite with built-in or external methods, then print and write the leaderboard."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

DEFAULT_SUITE = "toy"


def register(sub: Any) -> None:
    from benchmark.data.manifest import available_suites

    p = sub.add_parser(
        "run",
        help="run a suite (default: the embedded toy suite, every built-in method, CPU)",
        description="Fit every method on every concept of a suite, generate its images, score every metric "
        "and write RUN_DIR/results.jsonl and RUN_DIR/leaderboard/. Every stage is cached and a killed run "
        "resumes. Exit codes: 0 done, 2 bad arguments, 3 data/model/CUDA/folder unavailable, 4 a method's "
        "code failed (its traceback in RUN_DIR/errors.log).",
    )
    p.add_argument(
        "--suite",
        default=DEFAULT_SUITE,
        help=f"suite name: {', '.join(available_suites())} (default: {DEFAULT_SUITE})",
    )
    p.add_argument(
        "--manifest",
        type=Path,
        help="a suite manifest file to run instead of a shipped suite (its 'evaluation' profile included)",
    )
    p.add_argument(
        "--methods", help="comma-separated method names or package.module:Class (default: all built-in)"
    )
    p.add_argument("--concepts", help="comma-separated concept ids (default: all of the suite's)")
    p.add_argument("--model", help="base model id or local path (default: the suite's)")
    p.add_argument(
        "--rungs",
        help="training budgets to score each trainable method at, as multiples of its tuned steps, e.g. "
        "0.5,1,2; 'full' for the whole ladder 0.25,0.5,1,2,4 (default: the suite's profile; toy: 0.25,0.5,1,2)",
    )
    p.add_argument("--out", type=Path, help="run folder (default: runs/<suite>)")
    p.add_argument(
        "--cache", type=Path, help="cache folder (default: $OVERFIT_BENCH_CACHE or the user cache dir)"
    )
    p.add_argument("--data-root", help="data root (default: $OVERFIT_BENCH_DATA or the user cache dir)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where models run (default: cpu)")
    p.add_argument(
        "--executor",
        default="local",
        choices=["local", "ray"],
        help="local: jobs one after another in this process; ray: jobs as Ray tasks (default: local)",
    )
    p.add_argument(
        "--address",
        help="with --executor ray: the Ray cluster to join, e.g. HEAD_IP:6379 (default: start a local one); "
        "every node must see the --cache folder at the same path",
    )
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument(
        "--plan",
        action="store_true",
        help="print the job grid, what is cached, what is to do and its estimated cost (docs/COSTS.md); "
        "loads no model and writes nothing",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="local executor: jobs in this many processes at once (default: the CPU cores over the suite's "
        "torch threads per job when its profile fixes them, at most 4; else 1); with --plan: workers to "
        "estimate the wall time for (default: those the run would use)",
    )
    p.add_argument("--no-leaderboard", action="store_true", help="do not write RUN_DIR/leaderboard/")
    p.set_defaults(func=run)


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (``--workers 0`` is an error, not the default)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def default_methods() -> list[str]:
    from baselines import list_methods

    return list(list_methods())


def default_workers(settings: Any) -> int:
    """Parallel local jobs: the CPU cores over the profile's threads per job (at most 4), else 1."""
    import os

    if not settings.torch_threads:
        return 1
    return max(1, min(4, (os.cpu_count() or 1) // int(settings.torch_threads)))


def suite_source(args: argparse.Namespace) -> tuple[str, str]:
    """What to load (a suite name, or the ``--manifest`` file) and the suite's name.

    Raises:
        ManifestError: the manifest file is missing or malformed.
    """
    if getattr(args, "manifest", None) is None:
        return args.suite, args.suite
    from benchmark.data.manifest import load_manifest

    return str(args.manifest), load_manifest(args.manifest).name


def run(args: argparse.Namespace) -> int:
    """Run the suite; failures reach ``benchmark.cli.main``, which prints one line and the exit code."""
    from benchmark.paths import check_device, checked_cache_dir, checked_out_dir
    from benchmark.runner import run_suite, summary_table
    from benchmark.settings import parse_rungs, settings_for

    start = time.perf_counter()
    suite, name = suite_source(args)
    settings = settings_for(suite, model=args.model)
    if args.rungs:
        settings = settings.replace(rungs=parse_rungs(args.rungs, "--rungs"))
    methods = args.methods.split(",") if args.methods else default_methods()
    concepts = args.concepts.split(",") if args.concepts else None
    if args.plan:
        from benchmark.paths import cache_dir
        from benchmark.plan import make_plan, render

        plan = make_plan(
            suite=suite,
            methods=methods,
            concepts=concepts,
            settings=settings,
            cache_root=cache_dir(args.cache),
            data_root=args.data_root,
            workers=args.workers or (default_workers(settings) if args.executor == "local" else 1),
        )
        print(render(plan))
        return 0
    out = checked_out_dir(args.out or Path("runs") / name)
    if args.executor == "local":  # with Ray the cluster's machines, not this one, run the jobs
        check_device(args.device)
    cache = checked_cache_dir(args.cache)
    from benchmark.budget_report import budget_lines

    for line in budget_lines(suite, methods, settings, cache):  # which budget each method trains with
        print(line, flush=True)
    result = run_suite(
        suite=suite,
        methods=methods,
        concepts=concepts,
        settings=settings,
        run_dir=out,
        cache_root=cache,
        data_root=args.data_root,
        device=args.device,
        executor=args.executor,
        progress=not args.no_progress,
        address=args.address,
        workers=args.workers or default_workers(settings),
    )
    print(summary_table(result.results))
    from leaderboard import read_rows
    from leaderboard.learning import learning_lines

    for line in learning_lines(read_rows([result.results])):  # methods that did not learn
        print(line)
    print("\nstages (computed / from cache):")
    for stage, counts in result.stages.items():
        print(f"  {stage:<14} {counts['computed']:>4} / {counts['cached']}")
    if result.counters:
        print("counters: " + ", ".join(f"{k}={v}" for k, v in sorted(result.counters.items())))
    if not args.no_leaderboard:
        from leaderboard import build_leaderboard, read_rows, write_leaderboard

        board = build_leaderboard(
            read_rows([result.results]),
            references={name: settings.reference_method},
            fidelity_levels={name: settings.headline_levels},
            level_rules={name: settings.headline_levels_rule},
            headline_notes={name: settings.headline_notes},
            leads={name: (settings.headline_specific, settings.headline_specific_rule)}
            if settings.headline_specific
            else None,
        )
        paths = write_leaderboard(board, out / "leaderboard")
        print("leaderboard: " + ", ".join(str(p) for p in paths))
    print(f"{result.rows_added} new rows in {result.results} ({time.perf_counter() - start:.1f} s)")
    return 0
