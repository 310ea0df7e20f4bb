"""Settings of the toy base model: architecture sizes, captions, data and the three training stages.

:data:`PRESETS` holds ``default`` (the shipped model's recipe, sized for about two hours on a 2-core
CPU) and ``tiny`` (a few-second configuration for tests). Every field is recorded in the training
record; a resumed run must use the same settings.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from benchmark.toy.world import CAPTION_ORDERS

BETA_SCHEDULES: tuple[str, ...] = ("linear", "scaled_linear")
TIMESTEP_SPACINGS: tuple[str, ...] = ("leading", "trailing")


@dataclass(frozen=True)
class BaseModelConfig:
    """Everything that shapes the trained toy base model.

    Architecture: ``image_size`` px images; a VAE with downsampling factor ``vae_factor`` (so latents
    are ``image_size // vae_factor`` on a side, 16×16 by default); a CLIP text encoder of width
    ``text_hidden`` over the real 49,408-token CLIP BPE vocabulary, ``context_length`` tokens; a
    cross-attention UNet with ``unet_channels`` per level. Cross-attention sits at every level but the
    top one unless ``unet_top_attention`` (at 16×16 with 32 channels it costs ~70% more time per step,
    and five coarse positions are resolved at 8×8 already).

    Captions: ``caption_order`` puts the position first or last; ``caption_full_prob`` of training
    captions say every attribute, the rest drop each of colour/background/position with probability
    1/2; ``prefix_prob`` prepend "a photo of" and similar; ``uncond_prob`` are empty (for guidance).
    ``pattern_prob`` of the pretraining scenes wear a pretraining pattern (always said in the caption).

    Noise schedule: ``beta_schedule`` from ``beta_start`` to ``beta_end`` over 1,000 steps, epsilon
    prediction, sampled with ``timestep_spacing``. The default is SD-1.5's (scaled-linear 0.00085 →
    0.012, "leading"); the linear 1e-4 → 0.02 "trailing" schedule, which leaves far less of the image
    in the last step, was tried for position and learned shape more slowly (docs/DECISIONS.md).

    Stages (steps are the reproducible unit; ``--minutes`` only splits them into sittings):
    ``vae`` (full VAE), ``decoder`` (decoder-only fine-tune, encoder frozen), ``unet`` (UNet and
    text encoder jointly, with an EMA copy that is exported).
    """

    seed: int = 0
    image_size: int = 32
    # VAE
    vae_factor: int = 2
    vae_channels: tuple[int, ...] = (32, 64)
    vae_layers_per_block: int = 1
    latent_channels: int = 4
    # text encoder
    text_hidden: int = 96
    text_layers: int = 3
    text_heads: int = 4
    text_intermediate: int = 384
    context_length: int = 32
    # UNet
    unet_channels: tuple[int, ...] = (32, 64, 128)
    unet_layers_per_block: int = 1
    unet_attention_heads: int = 4
    unet_top_attention: bool = False
    norm_groups: int = 8
    # noise schedule (saved as the exported model's scheduler config)
    beta_schedule: str = "scaled_linear"
    beta_start: float = 0.00085
    beta_end: float = 0.012
    timestep_spacing: str = "leading"
    # captions and data
    caption_order: str = "position_first"
    caption_full_prob: float = 0.6
    prefix_prob: float = 0.2
    uncond_prob: float = 0.1
    pattern_prob: float = 0.5
    dataset_size: int = 40000
    # stage: VAE
    vae_steps: int = 1500
    vae_batch: int = 32
    vae_lr: float = 1e-3
    kl_weight: float = 1e-6
    edge_weight: float = 0.5
    # stage: decoder-only fine-tune
    decoder_steps: int = 500
    decoder_lr: float = 3e-4
    # stage: UNet + text encoder
    unet_steps: int = 8000
    unet_batch: int = 64
    unet_lr: float = 1e-3
    unet_warmup: int = 200
    weight_decay: float = 1e-2
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    # bookkeeping
    checkpoint_every: int = 200
    log_every: int = 50
    export_dtype: str = "float16"

    def __post_init__(self) -> None:
        positive = [
            "image_size",
            "vae_factor",
            "vae_layers_per_block",
            "latent_channels",
            "text_hidden",
            "text_layers",
            "text_heads",
            "text_intermediate",
            "context_length",
            "unet_layers_per_block",
            "unet_attention_heads",
            "norm_groups",
            "dataset_size",
            "vae_batch",
            "unet_batch",
            "checkpoint_every",
            "log_every",
        ]
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"BaseModelConfig.{name}: expected a positive integer, got {value!r}")
        for name in ("seed", "vae_steps", "decoder_steps", "unet_steps", "unet_warmup"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"BaseModelConfig.{name}: expected a non-negative integer, got {value!r}")
        levels = math.log2(self.vae_factor)
        if levels != int(levels) or len(self.vae_channels) != int(levels) + 1:
            raise ValueError(
                f"BaseModelConfig.vae_channels: a factor-{self.vae_factor} VAE needs log2(factor)+1 "
                f"levels, got {len(self.vae_channels)} ({self.vae_channels})"
            )
        latent = self.image_size // self.vae_factor
        down = 2 ** (len(self.unet_channels) - 1)
        if self.image_size % self.vae_factor or latent % down:
            raise ValueError(
                f"BaseModelConfig: image_size {self.image_size} / vae_factor {self.vae_factor} = latent {latent} "
                f"must be divisible by the UNet's downsampling {down} ({len(self.unet_channels)} levels)"
            )
        for name in ("vae_channels", "unet_channels"):
            chans = getattr(self, name)
            if not chans or any(c % self.norm_groups for c in chans):
                raise ValueError(
                    f"BaseModelConfig.{name}: {chans} must be multiples of norm_groups {self.norm_groups}"
                )
        if self.text_hidden % self.text_heads:
            raise ValueError(f"BaseModelConfig.text_hidden {self.text_hidden} is not divisible by text_heads")
        if self.context_length > 77:
            raise ValueError(f"BaseModelConfig.context_length {self.context_length} exceeds CLIP's 77 tokens")
        if self.caption_order not in CAPTION_ORDERS:
            raise ValueError(
                f"BaseModelConfig.caption_order: {self.caption_order!r} is not one of {CAPTION_ORDERS}"
            )
        for name in ("caption_full_prob", "prefix_prob", "uncond_prob", "pattern_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(
                    f"BaseModelConfig.{name}: expected a probability, got {getattr(self, name)!r}"
                )
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"BaseModelConfig.ema_decay: expected [0, 1), got {self.ema_decay!r}")
        if self.beta_schedule not in BETA_SCHEDULES:
            raise ValueError(
                f"BaseModelConfig.beta_schedule: {self.beta_schedule!r} is not one of {BETA_SCHEDULES}"
            )
        if not 0.0 < self.beta_start < self.beta_end < 1.0:
            raise ValueError(
                f"BaseModelConfig: expected 0 < beta_start < beta_end < 1, got {self.beta_start!r}, {self.beta_end!r}"
            )
        if self.timestep_spacing not in TIMESTEP_SPACINGS:
            raise ValueError(
                f"BaseModelConfig.timestep_spacing: {self.timestep_spacing!r} is not one of {TIMESTEP_SPACINGS}"
            )
        if self.export_dtype not in ("float16", "float32"):
            raise ValueError(
                f"BaseModelConfig.export_dtype: expected 'float16' or 'float32', got {self.export_dtype!r}"
            )

    def scheduler_config(self) -> dict[str, Any]:
        """The diffusers scheduler config of the model: SD-1.5's, with this noise schedule."""
        from baselines.sd15 import SD15_SCHEDULER_CONFIG

        return {
            **SD15_SCHEDULER_CONFIG,
            "beta_schedule": self.beta_schedule,
            "beta_start": self.beta_start,
            "beta_end": self.beta_end,
            "timestep_spacing": self.timestep_spacing,
        }

    @property
    def latent_size(self) -> int:
        """Side of the latent grid (``image_size // vae_factor``)."""
        return self.image_size // self.vae_factor

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BaseModelConfig:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: an unknown key or a bad value.
        """
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(f"BaseModelConfig: unknown settings {unknown}")
        kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**kwargs)

    def replace(self, **changes: Any) -> BaseModelConfig:
        """A copy with some fields changed (validated again).

        Raises:
            ValueError: an unknown field or a bad value.
        """
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"BaseModelConfig: unknown settings {unknown}")
        return dataclasses.replace(self, **changes)


PRESETS: Mapping[str, BaseModelConfig] = {
    "default": BaseModelConfig(),
    "tiny": BaseModelConfig(
        image_size=16,
        vae_channels=(8, 8),
        text_hidden=16,
        text_layers=1,
        text_heads=2,
        text_intermediate=32,
        context_length=32,
        unet_channels=(8, 16),
        unet_attention_heads=2,
        dataset_size=24,
        vae_steps=2,
        vae_batch=4,
        decoder_steps=1,
        unet_steps=3,
        unet_batch=4,
        unet_warmup=1,
        checkpoint_every=1,
        log_every=1,
    ),
}
