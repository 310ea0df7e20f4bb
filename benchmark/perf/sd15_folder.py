"""The SD-1.5 architecture with random weights as a local diffusers folder (for end-to-end checks and costs).

``sd15_arch_folder()`` builds it once (seed 0; UNet, VAE, CLIP ViT-L/14-size text encoder and the real
49,408-token CLIP BPE tokenizer), saves it with ``save_pretrained`` into ``<cache>/models/sd15-arch-seed0``
atomically, and returns the folder; the ``sd15-check`` suite's profile names it as its model loader.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any


def save_sd15_arch(folder: Path, seed: int = 0) -> Path:
    """Build the SD-1.5 architecture from its configs with random weights and ``save_pretrained`` it."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    from baselines.models import build_sd15_architecture

    comps = build_sd15_architecture(seed, with_vae=True)
    pipe: Any = StableDiffusionPipeline(
        vae=comps.vae,
        text_encoder=comps.text_encoder,
        tokenizer=comps.tokenizer,
        unet=comps.unet,
        scheduler=DDIMScheduler.from_config(comps.scheduler.config),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder


def sd15_arch_folder() -> Path:
    """The saved random-weight SD-1.5 folder under the cache (built on first use, ~4.3 GB)."""
    from filelock import FileLock

    from benchmark.paths import cache_dir

    root = cache_dir() / "models"
    final = root / "sd15-arch-seed0"
    if (final / "model_index.json").is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / ".sd15-arch-seed0.lock")):
        if not (final / "model_index.json").is_file():
            tmp = root / f".sd15-arch-seed0.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            try:
                save_sd15_arch(tmp)
                os.replace(tmp, final)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return final
