"""Everything a stage needs: the suite, settings, cache, run folder, and the run's model slots.

The context owns the loaded models. Stages ask for them through its methods — the base model, the
base pipeline, one customized model at a time, the feature backbones — and never reach into its state.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.cache import StageCache
from benchmark.io import resolve, sha256_file
from benchmark.settings import BackboneSpec, EvalSettings

log = logging.getLogger(__name__)


class ModelUnavailable(RuntimeError):
    """Model weights are not on this machine; the message names the command that fetches them."""


def _looks_like_path(model: str) -> bool:
    return model.startswith((".", "/", "~")) or Path(model).expanduser().exists() or model.count("/") > 1


@dataclass
class RunContext:
    """Shared state of one run (one per process; executor workers build their own)."""

    suite: Any
    settings: EvalSettings
    cache: StageCache
    run_dir: Path
    device: str = "cpu"
    progress: bool = True
    counters: Counter[str] = field(default_factory=Counter)
    # keep each fit's checkpoints after it finishes, so that a longer fit of the same run resumes
    keep_fit_work: bool = False
    _base: Any = field(default=None, repr=False)
    _base_pipeline: Any = field(default=None, repr=False)
    _customized: tuple[str, Any] | None = field(default=None, repr=False)
    _backbones: dict[str, Any] = field(default_factory=dict, repr=False)
    _model_source: str | None = field(default=None, repr=False)
    _identity_scorer: Any = field(default=None, repr=False)

    @property
    def suite_id(self) -> dict[str, Any]:
        return {"suite": self.suite.name, "suite_version": self.suite.version}

    # -- the base model ---------------------------------------------------------------------------
    def model_source(self) -> str:
        """Where the base model loads from: the profile's ``model_loader`` result (a folder), else the
        ``model`` setting itself (a name ``load_model`` knows, a folder, or a hub id)."""
        if self._model_source is None:
            loader = self.settings.model_loader
            self._model_source = str(resolve(loader, "model loader")()) if loader else self.settings.model
        return self._model_source

    @property
    def model_key(self) -> str:
        """The base model as it enters cache keys and row hashes: its name, plus a digest of the model
        folder's ``SHA256SUMS`` when it has one, so a retrained model never meets the old one's stages."""
        sums = Path(self.model_source()).expanduser() / "SHA256SUMS"
        if not sums.is_file():
            rev = self.settings.model_revision
            return f"{self.settings.model}@{rev[:12]}" if rev else self.settings.model
        return f"{self.settings.model}@{sha256_file(sums)[:16]}"

    def num_train_timesteps(self) -> int:
        """The base model's training timesteps: read from a local model folder's scheduler config when it
        has one (a warm run then never loads the model just to key its cached LFD stages), else from the
        loaded scheduler."""
        if self._base is None:
            known = scheduler_timesteps(self.model_source())
            if known is not None:
                return known
        return int(self.base_components().scheduler.config.num_train_timesteps)

    def base_components(self) -> Any:
        """The base model's pipeline (loaded once; never downloads)."""
        if self._base is None:
            from baselines.models import load_model

            source = self.model_source()
            try:
                self._base = load_model(
                    source, device=self.device, progress=self.progress, revision=self.settings.model_revision
                )
            except (OSError, FileNotFoundError, ValueError) as err:
                if _looks_like_path(source):
                    raise ModelUnavailable(
                        f"no model at {source}: expected a folder written by save_pretrained (with "
                        "model_index.json); check --model or the suite's profile"
                    ) from err
                raise ModelUnavailable(
                    f"model {self.settings.model!r} is not available locally ({err}). "
                    f"Fetch it explicitly with `overfit-bench models fetch {self.settings.model}`."
                ) from err
        return self._base

    def base_pipeline(self) -> Any:
        """The un-customized model as a customized pipeline (LFD's base samples and predictions)."""
        if self._base_pipeline is None:
            from baselines.pipeline import CustomizedPipeline

            self._base_pipeline = CustomizedPipeline(self.base_components())
        return self._base_pipeline

    # -- the customized model ---------------------------------------------------------------------
    def customized(self, key: str, build: Callable[[], Any]) -> Any:
        """The customized model stored under ``key``, built by ``build()`` when the slot holds another.

        One slot: generation and both LFD prompt sets reuse the loaded model, without keeping every
        method's (possibly full-UNet) copy alive across jobs.
        """
        if self._customized is None or self._customized[0] != key:
            self._customized = None  # free the previous model before building the next
            self._customized = (key, build())
        return self._customized[1]

    # -- feature backbones ------------------------------------------------------------------------
    def backbone(self, spec: BackboneSpec) -> Any:
        """A feature backbone (loaded once)."""
        key = f"{spec.kind}:{spec.name}:{spec.weights}:{spec.seed}:{spec.loader}:{spec.revision}"
        if key not in self._backbones:
            from metrics.backbones import BackboneUnavailable, load_backbone

            try:
                self._backbones[key] = load_backbone(
                    spec.kind,
                    spec.name,
                    spec.weights,
                    device=self.device,
                    seed=spec.seed,
                    loader=spec.loader,
                    revision=spec.revision,
                )
            except BackboneUnavailable as err:
                if spec.loader:  # the loader's own message says what is missing
                    raise ModelUnavailable(str(err)) from err
                raise ModelUnavailable(
                    f"{err} Fetch it explicitly with `overfit-bench models fetch {spec.name}`."
                ) from err
        return self._backbones[key]

    def identity_scorer(self) -> Any:
        """The suite's identity scorer (its profile's ``identity_scorer`` loader, called once), or None."""
        if self._identity_scorer is None and self.settings.identity_scorer:
            self._identity_scorer = resolve(self.settings.identity_scorer, "identity scorer")()
        return self._identity_scorer

    def backbone_identity(self, spec: BackboneSpec) -> dict[str, str]:
        return dict(self.backbone(spec).identity())


def scheduler_timesteps(source: str) -> int | None:
    """``num_train_timesteps`` from ``source/scheduler/scheduler_config.json``, or None when ``source`` is
    not a local folder with that file. A config without the key means diffusers' default, 1000."""
    import json

    config = Path(source).expanduser() / "scheduler" / "scheduler_config.json"
    if not config.is_file():
        return None
    return int(json.loads(config.read_text(encoding="utf-8")).get("num_train_timesteps", 1000))
