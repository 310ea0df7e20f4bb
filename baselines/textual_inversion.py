"""``textual-inversion``: one new token embedding; UNet and text encoder frozen and shared."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from baselines.method import Customization, Method, take
from baselines.models import Components, components_of
from baselines.prompts import PromptEncoder


def mean_token_embedding(comps: Components, text: str) -> torch.Tensor:
    """Mean input embedding of ``text``'s sub-tokens (initialisation of new tokens).

    Raises:
        ValueError: ``text`` tokenizes to nothing.
    """
    ids = list(comps.tokenizer(text, add_special_tokens=False)["input_ids"])
    if not ids:
        raise ValueError(f"initializer text {text!r} has no tokens")
    weight = comps.text_encoder.get_input_embeddings().weight
    return weight[torch.tensor(ids, device=weight.device)].detach().float().mean(0)


class TextualInversion(Method):
    """``{concept}`` renders as the placeholder token (``<v1>``), whose embedding is the only trained tensor."""

    name: ClassVar[str] = "textual-inversion"
    recipe_file: ClassVar[str] = "textual-inversion.yaml"

    def slot_text(self, class_noun: str, cfg: dict[str, Any]) -> str:
        return str(cfg["placeholder"])

    def trainable_shapes(self, pipeline: Any, config: Any = None) -> dict[str, tuple[int, ...]]:
        cfg = self.resolve_config(config)
        dim = int(components_of(pipeline).text_encoder.get_input_embeddings().embedding_dim)
        return {f"token.{cfg['placeholder']}": (dim,)}

    def customize(
        self,
        comps: Components,
        cfg: dict[str, Any],
        class_noun: str,
        tensors: dict[str, torch.Tensor] | None,
        *,
        seed: int = 0,
    ) -> Customization:
        token = str(cfg["placeholder"])
        init = mean_token_embedding(comps, class_noun)
        vec = take(tensors, f"token.{token}", init, init.device)
        encoder = PromptEncoder(comps.tokenizer, comps.text_encoder, extra_tokens={token: vec})
        pipe = self.make_pipeline(comps, cfg, class_noun, prompt_encoder=encoder)
        return Customization(pipe, {f"token.{token}": vec})
