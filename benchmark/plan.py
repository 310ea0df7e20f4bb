"""``overfit-bench run --plan``: what a run would compute, what is already cached, and what it would cost.

Nothing is loaded and nothing is written. The job grid comes from the suite's manifest and evaluation
profile; each stage's cache key is computed exactly as the run computes it (fits, generations, the LFD
base samples and predictions, each job's LFD values), so "cached" means the run would reuse it. Image
features are counted as to-do when their images are (they are cheap and keyed by backbone weights,
which would have to be loaded to name). Estimates multiply the counts by the committed cost table
(``benchmark/perf/costs.json``, rendered as docs/COSTS.md), which states where every figure was
measured.
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
    estimate: dict[str, Any] = field(default_factory=dict)


def load_costs(path: str | Path | None = None) -> dict[str, Any]:
    """The cost table (the committed one unless ``path``).

    Raises:
        EnvironmentProblem: there is no table there (the message says how to measure one).
    """
    from benchmark.errors import EnvironmentProblem

    where = Path(path) if path is not None else Path(str(resources.files("benchmark.perf") / "costs.json"))
    if not where.is_file():
        raise EnvironmentProblem(f"no cost table at {where}; measure one with `overfit-bench bench costs`")
    return dict(json.loads(where.read_text(encoding="utf-8")))


def _num_train_timesteps(source: str) -> int:
    """The model's training timesteps, read from its scheduler config without loading it (1000 when the
    config is not on disk: every SD-1.x scheduler)."""
    config = Path(source).expanduser() / "scheduler" / "scheduler_config.json"
    if config.is_file():
        return int(json.loads(config.read_text(encoding="utf-8")).get("num_train_timesteps", 1000))
    return 1000


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
) -> Plan:
    """Count and estimate a run (see the module docstring).

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
    for name in ("trainings", "images", "lfd_base_rows", "lfd_rows", "features"):
        plan.stages[name] = StageCount()

    def done(stage: str, inputs: dict[str, Any]) -> bool:
        return cache.done(stage, cache.key(stage, inputs))

    base = load_method("base")
    lfd_specs = [spec for spec in METRICS.values() if "custom_eps" in spec.inputs]
    for concept in chosen:
        n_images = len(stages.generation_plan(ctx, concept))
        for offset in (0, stages.ALT_SEED_OFFSET):
            fit_key = cache.key("fit", _fit_inputs(ctx, base, concept))
            generated = done("generate", _gen_inputs(ctx, fit_key, concept, offset))
            plan.stages["images"].add(n_images, generated)
            plan.stages["features"].add(FEATURES_PER_IMAGE * n_images, generated)
        refs = len(concept.spec.images or ())
        plan.stages["features"].add(3 * refs, False)  # CLIP, DINO and masked CLIP of the reference photos
        eps_keys = {}
        for metric, prompts in stages.lfd_prompt_sets(ctx, concept).items():
            rows, seeds = stages._lfd_rows(ctx, prompts)
            samples = {"model": ctx.model_key, "prompts": rows, "seeds": seeds, "steps": s.steps,
                       "guidance": s.guidance, "resolution": s.resolution}  # fmt: skip
            samples_key = cache.key("lfd_samples", samples)
            eps_inputs = {"samples": samples_key, **grid}
            eps_keys[metric] = cache.key("lfd_base_eps", eps_inputs)
            plan.stages["lfd_base_rows"].add(len(rows) * len(timesteps), done("lfd_base_eps", eps_inputs))
        for handle in handles:
            ladder = (
                rung_steps(ctx, handle, s.rungs) if handle.trains and handle.has_recipe() else {None: None}
            )
            for rung, steps in ladder.items():
                h = handle if rung in (None, 1.0) or steps is None else handle.with_steps(steps, rung)
                plan.jobs += 1
                fit_inputs = _fit_inputs(ctx, h, concept)
                fit_key = cache.key("fit", fit_inputs)
                fitted = cache.done("fit", fit_key)
                if h.trains:
                    plan.stages["trainings"].add(1, fitted)
                    if not fitted:
                        cfg = stages.method_config(ctx, h)
                        plan.train_steps[h.name] += int(cfg.get("steps", 0)) * int(cfg.get("grad_accum", 1))
                generated = done("generate", _gen_inputs(ctx, fit_key, concept, 0))
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
                    plan.stages["lfd_rows"].add(len(rows) * len(timesteps), done("metric", metric_inputs))
    plan.estimate = estimate(plan, costs if costs is not None else load_costs(), s, workers)
    return plan


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


def estimate(plan: Plan, costs: dict[str, Any], settings: Any, workers: int) -> dict[str, Any]:
    """Device-hours and wall time of the to-do work from the cost table (see docs/COSTS.md)."""
    per_step = costs.get("train_step_s", {})
    train_s = sum(
        n * float(per_step.get(m, per_step.get("*", math.nan))) for m, n in plan.train_steps.items()
    )
    call_s = float(costs["unet_call_s"])  # one UNet call on a CFG batch of `batch` images
    batch = int(costs.get("unet_call_batch", 4))
    gen_s = plan.stages["images"].todo / batch * settings.steps * call_s
    lfd_rows = plan.stages["lfd_rows"].todo + plan.stages["lfd_base_rows"].todo
    lfd_s = lfd_rows / float(costs["lfd_rows_per_s"])
    feat_s = plan.stages["features"].todo / float(costs["feature_images_per_s"])
    total = train_s + gen_s + lfd_s + feat_s
    shared = plan.stages["lfd_base_rows"].todo / float(costs["lfd_rows_per_s"])
    return {
        "device": costs.get("device", "unknown"),
        "gpu": bool(costs.get("gpu", False)),
        "seconds": {"train": train_s, "generate": gen_s, "lfd": lfd_s, "features": feat_s, "total": total},
        "device_hours": total / 3600.0,
        "workers": workers,
        "wall_hours": (shared + (total - shared) / max(1, workers)) / 3600.0,
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
        "lfd_base_rows": "LFD base UNet rows",
        "lfd_rows": "LFD customized UNet rows",
        "features": "image features",
    }
    for key, label in labels.items():
        c = plan.stages[key]
        lines.append(f"{label:<26}{c.total:>12,}{c.cached:>12,}{c.todo:>12,}")
    if plan.train_steps:
        lines.append(
            "training steps to do: " + ", ".join(f"{m} {n:,}" for m, n in sorted(plan.train_steps.items()))
        )
    sec = e["seconds"]
    unit = "GPU-hours" if e["gpu"] else "device-hours (measured on a CPU, reduced size: not GPU figures)"
    lines += [
        "",
        f"estimate from the cost table ({e['device']}; docs/COSTS.md):",
        f"  train {sec['train'] / 3600:.2f} h, generate {sec['generate'] / 3600:.2f} h, LFD {sec['lfd'] / 3600:.2f} h, "
        f"features {sec['features'] / 3600:.2f} h",
        f"  total {e['device_hours']:.2f} {unit}; wall time on {e['workers']} worker(s): {e['wall_hours']:.2f} h",
        "  peak memory per method (GiB): "
        + ", ".join(
            f"{m} {v:.1f}" if isinstance(v, (int, float)) else f"{m} ?"
            for m, v in e["peak_memory_gib"].items()
        ),
    ]
    return "\n".join(lines)
