"""``overfit-bench run --plan``: what a run would compute, what is already cached, and what it would cost.

Nothing is loaded and nothing is written. The job grid comes from the suite's manifest and evaluation
profile; each stage's cache key is computed exactly as the run computes it (fits, generations, the LFD
base samples and predictions, each job's LFD values), so "cached" means the run would reuse it. Image
features are counted as to-do when their images are (they are cheap and keyed by backbone weights,
which would have to be loaded to name). Work that several jobs share (the base model's generations, LFD
samples and predictions) is counted once. The rungs of a trajectory are one training run (each longer
rung resumes from the checkpoint the previous rung's fit leaves at its last step,
``benchmark.scoring.score_trajectory``), so its training steps are counted as that run trains them: the
longest rung's steps once.

Estimates multiply the counts by the cost table measured for the suite's own model: the committed
``benchmark/perf/costs*.json`` whose ``models`` lists it (``costs.json``: the SD-1.5 architecture,
``overfit-bench bench costs``; ``costs-toy.json``: the toy model, ``overfit-bench bench costs --suite toy``).
Each table states what measured it, and the plan names the table it used. A model without a table gets
the counts and no hours (another model's table would misprice it).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

FEATURES_PER_IMAGE = 3  # CLIP and DINO of each image, and CLIP of the subject-masked image (collapse)


@dataclass
class StageCount:
    """One kind of work: how much the run needs and how much of it is already in the cache."""

    total: int = 0
    cached: int = 0

    @property
    def todo(self) -> int:
        return self.total - self.cached

    def add(self, n: int, cached: bool) -> None:
        self.total += n
        self.cached += n if cached else 0


@dataclass
class Plan:
    """The counts and estimates of a run."""

    suite: str
    methods: list[str]
    concepts: list[str]
    rungs: tuple[float, ...]
    jobs: int
    stages: dict[str, StageCount] = field(default_factory=dict)
    train_steps: Counter[str] = field(default_factory=Counter)  # per method, still to do
    train_fits: Counter[str] = field(default_factory=Counter)  # per method: training runs still to do
    jobs_todo: int = 0  # jobs with anything left to compute
    model: str = ""
    resolution: int = 0
    costs_source: str = ""  # which table priced it, and what measured that table ("" = none)
    estimate: dict[str, Any] = field(default_factory=dict)


def load_costs(path: str | Path | None = None) -> dict[str, Any]:
    """A cost table (the committed SD-1.5 one, ``costs.json``, unless ``path``).

    Raises:
        EnvironmentProblem: there is no table there (the message says how to measure one).
    """
    from benchmark.errors import EnvironmentProblem

    where = Path(path) if path is not None else Path(str(resources.files("benchmark.perf") / "costs.json"))
    if not where.is_file():
        raise EnvironmentProblem(f"no cost table at {where}; measure one with `overfit-bench bench costs`")
    return dict(json.loads(where.read_text(encoding="utf-8")))


def cost_tables(folder: str | Path | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """The committed cost tables (``costs*.json`` in ``benchmark/perf``, or in ``folder``), by file name."""
    where = Path(folder) if folder is not None else Path(str(resources.files("benchmark.perf")))
    return [(p, load_costs(p)) for p in sorted(where.glob("costs*.json"))]


def costs_for_model(model: str, folder: str | Path | None = None) -> tuple[Path, dict[str, Any]] | None:
    """The table measured for ``model`` (the one whose ``models`` lists it), or None."""
    for path, table in cost_tables(folder):
        if model in table.get("models", ()):
            return path, table
    return None


def describe_costs(path: Path | str, table: dict[str, Any]) -> str:
    """Which table, and what measured it: ``benchmark/perf/costs-toy.json (`...` on ..., date)``."""
    p = Path(path)
    shown = f"benchmark/perf/{p.name}" if p.parent.name == "perf" else str(p)
    return (
        f"{shown} (measured by `{table.get('command', '?')}` on {table.get('device', '?')}, "
        f"{table.get('measured', '?')})"
    )


def _num_train_timesteps(source: str) -> int:
    """The model's training timesteps without loading it (1000 when the config is not on disk: every
    SD-1.x scheduler)."""
    from benchmark.context import scheduler_timesteps

    known = scheduler_timesteps(source)
    return 1000 if known is None else known


def make_plan(
    *,
    suite: str | Path,
    methods: list[str],
    concepts: list[str] | None,
    settings: Any,
    cache_root: Path,
    data_root: str | None = None,
    workers: int = 1,
    costs: dict[str, Any] | None = None,
    costs_folder: str | Path | None = None,
) -> Plan:
    """Count and estimate a run (see the module docstring). ``costs``: price with this table instead of
    the one measured for the suite's model (looked up in ``costs_folder``, default ``benchmark/perf``).

    Raises:
        KeyError: an unknown suite, method or concept.
    """
    from baselines import load_method
    from benchmark import stages
    from benchmark.cache import StageCache
    from benchmark.context import RunContext
    from benchmark.scoring import METRIC_RECORD, rung_steps
    from benchmark.suites import load_suite, select_concepts
    from metrics.spec import METRICS

    suite_obj = load_suite(suite, data_root, verify=False, cache=cache_root)
    cache = StageCache(cache_root, create=False)
    ctx = RunContext(suite=suite_obj, settings=settings, cache=cache, run_dir=Path("."))
    chosen = select_concepts(suite_obj, concepts)
    handles = [load_method(m) for m in methods]
    s = settings
    grid = stages.lfd_grid(s, _num_train_timesteps(ctx.model_source()))
    timesteps = grid["timesteps"]
    plan = Plan(str(suite_obj.name), list(methods), [c.id for c in chosen], tuple(s.rungs), 0)
    plan.model, plan.resolution = str(s.model), int(s.resolution)
    for name in STAGES:
        plan.stages[name] = StageCount()
    shared = {name: StageCount() for name in STAGES}  # the part the run's shared stages do, serially
    seen: set[tuple[str, str]] = set()  # stages several jobs or concepts share are counted once

    def done(stage: str, inputs: dict[str, Any]) -> bool:
        return cache.done(stage, cache.key(stage, inputs))

    def first(stage: str, inputs: dict[str, Any]) -> bool:
        key = (stage, cache.key(stage, inputs))
        new = key not in seen
        seen.add(key)
        return new

    base = load_method("base")
    lfd_specs = [spec for spec in METRICS.values() if "custom_eps" in spec.inputs]
    for concept in chosen:
        n_images = len(stages.generation_plan(ctx, concept))
        base_fit = cache.key("fit", _fit_inputs(ctx, base, concept))
        for offset in (0, stages.ALT_SEED_OFFSET):  # the base model's images (for W2 and its floor)
            gen = _gen_inputs(ctx, base_fit, concept, offset)
            first("generate", gen)
            generated = done("generate", gen)
            for counts in (plan.stages, shared) if offset == 0 else (plan.stages,):
                counts["images"].add(n_images, generated)
                counts["features"].add(FEATURES_PER_IMAGE * n_images, generated)
        refs = len(concept.spec.images or ())
        for counts in (plan.stages, shared):  # CLIP, DINO and masked CLIP of the reference photos
            counts["features"].add(3 * refs, False)
        eps_keys = {}
        for metric, prompts in stages.lfd_prompt_sets(ctx, concept).items():
            rows, seeds = stages._lfd_rows(ctx, prompts)
            samples = {"model": ctx.model_key, "prompts": rows, "seeds": seeds, "steps": s.steps,
                       "guidance": s.guidance, "resolution": s.resolution}  # fmt: skip
            samples_key = cache.key("lfd_samples", samples)
            eps_inputs = {"samples": samples_key, **grid}
            eps_keys[metric] = cache.key("lfd_base_eps", eps_inputs)
            if first("lfd_base_eps", eps_inputs):  # a prompt set no other concept has already counted
                for counts in (plan.stages, shared):
                    counts["lfd_samples"].add(len(rows), done("lfd_samples", samples))
                    counts["lfd_base_rows"].add(len(rows) * len(timesteps), done("lfd_base_eps", eps_inputs))
        for handle in handles:
            trajectory = handle.trains and handle.has_recipe()
            ladder = rung_steps(ctx, handle, s.rungs) if trajectory else {None: None}
            every = int(stages.method_config(ctx, handle).get("checkpoint_every") or 0) if trajectory else 0
            resume_from = (
                _checkpoint_step(stages.fit_work_dir(ctx, handle, concept)) if trajectory and every else 0
            )
            for rung, steps in ladder.items():
                h = handle if rung in (None, 1.0) or steps is None else handle.with_steps(steps, rung)
                plan.jobs += 1
                fit_inputs = _fit_inputs(ctx, h, concept)
                fit_key = cache.key("fit", fit_inputs)
                fitted = cache.done("fit", fit_key)
                todo = not fitted
                if h.trains:
                    plan.stages["trainings"].add(1, fitted)
                    if not fitted:
                        cfg = stages.method_config(ctx, h)
                        n = int(cfg.get("steps", 0))
                        start = resume_from if 0 < resume_from <= n else 0
                        plan.train_steps[h.name] += (n - start) * int(cfg.get("grad_accum", 1))
                        plan.train_fits[h.name] += 1
                        if every and len(ladder) > 1 and (n >= every or resume_from <= n):
                            # a rung's fit leaves its last step (a later checkpoint survives only a fit
                            # too short to have saved one on the grid, which deletes the others)
                            resume_from = n
                gen = _gen_inputs(ctx, fit_key, concept, 0)
                if first("generate", gen):  # the base method's own images are the shared ones
                    generated = done("generate", gen)
                    todo = todo or not generated
                    plan.stages["images"].add(n_images, generated)
                    plan.stages["features"].add(FEATURES_PER_IMAGE * n_images, generated)
                for spec in lfd_specs:
                    prompt_set = str(spec.options.get("prompt_set", "lfd"))
                    rows, _ = stages._lfd_rows(ctx, stages.lfd_prompt_sets(ctx, concept)[prompt_set])
                    keys = {
                        "custom_eps": fit_key,
                        "lfd_reference": f"{eps_keys[prompt_set]}:{s.lfd_weighting}",
                    }
                    metric_inputs = {"metric": spec.id, "compute": spec.compute, "options": dict(spec.options),
                                     "inputs": keys, "record": METRIC_RECORD}  # fmt: skip
                    scored = done("metric", metric_inputs)
                    todo = todo or not scored
                    plan.stages["lfd_rows"].add(len(rows) * len(timesteps), scored)
                plan.jobs_todo += 1 if todo else 0
    if costs is not None:
        plan.costs_source = str(costs.get("source", "the cost table given"))
    else:
        found = costs_for_model(plan.model, costs_folder)
        if found is not None:
            costs = found[1]
            plan.costs_source = describe_costs(*found)
    if costs is not None:
        plan.estimate = estimate(plan, costs, s, workers, shared)
    return plan


STAGES = ("trainings", "images", "lfd_samples", "lfd_base_rows", "lfd_rows", "features")


def _checkpoint_step(work_dir: Path) -> int:
    """The step of the last checkpoint a killed trajectory left in its fit folder (0: none)."""
    from baselines.training import checkpoint_step

    return checkpoint_step(work_dir / "checkpoints")


def _fit_inputs(ctx: Any, method: Any, concept: Any) -> dict[str, Any]:
    from benchmark.stages import method_identity

    return {
        "model": ctx.model_key,
        **method_identity(ctx, method),
        **ctx.suite_id,
        "concept": concept.id,
        "seed": ctx.settings.fit_seed,
    }


def _gen_inputs(ctx: Any, fit_key: str, concept: Any, offset: int) -> dict[str, Any]:
    from benchmark.stages import generation_plan

    s = ctx.settings
    return {
        "fit": fit_key,
        "plan": [(i, tpl, seed) for i, tpl, seed in generation_plan(ctx, concept, offset)],
        "steps": s.steps,
        "guidance": s.guidance,
        "resolution": s.resolution,
        "batch": s.gen_batch_size,
    }


def estimate(
    plan: Plan,
    costs: dict[str, Any],
    settings: Any,
    workers: int,
    shared: dict[str, StageCount] | None = None,
) -> dict[str, Any]:
    """Device-hours and wall time of the to-do work from a cost table (see docs/COSTS.md).

    ``shared``: the part of the counts the run's shared stages do before any job (in the main process,
    one after another); the rest is spread over ``workers``. Figures a table lacks (``fit_s``,
    ``job_s``, ``setup_s``: only tables measured on a suite's own model have them) count as zero.
    """
    per_step = costs.get("train_step_s", {})
    per_fit = costs.get("fit_s", {})

    def of(table: dict[str, Any], method: str) -> float:
        return float(table.get(method, table.get("*", math.nan)))

    # a method the table has no training figure for is left out of the sum and named (not priced as NaN)
    unpriced = sorted(m for m, n in plan.train_steps.items() if n and math.isnan(of(per_step, m)))
    train_s = sum(n * of(per_step, m) for m, n in plan.train_steps.items() if m not in unpriced)
    train_s += sum(
        n * of(per_fit, m)
        for m, n in plan.train_fits.items()
        if per_fit and m not in unpriced and not math.isnan(of(per_fit, m))
    )
    call_s = float(costs["unet_call_s"])  # one sampler step (UNet call with CFG) on `batch` images
    batch = int(costs.get("unet_call_batch", 4))

    def work(counts: dict[str, StageCount]) -> dict[str, float]:
        images = counts["images"].todo + counts["lfd_samples"].todo
        lfd_rows = counts["lfd_rows"].todo + counts["lfd_base_rows"].todo
        return {
            "generate": images / batch * settings.steps * call_s,
            "lfd": lfd_rows / float(costs["lfd_rows_per_s"]),
            "features": counts["features"].todo / float(costs["feature_images_per_s"]),
        }

    parts = work(plan.stages)
    other_s = plan.jobs_todo * float(costs.get("job_s", 0.0))
    total = train_s + sum(parts.values()) + other_s
    serial = sum(work(shared).values()) if shared is not None else 0.0
    processes = 1 if workers <= 1 else 2  # the main process loads the models, then each worker does, at once
    setup = float(costs.get("setup_s", 0.0)) * processes if total > 0 else 0.0
    return {
        "device": costs.get("device", "unknown"),
        "gpu": bool(costs.get("gpu", False)),
        "resolution": costs.get("resolution"),
        "seconds": {"train": train_s, **parts, "other": other_s, "total": total},
        "prices_other": "job_s" in costs,
        "unpriced": unpriced,
        "device_hours": total / 3600.0,
        "workers": workers,
        "wall_seconds": setup + serial + (total - serial) / max(1, workers),
        "wall_hours": (setup + serial + (total - serial) / max(1, workers)) / 3600.0,
        "peak_memory_gib": {m: costs.get("peak_memory_gib", {}).get(m) for m in plan.methods},
    }


def render(plan: Plan) -> str:
    """The plan as text (what ``run --plan`` prints)."""
    e = plan.estimate
    lines = [
        f"plan for suite {plan.suite}: {len(plan.methods)} methods × {len(plan.concepts)} concepts × rungs "
        f"{', '.join(f'×{r:g}' for r in plan.rungs)} = {plan.jobs} jobs (nothing loaded, nothing written)",
        "",
        f"{'work':<26}{'total':>12}{'cached':>12}{'to do':>12}",
    ]
    labels = {
        "trainings": "trainings (fits)",
        "images": "images to generate",
        "lfd_samples": "LFD base samples",
        "lfd_base_rows": "LFD base UNet rows",
        "lfd_rows": "LFD customized UNet rows",
        "features": "image features",
    }
    for key, label in labels.items():
        c = plan.stages[key]
        lines.append(f"{label:<26}{c.total:>12,}{c.cached:>12,}{c.todo:>12,}")
    if plan.train_steps:
        lines.append(
            "training steps to do (the rungs of a trajectory are one resumed run): "
            + ", ".join(f"{m} {n:,}" for m, n in sorted(plan.train_steps.items()))
        )
    lines.append("")
    if not e:
        lines.append(
            f"no cost table for model {plan.model!r} (none of benchmark/perf/costs*.json lists it), so no "
            f"hours: the counts above are exact. Measure one with `overfit-bench bench costs --suite "
            f"{plan.suite}` on the machine the run will use"
        )
        return "\n".join(lines)
    sec = e["seconds"]
    if e["gpu"]:
        unit = "GPU-hours"
    elif e.get("resolution") not in (None, plan.resolution):
        unit = "device-hours (measured on a CPU, reduced size: not GPU figures)"
    else:
        unit = "CPU-hours of the machine that measured the table"
    wall = e["wall_seconds"]
    other = (
        f"rest of the jobs {sec['other'] / 3600:.2f} h"
        if e.get("prices_other")
        else "rest of the jobs (metrics, masks, loading) not in this table"
    )
    lines += [
        f"cost table: {plan.costs_source}",
        f"  train {sec['train'] / 3600:.2f} h, generate {sec['generate'] / 3600:.2f} h, LFD {sec['lfd'] / 3600:.2f} h, "
        f"features {sec['features'] / 3600:.2f} h, {other}",
        f"  total {e['device_hours']:.2f} {unit}; wall time on {e['workers']} worker(s): {e['wall_hours']:.2f} h"
        + (f" ({wall / 60:.0f} min)" if wall < 36000 else ""),
    ]
    if e.get("unpriced"):
        lines.append(
            f"  training not priced (the table has no figure): {', '.join(e['unpriced'])}; "
            "`overfit-bench bench costs` measures it"
        )
    memory = e["peak_memory_gib"]
    if any(isinstance(v, (int, float)) for v in memory.values()):
        lines.append(
            "  peak memory per method (GiB): "
            + ", ".join(
                f"{m} {v:.1f}" if isinstance(v, (int, float)) else f"{m} ?" for m, v in memory.items()
            )
        )
    return "\n".join(lines)
