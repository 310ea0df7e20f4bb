"""Weights the suites use, and the one explicit place where they are downloaded.

``overfit-bench models fetch NAME`` downloads through huggingface_hub (respecting ``HF_HUB_OFFLINE``);
everything else in the package only reads the local cache. Revisions are pinned commits (the same ones
the ``sd15`` evaluation profile loads) where a public record of the commit was found; the DINO weights
track ``main``, and every row computed with them records the commit actually loaded in its backbone tag
(``dino@<commit>``), so rows of other weights never share an identity with them.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelEntry:
    """A downloadable model: Hugging Face repo, revision and the files a suite needs."""

    name: str
    repo_id: str
    revision: str
    files: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    description: str = ""


MODELS: tuple[ModelEntry, ...] = (
    ModelEntry(
        name="sd15",
        repo_id="stable-diffusion-v1-5/stable-diffusion-v1-5",
        revision="451f4fe16113bff5a5d2269ed5ad43b0592e9a14",
        files=(
            "model_index.json",
            "scheduler/scheduler_config.json",
            "text_encoder/config.json",
            "text_encoder/model.safetensors",
            "tokenizer/merges.txt",
            "tokenizer/special_tokens_map.json",
            "tokenizer/tokenizer_config.json",
            "tokenizer/vocab.json",
            "unet/config.json",
            "unet/diffusion_pytorch_model.safetensors",
            "vae/config.json",
            "vae/diffusion_pytorch_model.safetensors",
        ),
        aliases=("stable-diffusion-v1-5/stable-diffusion-v1-5", "sd-1.5"),
        description="Stable Diffusion v1.5 (diffusers layout, fp32 safetensors)",
    ),
    ModelEntry(
        name="clip-vit-b-32",
        repo_id="timm/vit_base_patch32_clip_224.openai",
        revision="a6f597a30f7b82c51704746581f9a4e41421e878",
        files=("open_clip_model.safetensors",),
        aliases=("ViT-B-32", "ViT-B-32-quickgelu"),
        description="OpenAI CLIP ViT-B/32 for open_clip (CLIP-T, CLIP-I, W2 features)",
    ),
    ModelEntry(
        name="dino-vit-s16",
        repo_id="timm/vit_small_patch16_224.dino",
        revision="main",
        files=("model.safetensors",),
        aliases=("vit_small_patch16_224.dino",),
        description="DINO ViT-S/16 for timm (DINO score)",
    ),
)


def find_model(name: str) -> ModelEntry:
    """The entry for a name or alias.

    Raises:
        KeyError: unknown name (with the closest known names).
    """
    for entry in MODELS:
        if name == entry.name or name in entry.aliases:
            return entry
    names = [e.name for e in MODELS] + [a for e in MODELS for a in e.aliases]
    close = difflib.get_close_matches(name, names, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(e.name for e in MODELS)}"
    raise KeyError(f"unknown model {name!r}{hint}")


def verify(entry: ModelEntry) -> dict[str, bool]:
    """Which of the entry's files are in the local Hugging Face cache (no network)."""
    from huggingface_hub import try_to_load_from_cache

    found = {}
    for f in entry.files:
        path: Any = try_to_load_from_cache(entry.repo_id, f, revision=entry.revision)
        found[f] = isinstance(path, str)
    return found


def fetch(entry: ModelEntry) -> str:
    """Download the entry's files (explicit; honours ``HF_HUB_OFFLINE``); returns the local snapshot folder.

    Raises:
        RuntimeError: offline mode or a download error, with the reason.
    """
    from huggingface_hub import snapshot_download

    try:
        return str(
            snapshot_download(entry.repo_id, revision=entry.revision, allow_patterns=list(entry.files))
        )
    except Exception as err:  # network, auth, offline mode: all reported the same way
        raise RuntimeError(f"could not fetch {entry.repo_id}@{entry.revision}: {err}") from err
