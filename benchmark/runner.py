"""Run a suite: shared stages first, then one job per (method, concept) on an executor.

Rows are appended to ``RUN_DIR/results.jsonl`` as each job finishes, so a killed run keeps every
finished job's rows and its cached stages; a rerun recomputes nothing that finished.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.context import RunContext
from benchmark.errors import MethodFailure
from benchmark.io import atomic_write_json
from benchmark.jobspec import JobSpec
from benchmark.settings import EvalSettings

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a run did: its rows file, the per-stage cache counts and the UNet row counters."""

    results: Path
    rows_added: int
    stages: dict[str, dict[str, int]]
    counters: dict[str, int] = field(default_factory=dict)


def shared_stages(ctx: RunContext, concepts: list[Any]) -> None:
    """Suite-level stages every method reuses: reference features, class text features, base
    generations (for W2), base samples and base predictions on the LFD grid."""
    from baselines import load_method
    from benchmark import stages

    base = load_method("base")
    for concept in concepts:
        for spec in ctx.settings.extractors.values():
            stages.reference_features(ctx, concept, spec)
            if spec.kind == "clip":  # an image-text extractor: the prompts' text features
                stages.class_text_features(ctx, concept, spec)
        stages.generate(ctx, base, concept)
        for prompts in stages.lfd_prompt_sets(ctx, concept).values():
            stages.base_eps(ctx, prompts)


def run_suite(
    *,
    suite: str | Path,
    methods: list[str],
    concepts: list[str] | None,
    settings: EvalSettings,
    run_dir: Path,
    cache_root: Path,
    data_root: str | None = None,
    device: str = "cpu",
    executor: str = "local",
    progress: bool = True,
    address: str | None = None,
    workers: int = 1,
) -> RunResult:
    """Run ``methods`` × ``concepts`` of ``suite`` (a name or a manifest file) and append rows to
    ``run_dir/results.jsonl``.

    Raises:
        KeyError: unknown suite, method or concept (with suggestions).
        ValueError: unknown executor.
    """
    import torch

    from baselines import load_method
    from benchmark.executors import make_executor, merge_counts
    from benchmark.jobs import job_context, run_job
    from benchmark.results import append_rows
    from benchmark.scoring import real_rows
    from benchmark.suites import select_concepts

    runner = make_executor(executor, progress=progress, address=address, workers=workers)
    threads = settings.torch_threads or torch.get_num_threads()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)  # the shared stages too: the same thread count as every job
    for name in methods:
        load_method(name)  # fail fast on a typo or a broken outside method
    spec = JobSpec(
        suite=str(suite),
        settings=settings,
        cache=Path(cache_root),
        run_dir=Path(run_dir),
        data_root=data_root,
        device=device,
        progress=progress,
        torch_threads=threads,
    )
    ctx = job_context(spec)
    chosen = select_concepts(ctx.suite, concepts)
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {
        **spec.record(),
        "data_root": str(ctx.suite.root.parent),  # as resolved ($OVERFIT_BENCH_DATA, --data-root, ...)
        "suite_dir": str(ctx.suite.root),
        "methods": methods,
        "concepts": [c.id for c in chosen],
    }
    atomic_write_json(run_dir / "run.json", record, indent=1)
    results = run_dir / "results.jsonl"

    before = (Counter(ctx.cache.computed), Counter(ctx.cache.hits), Counter(ctx.counters))
    shared_stages(ctx, chosen)
    added = 0
    for concept in chosen:
        added += append_rows(results, real_rows(ctx, concept))
    shared = {
        "computed": dict(ctx.cache.computed - before[0]),
        "cached": dict(ctx.cache.hits - before[1]),
        "counters": dict(ctx.counters - before[2]),
    }
    jobs = [spec.job(name, c.id) for name in methods for c in chosen]
    outcomes = [shared]
    try:
        for out in runner.map(run_job, jobs):
            added += append_rows(results, out["rows"])
            outcomes.append(out)
    except MethodFailure as err:
        err.log_path = _log_failure(run_dir, err)  # type: ignore[attr-defined]
        raise
    computed, cached = merge_counts(outcomes, "computed"), merge_counts(outcomes, "cached")
    stages = {s: {"computed": computed[s], "cached": cached[s]} for s in sorted(set(computed) | set(cached))}
    counters = dict(merge_counts(outcomes, "counters"))
    torch.set_num_threads(previous_threads)
    atomic_write_json(run_dir / "stages.json", {"stages": stages, "counters": counters}, indent=1)
    return RunResult(results=results, rows_added=added, stages=stages, counters=counters)


def _log_failure(run_dir: Path, err: BaseException) -> Path:
    """Append the failure's traceback to ``RUN_DIR/errors.log``; return its path."""
    import datetime as dt
    import traceback

    path = run_dir / "errors.log"
    stamp = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"--- {stamp}\n" + "".join(traceback.format_exception(err)) + "\n")
    return path


def summary_table(results: Path) -> str:
    """A plain-text table: one line per method and rung (``method ×0.5``; the tuned budget and methods
    without rungs are the plain name), mean over concepts of each metric."""
    from leaderboard.frame import load_results
    from metrics.spec import METRICS

    frame = load_results([results])
    rung = frame["rung"].astype("float64").fillna(1.0)
    frame = frame.assign(
        line=[m if r == 1.0 else f"{m} ×{r:g}" for m, r in zip(frame["method"], rung, strict=True)]
    )
    frame = frame.assign(order=rung)
    means = frame.groupby(["line", "metric"])["value"].mean()
    lines_in_order = frame.drop_duplicates("line").sort_values(["method", "order"])["line"].tolist()
    # the oracle (role grader) grades the metrics; it is not one of them, here as on the page
    keys = [k for k in METRICS if k in set(frame["metric"]) and METRICS[k].role != "grader"]
    width = max([20, *(len(line) + 2 for line in lines_in_order)])
    names = {k: f"{METRICS[k].id} {METRICS[k].arrow}" for k in keys}
    cols = {k: max(16, len(names[k]) + 2) for k in keys}
    header = f"{'method':<{width}}" + "".join(f"{names[k]:>{cols[k]}}" for k in keys)
    lines = [header]
    for line in lines_in_order:
        cells = [
            f"{means[(line, k)]:>{cols[k]}.4g}" if (line, k) in means.index else f"{'—':>{cols[k]}}"
            for k in keys
        ]
        lines.append(f"{line:<{width}}" + "".join(cells))
    return "\n".join(lines)
