"""``overfit-bench tune``: the suite's tuning protocol (:mod:`benchmark.toy.tuning`) for any method, on the
suite's tuning concepts only; the chosen budget is stored in the cache (:mod:`benchmark.tuned`), where
``score`` and ``run`` find it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "tune",
        help="choose a method's learning rate and steps on the suite's tuning concepts (for score and run)",
        description="Run the suite's tuning protocol (docs/VALIDITY.md, 'Tuning') for one method on the "
        "suite's tuning concepts only (suite <suite>-tuning): train at each learning rate of its grid, read "
        "the oracle's identity at 1/4, 1/2, 1, 2 and 4 x its budget's steps, and keep the smallest budget on "
        "the identity plateau of the best rate. Prints the sweep table and stores the choice in the cache, "
        "where `score` and `run` use it. Every fit is cached: a killed tune resumes. A method whose recipe "
        "declares the suite's budget, or whose budget the suite's profile sets (the built-ins), keeps it. "
        "Exit codes: 0 done (or nothing to tune), 1 no learning rate tried showed the concept (nothing "
        "stored), 2 bad arguments, 3 data or model unavailable, 4 the method failed.",
    )
    p.add_argument("--method", required=True, help="package.module:Class, or a built-in method name")
    p.add_argument("--suite", default="toy", help="the suite to tune for (default: toy; its tuning concepts)")
    p.add_argument(
        "--lrs",
        help="comma-separated learning rates to try instead of the protocol's grid (built-in: its grid; "
        "a class deriving from a built-in: that built-in's grid; else the budget's rate x 1/4, 1, 4)",
    )
    p.add_argument(
        "--rungs",
        help="comma-separated multiples of the budget's steps to read identity at (default: 0.25,0.5,1,2,4)",
    )
    p.add_argument(
        "--cache", type=Path, help="cache folder (default: $OVERFIT_BENCH_CACHE or the user cache dir)"
    )
    p.add_argument("--data-root", help="data root (default: $OVERFIT_BENCH_DATA or the user cache dir)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def _numbers(text: str, flag: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"{flag}: expected comma-separated positive numbers, got {text!r}") from None
    if not values or any(not v > 0 for v in values):
        raise ValueError(f"{flag}: expected comma-separated positive numbers, got {text!r}")
    return values


def run(args: argparse.Namespace) -> int:
    """Tune; failures reach ``benchmark.cli.main`` (one line and the exit code)."""
    lrs = _numbers(args.lrs, "--lrs") if args.lrs else None
    rungs = sorted(set(_numbers(args.rungs, "--rungs"))) if args.rungs else None
    from baselines import load_method
    from benchmark.data.manifest import load_manifest
    from benchmark.settings import settings_for
    from benchmark.tuned import declares_budget, set_by_profile, tuning_suite_of

    tuning_suite = tuning_suite_of(args.suite)  # ValueError (one line) when the suite has none
    settings = settings_for(args.suite)
    handle = load_method(args.method)
    if not (handle.trains and handle.has_recipe()):
        why = "trains nothing" if not handle.trains else "has no resolve_config (no recipe)"
        raise ValueError(f"method {handle.name!r} {why}: the harness cannot set its learning rate and steps")
    from benchmark.budgets import budget_config

    config = budget_config(settings, handle)
    missing = [k for k in ("lr", "steps") if k not in config]
    if missing:
        raise ValueError(f"method {handle.name!r}: its config has no {' and no '.join(missing)} to tune")
    if set_by_profile(settings, handle):
        own = settings.method_overrides[handle.name]
        print(
            f"{handle.name}: lr {own['lr']:g} and {own['steps']} steps are set by suite {args.suite!r}'s "
            "profile (method_overrides, chosen by the committed protocol: python -m benchmark.toy.tuning); "
            "nothing to tune"
        )
        return 0
    if declares_budget(settings, handle):
        print(
            f"{handle.name}: its recipe declares its own {settings.budget!r} budget (lr {config['lr']:g}, "
            f"{config['steps']} steps), which score and run keep; nothing to tune"
        )
        return 0
    return _tune(args, handle, settings, tuning_suite, lrs, rungs, load_manifest(args.suite).version)


def _tune(
    args: argparse.Namespace,
    handle: Any,
    settings: Any,
    tuning_suite: str,
    lrs: list[float] | None,
    rungs: list[float] | None,
    version: Any,
) -> int:
    import torch

    from benchmark.paths import checked_cache_dir
    from benchmark.settings import settings_for
    from benchmark.toy.assets import oracle_checkpoint
    from benchmark.toy.oracle import load_oracle
    from benchmark.toy.tuning import RUNGS, render_report, sweep

    cache = checked_cache_dir(args.cache)
    tuning_settings = settings_for(tuning_suite)
    previous = torch.get_num_threads()
    if tuning_settings.torch_threads:  # float32 reductions depend on the thread count
        torch.set_num_threads(int(tuning_settings.torch_threads))
    try:
        result = sweep(
            args.method,
            cache,
            load_oracle(oracle_checkpoint()),
            lrs=lrs,
            rungs=tuple(rungs) if rungs else RUNGS,
            settings=tuning_settings,
            progress=not args.no_progress,
            suite=tuning_suite,
            data_root=args.data_root,
        )
    finally:
        torch.set_num_threads(previous)
    command = f"overfit-bench tune --suite {args.suite} --method {args.method}"
    command += f" --lrs {args.lrs}" if args.lrs else ""
    command += f" --rungs {args.rungs}" if args.rungs else ""
    report = render_report([result], command).split("\n", 2)[2]  # less the docs' do-not-edit line
    print(f"tuning protocol of {handle.name} on {tuning_suite}, the tuning concepts of suite {args.suite!r}:")
    print(report)
    choice = result["choice"]
    if choice["plateau"] <= 0.0:
        tried = ", ".join(f"{x:g}" for x in result["lrs"])
        print(
            f"WARNING: {handle.name} showed its concept at no learning rate tried ({tried}) and no budget "
            "was stored (score and run keep any stored before); try higher rates with --lrs"
        )
        return 1
    path = store_choice(
        cache, args.suite, version, settings, handle, result, tuning_suite=tuning_suite, given_as=args.method
    )
    budget = json.loads(path.read_text(encoding="utf-8"))["budget"]
    print(
        f"tuned budget of {handle.name} for suite {args.suite!r}: lr {budget['lr']:g}, {budget['steps']} steps "
        f"(identity {choice['identity']:.3f} on {tuning_suite}); score and run use it: {path}"
    )
    return 0


def store_choice(
    cache: Path,
    suite: str,
    version: Any,
    settings: Any,
    handle: Any,
    result: dict[str, Any],
    *,
    tuning_suite: str,
    given_as: str,
) -> Path:
    """Store a sweep's choice (:func:`benchmark.toy.tuning.sweep`) as ``handle``'s tuned budget on
    ``suite@version`` (atomically), with the sweep; returns the file."""
    import datetime as dt

    from benchmark.io import atomic_write_json
    from benchmark.toy.tuning import RUNGS, checkpoint_every
    from benchmark.tuned import PROTOCOL, code_hash, tuned_file, tuned_key

    steps = int(result["choice"]["steps"])

    def _every(n: int) -> int:  # every rung of the tuning ladder resumes, 1/4 included where it can
        with_quarter = checkpoint_every(n, RUNGS)
        return with_quarter if with_quarter < n else checkpoint_every(n)

    path = tuned_file(cache, suite, version, tuned_key(settings, suite, version, handle))
    record = {
        "protocol": PROTOCOL,
        "method": handle.name,
        "given_as": given_as,
        "method_version": handle.version,
        "code": code_hash(handle),
        "suite": suite,
        "suite_version": version,
        "tuning_suite": tuning_suite,
        "budget": {
            "lr": float(result["choice"]["lr"]),
            "steps": steps,
            "checkpoint_every": _every(steps),
        },
        "created_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "sweep": result,
    }
    return atomic_write_json(path, record, indent=1)
