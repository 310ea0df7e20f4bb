"""Run a suite: shared stages first, then one job per (method, concept) on an executor.

Rows are appended to ``RUN_DIR/results.jsonl`` as each job finishes, so a killed run keeps every
finished job's rows and its cached stages; a rerun recomputes nothing that finished.
"""

from __future__ import annotations

import difflib
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.cache import StageCache, write_json_atomic
from benchmark.context import RunContext
from benchmark.settings import EvalSettings

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a run did: its rows file, the per-stage cache counts and the UNet row counters."""

    results: Path
    rows_added: int
    stages: dict[str, dict[str, int]]
    counters: dict[str, int] = field(default_factory=dict)


def select_concepts(suite: Any, wanted: list[str] | None) -> list[Any]:
    """The suite's concepts, or the named subset in the given order.

    Raises:
        KeyError: an unknown concept id (the message suggests the closest ones).
    """
    by_id = {c.id: c for c in suite.concepts}
    if not wanted:
        return list(suite.concepts)
    out = []
    for cid in wanted:
        if cid not in by_id:
            close = difflib.get_close_matches(cid, list(by_id), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise KeyError(f"suite {suite.name!r} has no concept {cid!r}{hint}")
        out.append(by_id[cid])
    return out


def make_context(spec: dict[str, Any]) -> RunContext:
    """Build a run context from a plain, picklable job spec (also used inside Ray workers)."""
    from benchmark.suites import load_suite

    suite = load_suite(spec["suite"], spec.get("data_root"), cache=spec["cache"])
    return RunContext(
        suite=suite,
        settings=EvalSettings.from_dict(spec["settings"]),
        cache=StageCache(spec["cache"]),
        run_dir=Path(spec["run_dir"]),
        device=spec.get("device", "cpu"),
        progress=spec.get("progress", True),
    )


def run_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Score one (method, concept); returns rows, stage counts and counters (plain data for Ray)."""
    from baselines import get_method

    if spec.get("torch_threads"):
        import torch

        # Ray workers start with one thread; float32 reductions depend on the thread count, so
        # workers use the driver's to give bit-identical rows.
        torch.set_num_threads(int(spec["torch_threads"]))
    ctx = make_context(spec)
    concept = select_concepts(ctx.suite, [spec["concept"]])[0]
    rows = _score_job(ctx, get_method(spec["method"]), concept)
    return {"rows": rows, "stages": ctx.cache.summary(), "counters": dict(ctx.counters)}


def _score_job(ctx: RunContext, method: Any, concept: Any) -> list[dict[str, Any]]:
    from benchmark.stages import score

    return score(ctx, method, concept)


def shared_stages(ctx: RunContext, concepts: list[Any]) -> None:
    """Suite-level stages every method reuses: reference features, class text features, base
    generations (for W2), base samples and base predictions on the LFD grid."""
    from baselines import get_method
    from benchmark import stages

    base = get_method("base")
    for concept in concepts:
        stages.reference_features(ctx, concept, ctx.settings.clip)
        stages.reference_features(ctx, concept, ctx.settings.dino)
        stages.class_text_features(ctx, concept)
        stages.generate(ctx, base, concept)
        for prompts in stages.lfd_prompt_sets(ctx, concept).values():
            stages.base_eps(ctx, prompts)


def run_suite(
    *,
    suite: str,
    methods: list[str],
    concepts: list[str] | None,
    settings: EvalSettings,
    run_dir: Path,
    cache_root: Path,
    data_root: str | None = None,
    device: str = "cpu",
    executor: str = "local",
    progress: bool = True,
) -> RunResult:
    """Run ``methods`` × ``concepts`` of ``suite`` and append rows to ``run_dir/results.jsonl``.

    Raises:
        KeyError: unknown suite, method or concept (with suggestions).
        ValueError: unknown executor.
    """
    from tqdm.auto import tqdm

    from baselines import get_method
    from benchmark.results import append_rows
    from benchmark.stages import real_rows

    if executor not in ("local", "ray"):
        raise ValueError(f"unknown executor {executor!r}; expected 'local' or 'ray'")
    method_objs = [get_method(m) for m in methods]  # fail fast on a typo
    spec: dict[str, Any] = {
        "suite": suite,
        "data_root": data_root,
        "settings": settings.identity(),
        "cache": str(cache_root),
        "run_dir": str(run_dir),
        "device": device,
        "progress": progress,
    }
    ctx = make_context(spec)
    chosen = select_concepts(ctx.suite, concepts)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_dir / "run.json", {**spec, "methods": methods, "concepts": [c.id for c in chosen]})
    results = run_dir / "results.jsonl"

    shared_stages(ctx, chosen)
    added = 0
    for concept in chosen:
        added += append_rows(results, real_rows(ctx, concept))
    jobs = [(m, c) for m in method_objs for c in chosen]
    stages_total: Counter[str] = Counter()
    computed_total: Counter[str] = Counter()
    counters: Counter[str] = Counter(ctx.counters)
    if executor == "local":
        for method, concept in tqdm(jobs, desc="jobs", disable=not progress):
            rows = _score_job(ctx, method, concept)
            added += append_rows(results, rows)
        counters = Counter(ctx.counters)
        stages = ctx.cache.summary()
    else:
        import torch

        from benchmark.ray_executor import run_ray

        spec["torch_threads"] = torch.get_num_threads()

        for out in run_ray(
            [
                {**spec, "method": spec_name, "concept": c.id}
                for (m, c), spec_name in zip(jobs, [n for n in methods for _ in chosen], strict=True)
            ],
            progress=progress,
        ):
            added += append_rows(results, out["rows"])
            for stage, counts in out["stages"].items():
                computed_total[stage] += counts["computed"]
                stages_total[stage] += counts["cached"]
            counters.update(out["counters"])
        stages = ctx.cache.summary()
        for stage in set(computed_total) | set(stages_total):
            entry = stages.setdefault(stage, {"computed": 0, "cached": 0})
            entry["computed"] += computed_total[stage]
            entry["cached"] += stages_total[stage]
    write_json_atomic(run_dir / "stages.json", {"stages": stages, "counters": dict(counters)})
    return RunResult(results=results, rows_added=added, stages=stages, counters=dict(counters))


def summary_table(results: Path) -> str:
    """A plain-text table: one line per method, mean over concepts of each metric."""
    from benchmark.results import read_rows
    from metrics.spec import METRICS

    rows = read_rows(results)
    methods = sorted({r["method"] for r in rows})
    keys = [k for k in METRICS if any(r["metric"] == k for r in rows)]
    header = f"{'method':<20}" + "".join(f"{METRICS[k].id + ' ' + METRICS[k].arrow:>16}" for k in keys)
    lines = [header]
    for m in methods:
        cells = []
        for k in keys:
            vals = [float(r["value"]) for r in rows if r["method"] == m and r["metric"] == k]
            cells.append(f"{sum(vals) / len(vals):>16.4g}" if vals else f"{'—':>16}")
        lines.append(f"{m:<20}" + "".join(cells))
    return "\n".join(lines)
