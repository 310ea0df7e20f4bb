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

import functools
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
# metrics.similarity; 4 = LFD's standard error with the prompt as the unit, se_prompt; 5 = W2's cost summed
# pair by pair, so a cached W2 with the old expansion's machine-dependent residue is not reused); values
# themselves are versioned by the metric spec.
METRIC_RECORD = 5


class InputUnavailable(ValueError):
    """A suite's profile asks for a metric whose inputs the suite cannot give (the message names both)."""


class ImageInputs:
    """The inputs of one concept's generated images (in the suite's generation-plan order): every source ×
    extractor reference (``"generated:clip"``, ``"base:dino"``, ...; ``metrics.spec.SOURCES``) and the
    identity scores where the suite has a scorer.

    Args:
        ctx: the run context.
        concept: the suite concept the images belong to.
        files: one image per (prompt, seed) of the generation plan.
        source: a key that identifies the images (a stage key, or a digest of the files).
    """

    # whether this source is the base model itself (reference metrics, such as W2's floor, are computed here)
    reference = False
    # whether a customized model stands behind the images (an image folder has none: no LFD)
    has_model = False
    # whether the images are the reference photos scored against themselves (the ``real`` rows)
    leave_one_out = False

    def __init__(self, ctx: RunContext, concept: Any, files: Sequence[Path], source: str) -> None:
        self.ctx, self.concept, self.files, self.source = ctx, concept, list(files), source
        # named inputs: name -> (cache key of the input, its value)
        self._named: dict[str, tuple[Callable[[MetricSpec], str], Callable[[MetricSpec], Any]]] = {}
        if ctx.settings.identity_scorer:
            self._named["generated_identity"] = (lambda _: self._identity()[1], lambda _: self._scores())
        for which in ("generated", "reference", "base_alt"):
            self._named[f"layout_{which}"] = (
                functools.partial(self._layout_key, which),
                functools.partial(self._layout, which),
            )
        self._named["plan_prompts"] = (
            lambda _: f"plan-prompts:{self._plan_prompts().tolist()}",
            lambda _: self._plan_prompts(),
        )

    # -- the protocol evaluate() uses -------------------------------------------------------------
    def missing(self, ref: str) -> str | None:
        """Why input ``ref`` cannot be given here (None: it can)."""
        from metrics.spec import MODEL_INPUTS, TEXT_SOURCES, parse_input

        source, extractor = parse_input(ref)
        if extractor is None:
            if ref in self._named:
                return None
            if ref in MODEL_INPUTS:
                return "it needs the customized model (an image source has none)"
            if ref.startswith("layout_") or ref == "plan_prompts":
                return "the reference photos scored against themselves have no generation plan"
            return "the suite's profile names no identity_scorer"
        if extractor not in self.ctx.settings.extractors:
            have = ", ".join(self.ctx.settings.extractors)
            return f"the suite's profile has no extractor {extractor!r} (it has: {have})"
        if source == "heldout" and not self.ctx.settings.heldout_views:
            return "the suite's profile names no heldout_views (held-out views of the concept)"
        if source in TEXT_SOURCES and self.ctx.settings.extractors[extractor].kind != "clip":
            return f"extractor {extractor!r} is not an image-text model (kind 'clip')"
        return None

    def provides(self, ref: str) -> bool:
        return self.missing(ref) is None

    def key(self, ref: str, spec: MetricSpec) -> str:
        """A cache key of input ``ref`` (may run cached stages, never a customized model)."""
        if ref in self._named:
            return self._named[ref][0](spec)
        return self._stage(ref)[1]

    def get(self, ref: str, spec: MetricSpec) -> Any:
        """The value of input ``ref``."""
        if ref in self._named:
            return self._named[ref][1](spec)
        if ref.startswith("prompt_truncations:"):
            return int(json.loads((self._stage(ref)[0] / "truncated.json").read_text()))
        return stages.load_tensor(self._stage(ref)[0] / "features.safetensors")

    def finish(self) -> None:
        """Called after the metrics were evaluated."""

    # -- stages behind the inputs -----------------------------------------------------------------
    def _stage(self, ref: str) -> tuple[Path, str]:
        """The cached stage that holds the features of ``ref`` (folder, key)."""
        source, name = ref.split(":")
        spec = self.ctx.settings.extractor(name)
        if source == "generated":
            return stages.image_features_stage(self.ctx, self.files, spec, self.source)
        if source == "reference":
            return stages.reference_stage(self.ctx, self.concept, spec)
        if source == "heldout":
            path, key = stages.heldout_stage(self.ctx, self.concept)
            return stages.image_features_stage(self.ctx, sorted(path.glob("*.png")), spec, key)
        if source in ("prompt", "prompt_truncations"):
            return stages.class_text_stage(self.ctx, self.concept, spec)
        if source in ("base", "base_alt"):
            files, key = self._base_images(stages.ALT_SEED_OFFSET if source == "base_alt" else 0)
            return stages.image_features_stage(self.ctx, files, spec, key)
        if source.startswith("subject_"):
            return self._subject(source.removeprefix("subject_"), spec)
        if source.startswith("context_"):
            return self._context(source.removeprefix("context_"), spec)
        return self._masked(source.removeprefix("masked_"), spec)

    def _base_images(self, seed_offset: int = 0) -> tuple[list[Path], str]:
        path, key = stages.generate(self.ctx, _base_method(), self.concept, seed_offset)
        return stages.image_files(path, stages.generation_plan(self.ctx, self.concept, seed_offset)), key

    def _masked(self, which: str, spec: Any) -> tuple[Path, str]:
        """Masked features of the generated images, the base images (both with the base images'
        subject masks: the asked layout) or the reference photos (their own masks)."""
        noun = self.concept.class_noun
        if which == "reference":
            refs = [Path(p) for p in self.concept.images]
            source = f"{self.ctx.suite.name}@{self.ctx.suite.version}/{self.concept.id}/reference"
            masks = stages.subject_mask_stage(self.ctx, refs, noun, source)
            return stages.masked_features_stage(self.ctx, refs, masks, spec, source)
        base_files, base_key = self._base_images()
        masks = stages.subject_mask_stage(self.ctx, base_files, noun, base_key)
        if which == "base":
            return stages.masked_features_stage(self.ctx, base_files, masks, spec, base_key)
        return stages.masked_features_stage(self.ctx, self.files, masks, spec, self.source)

    def _own_masked(self, which: str) -> tuple[list[Path], str, tuple[Path, str]]:
        """The images of ``which`` (generated, reference, base, base_alt), their key and their own masks
        (:data:`benchmark.stages.OWN_MASK_METHOD`)."""
        if which == "reference":
            files = [Path(p) for p in self.concept.images]
            key = f"{self.ctx.suite.name}@{self.ctx.suite.version}/{self.concept.id}/reference"
        elif which in ("base", "base_alt"):
            files, key = self._base_images(stages.ALT_SEED_OFFSET if which == "base_alt" else 0)
        else:
            files, key = self.files, self.source
        noun = self.concept.class_noun
        return files, key, stages.subject_mask_stage(self.ctx, files, noun, key, stages.OWN_MASK_METHOD)

    def _subject(self, which: str, spec: Any) -> tuple[Path, str]:
        """Features of the subject alone (own masks): generated images, base images or reference photos."""
        files, key, masks = self._own_masked(which)
        return stages.subject_features_stage(self.ctx, files, masks, spec, key)

    def _context(self, which: str, spec: Any) -> tuple[Path, str]:
        """Features of the context alone (own masks grown by 1/16 of the side and filled to their bounding
        box, painted grey: leakage@2's recipe): generated, reference or base_alt."""
        from benchmark.masks import DEFAULT_DILATION

        files, key, masks = self._own_masked(which)
        return stages.masked_features_stage(
            self.ctx, files, masks, spec, key, dilation=DEFAULT_DILATION, box=True
        )

    def _layout_key(self, which: str, _spec: Any = None) -> str:
        return f"{self._own_masked(which)[2][1]}:layout"

    def _layout(self, which: str, _spec: Any = None) -> Any:
        """The subject layouts of ``which`` from their own masks (:func:`benchmark.masks.layout`)."""
        import numpy as np

        from benchmark.masks import layout

        return layout(np.load(self._own_masked(which)[2][0] / "masks.npy"))

    def _plan_prompts(self) -> Any:
        import numpy as np

        return np.asarray([i for i, _, _ in stages.generation_plan(self.ctx, self.concept)], dtype=np.int64)

    def _identity(self) -> tuple[Path, str]:
        return stages.identity_stage(self.ctx, self.files, self.concept, self.source)

    def _scores(self) -> Any:
        import numpy as np

        return np.load(self._identity()[0] / "scores.npy")


