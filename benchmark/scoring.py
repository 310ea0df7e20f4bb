"""The metrics stage: one function evaluates a suite's metric list for any source of images.

Every metric declares named inputs (``metrics.spec.INPUTS``). An *input source* gives each name a cache
key and a value: :class:`ImageInputs` serves the image inputs for any list of generated image files (a
harness job, a folder of images, the validity study's copy control); :class:`JobInputs` adds the
customized model's noise predictor and the LFD reference for a method's job. :func:`evaluate` gives
every metric whose inputs the source has what it declares, caches the value under the keys of those
inputs (stage ``metric``) and returns rows. ``run``, ``score --images`` and the validity study all go
through it, so a new metric over these inputs is its module in ``metrics/`` plus its spec entry.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark import stages
from benchmark.context import RunContext
from benchmark.errors import method_stage

if TYPE_CHECKING:
    from baselines.contract import MethodHandle
    from metrics.spec import MetricSpec, MetricValue

log = logging.getLogger(__name__)

# Version of what a cached metric record holds besides its value (bump when a metric's extra gains a
# field: 2 = LFD's Monte-Carlo standard error; 3 = metric statistics summed in a fixed order, see
# metrics.similarity); values themselves are versioned by the metric spec.
METRIC_RECORD = 3


class ImageInputs:
    """The image inputs of one concept's generated images (in the suite's generation-plan order).

    Args:
        ctx: the run context.
        concept: the suite concept the images belong to.
        files: one image per (prompt, seed) of the generation plan.
        source: a key that identifies the images (a stage key, or a digest of the files).
    """

    # whether this source is the base model itself (reference metrics, such as W2's floor, are computed here)
    reference = False

    def __init__(self, ctx: RunContext, concept: Any, files: Sequence[Path], source: str) -> None:
        self.ctx, self.concept, self.files, self.source = ctx, concept, list(files), source
        self._table: dict[str, tuple[Callable[[MetricSpec], str], Callable[[MetricSpec], Any]]] = {
            "generated_clip": (
                lambda _: self._gen(self.ctx.settings.clip)[1],
                lambda _: self._load_gen("clip"),
            ),
            "generated_dino": (
                lambda _: self._gen(self.ctx.settings.dino)[1],
                lambda _: self._load_gen("dino"),
            ),
            "reference_clip": (lambda _: self._ref("clip")[1], lambda _: self._load_ref("clip")),
            "reference_dino": (lambda _: self._ref("dino")[1], lambda _: self._load_ref("dino")),
            "prompt_clip": (lambda _: self._text()[1], lambda _: self._load_text()[0]),
            "prompt_truncations": (lambda _: self._text()[1], lambda _: self._load_text()[1]),
            "base_clip": (lambda _: self._base()[1], lambda _: self._load_base()),
            "masked_generated_clip": (
                lambda _: self._masked("generated")[1],
                lambda _: self._load(self._masked("generated")),
            ),
            "masked_base_clip": (
                lambda _: self._masked("base")[1],
                lambda _: self._load(self._masked("base")),
            ),
            "masked_reference_clip": (
                lambda _: self._masked("reference")[1],
                lambda _: self._load(self._masked("reference")),
            ),
        }
        if ctx.settings.identity_scorer:
            self._table["generated_identity"] = (lambda _: self._identity()[1], lambda _: self._scores())

    # -- the protocol evaluate() uses -------------------------------------------------------------
    def provides(self, name: str) -> bool:
        return name in self._table

    def key(self, name: str, spec: MetricSpec) -> str:
        """A cache key of input ``name`` (may run cached stages, never a customized model)."""
        return self._table[name][0](spec)

    def get(self, name: str, spec: MetricSpec) -> Any:
        """The value of input ``name``."""
        return self._table[name][1](spec)

    def finish(self) -> None:
        """Called after the metrics were evaluated."""

    # -- stages behind the inputs -----------------------------------------------------------------
    def _spec(self, slot: str) -> Any:
        return self.ctx.settings.clip if slot == "clip" else self.ctx.settings.dino

    def _gen(self, spec: Any) -> tuple[Path, str]:
        return stages.image_features_stage(self.ctx, self.files, spec, self.source)

    def _load_gen(self, slot: str) -> Any:
        return stages.load_tensor(self._gen(self._spec(slot))[0] / "features.safetensors")

    def _ref(self, slot: str) -> tuple[Path, str]:
        return stages.reference_stage(self.ctx, self.concept, self._spec(slot))

    def _load_ref(self, slot: str) -> Any:
        return stages.load_tensor(self._ref(slot)[0] / "features.safetensors")

    def _text(self) -> tuple[Path, str]:
        return stages.class_text_stage(self.ctx, self.concept)

    def _load_text(self) -> tuple[Any, int]:
        return stages.class_text_features(self.ctx, self.concept)

    def _base(self) -> tuple[Path, str]:
        base = _base_method()
        path, key = stages.generate(self.ctx, base, self.concept)
        plan = stages.generation_plan(self.ctx, self.concept)
        return stages.image_features_stage(
            self.ctx, stages.image_files(path, plan), self.ctx.settings.clip, key
        )

    def _load_base(self) -> Any:
        return stages.load_tensor(self._base()[0] / "features.safetensors")

    @staticmethod
    def _load(stage: tuple[Path, str]) -> Any:
        return stages.load_tensor(stage[0] / "features.safetensors")

    def _base_images(self, seed_offset: int = 0) -> tuple[list[Path], str]:
        path, key = stages.generate(self.ctx, _base_method(), self.concept, seed_offset)
        return stages.image_files(path, stages.generation_plan(self.ctx, self.concept, seed_offset)), key

    def _masked(self, which: str) -> tuple[Path, str]:
        """Masked CLIP features of the generated images, the base images (both with the base images'
        subject masks: the asked layout) or the reference photos (their own masks)."""
        noun, clip = self.concept.class_noun, self.ctx.settings.clip
        if which == "reference":
            refs = [Path(p) for p in self.concept.images]
            source = f"{self.ctx.suite.name}@{self.ctx.suite.version}/{self.concept.id}/reference"
            masks = stages.subject_mask_stage(self.ctx, refs, noun, source)
            return stages.masked_features_stage(self.ctx, refs, masks, clip, source)
        base_files, base_key = self._base_images()
        masks = stages.subject_mask_stage(self.ctx, base_files, noun, base_key)
        if which == "base":
            return stages.masked_features_stage(self.ctx, base_files, masks, clip, base_key)
        return stages.masked_features_stage(self.ctx, self.files, masks, clip, self.source)

    def _identity(self) -> tuple[Path, str]:
        return stages.identity_stage(self.ctx, self.files, self.concept, self.source)

    def _scores(self) -> Any:
        import numpy as np

        return np.load(self._identity()[0] / "scores.npy")

    def _base_alt(self) -> tuple[Path, str]:
        files, key = self._base_images(stages.ALT_SEED_OFFSET)
        return stages.image_features_stage(self.ctx, files, self.ctx.settings.clip, key)


class JobInputs(ImageInputs):
    """A method's job: its generated images, its customized noise predictor and the LFD references."""

    def __init__(self, ctx: RunContext, method: MethodHandle, concept: Any) -> None:
        gen_path, gen_key = stages.generate(ctx, method, concept)
        plan = stages.generation_plan(ctx, concept)
        super().__init__(ctx, concept, stages.image_files(gen_path, plan), gen_key)
        self.method = method
        self._model: Any = None
        self._table["custom_eps"] = (lambda _: stages.fit(ctx, method, concept)[1], lambda _: self._eps())
        self._table["lfd_reference"] = (self._lfd_key, self._lfd_reference)
        if method.name == "base" and method.steps is None:
            self.reference = True
            self._table["base_clip_alt"] = (
                lambda _: self._base_alt()[1],
                lambda _: self._load(self._base_alt()),
            )

    def _eps(self) -> Any:
        model, _ = stages.load_customized(self.ctx, self.method, self.concept)
        if self._model is None:  # count this job's noise-predictor rows from here (finish() adds them)
            model.reset_counters()
            self._model = model
        return model.eps

    def _prompts(self, spec: MetricSpec) -> list[str]:
        return stages.lfd_prompt_sets(self.ctx, self.concept)[str(spec.options["prompt_set"])]

    def _lfd_key(self, spec: MetricSpec) -> str:
        _, eps_key = stages.base_eps(self.ctx, self._prompts(spec))
        return f"{eps_key}:{self.ctx.settings.lfd_weighting}"

    def _lfd_reference(self, spec: MetricSpec) -> Any:
        from safetensors.torch import load_file

        from metrics.lfd import LFDReference, PredictionCache

        prompts = self._prompts(spec)
        samples_path, _ = stages.base_samples(self.ctx, prompts)
        eps_path, _ = stages.base_eps(self.ctx, prompts)
        cached = PredictionCache(None)  # no predictor: a cache miss is an error, never a base-model call
        cached.load_state_dict(load_file(str(eps_path / "eps.safetensors")))
        s = self.ctx.settings
        return LFDReference(
            z0=stages.load_tensor(samples_path / "z0.safetensors"),
            prompts=json.loads((samples_path / "prompts.json").read_text()),
            base_eps=cached,
            alphas_cumprod=self.ctx.base_pipeline().alphas_cumprod,
            timesteps=stages.lfd_timesteps(self.ctx),
            seed=s.lfd_seed,
            batch_size=s.lfd_batch_size,
            weighting=s.lfd_weighting,
            row_keys=stages.lfd_row_keys(self.ctx, prompts),
        )

    def finish(self) -> None:
        if self._model is not None:
            self.ctx.counters["lfd_custom_rows"] += int(self._model.eps_rows)
            self._model.reset_counters()


