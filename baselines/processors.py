"""Cross-attention processors for concept methods (diffusers ``Attention`` processors, no UNet fork).

:class:`ConceptAttnProcessor` is one processor for Infusion's three variants and Custom Diffusion:

- optional replacement key/value projection weights (Custom Diffusion's trained K/V),
- optional key/value residual vectors added at the concept token positions of marked rows (Infusion),
- optional query redirection: row i attends with the queries of row ``query_source[i]`` (Infusion's
  dual stream, where a customized row uses its base-stream partner's attention probabilities),
- optional recording of the attention probabilities actually used (tests, analysis).

Processors are plain callables, not modules, so installing them never adds parameters to the UNet;
the trained tensors live in the method's own parameter dict. Per-call inputs (token masks, query
sources) come from a shared :class:`AttentionState` that the pipeline sets before each UNet call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F


@dataclass
class AttentionState:
    """Per-UNet-call inputs shared by a pipeline's processors.

    ``token_mask``: [rows, L] float, 1 at concept token positions of rows that carry residuals.
    ``query_source``: [rows] long; row i uses the queries of row ``query_source[i]`` (dual stream).
    ``recorder``: when a dict, each processor appends the attention probabilities it used
    ([rows, heads, queries, L]) under its layer name.
    """

    token_mask: torch.Tensor | None = None
    query_source: torch.Tensor | None = None
    recorder: dict[str, list[torch.Tensor]] | None = field(default=None, repr=False)

    def clear(self) -> None:
        self.token_mask = None
        self.query_source = None


def cross_attention_layers(unet: Any) -> dict[str, Any]:
    """The UNet's cross-attention modules (``…attn2`` in SD) by module name, in module order."""
    from diffusers.models.attention_processor import Attention

    return {
        name: module
        for name, module in unet.named_modules()
        if isinstance(module, Attention) and bool(getattr(module, "is_cross_attention", False))
    }


class ConceptAttnProcessor:
    """Cross-attention with optional replacement K/V weights, concept-token residuals, query
    redirection and recording (see module docstring). With none of them active it computes exactly
    what diffusers' ``AttnProcessor2_0`` computes."""

    def __init__(
        self,
        name: str,
        state: AttentionState,
        *,
        key_weight: torch.Tensor | None = None,
        value_weight: torch.Tensor | None = None,
        key_residual: torch.Tensor | None = None,
        value_residual: torch.Tensor | None = None,
        detach_first_token: bool = False,
    ) -> None:
        self.name = name
        self.state = state
        self.key_weight = key_weight
        self.value_weight = value_weight
        self.key_residual = key_residual
        self.value_residual = value_residual
        self.detach_first_token = detach_first_token

    def _project(self, attn: Any, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.key_weight is None:
            key = attn.to_k(context)
        else:
            key = F.linear(context, self.key_weight.to(context.dtype), attn.to_k.bias)
        if self.value_weight is None:
            value = attn.to_v(context)
        else:
            value = F.linear(context, self.value_weight.to(context.dtype), attn.to_v.bias)
        if self.detach_first_token and torch.is_grad_enabled():
            # Custom Diffusion: no gradient through the start token's key/value (numerically an identity).
            keep = torch.ones_like(key)
            keep[:, :1] = 0.0
            key = keep * key + (1 - keep) * key.detach()
            value = keep * value + (1 - keep) * value.detach()
        mask = self.state.token_mask
        if mask is not None:
            m = mask.to(value.dtype).unsqueeze(-1)
            if self.value_residual is not None:
                value = value + m * self.value_residual.to(value.dtype)
            if self.key_residual is not None:
                key = key + m * self.key_residual.to(key.dtype)
        return key, value

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> torch.Tensor:
        if encoder_hidden_states is None:
            raise ValueError(f"{self.name}: ConceptAttnProcessor is for cross-attention layers only")
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channel, height * width).transpose(1, 2)
        batch, seq_len, _ = encoder_hidden_states.shape
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, seq_len, batch)
            attention_mask = attention_mask.view(batch, attn.heads, -1, attention_mask.shape[-1])
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        query = attn.to_q(hidden_states)
        context = encoder_hidden_states
        if attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        key, value = self._project(attn, context)
        if self.state.query_source is not None:
            query = query[self.state.query_source]

        inner_dim = key.shape[-1]
        head_dim = inner_dim // attn.heads
        query = query.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
        key = key.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
        value = value.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)

        if self.state.recorder is not None:
            scores = (query @ key.transpose(-1, -2)) * attn.scale
            if attention_mask is not None:
                scores = scores + attention_mask
            probs = scores.softmax(dim=-1)
            self.state.recorder.setdefault(self.name, []).append(probs.detach().to("cpu", torch.float32))
            hidden_states = probs @ value
        else:
            hidden_states = F.scaled_dot_product_attention(
                query, key, value, attn_mask=attention_mask, dropout_p=0.0, is_causal=False
            )
        hidden_states = hidden_states.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim)
        hidden_states = hidden_states.to(query.dtype)
        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def processor_key(module_name: str) -> str:
    """The key of a module's processor in ``unet.attn_processors``."""
    return f"{module_name}.processor"


@contextlib.contextmanager
def use_processors(unet: Any, processors: Mapping[str, Any]) -> Iterator[None]:
    """Install ``processors`` ({module name: processor}) on ``unet`` for the block, then restore.

    Reentrant: if they are already installed, the block runs without reinstalling or restoring, so a
    whole training run (including gradient-checkpoint recomputation in backward) can hold them.
    """
    if not processors:
        yield
        return
    current = unet.attn_processors
    wanted = {processor_key(k): v for k, v in processors.items()}
    missing = [k for k in wanted if k not in current]
    if missing:
        raise ValueError(f"the UNet has no attention layers {missing[:3]}")
    if all(current[k] is v for k, v in wanted.items()):
        yield
        return
    merged = dict(current)
    merged.update(wanted)
    unet.set_attn_processor(merged)
    try:
        yield
    finally:
        unet.set_attn_processor(current)


def recording_processors(unet: Any, state: AttentionState) -> dict[str, ConceptAttnProcessor]:
    """Plain (no residual) recording processors for every cross-attention layer of ``unet``."""
    return {name: ConceptAttnProcessor(name, state) for name in cross_attention_layers(unet)}
