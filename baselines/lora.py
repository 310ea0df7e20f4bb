"""DreamBooth with a peft adapter on the UNet's attention projections: one code path for every adapter.

``dreambooth-lora`` (LoRA), ``dora`` (LoRA with weight decomposition), ``lokr`` (low-rank Kronecker
product) and ``oft`` (orthogonal fine-tuning) differ only in the peft config they inject
(:meth:`AdapterMethod.adapter_config`); customization, training, artifacts and the trainable-number count
are shared. Every adapter starts as the identity (the customized model equals the base model before
training), and only the adapter's own tensors are trained and stored.
"""

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


def _skeleton(targets: dict[str, Any]) -> torch.nn.Module:
    """A module tree holding only the targeted linear layers, under their UNet names, with meta weights
    (peft injects into it exactly as into the UNet, without allocating the model)."""
    root = torch.nn.Module()
    for name, m in targets.items():
        parent = root
        *path, leaf = name.split(".")
        for part in path:
            if not hasattr(parent, part):
                parent.add_module(part, torch.nn.Module())
            parent = getattr(parent, part)
        layer = torch.nn.Linear(m.in_features, m.out_features, bias=m.bias is not None, device="meta")
        parent.add_module(leaf, layer)
    return root


class AdapterMethod(Method):
    """A peft adapter (:meth:`adapter_config`) on every targeted UNet linear layer, identifier ``sks``."""

    def adapter_config(self, cfg: dict[str, Any], targets: list[str]) -> Any:
        """The peft config this method injects."""
        raise NotImplementedError

    def slot_text(self, class_noun: str, cfg: dict[str, Any]) -> str:
        return f"{cfg['identifier']} {class_noun}"

    def trainable_shapes(self, pipeline: Any, config: Any = None) -> dict[str, tuple[int, ...]]:
        """The adapter tensors peft creates on ``pipeline``'s UNet: injected into a skeleton of the targeted
        layers (meta tensors, nothing allocated), so the count is peft's own."""
        from peft import inject_adapter_in_model

        cfg = self.resolve_config(config)
        targets = list(cfg["target_modules"])
        skeleton = _skeleton(lora_targets(components_of(pipeline).unet, targets))
        for p in skeleton.parameters():
            p.requires_grad_(False)
        inject_adapter_in_model(self.adapter_config(cfg, targets), skeleton, adapter_name=ADAPTER)
        return {name: tuple(p.shape) for name, p in skeleton.named_parameters() if p.requires_grad}

    def customize(
        self,
        comps: Components,
        cfg: dict[str, Any],
        class_noun: str,
        tensors: dict[str, torch.Tensor] | None,
        *,
        seed: int = 0,
    ) -> Customization:
        unet = copy.deepcopy(comps.unet).requires_grad_(False)
        targets = list(cfg["target_modules"])
        if not lora_targets(unet, targets):
            raise ValueError(f"{self.name}: no UNet linear layer matches target_modules {targets}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            unet.add_adapter(self.adapter_config(cfg, targets), adapter_name=ADAPTER)
        params: dict[str, torch.Tensor] = {}
        for name, p in unet.named_parameters():
            if not p.requires_grad:  # the base model's weights (frozen above); peft's tensors are new
                continue
            p.data = p.data.to(torch.float32)
            if tensors is not None:
                if name not in tensors or tuple(tensors[name].shape) != tuple(p.shape):
                    raise ValueError(f"artifact has no {self.name} tensor {name!r} of shape {tuple(p.shape)}")
                with torch.no_grad():
                    p.copy_(tensors[name].to(p.device))
            p.requires_grad_(tensors is None)
            params[name] = p
        return Customization(self.make_pipeline(comps, cfg, class_noun, unet=unet), params)


class DreamBoothLoRA(AdapterMethod):
    """Rank-r LoRA (A: r×in, B: out×r, B zero-initialised) on every targeted UNet linear layer."""

    name: ClassVar[str] = "dreambooth-lora"
    recipe_file: ClassVar[str] = "dreambooth-lora.yaml"

    def adapter_config(self, cfg: dict[str, Any], targets: list[str]) -> Any:
        from peft import LoraConfig

        return LoraConfig(
            r=int(cfg["rank"]),
            lora_alpha=int(cfg["lora_alpha"]),
            init_lora_weights="gaussian",
            target_modules=targets,
        )


class DoRA(AdapterMethod):
    """LoRA with weight decomposition (Liu et al. 2024): a trained magnitude per output feature and a
    LoRA update of the direction (peft ``LoraConfig(use_dora=True)``)."""

    name: ClassVar[str] = "dora"
    recipe_file: ClassVar[str] = "dora.yaml"

    def adapter_config(self, cfg: dict[str, Any], targets: list[str]) -> Any:
        from peft import LoraConfig

        return LoraConfig(
            r=int(cfg["rank"]),
            lora_alpha=int(cfg["lora_alpha"]),
            init_lora_weights="gaussian",
            target_modules=targets,
            use_dora=True,
        )


class LoKr(AdapterMethod):
    """Low-rank Kronecker-product updates (LyCORIS LoKr; peft ``LoKrConfig``)."""

    name: ClassVar[str] = "lokr"
    recipe_file: ClassVar[str] = "lokr.yaml"

    def adapter_config(self, cfg: dict[str, Any], targets: list[str]) -> Any:
        from peft import LoKrConfig

        return LoKrConfig(
            r=int(cfg["rank"]),
            alpha=int(cfg["alpha"]),
            target_modules=targets,
            decompose_both=bool(cfg["decompose_both"]),
            decompose_factor=int(cfg["decompose_factor"]),
            init_weights=True,
        )


class OFT(AdapterMethod):
    """Orthogonal fine-tuning (Qiu et al. 2023): a block-diagonal orthogonal rotation of each targeted
    layer's input, identity at start (peft ``OFTConfig``)."""

    name: ClassVar[str] = "oft"
    recipe_file: ClassVar[str] = "oft.yaml"

    def adapter_config(self, cfg: dict[str, Any], targets: list[str]) -> Any:
        from peft import OFTConfig

        return OFTConfig(
            r=0,
            oft_block_size=int(cfg["block_size"]),
            target_modules=targets,
            coft=bool(cfg["coft"]),
            eps=float(cfg["eps"]),
            block_share=bool(cfg["block_share"]),
            init_weights=True,
        )
