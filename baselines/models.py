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

    from baselines.sd15 import SD15_SCHEDULER_CONFIG, SD15_TEXT_CONFIG, SD15_UNET_CONFIG, SD15_VAE_CONFIG
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
    id_or_path: str,
    *,
    device: str = "cpu",
    torch_dtype: Any = None,
    progress: bool = True,
    revision: str | None = None,
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
        revision: for a hub id, the commit to load from the local cache (None: the cached ``main``).

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
    if revision is not None and not looks_like_path:
        kwargs["revision"] = revision
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
