"""Prompt templates, concept marks, and text encoding.

A suite prompt is a template with a ``{concept}`` slot (and optionally ``{class}``, the bare class noun).
Each method renders the slot its own way. Infusion renders it as the class word wrapped in marks
(``⟦dog⟧``); the marks are stripped before tokenization and the positions of *all* BPE sub-tokens of
the marked text are found from token ids (never from word indices, which break on multi-token words).
"""

from __future__ import annotations

import contextlib
import copy
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

MARK_OPEN = "⟦"
MARK_CLOSE = "⟧"
CONCEPT_SLOT = "{concept}"
CLASS_SLOT = "{class}"


def mark(text: str) -> str:
    """``text`` wrapped in concept marks."""
    return f"{MARK_OPEN}{text}{MARK_CLOSE}"


def render_template(template: str, slot: str, class_noun: str | None = None) -> str:
    """Fill ``{concept}`` with ``slot`` and ``{class}`` with ``class_noun`` (every occurrence).

    Raises:
        ValueError: the template has ``{class}`` but no class noun is given.
    """
    if not isinstance(template, str):
        raise ValueError(f"a prompt template must be a string, got {type(template).__name__}")
    out = template.replace(CONCEPT_SLOT, slot)
    if CLASS_SLOT in out:
        if not class_noun:
            raise ValueError(f"template {template!r} has a {CLASS_SLOT} slot but no class noun was given")
        out = out.replace(CLASS_SLOT, class_noun)
    return out


def parse_marks(prompt: str) -> tuple[str, list[tuple[int, int]]]:
    """Strip concept marks.

    Returns:
        (clean prompt, list of (start, end) character spans of the marked text in the clean prompt).

    Raises:
        ValueError: unbalanced, nested or empty marks.
    """
    clean: list[str] = []
    spans: list[tuple[int, int]] = []
    start: int | None = None
    pos = 0
    for ch in prompt:
        if ch == MARK_OPEN:
            if start is not None:
                raise ValueError(f"nested concept mark in prompt {prompt!r}")
            start = pos
        elif ch == MARK_CLOSE:
            if start is None:
                raise ValueError(f"concept mark closed without being opened in prompt {prompt!r}")
            if pos == start:
                raise ValueError(f"empty concept mark in prompt {prompt!r}")
            spans.append((start, pos))
            start = None
        else:
            clean.append(ch)
            pos += 1
    if start is not None:
        raise ValueError(f"concept mark opened but not closed in prompt {prompt!r}")
    return "".join(clean), spans


def strip_marks(prompt: str) -> str:
    """The prompt without concept marks."""
    return parse_marks(prompt)[0]


def mark_word(prompt: str, word: str) -> str:
    """Mark every whole-word occurrence of ``word`` (case-insensitive) in a plain prompt.

    Raises:
        ValueError: ``word`` does not occur in ``prompt`` as a whole word.
    """
    pattern = re.compile(rf"(?<![\w]){re.escape(word)}(?![\w])", re.IGNORECASE)
    if not pattern.search(prompt):
        raise ValueError(f"concept word {word!r} not found in prompt {prompt!r}")
    return pattern.sub(lambda m: mark(m.group(0)), prompt)


def route_class_word(prompt: str, word: str) -> str:
    """``prompt`` with every whole-word occurrence of ``word`` marked when it has no marks yet (a prompt
    that already marks its concept, or lacks the word, is returned as is)."""
    if MARK_OPEN in prompt:
        return prompt
    try:
        return mark_word(prompt, word)
    except ValueError:
        return prompt


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def concept_token_positions(tokenizer: Any, clean: str, spans: Sequence[tuple[int, int]]) -> list[int]:
    """Token positions (BOS = position 0) of every sub-token of every marked span.

    A span's tokens are located by counting the tokens of the text before it and checking that the ids
    at that position in the full prompt equal the ids of the span tokenized alone.

    Raises:
        ValueError: a mark that does not cover whole tokens (e.g. ``⟦dog⟧s``).
    """
    if not spans:
        return []
    full = _ids(tokenizer, clean)
    positions: list[int] = []
    for start, end in spans:
        word = clean[start:end]
        word_ids = _ids(tokenizer, word)
        first = len(_ids(tokenizer, clean[:start]))
        if not word_ids or full[first : first + len(word_ids)] != word_ids:
            raise ValueError(
                f"the marked text {word!r} in {clean!r} does not tokenize to whole tokens "
                "(a concept mark must cover whole words)"
            )
        positions.extend(range(1 + first, 1 + first + len(word_ids)))
    return positions


@dataclass
class EncodedPrompts:
    """Text conditioning for a batch: ``embeddings`` [B, L, D] and ``concept_mask`` [B, L] (bool) or
    ``None`` when no row has a marked concept."""

    embeddings: torch.Tensor
    concept_mask: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])

    @staticmethod
    def cat(parts: Sequence[EncodedPrompts]) -> EncodedPrompts:
        emb = torch.cat([p.embeddings for p in parts])
        if all(p.concept_mask is None for p in parts):
            return EncodedPrompts(emb)
        masks = [
            p.concept_mask
            if p.concept_mask is not None
            else torch.zeros(p.embeddings.shape[:2], dtype=torch.bool, device=emb.device)
            for p in parts
        ]
        return EncodedPrompts(emb, torch.cat(masks))


