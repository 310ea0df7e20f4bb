"""The toy base model's modules (SD architecture at small size) and its export as a diffusers pipeline.

``AutoencoderKL`` + ``CLIPTextModel`` with the real CLIP BPE tokenizer + ``UNet2DConditionModel`` with
cross-attention, exactly the classes Stable Diffusion uses, so every baseline runs on the exported
folder unchanged (``baselines.models.load_model(folder)``).
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from benchmark.io import atomic_write, atomic_write_json
from benchmark.toy.config import BaseModelConfig
from benchmark.toy.io import replace_dir, write_sha256_manifest
from benchmark.toy.world import world_description

logger = logging.getLogger(__name__)

WORLD_FILE = "toy_world.json"
RECORD_FILE = "training_record.json"
CLIP_BOS, CLIP_EOS = 49406, 49407


def vae_config(cfg: BaseModelConfig) -> dict[str, Any]:
    """``AutoencoderKL`` keyword arguments (``scaling_factor`` is set after training)."""
    levels = len(cfg.vae_channels)
    return {
        "in_channels": 3,
        "out_channels": 3,
        "latent_channels": cfg.latent_channels,
        "block_out_channels": tuple(cfg.vae_channels),
        "down_block_types": ("DownEncoderBlock2D",) * levels,
        "up_block_types": ("UpDecoderBlock2D",) * levels,
        "layers_per_block": cfg.vae_layers_per_block,
        "norm_num_groups": cfg.norm_groups,
        "sample_size": cfg.image_size,
    }


def text_config(cfg: BaseModelConfig) -> dict[str, Any]:
    """``CLIPTextConfig`` keyword arguments (the 49,408-token CLIP vocabulary, ``context_length`` positions)."""
    return {
        "vocab_size": 49408,
        "hidden_size": cfg.text_hidden,
        "intermediate_size": cfg.text_intermediate,
        "num_hidden_layers": cfg.text_layers,
        "num_attention_heads": cfg.text_heads,
        "max_position_embeddings": cfg.context_length,
        "hidden_act": "quick_gelu",
        "bos_token_id": CLIP_BOS,
        "eos_token_id": CLIP_EOS,
        "pad_token_id": CLIP_EOS,
    }


def unet_config(cfg: BaseModelConfig) -> dict[str, Any]:
    """``UNet2DConditionModel`` keyword arguments: cross-attention at every level (the top level can
    opt out with ``unet_top_attention=False``), cross-attention width = text width."""
    levels = len(cfg.unet_channels)
    down = ["CrossAttnDownBlock2D"] * levels
    up = ["CrossAttnUpBlock2D"] * levels
    if not cfg.unet_top_attention:
        down[0], up[-1] = "DownBlock2D", "UpBlock2D"
    return {
        "sample_size": cfg.latent_size,
        "in_channels": cfg.latent_channels,
        "out_channels": cfg.latent_channels,
        "layers_per_block": cfg.unet_layers_per_block,
        "block_out_channels": tuple(cfg.unet_channels),
        "down_block_types": tuple(down),
        "up_block_types": tuple(up),
        "cross_attention_dim": cfg.text_hidden,
        "attention_head_dim": cfg.unet_attention_heads,
        "norm_num_groups": cfg.norm_groups,
    }


def build_vae(cfg: BaseModelConfig) -> Any:
    """A fresh ``AutoencoderKL`` (weights from ``cfg.seed``)."""
    from diffusers import AutoencoderKL

    torch.manual_seed(cfg.seed)
    return AutoencoderKL(**vae_config(cfg))


def build_text_encoder(cfg: BaseModelConfig) -> Any:
    """A fresh ``CLIPTextModel`` (weights from ``cfg.seed + 1``)."""
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(cfg.seed + 1)
    return CLIPTextModel(CLIPTextConfig(**text_config(cfg)))


def build_unet(cfg: BaseModelConfig) -> Any:
    """A fresh ``UNet2DConditionModel`` (weights from ``cfg.seed + 2``)."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(cfg.seed + 2)
    return UNet2DConditionModel(**unet_config(cfg))