def _base_method() -> MethodHandle:
    from baselines import load_method

    return load_method("base")


def metric_specs(ctx: RunContext) -> list[MetricSpec]:
    """The suite's metric list: its profile's ``metrics``, else every registered metric.

    Raises:
        KeyError: a profile names an unknown metric (with suggestions).
    """
    from metrics.spec import METRICS, get_metric

    if ctx.settings.metrics is None:
        return list(METRICS.values())
    return [get_metric(k) for k in ctx.settings.metrics]


def evaluate(ctx: RunContext, inputs: ImageInputs) -> list[tuple[MetricSpec, MetricValue]]:
    """Every metric of the suite whose inputs ``inputs`` provides, each cached under its inputs' keys."""
    from metrics.spec import MetricValue

    out: list[tuple[MetricSpec, MetricValue]] = []
    for spec in metric_specs(ctx):
        if spec.reference and not inputs.reference:
            continue  # a property of the concept: computed once, with the base model's rows
        if not all(inputs.provides(name) for name in spec.inputs):
            continue
        keys = {name: inputs.key(name, spec) for name in spec.inputs}
        stage_inputs = {
            "metric": spec.id,
            "compute": spec.compute,
            "options": dict(spec.options),
            "inputs": keys,
            "record": METRIC_RECORD,
        }

        def compute(folder: Path, spec: MetricSpec = spec) -> None:
            kwargs = {name: inputs.get(name, spec) for name in spec.inputs}
            if isinstance(inputs, JobInputs):  # the customized model's own code may run inside the metric
                with method_stage(inputs.method.name, inputs.concept.id, f"metric {spec.key}"):
                    result = spec.function()(**kwargs, **dict(spec.options))
            else:
                result = spec.function()(**kwargs, **dict(spec.options))
            record = {"value": float(result.value), "n": int(result.n), "extra": dict(result.extra)}
            (folder / "metric.json").write_text(json.dumps(record))

        path, _ = ctx.cache.get_or_compute("metric", stage_inputs, compute)
        record = json.loads((path / "metric.json").read_text())
        out.append((spec, MetricValue(record["value"], record["n"], record["extra"])))
    inputs.finish()
    return out


