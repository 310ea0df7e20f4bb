"""A job is one (method, concept) of a run, described by a plain, picklable spec (a dict).

``run_job(spec)`` is what every executor calls, in this process or in a worker. The run context (models,
backbones) is built once per process for the run's shared settings and reused by later jobs, so a local
run loads the base model once. A job reports its rows and what it computed *itself* (deltas of the
stage counts and counters), so an executor merges results with plain ``Counter`` addition.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from benchmark.cache import StageCache
from benchmark.context import RunContext
from benchmark.settings import EvalSettings

JOB_FIELDS = ("method", "concept")
_contexts: dict[str, RunContext] = {}  # per process: the run's shared spec -> its context


def job_context(spec: dict[str, Any]) -> RunContext:
    """The run context for a job spec (built on first use in this process, then reused)."""
    shared = {k: v for k, v in spec.items() if k not in JOB_FIELDS}
    key = json.dumps(shared, sort_keys=True, default=str)
    if key not in _contexts:
        from benchmark.suites import load_suite

        suite = load_suite(spec["suite"], spec.get("data_root"), cache=spec["cache"])
        _contexts.clear()  # one run at a time per process: release the previous run's models
        _contexts[key] = RunContext(
            suite=suite,
            settings=EvalSettings.from_dict(spec["settings"]),
            cache=StageCache(spec["cache"]),
            run_dir=Path(spec["run_dir"]),
            device=spec.get("device", "cpu"),
            progress=spec.get("progress", True),
        )
    return _contexts[key]


def run_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Score one (method, concept). Returns plain data: ``rows``, and the stage counts
    (``computed``, ``cached``) and ``counters`` this job added."""
    from baselines import load_method
    from benchmark.scoring import score_trajectory
    from benchmark.suites import select_concepts

    if spec.get("torch_threads"):
        import torch

        # Ray workers start with one thread; float32 reductions depend on the thread count, so
        # workers use the driver's to give bit-identical rows.
        torch.set_num_threads(int(spec["torch_threads"]))
    ctx = job_context(spec)
    before = (Counter(ctx.cache.computed), Counter(ctx.cache.hits), Counter(ctx.counters))
    concept = select_concepts(ctx.suite, [spec["concept"]])[0]
    rows = score_trajectory(ctx, load_method(spec["method"]), concept)
    return {
        "rows": rows,
        "computed": dict(ctx.cache.computed - before[0]),
        "cached": dict(ctx.cache.hits - before[1]),
        "counters": dict(ctx.counters - before[2]),
    }
