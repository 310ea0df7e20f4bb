"""Synthetic but realistic result rows, for tests, docs and trying the leaderboard without a run.

The numbers are made up (drawn around DreamBench-like levels from a fixed seed); they are not results.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from metrics.spec import METRICS

DEMO_CONCEPTS: tuple[str, ...] = (
    "backpack",
    "bear_plushie",
    "berry_bowl",
    "cat",
    "clock",
    "dog",
    "duck_toy",
    "teapot",
)

# (mean, spread over concepts) per metric; missing metrics mean the method has no such rows.
_PROFILES: dict[str, dict[str, tuple[float, float]]] = {
    "dreambooth": {
        "clip_t": (0.298, 0.012),
        "clip_i": (0.801, 0.03),
        "dino": (0.662, 0.05),
        "subject_dino": (0.712, 0.04),
        "lfd": (0.0213, 0.004),
        "lfd_class": (0.0580, 0.01),
        "w2": (0.552, 0.04),
    },
    "dreambooth-lora": {
        "clip_t": (0.305, 0.012),
        "clip_i": (0.781, 0.03),
        "dino": (0.621, 0.05),
        "subject_dino": (0.684, 0.04),
        "lfd": (0.0071, 0.0015),
        "lfd_class": (0.0190, 0.004),
        "w2": (0.497, 0.04),
    },
    "textual-inversion": {
        "clip_t": (0.262, 0.015),
        "clip_i": (0.772, 0.03),
        "dino": (0.561, 0.05),
        "subject_dino": (0.603, 0.05),
        "lfd": (0.0, 0.0),
        "lfd_class": (0.0, 0.0),
        "w2": (0.431, 0.04),
    },
    "custom-diffusion": {
        "clip_t": (0.311, 0.011),
        "clip_i": (0.768, 0.03),
        "dino": (0.598, 0.05),
        "subject_dino": (0.641, 0.04),
        "lfd": (0.0042, 0.001),
        "lfd_class": (0.0110, 0.003),
        "w2": (0.463, 0.04),
    },
    "infusion": {
        "clip_t": (0.309, 0.011),
        "clip_i": (0.789, 0.03),
        "dino": (0.641, 0.05),
        "subject_dino": (0.695, 0.04),
        "lfd": (0.0, 0.0),
        "lfd_class": (0.0016, 0.0005),
        "w2": (0.382, 0.04),
    },
    "base": {
        "clip_t": (0.321, 0.01),
        "clip_i": (0.694, 0.04),
        "dino": (0.402, 0.06),
        "subject_dino": (0.451, 0.05),
        "lfd": (0.0, 0.0),
        "lfd_class": (0.0, 0.0),
        "w2": (0.0, 0.0),
    },
    "real": {"clip_i": (0.885, 0.02), "dino": (0.774, 0.04), "subject_dino": (0.802, 0.03)},
}

_BACKBONES = {
    "clip_t": "ViT-B-32-quickgelu/openai",
    "clip_i": "ViT-B-32-quickgelu/openai",
    "dino": "vit_small_patch16_224.dino",
    "subject_dino": "vit_small_patch16_224.dino",
    "w2": "ViT-B-32-quickgelu/openai",
    "lfd": "stable-diffusion-v1-5",
    "lfd_class": "stable-diffusion-v1-5",
}


def demo_rows(
    *, seed: int = 0, drop: tuple[tuple[str, str, str], ...] = (("custom-diffusion", "teapot", "w2"),)
) -> list[dict[str, Any]]:
    """Synthetic rows in the pinned result-row format for the ``dreambench`` suite, version 1.

    Args:
        seed: seed of the made-up per-concept noise.
        drop: (method, concept, metric) rows to leave out, to show the missing-concept flag.

    Returns:
        A list of row dicts, deterministic for a given seed.
    """
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for m_index, (method, profile) in enumerate(_PROFILES.items()):
        for concept in DEMO_CONCEPTS:
            for metric, (mean, spread) in profile.items():
                value = max(0.0, float(mean + spread * rng.standard_normal())) if spread else mean
                if (method, concept, metric) in drop:
                    continue
                rows.append(
                    {
                        "suite": "dreambench",
                        "suite_version": 1,
                        "method": method,
                        "method_version": 1,
                        "concept": concept,
                        "metric": metric,
                        "metric_version": METRICS[metric].version,
                        "value": round(value, 6),
                        "n": 4 if metric.startswith("lfd") else 100,
                        "backbone": _BACKBONES[metric],
                        "config_hash": f"demo{m_index:04d}",
                        "created_at": f"2026-11-27T{10 + m_index:02d}:00:00+00:00",
                        "package_version": "0.1.0",
                        "git_rev": "0000000",
                        "extra": {},
                    }
                )
    return rows


def write_demo_rows(path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Write :func:`demo_rows` as JSONL to ``path``.

    Returns:
        The path written.
    """
    path = Path(path)
    path.write_text(
        "".join(json.dumps(r, sort_keys=True) + "\n" for r in demo_rows(**kwargs)), encoding="utf-8"
    )
    return path
