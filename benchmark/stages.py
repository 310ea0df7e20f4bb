"""The harness stages. Each returns the directory of its cached output and its key.

Per (method, concept): fit → generate → features (the metrics stage is :mod:`benchmark.scoring`).
Shared per suite: base samples and base noise predictions on the LFD grid, reference-photo features,
class-prompt text features. The base model's generations for W2 are the ``base`` method's own
``generate`` stage (slot = class noun), so they are cached once and reused by every method.

Methods arrive as :class:`baselines.contract.MethodHandle` (``baselines.load_method``): the contract's
defaults are filled in there, so nothing here probes a method.
"""

from __future__ import annotations

import json
import logging
import shutil
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from benchmark.context import RunContext
from benchmark.errors import method_stage
from benchmark.io import atomic_write, atomic_write_json, open_rgb
from benchmark.settings import BackboneSpec, EvalSettings

if TYPE_CHECKING:
    from baselines.contract import MethodHandle

log = logging.getLogger(__name__)


# -------------------------------------------------------------------------------- methods


def method_identity(ctx: RunContext, method: MethodHandle) -> dict[str, Any]:
    """Name, version and hash of the resolved config of ``method`` under this run's budget."""
    config = method_config(ctx, method)
    return {
        "method": method.name,
        "method_version": method.version,
        "config_hash": method.config_hash(config),
    }


def method_config(ctx: RunContext, method: MethodHandle) -> dict[str, Any]:
    """The config passed to ``fit``: the suite's budget (:func:`benchmark.budgets.budget_config`, with the
    method's tuned budget stored in this run's cache, :func:`benchmark.tuned.tuned_budget`) plus any
    per-method overrides (and the handle's steps override, :meth:`~baselines.contract.MethodHandle.with_steps`)."""
    from baselines.config import merge_config
    from benchmark.budgets import budget_config
    from benchmark.tuned import tuned_budget

    own = dict(ctx.settings.method_overrides.get(method.budget_key, {}))
    if not method.has_recipe():
        return own
    if method.steps is not None:
        own["steps"] = method.steps
    recipe = budget_config(ctx.settings, method, tuned=tuned_budget(ctx, method))
    common = {k: v for k, v in ctx.settings.method_overrides.get("*", {}).items() if k in recipe}
    where = f"evaluation profile method_overrides for {method.name!r}"
    return method.resolve_config(merge_config(recipe, {**common, **own}, where=where))


# config keys that change how long a fit runs or how often it saves, not what a given step computes
_LENGTH_KEYS = ("steps", "checkpoint_every")


def fit_work_dir(ctx: RunContext, method: MethodHandle, concept: Any) -> Path:
    """Where a fit keeps its checkpoints: one folder per training run *regardless of its length*, so a
    longer fit of the same run resumes from a shorter one's last checkpoint (trajectory rungs)."""
    config = {k: v for k, v in method_config(ctx, method).items() if k not in _LENGTH_KEYS}
    inputs = {
        "model": ctx.model_key,
        "method": method.name,
        "method_version": method.version,
        "config": config,
        **ctx.suite_id,
        "concept": concept.id,
        "seed": ctx.settings.fit_seed,
    }
    return ctx.cache.root / "fit_work" / ctx.cache.key("fit_work", inputs)


def fit(ctx: RunContext, method: MethodHandle, concept: Any) -> tuple[Path, str]:
    """Train ``method`` on ``concept``; the artifact is ``<dir>/artifact.safetensors``."""
    inputs = {
        "model": ctx.model_key,
        **method_identity(ctx, method),
        **ctx.suite_id,
        "concept": concept.id,
        "seed": ctx.settings.fit_seed,
    }

    def compute(out: Path) -> None:
        # Checkpoints live outside the temporary folder so that a killed fit resumes.
        work = fit_work_dir(ctx, method, concept)
        if ctx.keep_fit_work:  # a longer rung follows: the built-in trainer leaves this fit's last step
            from baselines.training import KEEP_LAST

            work.mkdir(parents=True, exist_ok=True)
            (work / KEEP_LAST).touch()
        config, base = method_config(ctx, method), ctx.base_components()
        with method_stage(method.name, concept.id, "fit"):
            artifact = method.fit(
                concept, base, config, seed=ctx.settings.fit_seed, progress=ctx.progress, work_dir=work
            )
            size = artifact.save(out / "artifact.safetensors")
        if not ctx.keep_fit_work:  # checkpoints are only needed until the fit finishes
            shutil.rmtree(work, ignore_errors=True)
        record = {"artifact_bytes": size, "meta": artifact.meta, "log": getattr(artifact, "log", {})}
        (out / "fit.json").write_text(json.dumps(record, default=str))

    return ctx.cache.get_or_compute("fit", inputs, compute)