@contextlib.contextmanager
def injected_embeddings(text_encoder: Any, vectors: torch.Tensor, first_id: int) -> Iterator[None]:
    """Within the block, token ids ``first_id + i`` embed as ``vectors[i]`` (differentiable).

    Implemented as hooks on the text encoder's input embedding, so the base encoder is shared and
    unchanged outside the block.
    """
    embedding = text_encoder.get_input_embeddings()
    captured: dict[str, torch.Tensor] = {}

    def pre_hook(_module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
        ids = args[0]
        extra = ids >= first_id
        captured["extra"] = extra
        captured["index"] = (ids - first_id).clamp(min=0)
        return (ids.masked_fill(extra, 0), *args[1:])

    def hook(_module: Any, _args: Any, output: torch.Tensor) -> torch.Tensor:
        extra = captured["extra"]
        if not bool(extra.any()):
            return output
        rows = vectors.to(output.dtype)[captured["index"]]
        return torch.where(extra.unsqueeze(-1), rows, output)

    handles = [embedding.register_forward_pre_hook(pre_hook), embedding.register_forward_hook(hook)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


class PromptEncoder:
    """Tokenizes and encodes prompts, one unique prompt at a time (so a prompt's encoding never depends
    on the rest of the batch), with optional extra tokens and concept marks.

    Args:
        tokenizer: a CLIP tokenizer (copied if extra tokens are added; the original is not touched).
        text_encoder: a CLIP text model (shared, never modified).
        extra_tokens: new token strings and their embedding vectors (e.g. ``{"<v1>": param}``).
        truncate: cut prompts longer than the context instead of raising; ``truncations`` counts them.
    """

    def __init__(
        self,
        tokenizer: Any,
        text_encoder: Any,
        *,
        extra_tokens: Mapping[str, torch.Tensor] | None = None,
        truncate: bool = False,
    ) -> None:
        self.text_encoder = text_encoder
        self.truncate = truncate
        self.truncations = 0
        self.max_length = int(tokenizer.model_max_length)
        positions = int(getattr(text_encoder.config, "max_position_embeddings", self.max_length))
        if self.max_length > positions:
            raise ValueError(
                f"tokenizer model_max_length {self.max_length} exceeds the text encoder's {positions} positions"
            )
        self.extra_names = list(extra_tokens or {})
        self.extra_vectors = list((extra_tokens or {}).values())
        self.first_extra_id = int(text_encoder.get_input_embeddings().num_embeddings)
        if self.extra_names:
            tokenizer = copy.deepcopy(tokenizer)
            clashes = [t for t in self.extra_names if t in tokenizer.get_vocab()]
            if clashes:
                raise ValueError(f"extra tokens {clashes} already exist in the tokenizer's vocabulary")
            tokenizer.add_tokens(self.extra_names)
            ids = tokenizer.convert_tokens_to_ids(self.extra_names)
            expected = list(range(self.first_extra_id, self.first_extra_id + len(self.extra_names)))
            if list(ids) != expected:
                raise ValueError(
                    f"extra tokens got ids {ids}, expected {expected} (tokenizer/text encoder mismatch)"
                )
        self.tokenizer = tokenizer
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def tokenize(self, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids [L] and concept mask [L] (bool) of one (possibly marked) prompt.

        Raises:
            ValueError: the prompt is longer than the context (unless ``truncate``), or a marked concept
                falls outside it, or the marks are malformed.
        """
        clean, spans = parse_marks(prompt)
        ids = list(self.tokenizer(clean, add_special_tokens=True)["input_ids"])
        if len(ids) > self.max_length:
            if not self.truncate:
                raise ValueError(
                    f"prompt {clean!r} has {len(ids)} tokens but the text encoder takes {self.max_length} "
                    "(pass truncate=True to cut it)"
                )
            self.truncations += 1
            ids = [*ids[: self.max_length - 1], ids[-1]]
        pad = self.tokenizer.pad_token_id
        ids = ids + [pad] * (self.max_length - len(ids))
        mask = torch.zeros(self.max_length, dtype=torch.bool)
        for pos in concept_token_positions(self.tokenizer, clean, spans):
            if pos >= self.max_length - 1:
                raise ValueError(
                    f"the marked concept in {clean!r} lies beyond the {self.max_length}-token context"
                )
            mask[pos] = True
        return torch.tensor(ids, dtype=torch.long), mask

    def _frozen(self) -> bool:
        if any(v.requires_grad for v in self.extra_vectors):
            return False
        return not any(p.requires_grad for p in self.text_encoder.parameters())

    def _encode_one(self, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = self.tokenize(prompt)
        device = self.text_encoder.device
        ids = ids.to(device)
        if self.extra_vectors:
            with injected_embeddings(self.text_encoder, torch.stack(self.extra_vectors), self.first_extra_id):
                emb = self.text_encoder(ids[None])[0][0]
        else:
            emb = self.text_encoder(ids[None])[0][0]
        return emb, mask.to(device)

    def encode(self, prompts: Sequence[str]) -> EncodedPrompts:
        """Encode a batch of prompts (marks allowed).

        Returns:
            :class:`EncodedPrompts`; ``concept_mask`` is ``None`` when no prompt has a mark.
        """
        if isinstance(prompts, str):
            raise ValueError("prompts must be a list of strings, not a single string")
        frozen = self._frozen()
        rows: list[torch.Tensor] = []
        masks: list[torch.Tensor] = []
        for p in prompts:
            hit = self._cache.get(p) if frozen else None
            if hit is None:
                hit = self._encode_one(p)
                if frozen and len(self._cache) < 4096:
                    self._cache[p] = (hit[0].detach(), hit[1])
            rows.append(hit[0])
            masks.append(hit[1])
        emb = torch.stack(rows)
        mask = torch.stack(masks)
        return EncodedPrompts(emb, mask if bool(mask.any()) else None)