def _backbone_tag(ctx: RunContext, spec: MetricSpec) -> str:
    if spec.backbone == "latent":  # the model with its digest or pinned commit: other weights, other rows
        return f"latent:{ctx.model_key}"
    if spec.backbone == "identity":
        return str(ctx.identity_scorer().tag)
    return str(ctx.backbone(ctx.settings.clip if spec.backbone == "clip" else ctx.settings.dino).tag)


def make_rows(
    ctx: RunContext,
    values: Sequence[tuple[MetricSpec, MetricValue]],
    *,
    method: str,
    method_version: str | int,
    concept: str,
    config_hash: str,
    extra: dict[str, Any] | None = None,
    rung: float | None = None,
) -> list[dict[str, Any]]:
    """Result rows of evaluated metrics."""
    from benchmark.results import make_row

    return [
        make_row(
            suite=ctx.suite.name,
            suite_version=ctx.suite.version,
            method=method,
            method_version=method_version,
            concept=concept,
            metric=spec.key,
            value=value.value,
            n=value.n,
            backbone=_backbone_tag(ctx, spec),
            config_hash=config_hash,
            extra={**dict(value.extra), **(extra or {})},
            rung=rung,
        )
        for spec, value in values
    ]


def score_job(
    ctx: RunContext, method: MethodHandle, concept: Any, rung: float | None = None
) -> list[dict[str, Any]]:
    """All metric rows of (method, concept), from cached stages where possible; rows carry ``rung``."""
    values = evaluate(ctx, JobInputs(ctx, method, concept))
    ident = stages.method_identity(ctx, method)
    return make_rows(
        ctx,
        values,
        method=method.name,
        method_version=ident["method_version"],
        concept=concept.id,
        config_hash=stages.row_config_hash(ctx, ident),
        rung=rung,
    )


