"""Subject masks from images, read off the base model (works on photos and renders alike).

Two recipes, both versioned by the stage that caches them (:data:`benchmark.stages.MASK_METHODS`):

- ``cross-attention@1`` (:func:`subject_maps`): the class word's cross-attention. It serves the
  ``masked_*`` sources (the collapse diagnostic), which mask every image with the *base* image's mask.
- ``noise-difference@1`` (:func:`noise_difference_maps`): how much the class noun changes the base model's
  noise prediction at each place (the mask step of DiffEdit, with the empty prompt as the reference). It
  serves the ``subject_*`` sources, which mask every image with *its own* mask. On 64 random toy renders
  its masks overlap the rendered silhouettes with IoU 0.61 (cross-attention: 0.35, and about 0 for
  squares and hexagons); docs/DECISIONS.md gives the comparison.

Cross-attention:

For an image and its class noun, the image is encoded with the base model's VAE, noised to a few
timesteps (fixed seed, the same noise for every image) and passed through the base UNet with the prompt ``"a <class>"``; the attention
each spatial position pays to the class word's tokens, averaged over heads, cross-attention layers and
timesteps and upsampled to the image, is the subject map. The mask is where the map exceeds half its
range, dilated by a margin. This is the attention-map segmentation that text-to-image models are known
to support (the class word attends to its object); nothing in it knows a particular dataset, so the
same code serves DreamBench photos and the toy world's renders.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

DEFAULT_TIMESTEPS: tuple[int, ...] = (200, 400, 600)
DEFAULT_DILATION = 1 / 16  # of the image side, on each side of the mask
NEUTRAL_GREY = 127
# noise-difference@1: where the maps are measured and cut (fixed on random toy renders, not on any suite's
# concepts or rows; docs/DECISIONS.md)
DIFFERENCE_TIMESTEPS: tuple[int, ...] = (300, 500, 700)
DIFFERENCE_NOISES = 2
DIFFERENCE_THRESHOLD = 0.3


def _to_tensor(images: Sequence[Any], size: int) -> torch.Tensor:
    arr = np.stack([np.asarray(im.convert("RGB").resize((size, size)), dtype=np.uint8) for im in images])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 127.5 - 1.0


@torch.no_grad()
def subject_maps(
    pipe: Any,
    images: Sequence[Any],
    class_noun: str,
    *,
    size: int,
    timesteps: Sequence[int] = DEFAULT_TIMESTEPS,
    seed: int = 0,
    batch_size: int = 16,
) -> np.ndarray:
    """Per-image subject maps in [0, 1], float32 [N, size, size] (1 where the class word is attended most).

    Args:
        pipe: the base model as a :class:`baselines.pipeline.CustomizedPipeline`.
        images: PIL images (resized to ``size``).
        class_noun: the word whose attention is read (``"dog"``, ``"heart"``).
        size: the side the images are encoded at (the suite's resolution) and the maps are returned at.

    Raises:
        ValueError: no images, or a class noun the tokenizer cannot locate in the prompt.
    """
    from baselines.processors import AttentionState, recording_processors, use_processors
    from baselines.prompts import mark_word

    if not images:
        raise ValueError("subject_maps: no images")
    comps = pipe.components_obj
    unet, device, dtype = comps.unet, pipe.device, pipe.dtype
    cond = pipe.encode_prompts([mark_word(f"a {class_noun}", class_noun)])
    if cond.concept_mask is None or not bool(cond.concept_mask.any()):
        raise ValueError(f"subject_maps: the class noun {class_noun!r} has no tokens in the prompt")
    token_mask = cond.concept_mask[0].to(torch.float32)
    scheduler = pipe.training_scheduler
    state = AttentionState(recorder={})
    out = np.zeros((len(images), size, size), dtype=np.float32)
    with use_processors(unet, recording_processors(unet, state)):
        for start in range(0, len(images), batch_size):
            chunk = _to_tensor(images[start : start + batch_size], size).to(device, dtype)
            z0 = comps.vae.encode(chunk).latent_dist.mean * comps.scaling_factor
            g = torch.Generator().manual_seed(seed)
            total = torch.zeros(len(chunk), size, size)
            for t in timesteps:
                # one noise draw shared by every image, so a map never depends on the batch it was in
                noise = torch.randn((1, *z0.shape[1:]), generator=g).to(device, dtype).expand_as(z0)
                tt = torch.full((len(chunk),), int(t), dtype=torch.long, device=device)
                z_t = scheduler.add_noise(z0, noise, tt)
                emb = cond.embeddings.to(device, dtype).expand(len(chunk), -1, -1)
                state.recorder = {}
                unet(z_t, tt, encoder_hidden_states=emb)
                for probs in (p for layer in state.recorder.values() for p in layer):
                    # [B, heads, Q, L] -> attention to the class tokens per spatial position [B, Q]
                    share = (probs.mean(dim=1) * token_mask[: probs.shape[-1]]).sum(dim=-1)
                    side = round(share.shape[-1] ** 0.5)
                    grid = share.view(len(chunk), 1, side, side)
                    total += F.interpolate(grid, size=(size, size), mode="bilinear", align_corners=False)[
                        :, 0
                    ]
            lo = total.flatten(1).min(dim=1).values.view(-1, 1, 1)
            hi = total.flatten(1).max(dim=1).values.view(-1, 1, 1)
            out[start : start + len(chunk)] = ((total - lo) / (hi - lo).clamp_min(1e-12)).numpy()
    return out


def masks_from_maps(maps: np.ndarray, *, dilation: float = DEFAULT_DILATION) -> np.ndarray:
    """Boolean masks [N, H, W]: the map above half its range, dilated by ``dilation`` × the side."""
    return dilate(maps >= 0.5, dilation)


def dilate(masks: np.ndarray, dilation: float) -> np.ndarray:
    """Boolean masks [N, H, W] grown by ``dilation`` × the side on every side (a square structuring element)."""
    mask = torch.from_numpy(np.asarray(masks, dtype=bool)).float().unsqueeze(1)
    pad = round(dilation * masks.shape[-1])
    if pad > 0:
        mask = F.max_pool2d(mask, kernel_size=2 * pad + 1, stride=1, padding=pad)
    return np.asarray(mask[:, 0].numpy().astype(bool))


def bounding_boxes(masks: np.ndarray) -> np.ndarray:
    """Boolean masks [N, H, W], each filled to its bounding box (an empty mask stays empty)."""
    table = np.asarray(masks, dtype=bool)
    out = np.zeros_like(table)
    for i, mask in enumerate(table):
        if mask.any():
            rows, cols = np.nonzero(mask)
            out[i, rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = True
    return out


def blank(image: Any, mask: np.ndarray) -> Any:
    """A copy of a PIL image with the mask region (resized to the image) painted neutral grey."""
    from PIL import Image

    arr = np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    if mask.shape != arr.shape[:2]:
        resized = Image.fromarray(mask.astype(np.uint8) * 255).resize(
            (arr.shape[1], arr.shape[0]), Image.Resampling.NEAREST
        )
        mask = np.asarray(resized) > 127
    arr[mask] = NEUTRAL_GREY
    return Image.fromarray(arr, "RGB")


def _normalise(total: torch.Tensor) -> np.ndarray:
    lo = total.flatten(1).min(dim=1).values.view(-1, 1, 1)
    hi = total.flatten(1).max(dim=1).values.view(-1, 1, 1)
    return ((total - lo) / (hi - lo).clamp_min(1e-12)).numpy().astype(np.float32)


@torch.no_grad()
def noise_difference_maps(
    pipe: Any,
    images: Sequence[Any],
    class_noun: str,
    *,
    size: int,
    timesteps: Sequence[int] = DIFFERENCE_TIMESTEPS,
    noises: int = DIFFERENCE_NOISES,
    seed: int = 0,
    batch_size: int = 16,
) -> np.ndarray:
    """Per-image subject maps in [0, 1], float32 [N, size, size]: |eps(z_t, "a <class>") - eps(z_t, "")|,
    averaged over latent channels, ``timesteps`` and ``noises`` draws, upsampled and scaled to [0, 1].

    The image is encoded with the base model's VAE (posterior mean) and noised with draws from
    ``seed`` that every image shares, so a map never depends on the batch it was in.

    Args:
        pipe: the base model as a :class:`baselines.pipeline.CustomizedPipeline`.
        images: PIL images (resized to ``size``).
        class_noun: the subject's class noun (``"dog"``, ``"heart"``).
        size: the side the images are encoded at (the suite's resolution) and the maps are returned at.

    Raises:
        ValueError: no images, no timesteps or ``noises`` < 1.
    """
    if not images:
        raise ValueError("noise_difference_maps: no images")
    if not timesteps or noises < 1:
        raise ValueError("noise_difference_maps: needs at least one timestep and one noise draw")
    comps = pipe.components_obj
    unet, device, dtype = comps.unet, pipe.device, pipe.dtype
    query = pipe.encode_prompts([f"a {class_noun}"]).embeddings.to(device, dtype)
    empty = pipe.encode_prompts([""]).embeddings.to(device, dtype)
    scheduler = pipe.training_scheduler
    out = np.zeros((len(images), size, size), dtype=np.float32)
    for start in range(0, len(images), batch_size):
        chunk = _to_tensor(images[start : start + batch_size], size).to(device, dtype)
        n = len(chunk)
        z0 = comps.vae.encode(chunk).latent_dist.mean * comps.scaling_factor
        g = torch.Generator().manual_seed(seed)
        total = torch.zeros(n, z0.shape[-2], z0.shape[-1])
        emb = torch.cat([query.expand(n, -1, -1), empty.expand(n, -1, -1)])
        for t in timesteps:
            for _ in range(noises):
                noise = torch.randn((1, *z0.shape[1:]), generator=g).to(device, dtype).expand_as(z0)
                tt = torch.full((n,), int(t), dtype=torch.long, device=device)
                z_t = scheduler.add_noise(z0, noise, tt)
                eps = unet(torch.cat([z_t, z_t]), torch.cat([tt, tt]), encoder_hidden_states=emb).sample
                total += (eps[:n] - eps[n:]).abs().float().mean(dim=1).cpu()
        up = F.interpolate(total.unsqueeze(1), size=(size, size), mode="bilinear", align_corners=False)[:, 0]
        out[start : start + n] = _normalise(up)
    return out


def own_masks(maps: np.ndarray, *, threshold: float = DIFFERENCE_THRESHOLD) -> np.ndarray:
    """Boolean masks [N, H, W] from :func:`noise_difference_maps`: the map at or above ``threshold``."""
    return np.asarray(maps >= threshold)


def subject_crop(image: Any, mask: np.ndarray, size: int) -> Any:
    """The subject alone: outside the mask painted neutral grey, cropped to the smallest square around the
    mask (centred on its bounding box, clipped to the image) and resized to ``size`` × ``size``.

    The crop makes the picture independent of where the subject stands and of what is around it, so a
    feature of it measures the subject's look. An empty mask gives an all-grey image (no subject found).
    """
    from PIL import Image

    arr = np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    h, w = arr.shape[:2]
    if mask.shape != (h, w):
        resized = Image.fromarray(mask.astype(np.uint8) * 255).resize((w, h), Image.Resampling.NEAREST)
        mask = np.asarray(resized) > 127
    if not mask.any():
        return Image.new("RGB", (size, size), (NEUTRAL_GREY,) * 3)
    arr[~mask] = NEUTRAL_GREY
    rows, cols = np.nonzero(mask)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    side = min(max(bottom - top, right - left), h, w)
    cy, cx = (top + bottom) / 2, (left + right) / 2
    y0 = int(np.clip(round(cy - side / 2), 0, h - side))
    x0 = int(np.clip(round(cx - side / 2), 0, w - side))
    crop = Image.fromarray(arr[y0 : y0 + side, x0 : x0 + side], "RGB")
    return crop.resize((size, size), Image.Resampling.BILINEAR)


def layout(masks: np.ndarray) -> np.ndarray:
    """The subject's layout in each image from its mask, float64 [N, 3]: the mask's centroid (x, y) as a
    share of the width and height, and the square root of the share of the image it covers (so the three
    are on one scale, a length). An empty mask (no subject found) reads as a centred subject of size 0."""
    table = np.asarray(masks, dtype=bool)
    if table.ndim != 3:
        raise ValueError(f"masks: expected shape (N, H, W), got {table.shape}")
    n, h, w = table.shape
    out = np.empty((n, 3), dtype=np.float64)
    ys, xs = (np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w
    for i, mask in enumerate(table):
        count = int(mask.sum())
        if count == 0:
            out[i] = (0.5, 0.5, 0.0)
            continue
        out[i, 0] = float((mask.sum(axis=0) * xs).sum()) / count
        out[i, 1] = float((mask.sum(axis=1) * ys).sum()) / count
        out[i, 2] = np.sqrt(count / (h * w))
    return out