class ReferenceInputs(ImageInputs):
    """The concept's reference photos scored against themselves, leave-one-out: the ``real`` rows of every
    metric whose spec names a ``leave_one_out`` function (a fidelity's ceiling)."""

    leave_one_out = True

    def __init__(self, ctx: RunContext, concept: Any) -> None:
        refs = [Path(p) for p in concept.images]
        super().__init__(ctx, concept, refs, f"{ctx.suite.name}@{ctx.suite.version}/{concept.id}/reference")
        self._named.clear()


class JobInputs(ImageInputs):
    """A method's job: its generated images, its customized noise predictor and the LFD references."""

    def __init__(self, ctx: RunContext, method: MethodHandle, concept: Any) -> None:
        gen_path, gen_key = stages.generate(ctx, method, concept)
        plan = stages.generation_plan(ctx, concept)
        super().__init__(ctx, concept, stages.image_files(gen_path, plan), gen_key)
        self.method = method
        self.has_model = True
        self._model: Any = None
        self._named["custom_eps"] = (lambda _: stages.fit(ctx, method, concept)[1], lambda _: self._eps())
        self._named["lfd_reference"] = (self._lfd_key, self._lfd_reference)
        self.reference = method.name == "base" and method.steps is None

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


def servable(ctx: RunContext, inputs: ImageInputs) -> tuple[list[tuple[MetricSpec, str]], list[str]]:
    """The suite's metrics this source computes, each with the function it runs, and notes on those it
    skips because of what the source *is* (an image folder has no model; the W2 floor is the base model's).

    Raises:
        InputUnavailable: the profile lists a metric whose inputs the *suite* cannot give (an extractor it
            does not name, no identity scorer); a metric the profile does not list (it lists none: every
            registered metric) is skipped with a note instead.
    """
    from metrics.spec import MODEL_INPUTS, REFERENCE_SOURCES, parse_input

    listed = ctx.settings.metrics is not None
    out: list[tuple[MetricSpec, str]] = []
    notes: list[str] = []
    for spec in metric_specs(ctx):
        if inputs.leave_one_out:
            if not spec.leave_one_out:
                continue
            refs = [r for r in spec.refs if parse_input(r)[0] in REFERENCE_SOURCES]
            if len(refs) != 1 or not inputs.provides(refs[0]) or len(inputs.files) < 2:
                continue
            out.append((spec, "leave_one_out"))
            continue
        if spec.reference and not inputs.reference:
            continue  # a property of the concept: computed once, with the base model's rows
        missing = {r: inputs.missing(r) for r in spec.refs}
        missing = {r: why for r, why in missing.items() if why}
        if not missing:
            out.append((spec, "compute"))
        elif not inputs.has_model and set(missing) <= MODEL_INPUTS:
            notes.append(f"{spec.id} needs the customized model (images alone cannot give it)")
        elif listed:
            ref, why = next(iter(missing.items()))
            raise InputUnavailable(
                f"metric {spec.id} needs input {ref!r}, which this suite cannot give: {why}; add it to the "
                "profile or drop the metric from the profile's 'metrics'"
            )
        else:
            notes.append(f"{spec.id} skipped: input {next(iter(missing))!r}: {next(iter(missing.values()))}")
    return out, notes


