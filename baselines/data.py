"""Training data: a concept's photos (and optional masks) as VAE latent statistics, and class images.

Concepts are duck-typed: anything with ``id``, ``class_noun``, ``images`` (local paths) and optionally
``kind``, ``masks`` (paths aligned with ``images``, or ``None``) and ``prompts``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

from benchmark.io import atomic_write, open_gray, open_rgb

logger = logging.getLogger(__name__)

RESIZE_MODES = ("squash", "center_crop")
INTERPOLATIONS = ("bicubic", "bilinear")


@dataclass(frozen=True)
class ConceptInfo:
    """The fields of a concept that methods use."""

    id: str
    class_noun: str
    images: tuple[Path, ...]
    masks: tuple[Path | None, ...] | None = None
    kind: str | None = None

    def fingerprint(self) -> str:
        """sha256 over class noun, image bytes and mask bytes (identifies the training data)."""
        h = hashlib.sha256(f"{self.id}|{self.class_noun}|".encode())
        for p in self.images:
            h.update(p.read_bytes())
        for m in self.masks or ():
            h.update(b"|mask|" + (m.read_bytes() if m is not None else b""))
        return h.hexdigest()


def concept_info(concept: Any) -> ConceptInfo:
    """Validate a concept object.

    Raises:
        ValueError: missing/empty class noun or images, a missing file, masks not aligned with images.
    """
    name = getattr(concept, "id", None) or "concept"
    class_noun = getattr(concept, "class_noun", None)
    if not isinstance(class_noun, str) or not class_noun.strip():
        raise ValueError(f"concept {name!r}: class_noun must be a non-empty string, got {class_noun!r}")
    images = getattr(concept, "images", None)
    if not images or isinstance(images, (str, Path)):
        raise ValueError(f"concept {name!r}: images must be a non-empty list of image paths")
    paths = tuple(Path(p) for p in images)
    for p in paths:
        if not p.is_file():
            raise ValueError(f"concept {name!r}: image {p} does not exist")
    masks_in = getattr(concept, "masks", None)
    masks: tuple[Path | None, ...] | None = None
    if masks_in is not None:
        if len(masks_in) != len(paths):
            raise ValueError(f"concept {name!r}: {len(masks_in)} masks for {len(paths)} images")
        masks = tuple(Path(m) if m is not None else None for m in masks_in)
        for m in masks:
            if m is not None and not m.is_file():
                raise ValueError(f"concept {name!r}: mask {m} does not exist")
    return ConceptInfo(str(name), class_noun.strip(), paths, masks, getattr(concept, "kind", None))


def _resample(interpolation: str) -> Any:
    from PIL import Image

    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    return Image.Resampling.BICUBIC if interpolation == "bicubic" else Image.Resampling.BILINEAR


def resize_image(img: Any, resolution: int, resize: str, interpolation: str) -> Any:
    """``squash``: resize to resolution² ignoring aspect (Infusion, TI); ``center_crop``: shorter side
    to ``resolution`` then center crop (DreamBooth)."""
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
    resample = _resample(interpolation)
    if resize == "squash":
        return img.resize((resolution, resolution), resample=resample)
    w, h = img.size
    scale = resolution / min(w, h)
    nw, nh = max(resolution, round(w * scale)), max(resolution, round(h * scale))
    img = img.resize((nw, nh), resample=resample)
    left, top = (nw - resolution) // 2, (nh - resolution) // 2
    return img.crop((left, top, left + resolution, top + resolution))


def image_tensor(img: Any) -> torch.Tensor:
    """PIL RGB image → float tensor [3, H, W] in [-1, 1]."""
    import numpy as np

    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def load_images(items: Sequence[Any], resolution: int, resize: str, interpolation: str) -> torch.Tensor:
    """Images (paths or PIL images, read by :func:`benchmark.io.open_rgb`) as a tensor [N, 3, R, R] in
    [-1, 1]."""
    return torch.stack(
        [image_tensor(resize_image(open_rgb(item), resolution, resize, interpolation)) for item in items]
    )


def load_masks(
    paths: Sequence[Path | None], resolution: int, latent_size: int, resize: str, interpolation: str
) -> torch.Tensor:
    """Soft masks [N, 1, h, h] at latent size (bilinear), each divided by its max (a missing or
    all-zero mask becomes all ones)."""
    import numpy as np
    import torch.nn.functional as F

    out = []
    for p in paths:
        if p is None:
            out.append(torch.ones(1, latent_size, latent_size))
            continue
        m = resize_image(open_gray(p), resolution, resize, interpolation)
        t = torch.from_numpy(np.asarray(m, dtype=np.float32))[None, None]
        t = F.interpolate(t, size=(latent_size, latent_size), mode="bilinear", align_corners=False)[0]
        peak = float(t.max())
        out.append(t / peak if peak > 0 else torch.ones_like(t))
    return torch.stack(out)


@dataclass
class LatentSet:
    """VAE posterior statistics of a set of images, for both orientations.

    ``mean``/``std``: [N, 2, C, h, w] (index 1 = horizontally flipped), unscaled; ``masks``:
    [N, 2, 1, h, w] or ``None``.
    """

    mean: torch.Tensor
    std: torch.Tensor
    masks: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.mean.shape[0])


@torch.no_grad()
def encode_latent_set(vae: Any, images: torch.Tensor, masks: torch.Tensor | None = None) -> LatentSet:
    """Encode images and their mirror images once; training samples latents from these statistics."""
    stats = []
    for batch in (images, images.flip(-1)):
        dist = vae.encode(batch.to(vae.device, vae.dtype)).latent_dist
        stats.append((dist.mean.float().cpu(), dist.std.float().cpu()))
    mean = torch.stack([stats[0][0], stats[1][0]], dim=1)
    std = torch.stack([stats[0][1], stats[1][1]], dim=1)
    both = torch.stack([masks, masks.flip(-1)], dim=1) if masks is not None else None
    return LatentSet(mean, std, both)


def class_images(
    pipeline: Any,
    prompt: str,
    count: int,
    *,
    seed: int,
    steps: int,
    guidance: float,
    cache_dir: Path | None = None,
    progress: bool = False,
) -> list[Path] | list[Any]:
    """``count`` base-model images of ``prompt`` (prior preservation), seeds ``seed .. seed+count-1``.

    With ``cache_dir``, images are written there as ``class-<seed>.png`` and reused on the next call.

    Returns:
        PIL images (no cache) or paths (cache).
    """
    seeds = list(range(seed, seed + count))
    if cache_dir is None:
        return pipeline.generate(
            [prompt] * count, seeds, steps=steps, guidance=guidance, progress=progress
        ).images
    cache_dir.mkdir(parents=True, exist_ok=True)
    paths = [cache_dir / f"class-{s}.png" for s in seeds]
    todo = [i for i, p in enumerate(paths) if not p.is_file()]
    if todo:
        out = pipeline.generate(
            [prompt] * len(todo), [seeds[i] for i in todo], steps=steps, guidance=guidance, progress=progress
        )
        for i, img in zip(todo, out.images, strict=True):
            atomic_write(paths[i], partial(img.save, format="PNG"))
    return paths
