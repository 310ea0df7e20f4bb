"""A tiny Stable Diffusion pipeline for tests and the ``smoke`` suite, and the offline CLIP tokenizer.

The tiny pipeline has the SD architecture at a tiny size (64 px images, 16×16×4 latents, 7 cross-attention
layers of widths 32/64, a 2-layer CLIP text encoder over the real 49,408-token CLIP BPE vocabulary),
built from configs under a fixed seed. Nothing is downloaded.
"""

from __future__ import annotations

import copy
import functools
import gzip
import json
import tempfile
from pathlib import Path
from typing import Any

from baselines.sd15 import SD15_SCHEDULER_CONFIG

TINY_UNET_CONFIG: dict[str, Any] = {
    "sample_size": 16,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 1,
    "block_out_channels": (32, 64),
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "cross_attention_dim": 32,
    "attention_head_dim": 4,
    "norm_num_groups": 8,
}
TINY_VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "block_out_channels": (16, 32, 32),
    "down_block_types": ("DownEncoderBlock2D",) * 3,
    "up_block_types": ("UpDecoderBlock2D",) * 3,
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "sample_size": 64,
}
TINY_TEXT_CONFIG: dict[str, Any] = {
    "vocab_size": 49408,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 77,
    "bos_token_id": 49406,
    "eos_token_id": 49407,
    "pad_token_id": 49407,
}

_SPECIALS = ("<|startoftext|>", "<|endoftext|>")


def write_clip_tokenizer_files(directory: str | Path) -> Path:
    """Write ``vocab.json``, ``merges.txt`` and ``tokenizer_config.json`` for the CLIP BPE tokenizer.

    The vocabulary is open_clip's ``bpe_simple_vocab_16e6.txt.gz`` laid out as OpenAI CLIP does
    (bytes, bytes + ``</w>``, merges, start/end tokens), so ids match open_clip's and SD's tokenizer.

    Returns:
        The directory.
    """
    from open_clip.tokenizer import bytes_to_unicode, default_bpe

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    with gzip.open(default_bpe()) as f:
        merges = f.read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges] + list(_SPECIALS)
    (out / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}), encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "bos_token": _SPECIALS[0],
        "eos_token": _SPECIALS[1],
        "unk_token": _SPECIALS[1],
        "pad_token": _SPECIALS[1],
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return out


@functools.lru_cache(maxsize=1)
def _cached_tokenizer() -> Any:
    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory(prefix="overfit-bench-tok-") as tmp:
        return CLIPTokenizer.from_pretrained(str(write_clip_tokenizer_files(tmp)))


def clip_tokenizer() -> Any:
    """A transformers ``CLIPTokenizer`` (77 tokens) built offline from open_clip's BPE file (a fresh copy)."""
    return copy.deepcopy(_cached_tokenizer())


def make_tiny_pipeline(seed: int = 0) -> Any:
    """A tiny ``StableDiffusionPipeline`` (DDIM scheduler, SD-1.5 noise schedule) with weights drawn from ``seed``.

    Returns:
        The pipeline on CPU in float32, all modules in eval mode without gradients.
    """
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**TINY_UNET_CONFIG)
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(**TINY_VAE_CONFIG)
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(CLIPTextConfig(**TINY_TEXT_CONFIG))
    modules: list[Any] = [unet, vae, text_encoder]
    for m in modules:
        m.eval().requires_grad_(False)
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=clip_tokenizer(),
        unet=unet,
        scheduler=DDIMScheduler.from_config(SD15_SCHEDULER_CONFIG),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def save_tiny_pipeline(directory: str | Path, seed: int = 0) -> Path:
    """Build the tiny pipeline and ``save_pretrained`` it to ``directory`` (safetensors).

    Returns:
        The directory; load it back with :func:`baselines.models.load_model`.
    """
    out = Path(directory)
    make_tiny_pipeline(seed).save_pretrained(str(out), safe_serialization=True)
    return out
