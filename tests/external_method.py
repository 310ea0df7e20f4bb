"""An outside method for tests: it uses only the public interface (no subclassing of baselines.Method).

``PrefixMethod`` renders ``{concept}`` as ``"<prefix> <class>"`` and "trains" one number: the mean pixel
value of the concept photos, stored in its artifact. Loading gives a :class:`CustomizedPipeline` over the
unchanged base model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from baselines.artifact import Artifact
from baselines.pipeline import CustomizedPipeline
from baselines.prompts import render_template
from benchmark.io import open_rgb


class PrefixMethod:
    name = "tests.external_method:PrefixMethod"
    version = "0"
    prefix = "shiny"

    def render(self, template: str, concept: Any) -> str:
        noun = concept if isinstance(concept, str) else concept.class_noun
        return render_template(template, f"{self.prefix} {noun}", noun)

    def fit(self, concept: Any, pipeline: Any, config: Any, *, seed: int, progress: bool = True) -> Artifact:
        means = [np.asarray(open_rgb(p), dtype=np.float64).mean() for p in concept.images]
        tensors = {"mean_pixel": torch.tensor([float(np.mean(means))])}
        meta = {"class_noun": concept.class_noun, "seed": seed, "config": dict(config or {})}
        return Artifact(method=self.name, tensors=tensors, meta=meta)

    def load(self, artifact: Artifact, pipeline: Any) -> CustomizedPipeline:
        noun = artifact.meta["class_noun"]
        return CustomizedPipeline(pipeline, method=self.name, slot=f"{self.prefix} {noun}", class_noun=noun)


class BaseModelMethod(PrefixMethod):
    """An outside method that does not learn: it renders ``{concept}`` as the bare class noun and loads the
    unchanged base model, so its images are the base model's own."""

    name = "tests.external_method:BaseModelMethod"

    def render(self, template: str, concept: Any) -> str:
        noun = concept if isinstance(concept, str) else concept.class_noun
        return render_template(template, noun, noun)

    def load(self, artifact: Artifact, pipeline: Any) -> CustomizedPipeline:
        noun = artifact.meta["class_noun"]
        return CustomizedPipeline(pipeline, method=self.name, slot=noun, class_noun=noun)