def build_tokenizer(cfg: BaseModelConfig) -> Any:
    """The offline CLIP BPE tokenizer with ``model_max_length = cfg.context_length``."""
    from baselines.tiny import clip_tokenizer

    tok = clip_tokenizer()
    tok.model_max_length = cfg.context_length
    return tok


def noise_scheduler(cfg: BaseModelConfig) -> Any:
    """The training noise schedule (``DDPMScheduler`` with ``cfg.scheduler_config()``)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_config(cfg.scheduler_config())


def make_pipeline(vae: Any, text_encoder: Any, unet: Any, cfg: BaseModelConfig) -> Any:
    """A ``StableDiffusionPipeline`` (DDIM scheduler with the config's noise schedule, no safety checker)."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=build_tokenizer(cfg),
        unet=unet,
        scheduler=DDIMScheduler.from_config(cfg.scheduler_config()),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def export_pipeline(
    folder: str | Path,
    vae: Any,
    text_encoder: Any,
    unet: Any,
    cfg: BaseModelConfig,
    record: Mapping[str, Any],
) -> Path:
    """Write the trained model as a ``save_pretrained`` folder, atomically.

    The folder holds the pipeline (safetensors), ``toy_world.json`` (the world, caption order and image
    size the model was trained for), ``training_record.json`` and ``SHA256SUMS`` over every file. With
    ``cfg.export_dtype == "float16"`` the weights are *stored* in float16 while the configs keep
    float32, so ``from_pretrained`` (diffusers and transformers alike) loads every module in float32 —
    a pipeline with mixed dtypes would fail on a CPU. The modules passed in are not modified.

    Returns:
        The folder.
    """
    import copy

    dst = Path(folder)
    dst.parent.mkdir(parents=True, exist_ok=True)
    vae, text_encoder, unet = (
        copy.deepcopy(m).float().eval().requires_grad_(False) for m in (vae, text_encoder, unet)
    )
    pipe = make_pipeline(vae, text_encoder, unet, cfg)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    tmp.chmod(0o755)
    try:
        pipe.save_pretrained(str(tmp), safe_serialization=True)
        if cfg.export_dtype == "float16":
            for weights in sorted(tmp.rglob("*.safetensors")):
                store_float16(weights)
        world = {
            **world_description(),
            "image_size": cfg.image_size,
            "caption_order": cfg.caption_order,
            "context_length": cfg.context_length,
            "latent_size": cfg.latent_size,
        }
        atomic_write_json(tmp / WORLD_FILE, world)
        atomic_write_json(tmp / RECORD_FILE, dict(record))
        write_sha256_manifest(tmp)
        replace_dir(tmp, dst)
    finally:
        if tmp.exists():
            import shutil

            shutil.rmtree(tmp)
    logger.info("exported the toy base model to %s", dst)
    return dst


def store_float16(path: str | Path) -> Path:
    """Rewrite a safetensors file with its floating-point tensors in float16 (in place, atomically).

    Returns:
        The path.

    Raises:
        ValueError: a weight overflows float16 (its name is given).
    """
    from safetensors.torch import load_file, save_file

    p = Path(path)
    tensors = load_file(str(p))
    out = {}
    for name, t in tensors.items():
        if t.is_floating_point():
            half = t.to(torch.float16)
            if not bool(torch.isfinite(half).all()):
                raise ValueError(f"{p}: weight {name!r} overflows float16")
            out[name] = half.contiguous()
        else:
            out[name] = t
    return atomic_write(p, lambda tmp: save_file(out, str(tmp), metadata={"format": "pt"}))


def read_world(folder: str | Path) -> dict[str, Any]:
    """The ``toy_world.json`` of an exported toy model.

    Raises:
        FileNotFoundError: the folder has none (not a toy model export).
    """
    path = Path(folder) / WORLD_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (is {folder} a toy base-model export?)")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
