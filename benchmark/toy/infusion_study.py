"""Why value-only Infusion learns little on the toy model: measured, not guessed (issue 24, item 4).

On the toy suite ``infusion`` and ``infusion-single`` (a value residual per cross-attention layer at the
class word's tokens) stay near the base model's identity while ``infusion-kv`` (key and value residuals)
learns the concept. Two measurements separate "the method cannot do it on this model" from "our code
is wrong":

1. **Attention mass**: the share of each cross-attention layer's probability that falls on the class
   word's sub-tokens (mean over heads and image positions), on the concept's training images noised at
   the LFD grid's timesteps, with the training prompts: for the base model and for the fitted
   ``infusion-kv`` model (whose key residual can move attention onto the word). A value residual r adds
   ``A[:, j] · r`` to a layer's output, so its reach is bounded by that mass.
2. **Teacher and students**: the fitted ``infusion-kv`` model is the teacher. ``values-only`` is that
   model with its key residuals removed: a model *inside* the value-only family. Students start from
   zero residuals and are trained by distillation (the mean squared difference of their noise
   predictions and the teacher's, on the training images noised at random timesteps with the training
   prompts) toward (a) the values-only teacher (``infusion-single`` student: the same family, so it can
   match exactly; the dual-stream ``infusion`` student: its base-stream attention differs) and (b) the
   full kv teacher. Reported: the share of the teacher's change from the base model each student
   reproduces (1 − distillation loss / the loss at zero residuals), the cosine of the learned value
   residuals with the teacher's, and the oracle's identity on generated images.

If the values-only teacher itself shows the concept and the students recover it, value-only training
reaches what the family can express and the gap to ``infusion-kv`` is the key residual (a limit of the
method on this model). If the students cannot recover a teacher of their own family, the optimiser or the
code is at fault.

``python -m benchmark.toy.infusion_study --out docs/validity`` (fits come from the run cache when present).
The oracle only grades here; nothing of this enters a metric.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

STEPS = 300  # distillation steps per student
LR = 0.03  # Adam learning rate of the students (the tuned value-only rate on the toy suite)
BATCH = 4
IMAGES = 16  # generated images per model and concept for the oracle's identity (the plan's first ones)


def _context(cache: Path | None) -> Any:
    from benchmark.cache import StageCache
    from benchmark.context import RunContext
    from benchmark.paths import cache_dir
    from benchmark.settings import settings_for
    from benchmark.suites import load_suite

    root = cache_dir(cache)
    settings = settings_for("toy")
    torch.set_num_threads(int(settings.torch_threads or 1))
    suite = load_suite("toy", None, cache=root)
    return RunContext(
        suite=suite, settings=settings, cache=StageCache(root), run_dir=root / "study", progress=False
    )


def attention_mass(
    pipe: Any, prompts: Sequence[str], latents: torch.Tensor, timesteps: Sequence[int]
) -> dict[str, float]:
    """Mean share of cross-attention probability on the marked tokens, per layer and overall (``"all"``),
    over ``latents`` noised at ``timesteps`` (one fixed noise draw) with ``prompts`` (cycled)."""
    state = pipe.runner.state
    g = torch.Generator().manual_seed(0)
    per_layer: dict[str, list[float]] = {}
    rows = [prompts[i % len(prompts)] for i in range(len(latents))]
    cond = pipe.encode_prompts(rows)
    if cond.concept_mask is None:
        raise ValueError("attention_mass: the prompts mark no concept tokens")
    mask = cond.concept_mask.float()
    sched = pipe.training_scheduler
    for t in timesteps:
        noise = torch.randn(latents.shape, generator=g)
        tt = torch.full((len(latents),), int(t))
        noisy = sched.add_noise(latents, noise, tt)
        state.recorder = {}
        try:
            with torch.no_grad():
                pipe.predict(noisy, tt, cond)
            for name, probs in state.recorder.items():
                p = probs[0][: len(rows)]  # the rows asked for (a dual stream appends partner rows)
                share = (p * mask[:, None, None, :]).sum(-1).mean()
                per_layer.setdefault(name, []).append(float(share))
        finally:
            state.recorder = None
    out = {name: float(np.mean(v)) for name, v in per_layer.items()}
    out["all"] = float(np.mean(list(out.values())))
    return out


def _values_only(kv_artifact: Any) -> Any:
    from baselines.artifact import Artifact

    tensors = {k: v for k, v in kv_artifact.tensors.items() if k.startswith("value.")}
    return Artifact("infusion-single", tensors, dict(kv_artifact.meta))


def distill(
    student_name: str,
    teacher: Any,
    comps: Any,
    cfg: dict[str, Any],
    info: Any,
    data: Any,
    steps: int,
    seed: int,
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Train ``student_name``'s residuals from zero toward ``teacher``'s noise predictions; returns the
    residuals and the distillation loss at zero residuals (the teacher's change from base), at the end,
    and the reproduced share on a fixed held batch."""
    import baselines
    from baselines.method import frozen
    from baselines.training import TrainConfig, sample_batch

    method = baselines.get_method(student_name)
    tcfg = TrainConfig.from_config({**cfg, "batch_size": BATCH, "grad_accum": 1})
    g = torch.Generator().manual_seed(seed)
    held = [sample_batch(data, tcfg, torch.Generator().manual_seed(10_000 + i), 1000) for i in range(4)]
    with frozen(comps):
        custom = method.customize(comps, cfg, info.class_noun, None, seed=seed)
        pipe, params = custom.pipeline, custom.params
        sched = pipe.training_scheduler
        opt = torch.optim.Adam([p for p in params.values() if p.requires_grad], lr=LR)

        def loss_on(batch: Any, grad: bool) -> torch.Tensor:
            noisy = sched.add_noise(batch.latents, batch.noise, batch.timesteps)
            with torch.no_grad():
                want = teacher.predict(noisy, batch.timesteps, batch.prompts)
            with torch.set_grad_enabled(grad):
                got = pipe.predict(noisy, batch.timesteps, batch.prompts)
            return (got - want).pow(2).mean()

        with pipe.session():
            start = float(np.mean([float(loss_on(b, False)) for b in held]))
            for _ in range(steps):
                batch = sample_batch(data, tcfg, g, sched.config.num_train_timesteps)
                loss = loss_on(batch, True)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            end = float(np.mean([float(loss_on(b, False)) for b in held]))
    residuals = {k: v.detach().clone() for k, v in params.items()}
    return residuals, {
        "loss_zero": start,
        "loss_end": end,
        "reproduced": 1.0 - end / start if start > 0 else math.nan,
    }


