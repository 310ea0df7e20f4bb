"""Feature backbones for the toy suite's CLIP-T / CLIP-I / DINO slots, built from the ground-truth oracle.

The toy world has no pretrained CLIP or DINO, but it has an oracle (:mod:`benchmark.toy.oracle`) that
reads every attribute of an image. Two backbones are built on it and loaded through
:func:`metrics.backbones.load_backbone` like any other:

- ``toy-clip`` (kind ``"clip"``) embeds images and captions in one *attribute space*: per head (in
  :data:`~benchmark.toy.oracle.HEADS` order: shape, colour, background, position, pattern) a block
  as long as the head's vocabulary, 8 + 8 + 8 + 5 + 7 = 36 dimensions in all. An image's blocks are
  the oracle's softmax probabilities; a caption's block is the one-hot of the attribute it names, or
  zeros when it names none of that head. The cosine of an image with a caption naming ``k`` heads is
  ``sum_h p_h[a_h] / (sqrt(k) * ||p||)``: high when the image shows exactly what the caption asks for.
- ``toy-dino`` (kind ``"dino"``) is the oracle's penultimate layer (trunk + neck, ``hidden`` dims).

Both preprocess a PIL image exactly as the oracle reads it (:func:`~benchmark.toy.oracle.to_tensor`).
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmark.io import sha256_file
from benchmark.toy.oracle import CHECKPOINT, HEADS, Oracle, OracleConfig, load_oracle, to_tensor
from benchmark.toy.world import PATTERNS
from metrics.backbones import Backbone, BackboneUnavailable

TOY_BACKBONES: dict[str, str] = {"toy-clip": "clip", "toy-dino": "dino"}
CONTEXT_LENGTH = 77
EMBED_DIM = sum(len(v) for v in HEADS.values())  # toy-clip's embedding size (36)
_UNNAMED = -1


def attribute_phrases() -> dict[str, tuple[str, int]]:
    """Every phrase a caption can use, mapped to ``(head, attribute index)``.

    Shapes, colours, backgrounds and positions are said by their names; patterns as in
    :data:`benchmark.toy.world.PATTERNS` (``"with diagonal stripes"``). The ``"none"`` pattern has no
    phrase: a caption that says no pattern leaves the pattern head unnamed.

    Raises:
        ValueError: a phrase belongs to two heads (the world's vocabulary would be ambiguous).
    """
    return dict(_phrases())


@functools.lru_cache(maxsize=1)
def _phrases() -> tuple[tuple[str, tuple[str, int]], ...]:
    table: dict[str, tuple[str, int]] = {}
    for head, values in HEADS.items():
        for i, value in enumerate(values):
            if head == "pattern":
                if value not in PATTERNS:
                    continue  # "none"
                phrase = PATTERNS[value]
            else:
                phrase = value
            phrase = " ".join(phrase.lower().split())
            if phrase in table:
                raise ValueError(f"toy vocabulary: {phrase!r} names both {table[phrase][0]} and {head}")
            table[phrase] = (head, i)
    return tuple(table.items())


@functools.lru_cache(maxsize=1)
def _pattern() -> re.Pattern[str]:
    # Longest phrase first, so "with diagonal stripes" wins over anything it starts with.
    phrases = sorted((p for p, _ in _phrases()), key=lambda p: (-len(p), p))
    alternatives = "|".join(r"\s+".join(map(re.escape, p.split())) for p in phrases)
    return re.compile(rf"(?<![a-z0-9])(?:{alternatives})(?![a-z0-9])")


def parse_caption(text: str, *, max_words: int | None = None) -> dict[str, str]:
    """The attributes a caption names, e.g. ``{"shape": "star", "position": "top left"}``.

    Matching is case-insensitive and on whole words (``"stars"`` does not name ``"star"``); words
    outside the vocabulary (``"sks"``, ``"a photo of"``, ``"<new1>"``) are ignored. When a caption
    names two attributes of one head, the first occurrence counts and the later ones are ignored.

    Args:
        text: the caption.
        max_words: read only the first this many whitespace-separated words (None: all).
    """
    words = text.lower().split()
    if max_words is not None:
        words = words[:max_words]
    found: dict[str, str] = {}
    table = dict(_phrases())
    for match in _pattern().finditer(" ".join(words)):
        head, index = table[" ".join(match.group(0).split())]
        found.setdefault(head, HEADS[head][index])
    return {h: found[h] for h in HEADS if h in found}


class AttributeTokenizer:
    """Captions → ``LongTensor [N, len(HEADS)]``: per head the index of the named attribute, or -1.

    Like a CLIP tokenizer, it sees at most ``context_length - 2`` words (start and end tokens take
    two); :meth:`encode` gives the words that :func:`metrics.backbones.count_text_tokens` counts.
    """

    context_length = CONTEXT_LENGTH

    def encode(self, text: str) -> list[str]:
        """The caption's whitespace-separated words."""
        return text.split()

    def __call__(self, texts: str | Sequence[str]) -> torch.Tensor:
        if isinstance(texts, str):
            texts = [texts]
        rows = []
        for text in texts:
            named = parse_caption(text, max_words=self.context_length - 2)
            rows.append([HEADS[h].index(named[h]) if h in named else _UNNAMED for h in HEADS])
        return torch.tensor(rows, dtype=torch.long).reshape(len(rows), len(HEADS))


class ToyClip(nn.Module):
    """Oracle-backed CLIP: images and captions embedded in the 36-dim attribute space."""

    def __init__(self, oracle: Oracle) -> None:
        super().__init__()
        self.oracle = oracle
        self.sizes = [len(v) for v in HEADS.values()]

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        """Per-head softmax probabilities, concatenated: [N, 36], each head's block sums to 1."""
        logits = self.oracle(x)
        return torch.cat([logits[h].float().softmax(dim=-1) for h in HEADS], dim=-1)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """One-hot of each named attribute, zeros for an unnamed head: [N, 36].

        Raises:
            ValueError: ``tokens`` is not [N, len(HEADS)] or holds an index outside a head's range.
        """
        if tokens.ndim != 2 or tokens.shape[1] != len(HEADS):
            raise ValueError(f"toy-clip tokens: expected [N, {len(HEADS)}], got {tuple(tokens.shape)}")
        blocks = []
        for j, (head, n) in enumerate(zip(HEADS, self.sizes, strict=True)):
            col = tokens[:, j].long()
            if bool(((col < _UNNAMED) | (col >= n)).any()):
                raise ValueError(f"toy-clip tokens: {head} index outside [-1, {n - 1}]")
            named = (col >= 0).unsqueeze(-1)
            onehot = nn.functional.one_hot(col.clamp(min=0), n).float()
            blocks.append(onehot * named)
        return torch.cat(blocks, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode_image(x)


class ToyDino(nn.Module):
    """Oracle-backed DINO: the oracle's penultimate features (trunk + neck), [N, hidden]."""

    def __init__(self, oracle: Oracle) -> None:
        super().__init__()
        self.oracle = oracle

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.oracle.neck(self.oracle.trunk(x))


def preprocess_image(image: Any, size: int) -> torch.Tensor:
    """A PIL image → float tensor [3, size, size] in [-1, 1] (bilinear antialiased resize)."""
    return to_tensor([image], size)[0]


SHIPPED = "toy"  # the weights tag that names the oracle shipped in benchmark/toy/assets/oracle


def _oracle(weights: str | Path | None, seed: int) -> tuple[Oracle, str]:
    if weights is None:
        cfg = OracleConfig()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            oracle = Oracle(cfg.image_size, cfg.width, cfg.hidden)
        return oracle.eval().requires_grad_(False), f"random(seed={seed})"
    if str(weights) == SHIPPED:
        from benchmark.toy.assets import oracle_checkpoint

        try:
            weights = oracle_checkpoint()
        except FileNotFoundError as err:
            raise BackboneUnavailable(str(err)) from err
    path = Path(weights)
    file = path / CHECKPOINT if path.is_dir() else path
    if not file.is_file():
        raise BackboneUnavailable(
            f"toy oracle checkpoint {file} does not exist; train one with "
            f"`python -m benchmark.toy.oracle --out DIR` and pass DIR or DIR/{CHECKPOINT}"
        )
    return load_oracle(file), f"file:{sha256_file(file)[:16]}"


def load_toy_backbone(
    kind: str,
    name: str,
    weights: str | Path | None,
    *,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> Backbone:
    """Load ``toy-clip`` or ``toy-dino`` on an oracle checkpoint.

    Args:
        kind: ``"clip"`` for ``toy-clip``, ``"dino"`` for ``toy-dino``.
        name: the backbone name.
        weights: ``"toy"`` (the shipped oracle, sha256-checked), an oracle checkpoint file or a folder
            holding ``oracle_checkpoint.pt`` (tag
            ``file:<sha256 prefix>``), or None for a randomly initialised default-size oracle drawn
            with ``seed`` (tag ``random(seed=S)``; for tests). The caller's RNG state is untouched.
        device: where the model runs.
        seed: seed of the random oracle when ``weights`` is None.

    Returns:
        The :class:`~metrics.backbones.Backbone`.

    Raises:
        ValueError: an unknown name, a kind that does not match it, or an unreadable checkpoint or
            one made for other heads.
        BackboneUnavailable: ``weights`` is a path with no checkpoint (the message names the file).
    """
    if name not in TOY_BACKBONES:
        close = difflib.get_close_matches(name, list(TOY_BACKBONES), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown toy backbone {name!r}; known: {', '.join(TOY_BACKBONES)}{hint}")
    if kind != TOY_BACKBONES[name]:
        raise ValueError(f"{name} is a {TOY_BACKBONES[name]!r} backbone, not {kind!r}")
    oracle, tag = _oracle(weights, seed)
    size = oracle.image_size
    model: nn.Module = ToyClip(oracle) if kind == "clip" else ToyDino(oracle)
    model.eval().to(device)
    tokenizer = AttributeTokenizer() if kind == "clip" else None
    return Backbone(
        kind=kind,
        name=name,
        weights=tag,
        model=model,
        preprocess=functools.partial(preprocess_image, size=size),
        preprocess_desc=f"toy: resize {size} bilinear antialias, [-1,1]",
        tokenizer=tokenizer,
        context_length=CONTEXT_LENGTH if tokenizer is not None else None,
        device=torch.device(device),
    )