def load_customized(ctx: RunContext, method: MethodHandle, concept: Any) -> tuple[Any, str]:
    """The customized model of (method, concept) and its fit key (fits first if needed)."""
    from baselines.artifact import Artifact

    path, key = fit(ctx, method, concept)

    def build() -> Any:
        base = ctx.base_components()
        with method_stage(method.name, concept.id, "load"):
            return method.load(Artifact.load(path / "artifact.safetensors"), base)

    return ctx.customized(key, build), key


# -------------------------------------------------------------------------------- generation


# The disjoint seeds of W2's sampling floor: the suite's seeds plus this offset.
ALT_SEED_OFFSET = 10_000


def generation_plan(ctx: RunContext, concept: Any, seed_offset: int = 0) -> list[tuple[int, str, int]]:
    """(prompt index, template, seed) for every image of a concept (seeds shifted by ``seed_offset``)."""
    seeds = list(ctx.suite.seeds)[: ctx.suite.images_per_prompt]
    return [(i, tpl, s + seed_offset) for i, tpl in enumerate(concept.prompts) for s in seeds]


def generate(ctx: RunContext, method: MethodHandle, concept: Any, seed_offset: int = 0) -> tuple[Path, str]:
    """Images of (method, concept) for the suite's prompts and seeds: ``<dir>/images/<i>_<seed>.png``.

    The images are also copied to ``RUN_DIR/images/<method>/<concept>/`` for people to look at (not those
    on shifted seeds, ``seed_offset``, which only calibrate).
    """
    _, fit_key = fit(ctx, method, concept)
    plan = generation_plan(ctx, concept, seed_offset)
    s = ctx.settings
    inputs = {
        "fit": fit_key,
        "plan": [(i, tpl, seed) for i, tpl, seed in plan],
        "steps": s.steps,
        "guidance": s.guidance,
        "resolution": s.resolution,
        "batch": s.gen_batch_size,
    }

    def compute(out: Path) -> None:
        pipe, _ = load_customized(ctx, method, concept)
        with method_stage(method.name, concept.id, "generate"):
            prompts = [pipe.render(tpl) for _, tpl, _ in plan]
            result = pipe.generate(
                prompts,
                [seed for _, _, seed in plan],
                **s.sampler_kwargs(),
                progress=ctx.progress,
            )
        (out / "images").mkdir()
        for (i, _, seed), image in zip(plan, result.images, strict=True):
            image.save(out / "images" / f"{i}_{seed}.png")
        (out / "prompts.json").write_text(json.dumps(prompts))
        ctx.counters[f"generate_rows:{method.name}"] += len(prompts)

    path, key = ctx.cache.get_or_compute("generate", inputs, compute)
    if not seed_offset:
        label = method.name if method.steps is None else f"{method.name}@{method.steps}"
        _publish_images(ctx, path, label, concept.id)
        about = ctx.run_dir / "images" / label / "about.json"
        if not about.exists():  # which method and rung a folder of images is (for export and readers)
            rung = (
                method.rung
                if method.steps is not None
                else (1.0 if method.trains and method.has_recipe() else None)
            )
            atomic_write_json(
                about,
                {"method": method.name, "version": method.version, "steps": method.steps, "rung": rung},
                indent=1,
            )
    return path, key


def _publish_images(ctx: RunContext, path: Path, method: str, concept: str) -> None:
    dest = ctx.run_dir / "images" / method / concept
    dest.mkdir(parents=True, exist_ok=True)
    for png in sorted((path / "images").glob("*.png")):
        target = dest / png.name
        if not target.exists():
            atomic_write(target, partial(shutil.copyfile, png))


def image_files(gen_dir: Path, plan: list[tuple[int, str, int]]) -> list[Path]:
    """The PNG paths of a generation stage, in plan order."""
    return [gen_dir / "images" / f"{i}_{seed}.png" for i, _, seed in plan]


# -------------------------------------------------------------------------------- features


def _save_tensor(path: Path, tensor: torch.Tensor) -> None:
    from safetensors.torch import save_file

    save_file({"x": tensor.contiguous()}, str(path))


def load_tensor(path: Path) -> torch.Tensor:
    from safetensors.torch import load_file

    return load_file(str(path))["x"]