def evaluate(ctx: RunContext, inputs: ImageInputs) -> list[tuple[MetricSpec, MetricValue]]:
    """Every metric of the suite that ``inputs`` serves (:func:`servable`), each cached under its inputs'
    keys. A :class:`ReferenceInputs` source runs each metric's ``leave_one_out`` function on the reference
    photos instead.

    Raises:
        InputUnavailable: the profile lists a metric the suite cannot serve.
    """
    from metrics.spec import REFERENCE_SOURCES, MetricValue, parse_input

    chosen, notes = servable(ctx, inputs)
    for note in notes:
        log.debug("%s/%s: %s", inputs.source, getattr(inputs.concept, "id", "?"), note)
    out: list[tuple[MetricSpec, MetricValue]] = []
    for spec, which in chosen:
        if which == "leave_one_out":
            ref = next(r for r in spec.refs if parse_input(r)[0] in REFERENCE_SOURCES)
            wanted: dict[str, str] = {"reference": ref}
            options: dict[str, Any] = {}
        else:
            wanted = dict(spec.bindings)
            options = dict(spec.options)
        keys = {kw: inputs.key(ref, spec) for kw, ref in wanted.items()}
        stage_inputs = {
            "metric": spec.id,
            "compute": getattr(spec, which),
            "options": options,
            "inputs": keys,
            "record": METRIC_RECORD,
        }

        def compute(
            folder: Path, spec: MetricSpec = spec, which: str = which, wanted: dict[str, str] = wanted
        ) -> None:
            kwargs = {kw: inputs.get(ref, spec) for kw, ref in wanted.items()}
            opts = dict(spec.options) if which == "compute" else {}
            if isinstance(inputs, JobInputs):  # the customized model's own code may run inside the metric
                with method_stage(inputs.method.name, inputs.concept.id, f"metric {spec.key}"):
                    result = spec.function(which)(**kwargs, **opts)
            else:
                result = spec.function(which)(**kwargs, **opts)
            record = {"value": float(result.value), "n": int(result.n), "extra": dict(result.extra)}
            (folder / "metric.json").write_text(json.dumps(record))

        path, _ = ctx.cache.get_or_compute("metric", stage_inputs, compute)
        record = json.loads((path / "metric.json").read_text())
        out.append((spec, MetricValue(record["value"], record["n"], record["extra"])))
    inputs.finish()
    return out


