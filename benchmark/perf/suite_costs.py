"""A cost table measured on a suite's own model: ``overfit-bench bench costs --suite NAME``.

Where :mod:`benchmark.perf.costs` prices the SD-1.5 architecture on random weights, this measures the
suite's real base model, backbones and method recipes through the harness's own code, on this machine,
with the suite's torch threads per process (what each worker of ``overfit-bench run`` uses), on one
concept of the suite in a temporary cache:

- each trainable method's fit at two lengths (``SHORT`` and ``LONG`` optimizer steps of its recipe under
  the suite's budget): the difference gives the time of one step (per micro-batch, so ``run --plan``
  multiplies it by steps × gradient accumulation), the rest the fixed cost of a fit (data preparation,
  the held-out loss before and after, saving the artifact);
- generation of one batch (the profile's batch size, sampler steps, guidance and resolution), PNGs not
  included: recorded as one sampler step on that batch, so a plan with other steps scales;
- LFD rows per second (conditional UNet rows on the profile's LFD batch);
- image features per second with the suite's CLIP and DINO backbones;
- what else a job costs (metrics, subject masks, identity scores, loading the customized model, writing
  images): the time of one real job of the first trainable method at ``SHORT`` steps, after the suite's
  shared stages, less what the figures above price of it;
- loading the base model and the backbones once per process (``setup_s``).

Times are CPU seconds of the measuring process (``time.process_time``), not wall clock: on a shared
machine the wall clock would count other processes' work. A run whose workers each have a free core
(``overfit-bench run``'s default: the cores over the profile's torch threads) takes that long.

The table lists the model it was measured for (``models``); ``run --plan`` picks the table whose
``models`` holds a suite's model.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

PERF = Path(__file__).resolve().parent
SHORT, LONG = 4, 20  # optimizer steps of the two fits that separate a step's cost from a fit's


def table_path(model: str) -> Path:
    """Where the table of ``model`` is committed: ``benchmark/perf/costs-<model>.json``."""
    return PERF / f"costs-{re.sub(r'[^A-Za-z0-9]+', '-', model).strip('-').lower()}.json"


def _timed(fn: Any) -> tuple[float, Any]:
    """CPU seconds of this process running ``fn`` (``time.process_time``), and its result: with the
    suite's one torch thread per process that is the time on a free core, whatever else loads the
    machine while it measures (wall clock here would price other people's work)."""
    start = time.process_time()
    out = fn()
    return time.process_time() - start, out


def lfd_batch(pipe: Any, prompts: list[str], seeds: list[int], settings: Any) -> tuple[Any, int]:
    """One full LFD batch of conditional rows (the profile's ``lfd_batch_size``, the prompts cycled, a fixed
    noise draw at the middle timestep) as a no-argument call, and its row count."""
    import torch

    rows = int(settings.lfd_batch_size)
    lfd_prompts = [prompts[i % len(prompts)] for i in range(rows)]
    shape = pipe.sample_latents(
        prompts[:1], seeds[:1], steps=1, guidance=settings.guidance, height=settings.resolution,
        width=settings.resolution,
    ).shape[1:]  # fmt: skip
    z0 = torch.randn(rows, *shape, generator=torch.Generator().manual_seed(0))
    t_mid = torch.full((rows,), int(pipe.alphas_cumprod.shape[0]) // 2)

    def eps() -> None:
        with torch.no_grad():
            pipe.eps(z0, t_mid, lfd_prompts)

    return eps, rows


def measure_suite(
    suite: str, data_root: str | None = None, methods: list[str] | None = None
) -> dict[str, Any]:
    """Measure the cost table of ``suite``'s model (see the module docstring).

    Raises:
        KeyError: an unknown suite or method.
        ModelUnavailable: the suite's model or backbones are not on this machine.
    """
    import torch

    import baselines
    from baselines import load_method
    from benchmark import stages
    from benchmark.cache import StageCache
    from benchmark.context import RunContext
    from benchmark.plan import FEATURES_PER_IMAGE
    from benchmark.runner import shared_stages
    from benchmark.scoring import score_job
    from benchmark.settings import settings_for
    from benchmark.suites import load_suite, select_concepts
    from metrics.backbones import extract_image_features

    settings = settings_for(suite)
    threads = int(settings.torch_threads or torch.get_num_threads())
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with tempfile.TemporaryDirectory(prefix="overfit-bench-costs-") as tmp:
            root = Path(tmp)
            suite_obj = load_suite(suite, data_root, cache=root / "cache")
            ctx = RunContext(
                suite=suite_obj,
                settings=settings,
                cache=StageCache(root / "cache"),
                run_dir=root / "run",
                progress=False,
            )
            concept = select_concepts(suite_obj, None)[0]
            setup_s, _ = _timed(
                lambda: (ctx.base_components(), [ctx.backbone(e) for e in settings.extractors.values()])
            )
            s = settings
            pipe = ctx.base_pipeline()
            plan = stages.generation_plan(ctx, concept)[: s.gen_batch_size]
            prompts = [pipe.render(tpl) for _, tpl, _ in plan]
            seeds = [seed for _, _, seed in plan]

            def generate() -> Any:
                return pipe.generate(
                    prompts, seeds, steps=s.steps, guidance=s.guidance, height=s.resolution,
                    width=s.resolution, batch_size=s.gen_batch_size, progress=False,
                )  # fmt: skip

            generate()  # warm-up
            gen_s, result = _timed(generate)
            images = list(result.images)
            feats = {}
            for name, spec in s.extractors.items():
                bb = ctx.backbone(spec)
                extract_image_features(bb, images, device="cpu")  # warm-up
                t, _ = _timed(lambda bb=bb: extract_image_features(bb, images, device="cpu"))
                feats[name] = len(images) / t
            feature_rate = len(feats) / sum(1.0 / r for r in feats.values())  # one extractor pass, mean
            eps, lfd_rows = lfd_batch(pipe, prompts, seeds, s)

            eps()  # warm-up
            lfd_s = min(_timed(eps)[0] for _ in range(3))

            names = methods or [n for n in baselines.list_methods() if n != "base"]
            fit_rows: list[dict[str, Any]] = []
            for name in names:
                handle = load_method(name)
                if not (handle.trains and handle.has_recipe()):
                    continue
                times = {}
                for n in (SHORT, LONG):
                    h = handle.with_steps(n, None)
                    cfg = stages.method_config(ctx, h)
                    work = root / "work" / f"{name}-{n}"
                    times[n], _ = _timed(
                        lambda h=h, cfg=cfg, work=work: h.fit(
                            concept,
                            ctx.base_components(),
                            cfg,
                            seed=s.fit_seed,
                            progress=False,
                            work_dir=work,
                        )
                    )
                accum = int(stages.method_config(ctx, handle).get("grad_accum", 1) or 1)
                step_s = max(0.0, times[LONG] - times[SHORT]) / (LONG - SHORT) / accum
                fit_rows.append({
                    "method": name, "step_s": step_s, "fit_s": max(0.0, times[SHORT] - SHORT * accum * step_s),
                    "fits_s": {str(k): v for k, v in times.items()}, "grad_accum": accum,
                })  # fmt: skip

            # one real job (shared stages first, as a run does them), less what the figures above price
            shared_stages(ctx, [concept])
            job_s = other_s = 0.0
            if fit_rows:
                row = fit_rows[0]
                job = load_method(row["method"]).with_steps(SHORT, None)
                before = Counter(ctx.counters)
                job_s, _ = _timed(lambda: score_job(ctx, job, concept))
                done = Counter(ctx.counters) - before
                images_done = sum(n for k, n in done.items() if k.startswith("generate_rows:"))
                rows_done = done["lfd_custom_rows"] + done["lfd_base_rows"]
                priced = (
                    row["fit_s"] + SHORT * row["grad_accum"] * row["step_s"]
                    + images_done * gen_s / len(images)
                    + images_done * FEATURES_PER_IMAGE / feature_rate
                    + rows_done * lfd_s / lfd_rows
                )  # fmt: skip
                other_s = max(0.0, job_s - priced)
    finally:
        torch.set_num_threads(previous)
    return {
        "models": [settings.model],
        "suite": suite,
        "gpu": False,
        "device": f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, {threads} torch "
        "thread(s) per process, fp32)",
        "clock": "CPU seconds of the measuring process (time.process_time)",
        "measured": dt.date.today().isoformat(),
        "command": f"overfit-bench bench costs --suite {suite}",
        "resolution": s.resolution,
        "note": f"the suite's own model ({settings.model}) at its profile's {s.resolution} px, {s.steps} sampler "
        f"steps, {threads} torch thread(s) per process",
        "unet_call_batch": len(images),
        "unet_call_s": gen_s / s.steps,
        "generate_batch_s": gen_s,
        "lfd_rows_per_s": lfd_rows / lfd_s,
        "clip_images_per_s": feats.get("clip"),
        "dino_images_per_s": feats.get("dino"),
        "feature_images_per_s": feature_rate,
        "train_step_s": {r["method"]: r["step_s"] for r in fit_rows},
        "fit_s": {r["method"]: r["fit_s"] for r in fit_rows},
        "job_s": other_s,
        "job_measured_s": job_s,
        "setup_s": setup_s,
        "peak_memory_gib": {},
        "train_rows": fit_rows,
    }


def render_suite_table(table: dict[str, Any]) -> str:
    """A suite table as Markdown (what ``bench costs --suite`` prints; quoted in docs/COSTS.md)."""
    from leaderboard.markdown import table_lines

    figures = [
        [f"generation, one batch of {table['unet_call_batch']} images", f"{table['generate_batch_s']:.2f} s"],
        ["LFD rows", f"{table['lfd_rows_per_s']:.1f} /s"],
        [
            "CLIP / DINO image features",
            f"{table['clip_images_per_s']:.1f} / {table['dino_images_per_s']:.1f} images/s",
        ],
        ["rest of a job (metrics, masks, identity, loading, images)", f"{table['job_s']:.2f} s"],
        ["loading the model and backbones, per process", f"{table['setup_s']:.2f} s"],
    ]
    fits = [
        [
            r["method"],
            f"{r['step_s']:.4f}",
            f"{r['fit_s']:.2f}",
            f"{r['fits_s'][str(SHORT)]:.2f} / {r['fits_s'][str(LONG)]:.2f}",
        ]
        for r in table["train_rows"]
    ]
    header = ["method", "step (s)", "fixed per fit (s)", f"fits of {SHORT} / {LONG} steps (s)"]
    return "\n".join(
        [
            f"Measured with `{table['command']}` on {table['device']}, {table['measured']}: {table['note']}.",
            "",
            *table_lines(["figure", "value"], figures, ["left", "right"]),
            "",
            *table_lines(header, fits, ["left", "right", "right", "right"]),
        ]
    )
