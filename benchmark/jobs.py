"""A job is one (method, concept) of a run, described by a frozen, picklable
:class:`~benchmark.jobspec.JobSpec` that carries the run's settings object.

``run_job(spec)`` is what every executor calls, in this process or in a worker. The run context (models,
backbones) is built once per process for the run's shared spec and reused by later jobs, so a local
run loads the base model once. A job reports its rows and what it computed *itself* (deltas of the
stage counts and counters), so an executor merges results with plain ``Counter`` addition.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from benchmark.cache import StageCache
from benchmark.context import RunContext
from benchmark.jobspec import JobSpec

_current: list[tuple[JobSpec, RunContext]] = []  # per process: the run's shared spec and its context


def job_context(spec: JobSpec) -> RunContext:
    """The run context for a job spec (built on first use in this process, then reused while the run's
    shared part of the spec is equal)."""
    shared = spec.shared()
    if not _current or _current[0][0] != shared:
        from benchmark.suites import load_suite

        suite = load_suite(spec.suite, spec.data_root, cache=spec.cache)
        _current.clear()  # one run at a time per process: release the previous run's models
        context = RunContext(
            suite=suite,
            settings=spec.settings,
            cache=StageCache(spec.cache),
            run_dir=spec.run_dir,
            device=spec.device,
            progress=spec.progress,
        )
        _current.append((shared, context))
    return _current[0][1]


def run_job(spec: JobSpec) -> dict[str, Any]:
    """Score one (method, concept). Returns plain data: ``rows``, and the stage counts
    (``computed``, ``cached``) and ``counters`` this job added."""
    from baselines import load_method
    from benchmark.scoring import score_trajectory
    from benchmark.suites import select_concepts

    if spec.torch_threads:
        import torch

        # Ray workers start with one thread; float32 reductions depend on the thread count, so
        # workers use the driver's to give bit-identical rows.
        torch.set_num_threads(spec.torch_threads)
    ctx = job_context(spec)
    before = (Counter(ctx.cache.computed), Counter(ctx.cache.hits), Counter(ctx.counters))
    if spec.method is None or spec.concept is None:
        raise ValueError(
            f"run_job: a job names a method and a concept, got {spec.method!r}, {spec.concept!r}"
        )
    concept = select_concepts(ctx.suite, [spec.concept])[0]
    rows = score_trajectory(ctx, load_method(spec.method), concept)
    return {
        "rows": rows,
        "computed": dict(ctx.cache.computed - before[0]),
        "cached": dict(ctx.cache.hits - before[1]),
        "counters": dict(ctx.counters - before[2]),
    }
