"""The damage oracle (issue 24, item 1): how much a customized model's images for prompts that do not name
its concept lose of what those prompts ask, read by the toy oracle (which grades, never measures).

:data:`N_PROMPTS` captions of held-in toy scenes whose shape is not the concept's (a fixed draw) ×
:data:`DAMAGE_SEEDS`; an image scores the share of the attributes its caption names (shape, colour,
background, position) that the oracle reads back. The drop is base minus customized, paired by prompt and
seed, pooled and per attribute; its standard error takes the prompt as the unit (seeds averaged within a
prompt). The suite's own LFD prompts (6 × 4 seeds = 24 images) had too little power to rank runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from benchmark.toy.backbones import parse_caption

N_PROMPTS = 48  # non-concept captions (the suite's LFD prompts are 6)
DAMAGE_SEEDS = (500, 501, 502, 503)  # disjoint from the suite's generation seeds
PROMPT_SEED = 2024  # the captions' draw
DAMAGE_ATTRS = ("shape", "colour", "background", "position")


def damage_prompts(concept_shape: str, n: int = N_PROMPTS, seed: int = PROMPT_SEED) -> list[str]:
    """``n`` captions of held-in toy scenes whose shape is not the concept's (fixed draw)."""
    from benchmark.toy.world import caption, sample_scenes

    rng = np.random.default_rng([seed, sum(map(ord, concept_shape))])
    out: list[str] = []
    while len(out) < n:
        for scene in sample_scenes(rng, 4 * n, held_out="exclude"):
            text = caption(scene)
            if scene.shape != concept_shape and text not in out:
                out.append(text)
            if len(out) == n:
                break
    return out


def accuracy_table(readings: Sequence[Mapping[str, str]], prompts: Sequence[str]) -> np.ndarray:
    """Per image: for each attribute in :data:`DAMAGE_ATTRS`, 1/0 when the prompt names it, NaN when not."""
    out = np.full((len(prompts), len(DAMAGE_ATTRS)), np.nan)
    for i, (r, p) in enumerate(zip(readings, prompts, strict=True)):
        want = {k: v for k, v in parse_caption(p).items() if k in DAMAGE_ATTRS}
        for j, k in enumerate(DAMAGE_ATTRS):
            if k in want:
                out[i, j] = float(r[k] == want[k])
    return out


def drops(base: np.ndarray, run: np.ndarray, n_prompts: int) -> dict[str, float]:
    """The base-minus-run accuracy drop, pooled (mean over each image's named attributes) and per attribute,
    with the pooled drop's standard error over prompts (seeds averaged within a prompt): the difference of
    the two :func:`readout` s."""
    b, r = readout(base, n_prompts), readout(run, n_prompts)
    out = {
        "drop": b["nonconcept_acc"] - r["nonconcept_acc"],
        "drop_se": drop_se(b["nonconcept_per_prompt"], r["nonconcept_per_prompt"]),
        "acc": r["nonconcept_acc"],
    }
    for k in DAMAGE_ATTRS:
        out[f"drop_{k}"] = b[f"nonconcept_{k}_acc"] - r[f"nonconcept_{k}_acc"]
    return out


def readings(
    oracle: Any, pipe: Any, prompts: Sequence[str], sampler_kwargs: Mapping[str, Any]
) -> list[dict[str, str]]:
    """The oracle's reading of ``pipe``'s images for each prompt × :data:`DAMAGE_SEEDS` (prompt-major)."""
    from benchmark.toy.oracle import predict

    rows = [p for p in prompts for _ in DAMAGE_SEEDS]
    seeds = [s for _ in prompts for s in DAMAGE_SEEDS]
    images: list[Any] = []
    for start in range(0, len(rows), 64):
        chunk = slice(start, start + 64)
        images += pipe.generate(rows[chunk], seeds[chunk], **sampler_kwargs).images
    return predict(oracle, images)


def readout(table: np.ndarray, n_prompts: int) -> dict[str, Any]:
    """A run's damage readout from its :func:`accuracy_table`: pooled accuracy, per attribute, per prompt."""
    pooled = np.nanmean(table, axis=1)
    out: dict[str, Any] = {
        "nonconcept_acc": float(pooled.mean()),
        "nonconcept_per_prompt": pooled.reshape(n_prompts, -1).mean(axis=1).tolist(),
    }
    for j, k in enumerate(DAMAGE_ATTRS):
        named = ~np.isnan(table[:, j])
        out[f"nonconcept_{k}_acc"] = float(table[named, j].mean()) if named.any() else float("nan")
    return out


def drop_se(base_per_prompt: Sequence[float], run_per_prompt: Sequence[float]) -> float:
    """Standard error of the pooled drop, the prompt as the unit."""
    diff = np.asarray(base_per_prompt, dtype=float) - np.asarray(run_per_prompt, dtype=float)
    return float(diff.std(ddof=1) / math.sqrt(len(diff)))
