"""Pretraining data for the toy base model: rendered scenes, training captions and token ids.

The dataset is ``cfg.dataset_size`` scenes drawn from the pretraining combinations (never a held-out
combination, never a reserved (shape, pattern) pair; ``cfg.pattern_prob`` of them wear one of the
pretraining patterns, always said in the caption), rendered once and cached as a uint8 ``.npy`` under the run folder.
Captions are drawn fresh at every step from the step's own generator, so runs are reproducible and
resumable.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.toy.config import BaseModelConfig
from benchmark.toy.io import atomic_numpy_save
from benchmark.toy.render import DEFAULT_SUPERSAMPLE, render_batch
from benchmark.toy.world import PRETRAIN_PATTERNS, WORLD_VERSION, Scene, caption, sample_scenes

logger = logging.getLogger(__name__)

PREFIXES: tuple[str, ...] = ("a photo of", "an image of", "a picture of", "a rendering of")
DROPPABLE: tuple[str, ...] = ("colour", "background", "position")


def dataset_scenes(cfg: BaseModelConfig) -> list[Scene]:
    """The pretraining scenes of a config (deterministic from ``cfg.seed``)."""
    return sample_scenes(
        np.random.default_rng([cfg.seed, 101]),
        cfg.dataset_size,
        held_out="exclude",
        pattern_prob=cfg.pattern_prob,
        patterns=PRETRAIN_PATTERNS,
    )


def dataset_key(cfg: BaseModelConfig) -> str:
    """A short hash of everything that changes the rendered dataset."""
    parts = {
        "world": WORLD_VERSION,
        "seed": cfg.seed,
        "n": cfg.dataset_size,
        "pattern_prob": cfg.pattern_prob,
        "size": cfg.image_size,
        "supersample": DEFAULT_SUPERSAMPLE,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def load_or_render(cfg: BaseModelConfig, data_dir: str | Path) -> np.ndarray:
    """The dataset's pixels, uint8 [N, S, S, 3], from the cache in ``data_dir`` or rendered (and cached).

    A cached file of the wrong shape or type is rendered again.
    """
    path = Path(data_dir) / f"images_{dataset_key(cfg)}.npy"
    expected = (cfg.dataset_size, cfg.image_size, cfg.image_size, 3)
    if path.is_file():
        try:
            arr = np.load(path)
            if arr.shape == expected and arr.dtype == np.uint8:
                return arr
        except (OSError, ValueError):
            pass
        logger.warning("%s: unreadable or wrong shape; rendering again", path)
    t0 = time.perf_counter()
    scenes = dataset_scenes(cfg)
    chunks = []
    for start in range(0, len(scenes), 2000):
        chunks.append(render_batch(scenes[start : start + 2000], cfg.image_size))
        logger.info("rendered %d/%d scenes", min(start + 2000, len(scenes)), len(scenes))
    images = np.concatenate(chunks) if chunks else np.zeros(expected, dtype=np.uint8)
    atomic_numpy_save(path, images)
    logger.info("rendered the %d-scene dataset in %.1f s", len(scenes), time.perf_counter() - t0)
    return images


def to_model_input(images: np.ndarray) -> torch.Tensor:
    """uint8 images [N, H, W, 3] → float tensor [N, 3, H, W] in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    return x.contiguous()


def training_caption(scene: Scene, rng: np.random.Generator, cfg: BaseModelConfig) -> str:
    """One training caption for a scene: empty (``uncond_prob``), complete (``caption_full_prob``) or
    with each of colour/background/position dropped with probability 1/2; a scene's pattern is always
    said; sometimes prefixed ("a photo of …", ``prefix_prob``). Always in ``cfg.caption_order``."""
    if rng.random() < cfg.uncond_prob:
        return ""
    if rng.random() < cfg.caption_full_prob:
        parts: Sequence[str] = DROPPABLE
    else:
        parts = [p for p in DROPPABLE if rng.random() < 0.5]
    prefix = PREFIXES[int(rng.integers(len(PREFIXES)))] if rng.random() < cfg.prefix_prob else ""
    return caption(scene, order=cfg.caption_order, parts=[*parts, "pattern"], prefix=prefix)


class CaptionTokenizer:
    """Token ids [B, L] for captions, padded with the end token as Stable Diffusion does, memoised.

    Raises (``__call__``):
        ValueError: a caption longer than the context (never truncated silently).
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.length = int(tokenizer.model_max_length)
        self._cache: dict[str, list[int]] = {}

    def ids(self, text: str) -> list[int]:
        hit = self._cache.get(text)
        if hit is None:
            hit = list(self.tokenizer(text, add_special_tokens=True)["input_ids"])
            if len(hit) > self.length:
                raise ValueError(f"caption {text!r} has {len(hit)} tokens; the context is {self.length}")
            hit = hit + [int(self.tokenizer.pad_token_id)] * (self.length - len(hit))
            self._cache[text] = hit
        return hit

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        return torch.tensor([self.ids(t) for t in texts], dtype=torch.long)
