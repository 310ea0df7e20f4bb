"""Shared, cached helpers for the baselines tests: the tiny pipeline (saved and reloaded through
``save_pretrained``/``from_pretrained``), a synthetic concept, and one fitted artifact per method."""

from __future__ import annotations

import atexit
import contextlib
import functools
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

import baselines
from baselines.models import load_model
from baselines.tiny import save_tiny_pipeline

TRAINED = [m for m in baselines.list_methods() if m != "base"]
INFUSIONS = ["infusion", "infusion-single", "infusion-kv"]

# Few steps at a learning rate that moves each method visibly on the tiny model.
FIT_OVERRIDES: dict[str, dict[str, Any]] = {
    "infusion": {"lr": 0.05},
    "infusion-single": {"lr": 0.05},
    "infusion-kv": {"lr": 0.05},
    "infusion-released": {"lr": 0.05},
    "dreambooth": {"lr": 1e-4},
    "dreambooth-lora": {"lr": 3e-3},
    "dora": {"lr": 3e-3},
    "lokr": {"lr": 3e-3},
    "oft": {"lr": 3e-3, "block_size": 8},
    "textual-inversion": {"lr": 5e-2, "scale_lr": False},
    "custom-diffusion": {
        "lr": 1e-3,
        "scale_lr": False,
        "num_class_images": 2,
        "class_generation": {"steps": 2},
    },
}


@dataclass
class SyntheticConcept:
    id: str
    class_noun: str
    images: list[Path]
    kind: str = "object"
    masks: list[Path] | None = None
    prompts: list[str] = field(default_factory=lambda: ["a {concept} on the beach"])


def _tmpdir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@functools.lru_cache(maxsize=1)
def tiny_dir() -> Path:
    return save_tiny_pipeline(_tmpdir("tiny-sd-") / "pipe")


@functools.lru_cache(maxsize=1)
def tiny() -> Any:
    """The tiny pipeline as loaded back from disk (shared; tests must not modify it)."""
    return load_model(str(tiny_dir()))


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """One torch thread for the block (the test machine's 2 cores are shared), then the caller's count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fresh_tiny() -> Any:
    return load_model(str(tiny_dir()))


def write_concept(directory: Path, class_noun: str = "teddybear", masks: bool = True) -> SyntheticConcept:
    """Three 80×72 photos of a coloured box on green (and its masks), written to ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    images, mask_paths = [], []
    for i in range(3):
        a = np.zeros((80, 72, 3), np.uint8)
        a[...] = (30, 120 + 20 * i, 60)
        a[20:60, 16 + 4 * i : 50 + 4 * i] = (220, 40, 40)
        m = np.zeros((80, 72), np.uint8)
        m[20:60, 16 + 4 * i : 50 + 4 * i] = 255
        images.append(directory / f"photo{i}.png")
        mask_paths.append(directory / f"mask{i}.png")
        Image.fromarray(a).save(images[-1])
        Image.fromarray(m).save(mask_paths[-1])
    return SyntheticConcept("redbox", class_noun, images, masks=mask_paths if masks else None)


@functools.lru_cache(maxsize=1)
def concept() -> SyntheticConcept:
    return write_concept(_tmpdir("concept-"))


def toy_config(name: str, **extra: Any) -> dict[str, Any]:
    """``name``'s complete config under the toy profile's budget (without the profile's tuned
    ``method_overrides``), with ``extra`` merged in (nested mappings key by key)."""
    from baselines.config import merge_config
    from benchmark.budgets import budget_config
    from benchmark.settings import settings_for

    return merge_config(budget_config(settings_for("toy"), baselines.load_method(name)), extra)


def fit_config(name: str, **extra: Any) -> dict[str, Any]:
    """A short fit of ``name`` on the tiny model: its toy config, a few steps (training keys only where the
    recipe has them: ``base`` trains nothing), :data:`FIT_OVERRIDES` and ``extra``."""
    short = {"steps": 8, "batch_size": 2, "grad_accum": 1, "eval_samples": 6}
    cfg = toy_config(name)
    cfg.update({k: v for k, v in short.items() if k in cfg})
    return toy_config(name, **{**cfg, **FIT_OVERRIDES.get(name, {}), **extra})


@functools.cache
def fitted(name: str) -> Any:
    """The artifact of ``name`` fitted once on the synthetic concept (seed 0)."""
    method = baselines.get_method(name)
    cfg = toy_config(name) if name == "base" else fit_config(name)
    return method.fit(concept(), tiny(), cfg, seed=0, progress=False)


def generate(pipe: Any, prompts: list[str], seeds: list[int] | None = None, **kw: Any) -> torch.Tensor:
    """Final latents of a short DDIM run (decoded images are compared separately where needed)."""
    seeds = seeds if seeds is not None else list(range(len(prompts)))
    kw.setdefault("steps", 3)
    kw.setdefault("guidance", 5.0)
    return pipe.generate(prompts, seeds, return_latents=True, **kw).latents