def rung_steps(ctx: RunContext, method: MethodHandle, rungs: Sequence[float]) -> dict[float, int]:
    """Optimizer steps of each rung: ``rung`` × the method's steps under this suite's budget."""
    tuned = int(stages.method_config(ctx, method)["steps"])
    return {r: max(1, round(r * tuned)) for r in sorted(rungs)}


def score_trajectory(ctx: RunContext, method: MethodHandle, concept: Any) -> list[dict[str, Any]]:
    """Rows of (method, concept) at every rung of the suite (``settings.rungs``), all rungs taken from one
    training run: each longer fit resumes from the previous rung's last checkpoint (rung steps that are
    multiples of the method's ``checkpoint_every`` make that exact). A method that trains nothing, or
    whose budget the harness cannot set (no recipe), is scored once, with rung null."""
    if not (method.trains and method.has_recipe()):
        return score_job(ctx, method, concept, rung=None)
    steps = rung_steps(ctx, method, ctx.settings.rungs)
    every = int(stages.method_config(ctx, method).get("checkpoint_every") or 0)
    lower = [n for r, n in steps.items() if n < max(steps.values())]
    if lower and (not every or any(n % every for n in lower)):
        log.warning(
            "%s: rung steps %s are not all multiples of checkpoint_every %s; longer rungs train from scratch",
            method.name,
            sorted(steps.values()),
            every,
        )
    keep = ctx.keep_fit_work
    ctx.keep_fit_work = len(steps) > 1
    rows: list[dict[str, Any]] = []
    try:
        for rung, n in steps.items():
            handle = method if rung == 1.0 else method.with_steps(n, rung)
            rows += score_job(ctx, handle, concept, rung=rung)
    finally:
        ctx.keep_fit_work = keep
        if not keep:
            shutil.rmtree(stages.fit_work_dir(ctx, method, concept), ignore_errors=True)
    return rows


def files_digest(files: Sequence[Path]) -> str:
    """A key for a list of image files: sha256 over their contents, in order."""
    from benchmark.cache import hash_inputs
    from benchmark.io import sha256_file

    return hash_inputs({"files": [sha256_file(p) for p in files]})


def score_images(
    ctx: RunContext, concept: Any, files: Sequence[Path], name: str, *, extra: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Rows of every metric that needs no model, for ``files`` (one per generation-plan entry) under
    method name ``name`` (method version ``"images"``)."""
    from benchmark.cache import hash_inputs

    source = "folder:" + files_digest(files)[:24]
    values = evaluate(ctx, ImageInputs(ctx, concept, files, source))
    chash = hash_inputs({"source": source, **ctx.suite_id, "settings": ctx.settings.identity()})[:16]
    return make_rows(
        ctx, values, method=name, method_version="images", concept=concept.id, config_hash=chash, extra=extra
    )


def real_rows(ctx: RunContext, concept: Any) -> list[dict[str, Any]]:
    """The ``real`` reference: CLIP-I / DINO among the reference photos themselves (leave-one-out)."""
    from benchmark.cache import hash_inputs
    from benchmark.results import make_row
    from metrics.similarity import leave_one_out_cosine_mean

    rows: list[dict[str, Any]] = []
    n = len(concept.images)
    if n < 2:
        return rows
    for metric, spec in (("clip_i", ctx.settings.clip), ("dino", ctx.settings.dino)):
        feats = stages.reference_features(ctx, concept, spec)
        chash = hash_inputs({"real": True, **ctx.suite_id, "backbone": ctx.backbone_identity(spec)})[:16]
        rows.append(
            make_row(
                suite=ctx.suite.name,
                suite_version=ctx.suite.version,
                method="real",
                method_version=1,
                concept=concept.id,
                metric=metric,
                value=leave_one_out_cosine_mean(feats),
                n=n * (n - 1),
                backbone=ctx.backbone(spec).tag,
                config_hash=chash,
            )
        )
    return rows