def image_features_stage(
    ctx: RunContext, images: list[Path], spec: BackboneSpec, source_key: str
) -> tuple[Path, str]:
    """The cached features stage of ``images`` (identified by ``source_key``) with backbone ``spec``:
    ``<dir>/features.safetensors`` and its key."""
    from metrics.backbones import extract_image_features

    inputs = {
        "source": source_key,
        "files": [p.name for p in images],
        "backbone": ctx.backbone_identity(spec),
    }

    def compute(out: Path) -> None:
        feats = extract_image_features(ctx.backbone(spec), images, device=ctx.device)
        _save_tensor(out / "features.safetensors", feats)

    return ctx.cache.get_or_compute("features", inputs, compute)


def image_features(ctx: RunContext, images: list[Path], spec: BackboneSpec, source_key: str) -> torch.Tensor:
    """Normalised features of ``images`` (identified by ``source_key``) with backbone ``spec``."""
    path, _ = image_features_stage(ctx, images, spec, source_key)
    return load_tensor(path / "features.safetensors")


def reference_stage(ctx: RunContext, concept: Any, spec: BackboneSpec) -> tuple[Path, str]:
    """The features stage of a concept's verified reference photos."""
    images = [Path(p) for p in concept.images]
    source = f"{ctx.suite.name}@{ctx.suite.version}/{concept.id}/reference"
    return image_features_stage(ctx, images, spec, source)


def reference_features(ctx: RunContext, concept: Any, spec: BackboneSpec) -> torch.Tensor:
    """Features of a concept's verified reference photos."""
    path, _ = reference_stage(ctx, concept, spec)
    return load_tensor(path / "features.safetensors")


def class_text_stage(ctx: RunContext, concept: Any, spec: BackboneSpec) -> tuple[Path, str]:
    """The cached text features (image-text extractor ``spec``) of each generated image's prompt with the
    slot rendered as the class noun: ``<dir>/features.safetensors`` and ``<dir>/truncated.json``."""
    from metrics.backbones import extract_text_features
    from metrics.similarity import render_slot

    texts = [render_slot(tpl, concept.class_noun) for _, tpl, _ in generation_plan(ctx, concept)]
    inputs = {"texts": texts, "backbone": ctx.backbone_identity(spec)}

    def compute(out: Path) -> None:
        feats, n_trunc = extract_text_features(ctx.backbone(spec), texts, device=ctx.device)
        _save_tensor(out / "features.safetensors", feats)
        (out / "truncated.json").write_text(json.dumps(n_trunc))

    return ctx.cache.get_or_compute("text_features", inputs, compute)


def class_text_features(ctx: RunContext, concept: Any, spec: BackboneSpec) -> tuple[torch.Tensor, int]:
    """Text features of each generated image's class-rendered prompt, and how many were truncated."""
    path, _ = class_text_stage(ctx, concept, spec)
    return load_tensor(path / "features.safetensors"), int(json.loads((path / "truncated.json").read_text()))


def subject_mask_stage(
    ctx: RunContext, images: list[Path], class_noun: str, source_key: str, method: str | None = None
) -> tuple[Path, str]:
    """Subject masks of ``images`` (``<dir>/masks.npy``, bool [N, R, R] at the suite's resolution), read off
    the base model (:mod:`benchmark.masks`) by ``method``, one of :data:`MASK_METHODS` (default
    :data:`MASK_METHOD`, the class word's cross-attention)."""
    method = method or MASK_METHOD
    if method not in MASK_METHODS:
        raise ValueError(f"unknown subject-mask method {method!r}; known: {', '.join(MASK_METHODS)}")
    inputs = {
        "source": source_key,
        "files": [p.name for p in images],
        "class_noun": class_noun,
        "model": ctx.model_key,
        "resolution": ctx.settings.resolution,
        "method": method,
    }

    def compute(out: Path) -> None:
        from benchmark import masks

        pil = [open_rgb(path) for path in images]
        size = ctx.settings.resolution
        if method == OWN_MASK_METHOD:
            table = masks.own_masks(
                masks.noise_difference_maps(ctx.base_pipeline(), pil, class_noun, size=size)
            )
        else:
            table = masks.masks_from_maps(masks.subject_maps(ctx.base_pipeline(), pil, class_noun, size=size))
        np.save(out / "masks.npy", table)

    return ctx.cache.get_or_compute("masks", inputs, compute)


# versions of the masking recipes in benchmark.masks (timesteps, threshold, dilation): the class word's
# cross-attention (the masked_* sources) and the noise difference (the subject_* sources, own masks)
MASK_METHOD = "cross-attention@1"
OWN_MASK_METHOD = "noise-difference@1"
MASK_METHODS = (MASK_METHOD, OWN_MASK_METHOD)


