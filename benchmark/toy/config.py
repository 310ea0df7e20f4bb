"""Settings of the toy base model: architecture sizes, captions, data and the three training stages.

:data:`PRESETS` holds ``default`` (the shipped model's recipe, sized for about two hours on a 2-core
CPU) and ``tiny`` (a few-second configuration for tests). Every field is recorded in the training
record; a resumed run must use the same settings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, model_validator

from benchmark.data.schema import describe, field_path

Count = Annotated[int, Field(ge=0)]
Positive = Annotated[int, Field(ge=1)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
# channel lists are tuples; a list (JSON, --set) is taken too, each entry a strict integer
Channels = Annotated[tuple[Annotated[int, Strict(), Field(ge=1)], ...], Field(strict=False, min_length=1)]


class BaseModelConfig(BaseModel):
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

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    seed: Count = 0
    image_size: Positive = 32
    # VAE
    vae_factor: Positive = 2
    vae_channels: Channels = (32, 64)
    vae_layers_per_block: Positive = 1
    latent_channels: Positive = 4
    # text encoder
    text_hidden: Positive = 96
    text_layers: Positive = 3
    text_heads: Positive = 4
    text_intermediate: Positive = 384
    context_length: Annotated[int, Field(ge=1, le=77)] = 32  # CLIP's 77 tokens at most
    # UNet
    unet_channels: Channels = (32, 64, 128)
    unet_layers_per_block: Positive = 1
    unet_attention_heads: Positive = 4
    unet_top_attention: bool = False
    norm_groups: Positive = 8
    # noise schedule (saved as the exported model's scheduler config)
    beta_schedule: Literal["linear", "scaled_linear"] = "scaled_linear"
    beta_start: float = 0.00085
    beta_end: float = 0.012
    timestep_spacing: Literal["leading", "trailing"] = "leading"
    # captions and data
    caption_order: Literal["position_first", "position_last"] = "position_first"
    caption_full_prob: Probability = 0.6
    prefix_prob: Probability = 0.2
    uncond_prob: Probability = 0.1
    pattern_prob: Probability = 0.5
    dataset_size: Positive = 40000
    # stage: VAE
    vae_steps: Count = 1500
    vae_batch: Positive = 32
    vae_lr: float = 1e-3
    kl_weight: float = 1e-6
    edge_weight: float = 0.5
    # stage: decoder-only fine-tune
    decoder_steps: Count = 500
    decoder_lr: float = 3e-4
    # stage: UNet + text encoder
    unet_steps: Count = 8000
    unet_batch: Positive = 64
    unet_lr: float = 1e-3
    unet_warmup: Count = 200
    weight_decay: float = 1e-2
    ema_decay: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.999
    grad_clip: float = 1.0
    # bookkeeping
    checkpoint_every: Positive = 200
    log_every: Positive = 50
    export_dtype: Literal["float16", "float32"] = "float16"

    def __init__(self, **settings: Any) -> None:
        """Validate ``settings`` (the fields above; others are refused).

        Raises:
            ValueError: one line naming the field and what was expected.
        """
        try:
            super().__init__(**settings)
        except ValidationError as err:
            raise ValueError(_one_line(err)) from None

    @model_validator(mode="after")
    def _shapes_fit(self) -> BaseModelConfig:
        """The rules across fields: the VAE, UNet and attention sizes fit together, betas are ordered."""
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
            if any(c % self.norm_groups for c in chans):
                raise ValueError(
                    f"BaseModelConfig.{name}: {chans} must be multiples of norm_groups {self.norm_groups}"
                )
        if self.text_hidden % self.text_heads:
            raise ValueError(f"BaseModelConfig.text_hidden {self.text_hidden} is not divisible by text_heads")
        if not 0.0 < self.beta_start < self.beta_end < 1.0:
            raise ValueError(
                f"BaseModelConfig: expected 0 < beta_start < beta_end < 1, got {self.beta_start!r}, {self.beta_end!r}"
            )
        return self

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
        """JSON-ready settings (tuples as lists), in field order."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.model_dump().items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BaseModelConfig:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: an unknown key or a bad value.
        """
        return cls(**data)

    def replace(self, **changes: Any) -> BaseModelConfig:
        """A copy with some fields changed (validated again).

        Raises:
            ValueError: an unknown field or a bad value.
        """
        return type(self)(**{**self.model_dump(), **changes})


def _one_line(err: ValidationError) -> str:
    """Pydantic's first error as this module's one-line message."""
    errors = err.errors(include_url=False)
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        return f"BaseModelConfig: unknown settings {unknown}"
    first = errors[0]
    if first["type"] == "value_error":  # a rule across fields: its message is complete
        return str(first["ctx"]["error"])
    name = field_path(first["loc"])
    return f"BaseModelConfig.{name}: expected {describe(first)}, got {first['input']!r}"


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
