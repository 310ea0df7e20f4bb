"""``base``: the un-customized model (reference rows; LFD = 0 by definition)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from baselines.method import Customization, Method
from baselines.models import Components


class BaseMethod(Method):
    """No customization: ``fit`` trains nothing and ``{concept}`` renders as the bare class noun."""

    name: ClassVar[str] = "base"
    recipe_file: ClassVar[str] = "base.yaml"
    trains: ClassVar[bool] = False

    def customize(
        self,
        comps: Components,
        cfg: dict[str, Any],
        class_noun: str,
        tensors: dict[str, torch.Tensor] | None,
        *,
        seed: int = 0,
    ) -> Customization:
        return Customization(self.make_pipeline(comps, cfg, class_noun))

    def trainable_shapes(self, pipeline: Any, config: Any = None) -> dict[str, tuple[int, ...]]:
        return {}
