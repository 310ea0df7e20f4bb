"""``custom-diffusion``: trained cross-attention key/value projections (as an attention processor)
plus a modifier token; ``{concept}`` renders as ``<new1> {class}``."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from baselines.method import Customization, Method, take
from baselines.models import Components, components_of
from baselines.pipeline import UNetRunner
from baselines.processors import AttentionState, ConceptAttnProcessor, cross_attention_layers
from baselines.prompts import PromptEncoder
from baselines.textual_inversion import mean_token_embedding


class CustomDiffusion(Method):
    """K/V weights of every cross-attention layer (initialised from the base) and the modifier token's
    embedding are trained; the processor applies the new K/V to every prompt."""

    name: ClassVar[str] = "custom-diffusion"
    recipe_file: ClassVar[str] = "custom-diffusion.yaml"

    def slot_text(self, class_noun: str, cfg: dict[str, Any]) -> str:
        return f"{cfg['modifier_token']} {class_noun}"

    def trainable_shapes(self, pipeline: Any, config: Any = None) -> dict[str, tuple[int, ...]]:
        cfg = self.resolve_config(config)
        comps = components_of(pipeline)
        shapes: dict[str, tuple[int, ...]] = {}
        for name, attn in cross_attention_layers(comps.unet).items():
            shapes[f"to_k.{name}"] = tuple(attn.to_k.weight.shape)
            shapes[f"to_v.{name}"] = tuple(attn.to_v.weight.shape)
        dim = int(comps.text_encoder.get_input_embeddings().embedding_dim)
        shapes[f"token.{cfg['modifier_token']}"] = (dim,)
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
        state = AttentionState()
        params: dict[str, torch.Tensor] = {}
        processors: dict[str, ConceptAttnProcessor] = {}
        for name, attn in cross_attention_layers(comps.unet).items():
            k = take(tensors, f"to_k.{name}", attn.to_k.weight, attn.to_k.weight.device)
            v = take(tensors, f"to_v.{name}", attn.to_v.weight, attn.to_v.weight.device)
            params[f"to_k.{name}"], params[f"to_v.{name}"] = k, v
            processors[name] = ConceptAttnProcessor(
                name, state, key_weight=k, value_weight=v, detach_first_token=bool(cfg["detach_first_token"])
            )
        token = str(cfg["modifier_token"])
        init = mean_token_embedding(comps, str(cfg["initializer_token"]))
        vec = take(tensors, f"token.{token}", init, init.device)
        params[f"token.{token}"] = vec
        encoder = PromptEncoder(comps.tokenizer, comps.text_encoder, extra_tokens={token: vec})
        runner = UNetRunner(processors, state)
        pipe = self.make_pipeline(comps, cfg, class_noun, prompt_encoder=encoder, runner=runner)
        return Customization(pipe, params)