def subject_features_stage(
    ctx: RunContext, images: list[Path], masks: tuple[Path, str], spec: BackboneSpec, source_key: str
) -> tuple[Path, str]:
    """Features of the subject alone in ``images``: each image's own mask (a :func:`subject_mask_stage`),
    outside it grey, cropped around it and resized (:func:`benchmark.masks.subject_crop`)."""
    from metrics.backbones import extract_image_features

    inputs = {
        "source": source_key,
        "files": [p.name for p in images],
        "masks": masks[1],
        "backbone": ctx.backbone_identity(spec),
        "crop": SUBJECT_CROP,
    }

    def compute(out: Path) -> None:
        from benchmark.masks import subject_crop

        table = np.load(masks[0] / "masks.npy")
        if len(table) != len(images):
            raise ValueError(f"{len(images)} images but {len(table)} masks")
        size = ctx.settings.resolution
        pil = [subject_crop(open_rgb(path), mask, size) for path, mask in zip(images, table, strict=True)]
        feats = extract_image_features(ctx.backbone(spec), pil, device=ctx.device)
        _save_tensor(out / "features.safetensors", feats)

    return ctx.cache.get_or_compute("subject_features", inputs, compute)


# version of benchmark.masks.subject_crop (grey outside the mask, square crop around it, resized)
SUBJECT_CROP = "square-crop@1"


def masked_features_stage(
    ctx: RunContext,
    images: list[Path],
    masks: tuple[Path, str],
    spec: BackboneSpec,
    source_key: str,
    dilation: float = 0.0,
    box: bool = False,
) -> tuple[Path, str]:
    """Features of ``images`` with ``masks`` (a :func:`subject_mask_stage`, one mask per image) painted grey,
    each mask first grown by ``dilation`` × the side on every side (0: as stored) and, with ``box``, filled
    to its bounding box."""
    from metrics.backbones import extract_image_features

    inputs: dict[str, Any] = {
        "source": source_key,
        "files": [p.name for p in images],
        "masks": masks[1],
        "backbone": ctx.backbone_identity(spec),
    }
    if dilation:
        inputs["dilation"] = dilation
    if box:
        inputs["box"] = True

    def compute(out: Path) -> None:
        from benchmark.masks import blank, bounding_boxes, dilate

        table = np.load(masks[0] / "masks.npy")
        if dilation:
            table = dilate(table, dilation)
        if box:
            table = bounding_boxes(table)
        if len(table) != len(images):
            raise ValueError(f"{len(images)} images but {len(table)} masks")
        pil = [blank(open_rgb(path), mask) for path, mask in zip(images, table, strict=True)]
        feats = extract_image_features(ctx.backbone(spec), pil, device=ctx.device)
        _save_tensor(out / "features.safetensors", feats)

    return ctx.cache.get_or_compute("masked_features", inputs, compute)


def heldout_stage(ctx: RunContext, concept: Any) -> tuple[Path, str]:
    """Held-out views of a concept from the suite's ``heldout_views`` loader (``<dir>/<k>.png``)."""
    provider = ctx.settings.heldout_views
    if not provider:
        raise ValueError("the suite's profile names no heldout_views")
    inputs = {
        "provider": provider,
        "concept": dict(concept.spec.upstream),
        "resolution": ctx.settings.resolution,
    }

    def compute(out: Path) -> None:
        from benchmark.io import resolve

        views = resolve(provider, "held-out views")(dict(concept.spec.upstream), ctx.settings.resolution)
        for k, image in enumerate(views):
            image.save(out / f"{k:03d}.png")

    return ctx.cache.get_or_compute("heldout", inputs, compute)


def identity_stage(ctx: RunContext, images: list[Path], concept: Any, source_key: str) -> tuple[Path, str]:
    """Per-image identity scores of ``images`` from the suite's identity scorer (``<dir>/scores.npy``)."""
    scorer = ctx.identity_scorer()
    inputs = {
        "source": source_key,
        "files": [p.name for p in images],
        "concept": dict(concept.spec.upstream),
        "scorer": str(scorer.tag),
    }

    def compute(out: Path) -> None:
        pil = [open_rgb(path) for path in images]
        np.save(out / "scores.npy", np.asarray(scorer(pil, dict(concept.spec.upstream)), dtype=np.float64))

    return ctx.cache.get_or_compute("identity", inputs, compute)


# -------------------------------------------------------------------------------- LFD


def lfd_prompt_sets(ctx: RunContext, concept: Any) -> dict[str, list[str]]:
    """``lfd``: the suite's non-customized prompts; ``lfd_class``: its class prompts for this class noun."""
    class_prompts = [tpl.replace("{class}", concept.class_noun) for tpl in ctx.suite.class_prompts]
    return {"lfd": list(ctx.suite.lfd_prompts), "lfd_class": class_prompts}


