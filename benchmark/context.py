"""Everything a stage needs: the suite, settings, cache, run folder and lazily loaded models."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.cache import StageCache
from benchmark.settings import BackboneSpec, EvalSettings

log = logging.getLogger(__name__)


class ModelUnavailable(RuntimeError):
    """Model weights are not on this machine; the message names the command that fetches them."""


@dataclass
class RunContext:
    """Shared state of one run (one per process; Ray workers build their own)."""

    suite: Any
    settings: EvalSettings
    cache: StageCache
    run_dir: Path
    device: str = "cpu"
    progress: bool = True
    counters: Counter[str] = field(default_factory=Counter)
    _models: dict[str, Any] = field(default_factory=dict)
    _backbones: dict[str, Any] = field(default_factory=dict)

    @property
    def suite_id(self) -> dict[str, Any]:
        return {"suite": self.suite.name, "suite_version": self.suite.version}

    @property
    def model_key(self) -> str:
        """The base model as it enters cache keys and row hashes: the model id, plus a digest of the
        folder's ``SHA256SUMS`` for the shipped toy model or a local folder that has one, so a retrained
        model never meets the stages of the old one."""
        model = self.settings.model
        if model == "toy":
            from benchmark.toy.assets import base_model_dir

            sums = base_model_dir() / "SHA256SUMS"
        else:
            sums = Path(model).expanduser() / "SHA256SUMS"
            if not sums.is_file():
                return model
        return f"{model}@{hashlib.sha256(sums.read_bytes()).hexdigest()[:16]}"

    def base_components(self) -> Any:
        """The base model's pipeline (loaded once; never downloads)."""
        if "base" not in self._models:
            from baselines.models import load_model

            try:
                self._models["base"] = load_model(
                    self.settings.model, device=self.device, progress=self.progress
                )
            except (OSError, FileNotFoundError, ValueError) as err:
                raise ModelUnavailable(
                    f"model {self.settings.model!r} is not available locally ({err}). "
                    f"Fetch it explicitly with `overfit-bench models fetch {self.settings.model}`."
                ) from err
        return self._models["base"]

    def backbone(self, spec: BackboneSpec) -> Any:
        """A feature backbone (loaded once)."""
        key = f"{spec.kind}:{spec.name}:{spec.weights}:{spec.seed}"
        if key not in self._backbones:
            from metrics.backbones import BackboneUnavailable, load_backbone

            try:
                self._backbones[key] = load_backbone(
                    spec.kind, spec.name, spec.weights, device=self.device, seed=spec.seed
                )
            except BackboneUnavailable as err:
                if spec.name.startswith("toy-"):
                    raise ModelUnavailable(str(err)) from err
                raise ModelUnavailable(
                    f"{err} Fetch it explicitly with `overfit-bench models fetch {spec.name}`."
                ) from err
        return self._backbones[key]

    def backbone_identity(self, spec: BackboneSpec) -> dict[str, str]:
        return dict(self.backbone(spec).identity())