def _cosine(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    keys = sorted(k for k in a if k in b and k.startswith("value."))
    x = torch.cat([a[k].flatten() for k in keys])
    y = torch.cat([b[k].flatten() for k in keys])
    return float(torch.nn.functional.cosine_similarity(x, y, dim=0))


def _identity(ctx: Any, pipe: Any, concept: Any) -> float:
    from benchmark.stages import generation_plan

    plan = generation_plan(ctx, concept)[:IMAGES]
    prompts = [pipe.render(tpl) for _, tpl, _ in plan]
    seeds = [seed for _, _, seed in plan]
    images = pipe.generate(prompts, seeds, progress=False, **ctx.settings.sampler_kwargs()).images
    scores = ctx.identity_scorer()(list(images), dict(concept.spec.upstream))
    return float(np.mean(scores))


def study_concept(ctx: Any, concept: Any, steps: int) -> dict[str, Any]:
    import baselines
    from baselines import load_method
    from baselines.artifact import Artifact
    from baselines.method import concept_info
    from baselines.models import components_of
    from benchmark import stages

    comps = components_of(ctx.base_components())
    kv_handle = load_method("infusion-kv")
    path, _ = stages.fit(ctx, kv_handle, concept)
    kv_art = Artifact.load(path / "artifact.safetensors")
    single = baselines.get_method("infusion-single")
    cfg = single.resolve_config(stages.method_config(ctx, load_method("infusion-single")))
    info = concept_info(concept)
    data = single._training_data(comps, cfg, info, False, None)
    # the training images' posterior means (unflipped), scaled as the UNet sees them
    latents = data.instance.mean[:BATCH, 0] * data.scaling_factor
    timesteps = stages.lfd_timesteps(ctx)
    zero = baselines.get_method("infusion-single").load(
        Artifact(
            "infusion-single",
            {k: torch.zeros_like(v) for k, v in _values_only(kv_art).tensors.items()},
            dict(kv_art.meta),
        ),
        comps,
    )
    kv = baselines.get_method("infusion-kv").load(kv_art, comps)
    values_only = baselines.get_method("infusion-single").load(_values_only(kv_art), comps)
    prompts = [p for p in data.prompts]
    out: dict[str, Any] = {"concept": concept.id}
    out["attention_mass"] = {
        "base": attention_mass(zero, prompts, latents, timesteps)["all"],
        "infusion-kv": attention_mass(kv, prompts, latents, timesteps)["all"],
    }
    out["identity"] = {
        "base": _identity(ctx, zero, concept),
        "infusion-kv": _identity(ctx, kv, concept),
        "values-only teacher": _identity(ctx, values_only, concept),
    }
    # the values-only teacher scaled by the attention-mass ratio: what the values would need to be to add as
    # much through the base model's attention as kv's add through its own (a rule from the measurement above)
    ratio = out["attention_mass"]["infusion-kv"] / out["attention_mass"]["base"]
    scaled_art = _values_only(kv_art)
    scaled_art = Artifact(
        "infusion-single", {k: v * ratio for k, v in scaled_art.tensors.items()}, dict(scaled_art.meta)
    )
    scaled = baselines.get_method("infusion-single").load(scaled_art, comps)
    out["mass_ratio"] = ratio
    out["identity"]["values-only ×ratio teacher"] = _identity(ctx, scaled, concept)
    teacher_v = _values_only(kv_art).tensors
    students: dict[str, Any] = {}
    for label, student, teacher in (
        ("infusion-single → values-only", "infusion-single", values_only),
        ("infusion → values-only", "infusion", values_only),
        ("infusion-single → values-only ×ratio", "infusion-single", scaled),
        ("infusion-single → kv", "infusion-single", kv),
    ):
        residuals, losses = distill(student, teacher, comps, cfg, info, data, steps, ctx.settings.fit_seed)
        art = Artifact(student, {k: v.cpu() for k, v in residuals.items()}, dict(kv_art.meta))
        pipe = baselines.get_method(student).load(art, comps)
        students[label] = {
            **losses,
            "cosine_with_teacher_values": _cosine(residuals, teacher_v),
            "norm_ratio": float(
                torch.cat([v.flatten() for v in residuals.values()]).norm()
                / torch.cat([v.flatten() for v in teacher_v.values()]).norm()
            ),
            "identity": _identity(ctx, pipe, concept),
        }
    out["students"] = students
    return out


def render(results: Sequence[dict[str, Any]], steps: int) -> str:
    """A markdown report of the study."""
    lines = [
        f"Distillation: {steps} Adam steps at lr {LR}, batch {BATCH}; identity: the oracle on the first "
        f"{IMAGES} images of each concept's generation plan.",
        "",
        "| concept | attention mass on the class word: base / kv (ratio) | identity: base / kv / values-only "
        "teacher / values-only ×ratio teacher |",
        "|---|---|---|",
    ]
    for r in results:
        m, i = r["attention_mass"], r["identity"]
        lines.append(
            f"| {r['concept']} | {m['base']:.3f} / {m['infusion-kv']:.3f} ({r['mass_ratio']:.1f}) | "
            f"{i['base']:.2f} / {i['infusion-kv']:.2f} / {i['values-only teacher']:.2f} / "
            f"{i['values-only ×ratio teacher']:.2f} |"
        )
    lines += [
        "",
        "| concept | student → teacher | reproduced share | cosine with teacher values | norm ratio | identity |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        for label, s in r["students"].items():
            lines.append(
                f"| {r['concept']} | {label} | {s['reproduced']:.3f} | {s['cosine_with_teacher_values']:.3f} | "
                f"{s['norm_ratio']:.2f} | {s['identity']:.2f} |"
            )
    means = {
        key: float(np.mean([get(r) for r in results]))
        for key, get in {
            "mass base": lambda r: r["attention_mass"]["base"],
            "mass kv": lambda r: r["attention_mass"]["infusion-kv"],
            "identity base": lambda r: r["identity"]["base"],
            "identity kv": lambda r: r["identity"]["infusion-kv"],
            "identity values-only": lambda r: r["identity"]["values-only teacher"],
            "identity values-only ×ratio": lambda r: r["identity"]["values-only ×ratio teacher"],
        }.items()
    }
    lines += ["", "Means over concepts: " + ", ".join(f"{k} {v:.3f}" for k, v in means.items())]
    for label in results[0]["students"]:
        rep = np.mean([r["students"][label]["reproduced"] for r in results])
        ide = np.mean([r["students"][label]["identity"] for r in results])
        cos = np.mean([r["students"][label]["cosine_with_teacher_values"] for r in results])
        lines.append(f"- {label}: reproduced {rep:.3f}, cosine {cos:.3f}, identity {ide:.3f}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.toy.infusion_study", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for infusion_study.json and .md")
    parser.add_argument("--concepts", default=None, help="comma-separated concept ids (default: all)")
    parser.add_argument("--steps", type=int, default=STEPS, help="distillation steps (default %(default)s)")
    parser.add_argument("--cache", type=Path, default=None, help="cache folder (default: the user cache)")
    args = parser.parse_args(argv)
    from benchmark.suites import select_concepts

    ctx = _context(args.cache)
    chosen = select_concepts(ctx.suite, args.concepts.split(",") if args.concepts else None)
    results = []
    for concept in chosen:
        results.append(study_concept(ctx, concept, args.steps))
        print(json.dumps(results[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "infusion_study.json").write_text(
        json.dumps({"steps": args.steps, "lr": LR, "results": results}, indent=1) + "\n"
    )
    (args.out / "infusion_study.md").write_text(render(results, args.steps))
    print(render(results, args.steps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