def _lfd_rows(ctx: RunContext, prompts: list[str]) -> tuple[list[str], list[int]]:
    seeds = list(ctx.suite.seeds)[: ctx.suite.images_per_prompt]
    return [p for p in prompts for _ in seeds], [s for _ in prompts for s in seeds]


def lfd_row_keys(ctx: RunContext, prompts: list[str]) -> list[str]:
    """The key of each LFD base sample (its generation seed): seeds its paired noise (``metrics.lfd``), so
    the noise draw does not depend on how this machine's float32 kernels rounded the sample."""
    _, seeds = _lfd_rows(ctx, prompts)
    return [f"seed={s}" for s in seeds]


def lfd_timesteps(ctx: RunContext) -> list[int]:
    n_train = int(ctx.base_components().scheduler.config.num_train_timesteps)
    return grid_timesteps(n_train, ctx.settings)


def grid_timesteps(num_train_timesteps: int, settings: EvalSettings) -> list[int]:
    """The LFD timestep grid of a suite's settings on a schedule of ``num_train_timesteps``."""
    from metrics.lfd import default_timesteps

    return default_timesteps(num_train_timesteps, settings.lfd_timesteps)


def base_samples(ctx: RunContext, prompts: list[str]) -> tuple[Path, str]:
    """Base-model samples z0 for LFD: one per (prompt, seed), as final latents."""
    rows, seeds = _lfd_rows(ctx, prompts)
    s = ctx.settings
    inputs = {
        "model": ctx.model_key,
        "prompts": rows,
        "seeds": seeds,
        "steps": s.steps,
        "guidance": s.guidance,
        "resolution": s.resolution,
    }

    def compute(out: Path) -> None:
        pipe = ctx.base_pipeline()
        z0 = pipe.sample_latents(
            rows,
            seeds,
            **s.sampler_kwargs(),
        )
        _save_tensor(out / "z0.safetensors", z0)
        (out / "prompts.json").write_text(json.dumps(rows))

    return ctx.cache.get_or_compute("lfd_samples", inputs, compute)


def _lfd_grid(ctx: RunContext) -> dict[str, Any]:
    return lfd_grid(ctx.settings, ctx.num_train_timesteps())


def lfd_grid(settings: EvalSettings, num_train_timesteps: int) -> dict[str, Any]:
    """What the base model's LFD predictions depend on besides its samples (part of their cache key;
    ``run --plan`` computes the same key without loading the model)."""
    return {
        "timesteps": grid_timesteps(num_train_timesteps, settings),
        "seed": settings.lfd_seed,
        "batch_size": settings.lfd_batch_size,
        "noise": "row-key",  # lfd@2: paired noise seeded by each sample's seed, not its bytes
    }


def base_eps(ctx: RunContext, prompts: list[str]) -> tuple[Path, str]:
    """Base-model predictions on the LFD grid, keyed row by row (a saved ``PredictionCache``)."""
    from metrics.lfd import PredictionCache, lfd_breakdown

    samples_path, samples_key = base_samples(ctx, prompts)
    inputs = {"samples": samples_key, **_lfd_grid(ctx)}

    def compute(out: Path) -> None:
        from safetensors.torch import save_file

        pipe = ctx.base_pipeline()
        cache = PredictionCache(pipe.eps)
        z0 = load_tensor(samples_path / "z0.safetensors")
        rows = json.loads((samples_path / "prompts.json").read_text())
        grid = _lfd_grid(ctx)
        # custom == base here: every second call is a cache hit, so the base model runs N·|T| rows.
        lfd_breakdown(
            cache,
            cache,
            z0,
            rows,
            pipe.alphas_cumprod,
            grid["timesteps"],
            seed=grid["seed"],
            batch_size=grid["batch_size"],
            row_keys=lfd_row_keys(ctx, prompts),
        )
        ctx.counters["lfd_base_rows"] += cache.calls
        save_file({k: v.contiguous() for k, v in cache.state_dict().items()}, str(out / "eps.safetensors"))

    return ctx.cache.get_or_compute("lfd_base_eps", inputs, compute)


# -------------------------------------------------------------------------------- rows


def row_config_hash(ctx: RunContext, method_id: dict[str, Any]) -> str:
    """Hash of everything behind a (method, concept) row: method config, settings, suite version."""
    from benchmark.cache import hash_inputs

    model = {"model": ctx.model_key} if ctx.model_key != ctx.settings.model else {}
    return hash_inputs({**method_id, **ctx.suite_id, "settings": ctx.settings.identity(), **model})[:16]
