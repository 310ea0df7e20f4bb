"""Where the toy run's time goes, against what this CPU can do: ``python -m benchmark.perf.stage_flops``.

For each stage of a toy job (a training step per method, generation, LFD, image features, subject masks)
this measures one unit's floating-point operations (``torch.utils.flop_counter.FlopCounterMode``: the
matrix products and convolutions, which are nearly all of the arithmetic) and its CPU seconds
(``time.process_time``, one torch thread, what each worker of ``overfit-bench run`` uses), so each stage's
achieved GFLOP/s can be set against this core's measured peak: the rate of a large single-thread
float32 matrix product (:func:`peak_gflops`), the most this core does in practice. The share of peak is
the distance to the physical limit; a stage far below it is bound by something other than arithmetic
(small tensors, Python and dispatch overhead, memory traffic).

Writes ``benchmark/perf/stage-flops-toy.json``; docs/COSTS.md quotes it with the default run's unit counts
(``overfit-bench run --plan``).
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "stage-flops-toy.json"
METHODS = (
    "infusion",
    "infusion-kv",
    "dreambooth",
    "dreambooth-lora",
    "oft",
    "textual-inversion",
    "custom-diffusion",
)


def _cpu(fn: Callable[[], Any], repeats: int = 3) -> float:
    """Median CPU seconds of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return sorted(times)[len(times) // 2]


def _flops(fn: Callable[[], Any]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())


def peak_gflops(n: int = 1536) -> float:
    """GFLOP/s of an n×n float32 matrix product on one thread: this core's practical peak."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    seconds = _cpu(lambda: a @ b, repeats=5)
    return 2 * n**3 / seconds / 1e9


def measure() -> dict[str, Any]:
    import torch

    import baselines
    from baselines import load_method
    from baselines.method import concept_info, frozen
    from baselines.models import components_of
    from baselines.training import TrainConfig, Trainer
    from benchmark import stages
    from benchmark.cache import StageCache
    from benchmark.context import RunContext
    from benchmark.masks import noise_difference_maps
    from benchmark.perf.suite_costs import lfd_batch
    from benchmark.settings import settings_for
    from benchmark.suites import load_suite, select_concepts
    from metrics.backbones import extract_image_features

    settings = settings_for("toy")
    torch.set_num_threads(int(settings.torch_threads or 1))
    stages_out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="overfit-bench-flops-") as tmp:
        root = Path(tmp)
        suite = load_suite("toy", None, cache=root / "cache")
        ctx = RunContext(
            suite=suite,
            settings=settings,
            cache=StageCache(root / "cache"),
            run_dir=root / "run",
            progress=False,
        )
        concept = select_concepts(suite, None)[0]
        comps = components_of(ctx.base_components())
        pipe = ctx.base_pipeline()
        s = settings
        plan = stages.generation_plan(ctx, concept)[: s.gen_batch_size]
        prompts = [pipe.render(tpl) for _, tpl, _ in plan]
        seeds = [seed for _, _, seed in plan]

        def generate() -> Any:
            return pipe.generate(prompts, seeds, progress=False, **s.sampler_kwargs())

        images = list(generate().images)
        stages_out["generation (one batch)"] = {
            "unit": f"{len(images)} images",
            "flops": _flops(generate),
            "cpu_s": _cpu(generate),
        }
        lfd, rows = lfd_batch(pipe, prompts, seeds, s)

        stages_out["LFD (one batch of rows)"] = {
            "unit": f"{rows} rows",
            "flops": _flops(lfd),
            "cpu_s": _cpu(lfd),
        }
        for name, spec in s.extractors.items():
            backbone = ctx.backbone(spec)

            def features(bb: Any = backbone) -> Any:
                return extract_image_features(bb, images, device="cpu")

            stages_out[f"features: {name} ({spec.name})"] = {
                "unit": f"{len(images)} images",
                "flops": _flops(features),
                "cpu_s": _cpu(features),
            }

        def masks() -> Any:
            return noise_difference_maps(pipe, images, concept.class_noun, size=s.resolution)

        stages_out["subject masks (noise difference)"] = {
            "unit": f"{len(images)} images",
            "flops": _flops(masks),
            "cpu_s": _cpu(masks, repeats=1),
        }
        info = concept_info(concept)
        for name in METHODS:
            handle = load_method(name)
            method = baselines.get_method(name)
            cfg = method.resolve_config(stages.method_config(ctx, handle))
            with frozen(comps):
                custom = method.customize(comps, cfg, info.class_noun, None, seed=0)
                data = method._training_data(comps, cfg, info, False, root / "work" / name)
                trainer = Trainer(custom.pipeline, custom.params, TrainConfig.from_config(cfg), seed=0)
                with custom.pipeline.session():

                    def step(trainer: Any = trainer, data: Any = data) -> None:
                        trainer.train_step(data)

                    stages_out[f"training step: {name}"] = {
                        "unit": f"1 step, batch {cfg.get('batch_size')}",
                        "flops": _flops(step),
                        "cpu_s": _cpu(step, repeats=5),
                    }
        peak = peak_gflops()
    for row in stages_out.values():
        row["gflops_per_s"] = row["flops"] / row["cpu_s"] / 1e9 if row["cpu_s"] > 0 else None
        row["share_of_peak"] = row["gflops_per_s"] / peak if row["gflops_per_s"] else None
    return {
        "command": "python -m benchmark.perf.stage_flops",
        "measured": dt.date.today().isoformat(),
        "device": f"CPU ({platform.processor() or platform.machine()}), 1 torch thread, fp32",
        "peak_gflops": peak,
        "peak_how": "median CPU time of a 1536×1536 float32 matrix product on one thread",
        "stages": stages_out,
    }


def render(table: dict[str, Any]) -> str:
    from leaderboard.markdown import table_lines

    rows = [
        [
            name,
            r["unit"],
            f"{r['flops'] / 1e9:.3f}",
            f"{r['cpu_s']:.3f}",
            f"{r['gflops_per_s']:.1f}",
            f"{100 * r['share_of_peak']:.1f}%",
        ]
        for name, r in table["stages"].items()
    ]
    return "\n".join(
        [
            f"Measured with `{table['command']}` on {table['device']}, {table['measured']}; this core's peak "
            f"{table['peak_gflops']:.1f} GFLOP/s ({table['peak_how']}).",
            "",
            *table_lines(
                ["stage", "unit", "GFLOP per unit", "CPU s per unit", "GFLOP/s", "share of peak"],
                rows,
                ["left", "left", "right", "right", "right", "right"],
            ),
        ]
    )


def main() -> int:
    table = measure()
    OUT.write_text(json.dumps(table, indent=1) + "\n")
    print(render(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
