"""Infusion (Zeng et al., 2024): one residual vector per cross-attention layer, added at the concept
word's token positions, as diffusers attention processors.

Three variants (SPEC §4; REFERENCES Part 1 §3.4):

- ``infusion`` — the paper's design: value residual r_l at every sub-token of the marked class word;
  the attention probabilities come from the **base model's stream**. Each marked row gets a base
  partner row in the same UNet batch; at every cross-attention layer the customized row attends with
  its partner's queries (keys are the original keys), so its output is
  A_base · (V + e_j r_lᵀ) = A_base V + A_base[:, j] r_lᵀ.
- ``infusion-single`` — the same residuals with the customized stream's own queries and the original
  keys: A V + A[:, j] r_lᵀ.
- ``infusion-kv`` — what the released code trains (xformers path): key and value residuals, single
  stream: softmax(Q (K + e_j r_kᵀ)ᵀ/√d) (V + e_j r_vᵀ).
- ``infusion-released`` — ``infusion-kv`` trained the same way, with the released inference routing: the
  residuals act on every occurrence of the class word, marked or not, so a bare "a heart" is drawn as the
  concept (class-prior drift by design, which ``lfd_class`` measures). The other variants route by marks
  only: a bare class word runs exactly like the base model.

The ``{concept}`` slot renders as the real class word wrapped in concept marks (``⟦dog⟧``); rows
without marks — unconditional branch, non-customized prompts, bare class prompts — never receive a
residual and, with the dual stream, need no partner row (they run exactly like the base model).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from baselines.method import Customization, Method, take
from baselines.models import Components, components_of
from baselines.pipeline import UNetRunner
from baselines.processors import AttentionState, ConceptAttnProcessor, cross_attention_layers
from baselines.prompts import EncodedPrompts, mark


class DualStreamRunner(UNetRunner):
    """Appends a base-stream partner row for every marked row and points the marked row's queries at
    it. Partner rows carry no residual, so they compute the base model exactly."""

    def prepare(
        self, z_t: torch.Tensor, t: torch.Tensor, cond: EncodedPrompts
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mask = cond.concept_mask
        if mask is None:
            self.state.token_mask = None
            self.state.query_source = None
            return z_t, t, cond.embeddings
        marked = mask.any(dim=1).nonzero().flatten()
        n, k = z_t.shape[0], int(marked.numel())
        source = torch.arange(n + k, device=z_t.device)
        source[marked] = torch.arange(n, n + k, device=z_t.device)
        self.state.token_mask = torch.cat([mask, torch.zeros_like(mask[marked])]).float()
        self.state.query_source = source
        return (
            torch.cat([z_t, z_t[marked]]),
            torch.cat([t, t[marked]]),
            torch.cat([cond.embeddings, cond.embeddings[marked]]),
        )


class SingleStreamRunner(UNetRunner):
    """Residuals at marked positions; every row attends with its own queries."""

    def prepare(
        self, z_t: torch.Tensor, t: torch.Tensor, cond: EncodedPrompts
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        self.state.token_mask = cond.concept_mask.float() if cond.concept_mask is not None else None
        self.state.query_source = None
        return z_t, t, cond.embeddings


class Infusion(Method):
    """``infusion``: value residuals, base-stream attention probabilities (dual stream)."""

    name: ClassVar[str] = "infusion"
    summary: ClassVar[str] = (
        "Infusion (paper design): value residual per cross-attention layer at the concept's sub-tokens; "
        "attention probabilities from the base model's stream (dual stream)."
    )
    recipe_file: ClassVar[str] = "infusion.yaml"
    key_residuals: ClassVar[bool] = False
    dual_stream: ClassVar[bool] = True
    route_class_word: ClassVar[bool] = False  # the released inference routing (InfusionReleased)

    def slot_text(self, class_noun: str, cfg: dict[str, Any]) -> str:
        return mark(class_noun)

    def trainable_shapes(self, pipeline: Any, config: Any = None) -> dict[str, tuple[int, ...]]:
        shapes: dict[str, tuple[int, ...]] = {}
        for name, attn in cross_attention_layers(components_of(pipeline).unet).items():
            shapes[f"value.{name}"] = (int(attn.to_v.out_features),)
            if self.key_residuals:
                shapes[f"key.{name}"] = (int(attn.to_k.out_features),)
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
        device = comps.device
        for name, attn in cross_attention_layers(comps.unet).items():
            v = take(tensors, f"value.{name}", torch.zeros(attn.to_v.out_features), device)
            params[f"value.{name}"] = v
            k = None
            if self.key_residuals:
                k = take(tensors, f"key.{name}", torch.zeros(attn.to_k.out_features), device)
                params[f"key.{name}"] = k
            processors[name] = ConceptAttnProcessor(name, state, key_residual=k, value_residual=v)
        runner_cls = DualStreamRunner if self.dual_stream else SingleStreamRunner
        pipe = self.make_pipeline(
            comps,
            cfg,
            class_noun,
            runner=runner_cls(processors, state),
            route_class_word=self.route_class_word,
        )
        return Customization(pipe, params)


class InfusionSingle(Infusion):
    """``infusion-single``: value residuals, own queries with the original keys (one stream)."""

    name: ClassVar[str] = "infusion-single"
    summary: ClassVar[str] = (
        "Infusion ablation: the same value residuals, single stream (own queries, original keys)."
    )
    dual_stream: ClassVar[bool] = False


class InfusionKV(Infusion):
    """``infusion-kv``: key and value residuals, one stream (the released code's xformers path)."""

    name: ClassVar[str] = "infusion-kv"
    summary: ClassVar[str] = (
        "Infusion as released (xformers path): key and value residuals at the concept's sub-tokens, single stream."
    )
    key_residuals: ClassVar[bool] = True
    dual_stream: ClassVar[bool] = False


class InfusionReleased(InfusionKV):
    """``infusion-released``: ``infusion-kv`` with the released routing (every occurrence of the class word)."""

    name: ClassVar[str] = "infusion-released"
    summary: ClassVar[str] = (
        "Infusion as released, inference included: key and value residuals (single stream) added wherever the "
        "class word appears, marked or not, so every bare class word is drawn as the concept."
    )
    route_class_word: ClassVar[bool] = True
    tuned_as: ClassVar[str] = "infusion-kv"  # trains exactly as infusion-kv: its budget and tuned overrides