def _backbone_tag(ctx: RunContext, spec: MetricSpec) -> str:
    kind = spec.row_backbone
    if kind == "latent":  # the model with its digest or pinned commit: other weights, other rows
        return f"latent:{ctx.model_key}"
    if kind == "identity":
        return str(ctx.identity_scorer().tag)
    if kind == "masks":  # subject masks read off the base model (benchmark.masks)
        return f"masks:{stages.OWN_MASK_METHOD}:{ctx.model_key}"
    return str(ctx.backbone(ctx.settings.extractor(kind)).tag)


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
    """All metric rows of (method, concept), from cached stages where possible; rows carry ``rung`` and,
    for a method with a training budget, ``extra["budget"]`` (:func:`benchmark.budget_report.row_budget`)."""
    from benchmark.budget_report import row_budget

    values = evaluate(ctx, JobInputs(ctx, method, concept))
    ident = stages.method_identity(ctx, method)
    budget = row_budget(ctx, method)  # where the budget came from: tuned, the profile, the recipe, ...
    return make_rows(
        ctx,
        values,
        method=method.name,
        method_version=ident["method_version"],
        concept=concept.id,
        config_hash=stages.row_config_hash(ctx, ident),
        extra={"budget": budget} if budget else None,
        rung=rung,
    )


def rung_steps(ctx: RunContext, method: MethodHandle, rungs: Sequence[float]) -> dict[float, int]:
    """Optimizer steps of each rung: ``rung`` × the method's steps under this suite's budget."""
    tuned = int(stages.method_config(ctx, method)["steps"])
    return {r: max(1, round(r * tuned)) for r in sorted(rungs)}


def score_trajectory(ctx: RunContext, method: MethodHandle, concept: Any) -> list[dict[str, Any]]:
    """Rows of (method, concept) at every rung of the suite (``settings.rungs``), all rungs taken from one
    training run: each longer fit resumes from the checkpoint the previous rung's fit leaves at its last
    step (``baselines.training.train``; a resumed run equals an uninterrupted one bit for bit). A method
    that trains nothing, or whose budget the harness cannot set (no recipe), is scored once, with rung
    null."""
    if not (method.trains and method.has_recipe()):
        return score_job(ctx, method, concept, rung=None)
    steps = rung_steps(ctx, method, ctx.settings.rungs)
    every = int(stages.method_config(ctx, method).get("checkpoint_every") or 0)
    if len(steps) > 1 and not every:
        log.warning("%s: checkpoint_every is 0, so every rung trains from scratch", method.name)
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
    """The ``real`` reference rows: every metric with a ``leave_one_out`` function (CLIP-I, DINO) on the
    concept's reference photos scored against each other (none with fewer than two photos)."""
    from benchmark.cache import hash_inputs

    rows: list[dict[str, Any]] = []
    for spec, value in evaluate(ctx, ReferenceInputs(ctx, concept)):
        extractor = ctx.settings.extractor(spec.row_backbone)
        chash = hash_inputs({"real": True, **ctx.suite_id, "backbone": ctx.backbone_identity(extractor)})[:16]
        rows += make_rows(
            ctx, [(spec, value)], method="real", method_version=1, concept=concept.id, config_hash=chash
        )
    return rows
