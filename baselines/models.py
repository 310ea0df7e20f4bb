"""Model components: the pieces every method needs, the SD-1.5 architecture, and model loading.

Nothing here downloads. ``load_model`` resolves ``sd15-arch`` (SD-1.5 architecture, random weights),
``tiny`` (the test pipeline), a local ``save_pretrained`` folder, or a hub id already in the local cache.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# Public SD-1.5 configs (stable-diffusion-v1-5/stable-diffusion-v1-5: unet/, text_encoder/, vae/, scheduler/).
SD15_UNET_CONFIG: dict[str, Any] = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 2,
    "block_out_channels": (320, 640, 1280, 1280),
    "down_block_types": (
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
    "act_fn": "silu",
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "mid_block_scale_factor": 1,
    "center_input_sample": False,
}
SD15_TEXT_CONFIG: dict[str, Any] = {
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "projection_dim": 768,
    "layer_norm_eps": 1e-5,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "pad_token_id": 1,
}
SD15_VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "block_out_channels": (128, 256, 512, 512),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "sample_size": 512,
    "act_fn": "silu",
}
SD15_SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "prediction_type": "epsilon",
}

MODEL_ALIASES = ("sd15-arch", "tiny", "toy")


@dataclass
class Components:
    """The parts of a Stable Diffusion pipeline that methods use.

    ``vae`` may be ``None`` (parameter counting and step timing need only the UNet and text encoder).
    """

    unet: Any
    text_encoder: Any
    tokenizer: Any
    scheduler: Any
    vae: Any = None

    @property
    def device(self) -> Any:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> Any:
        return next(self.unet.parameters()).dtype

    @property
    def vae_scale_factor(self) -> int:
        if self.vae is None:
            return 8
        return int(2 ** (len(self.vae.config.block_out_channels) - 1))

    @property
    def native_resolution(self) -> int:
        """Image side length the UNet was built for (``sample_size`` × VAE factor)."""
        return int(self.unet.config.sample_size) * self.vae_scale_factor

    @property
    def scaling_factor(self) -> float:
        if self.vae is None:
            return 0.18215
        return float(getattr(self.vae.config, "scaling_factor", 0.18215))


def components_of(pipeline: Any) -> Components:
    """The :class:`Components` of a diffusers pipeline, a :class:`Components`, or any object with
    ``unet``, ``text_encoder``, ``tokenizer``, ``scheduler`` (and optionally ``vae``) attributes.

    Raises:
        TypeError: a required component is missing.
    """
    if isinstance(pipeline, Components):
        return pipeline
    inner = getattr(pipeline, "components_obj", None)
    if isinstance(inner, Components):
        return inner
    missing = [
        n for n in ("unet", "text_encoder", "tokenizer", "scheduler") if getattr(pipeline, n, None) is None
    ]
    if missing:
        raise TypeError(
            f"{type(pipeline).__name__} is not a Stable Diffusion pipeline: missing {', '.join(missing)} "
            "(expected a diffusers StableDiffusionPipeline or baselines.models.Components)"
        )
    return Components(
        unet=pipeline.unet,
        text_encoder=pipeline.text_encoder,
        tokenizer=pipeline.tokenizer,
        scheduler=pipeline.scheduler,
        vae=getattr(pipeline, "vae", None),
    )


def build_sd15_architecture(seed: int = 0, *, with_vae: bool = False, device: str = "cpu") -> Components:
    """SD-1.5's UNet and CLIP ViT-L/14 text encoder (and optionally the VAE) with random weights.

    For parameter counting and timing only: nothing is downloaded; the tokenizer is the offline CLIP
    BPE tokenizer. Takes ~10 s and ~4 GiB on a CPU.
    """
    import torch
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from baselines.tiny import clip_tokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**SD15_UNET_CONFIG)
    text_encoder = CLIPTextModel(CLIPTextConfig(**SD15_TEXT_CONFIG))
    vae = AutoencoderKL(**SD15_VAE_CONFIG) if with_vae else None
    modules: list[Any] = [unet, text_encoder, vae]
    for m in modules:
        if m is not None:
            m.to(device).eval().requires_grad_(False)
    return Components(
        unet=unet,
        text_encoder=text_encoder,
        tokenizer=clip_tokenizer(),
        scheduler=DDPMScheduler.from_config(SD15_SCHEDULER_CONFIG),
        vae=vae,
    )


def load_model(
    id_or_path: str, *, device: str = "cpu", torch_dtype: Any = None, progress: bool = True
) -> Any:
    """Load a base model without downloading anything.

    Args:
        id_or_path: ``sd15-arch`` (random-weight SD-1.5 UNet + text encoder, a :class:`Components`),
            ``tiny`` (the test pipeline), a folder written by ``save_pretrained``, or a hub id that is
            already in the local Hugging Face cache.
        device: where to put the modules.
        torch_dtype: optional dtype for ``from_pretrained``.
        progress: show diffusers' and transformers' loading progress bars (``False`` hides them for
            this call and restores the libraries' setting afterwards).

    Returns:
        A diffusers ``StableDiffusionPipeline`` (or :class:`Components` for ``sd15-arch``).

    Raises:
        FileNotFoundError: a hub id that is not in the local cache, or a path that does not exist.
    """
    if id_or_path == "sd15-arch":
        return build_sd15_architecture(device=device)
    if id_or_path == "tiny":
        from baselines.tiny import make_tiny_pipeline

        return make_tiny_pipeline().to(device)
    if id_or_path == "toy":
        from benchmark.toy.assets import base_model_dir

        id_or_path = str(base_model_dir())
    from diffusers import StableDiffusionPipeline

    path = Path(id_or_path).expanduser()
    looks_like_path = path.exists() or id_or_path.startswith((".", "/", "~")) or id_or_path.count("/") > 1
    if looks_like_path and not (path / "model_index.json").is_file():
        raise FileNotFoundError(f"{id_or_path}: no model_index.json (expected a save_pretrained folder)")
    kwargs: dict[str, Any] = {
        "safety_checker": None,
        "requires_safety_checker": False,
        "local_files_only": True,
    }
    if torch_dtype is not None:
        kwargs["torch_dtype"] = torch_dtype
    try:
        with _loading_bars(progress):
            pipe = StableDiffusionPipeline.from_pretrained(
                str(path) if looks_like_path else id_or_path, **kwargs
            )
    except OSError as exc:
        raise FileNotFoundError(
            f"model {id_or_path!r} is not available locally (nothing is downloaded implicitly; "
            f"use a local folder, 'tiny' or 'sd15-arch'): {exc}"
        ) from exc
    return pipe.to(device)


@contextmanager
def _loading_bars(show: bool) -> Iterator[None]:
    """Hide diffusers' and transformers' loading bars inside the block unless ``show``; restore after."""
    if show:
        yield
        return
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    was = (diffusers_logging.is_progress_bar_enabled(), transformers_logging.is_progress_bar_enabled())
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was[0]:
            diffusers_logging.enable_progress_bar()
        if was[1]:
            transformers_logging.enable_progress_bar()
