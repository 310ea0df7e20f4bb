"""``dreambooth-lora``: DreamBooth with LoRA adapters (peft) on the UNet's attention projections."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import torch

from baselines.method import Customization, Method
from baselines.models import Components, components_of

ADAPTER = "default"


def lora_targets(unet: Any, targets: list[str]) -> dict[str, Any]:
    """The ``nn.Linear`` modules whose names equal or end with ``.<target>`` (peft's matching rule)."""
    return {
        name: m
        for name, m in unet.named_modules()
        if isinstance(m, torch.nn.Linear) and any(name == t or name.endswith(f".{t}") for t in targets)
    }


class DreamBoothLoRA(Method):
    """Rank-r LoRA (A: r×in, B: out×r, B zero-initialised) on every targeted UNet linear layer."""

    name: ClassVar[str] = "dreambooth-lora"
    recipe_file: ClassVar[str] = "dreambooth-lora.yaml"

    def slot_text(self, class_noun: str, cfg: dict[str, Any]) -> str:
        return f"{cfg['identifier']} {class_noun}"

    def trainable_shapes(self, pipeline: Any, config: Any = None) -> dict[str, tuple[int, ...]]:
        cfg = self.resolve_config(config)
        rank = int(cfg["rank"])
        shapes: dict[str, tuple[int, ...]] = {}
        for name, m in lora_targets(components_of(pipeline).unet, list(cfg["target_modules"])).items():
            shapes[f"{name}.lora_A.{ADAPTER}.weight"] = (rank, int(m.in_features))
            shapes[f"{name}.lora_B.{ADAPTER}.weight"] = (int(m.out_features), rank)
        return shapes

    def customize(
        self,
        comps: Components,
        cfg: dict[str, Any],
        class_noun: str,
        tensors: dict[str, torch.Tensor] | None,
        *,
        seed: int = 0,
    ) -> Customization:
        from peft import LoraConfig

        unet = copy.deepcopy(comps.unet).requires_grad_(False)
        targets = list(cfg["target_modules"])
        if not lora_targets(unet, targets):
            raise ValueError(f"dreambooth-lora: no UNet linear layer matches target_modules {targets}")
        lora = LoraConfig(
            r=int(cfg["rank"]),
            lora_alpha=int(cfg["lora_alpha"]),
            init_lora_weights="gaussian",
            target_modules=targets,
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            unet.add_adapter(lora, adapter_name=ADAPTER)
        params: dict[str, torch.Tensor] = {}
        for name, p in unet.named_parameters():
            if ".lora_" not in name:
                p.requires_grad_(False)
                continue
            p.data = p.data.to(torch.float32)
            if tensors is not None:
                if name not in tensors or tuple(tensors[name].shape) != tuple(p.shape):
                    raise ValueError(f"artifact has no LoRA tensor {name!r} of shape {tuple(p.shape)}")
                with torch.no_grad():
                    p.copy_(tensors[name].to(p.device))
            p.requires_grad_(tensors is None)
            params[name] = p
        return Customization(self.make_pipeline(comps, cfg, class_noun, unet=unet), params)
