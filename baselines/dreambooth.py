"""``dreambooth``: full UNet fine-tuning with a rare identifier (``sks {class}``), optional prior
preservation with base-generated class images (budget ``prior``)."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import torch

from baselines.method import Customization, Method, take
from baselines.models import Components, components_of


class DreamBooth(Method):
    """Trains every UNet parameter; the text encoder stays frozen (the recipe's default)."""

    name: ClassVar[str] = "dreambooth"
    recipe_file: ClassVar[str] = "dreambooth.yaml"

    def slot_text(self, class_noun: str, cfg: dict[str, Any]) -> str:
        return f"{cfg['identifier']} {class_noun}"

    def trainable_shapes(self, pipeline: Any, config: Any = None) -> dict[str, tuple[int, ...]]:
        unet = components_of(pipeline).unet
        return {name: tuple(p.shape) for name, p in unet.named_parameters()}

    def customize(
        self,
        comps: Components,
        cfg: dict[str, Any],
        class_noun: str,
        tensors: dict[str, torch.Tensor] | None,
        *,
        seed: int = 0,
    ) -> Customization:
        unet = copy.deepcopy(comps.unet)
        if unet.dtype != torch.float32:
            unet.to(torch.float32)
        params: dict[str, torch.Tensor] = {}
        for name, p in unet.named_parameters():
            if tensors is not None:
                with torch.no_grad():
                    p.copy_(take(tensors, name, p, p.device))
            p.requires_grad_(tensors is None)
            params[name] = p
        return Customization(self.make_pipeline(comps, cfg, class_noun, unet=unet), params)
