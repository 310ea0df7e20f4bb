"""``CustomizedPipeline``: what ``Method.load`` returns.

It generates images for (prompts, seeds) with DDIM, exposes the conditional noise predictor that
``metrics.lfd`` takes (``eps(z_t, t, prompts)``), encodes/decodes images, and renders ``{concept}``
slots its own way. The base model's components are shared and never modified: a method supplies its
own UNet (DreamBooth, LoRA), its own prompt encoder (extra tokens, concept marks) and/or a runner
that installs attention processors around each UNet call (Infusion, Custom Diffusion).

Counters (for the harness's cost accounting): ``eps_calls``/``eps_rows`` count calls and rows of
:meth:`CustomizedPipeline.eps`; ``unet_rows`` counts every row that went through a UNet, including
generation and Infusion's base-stream partner rows.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from baselines.models import Components, components_of
from baselines.processors import AttentionState, use_processors
from baselines.prompts import EncodedPrompts, PromptEncoder, render_template, route_class_word

logger = logging.getLogger(__name__)

DEFAULT_INFERENCE: dict[str, Any] = {"steps": 50, "guidance": 7.5, "eta": 0.0}


class UNetRunner:
    """Runs a UNet on encoded prompts. The default runner is a plain conditional UNet call; subclasses
    install processors or change the batch (Infusion's dual stream)."""

    def __init__(
        self, processors: Mapping[str, Any] | None = None, state: AttentionState | None = None
    ) -> None:
        self.processors = dict(processors or {})
        self.state = state or AttentionState()
        self._depth = 0

    @contextlib.contextmanager
    def installed(self, unet: Any) -> Iterator[None]:
        """Hold this runner's processors on ``unet`` for the block (reentrant). The per-call state
        survives until the outermost block ends, so backward recomputation still sees it."""
        self._depth += 1
        try:
            with use_processors(unet, self.processors):
                yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.state.clear()

    def prepare(
        self, z_t: torch.Tensor, t: torch.Tensor, cond: EncodedPrompts
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Set the processors' per-call state and return the UNet inputs (latents, timesteps, context)."""
        self.state.token_mask = None
        self.state.query_source = None
        return z_t, t, cond.embeddings

    def __call__(
        self, unet: Any, z_t: torch.Tensor, t: torch.Tensor, cond: EncodedPrompts
    ) -> tuple[torch.Tensor, int]:
        """Returns (eps for the input rows, number of rows the UNet ran on)."""
        z_in, t_in, ctx = self.prepare(z_t, t, cond)
        with self.installed(unet):
            out = unet(z_in, t_in, encoder_hidden_states=ctx.to(z_in.dtype)).sample
        return out[: z_t.shape[0]], int(z_in.shape[0])


@dataclass
class GenerationOutput:
    """Generated PIL images (one per (prompt, seed)) and, if requested, the final latents [N, C, h, w]
    (float32, CPU; the UNet's latent space, i.e. already multiplied by the VAE scaling factor)."""

    images: list[Any]
    latents: torch.Tensor | None = None


@dataclass(eq=False)
class CustomizedPipeline:
    """A base model plus one method's customization. See the module docstring.

    Attributes:
        components: the base model (shared).
        method: the method's name.
        slot: what ``{concept}`` becomes in this pipeline's prompts.
        class_noun: the concept's class noun (for ``{class}`` slots); may be ``None`` for ``base``.
        unet: the UNet to run (the base UNet unless the method trains its own).
        prompt_encoder: tokenizes/encodes prompts (extra tokens, concept marks).
        runner: runs the UNet (processors, dual stream).
        inference: default ``steps``/``guidance``/``eta`` for :meth:`generate`.
    """

    components: Components = field(repr=False)
    method: str = "base"
    slot: str = ""
    class_noun: str | None = None
    unet: Any = field(default=None, repr=False)
    prompt_encoder: PromptEncoder | None = field(default=None, repr=False)
    runner: UNetRunner = field(default_factory=UNetRunner, repr=False)
    inference: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_INFERENCE))
    # mark every whole-word occurrence of ``class_noun`` in a prompt without marks, so a method that acts on
    # marked tokens acts on the bare class word too (Infusion's released inference routing)
    route_class_word: bool = False
    meta: dict[str, Any] = field(default_factory=dict, repr=False)
    eps_calls: int = 0
    eps_rows: int = 0
    unet_rows: int = 0

    def __post_init__(self) -> None:
        self.components = components_of(self.components)
        if self.unet is None:
            self.unet = self.components.unet
        if self.prompt_encoder is None:
            self.prompt_encoder = PromptEncoder(self.components.tokenizer, self.components.text_encoder)
        self._training_scheduler: Any = None

    # -- properties -------------------------------------------------------------------------------
    @property
    def components_obj(self) -> Components:
        return self.components

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    @property
    def training_scheduler(self) -> Any:
        """A DDPM scheduler with the base model's noise schedule (training and LFD noising)."""
        if self._training_scheduler is None:
            from diffusers import DDPMScheduler

            self._training_scheduler = DDPMScheduler.from_config(self.components.scheduler.config)
        return self._training_scheduler

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        """ᾱ_t indexed by training timestep (float64, CPU) — what ``metrics.lfd`` takes."""
        return self.training_scheduler.alphas_cumprod.detach().to("cpu", torch.float64)

    @property
    def num_train_timesteps(self) -> int:
        return int(self.training_scheduler.config.num_train_timesteps)

    # -- prompts ----------------------------------------------------------------------------------
    def render(self, template: str) -> str:
        """A suite template with ``{concept}`` rendered this pipeline's way (``{class}`` → class noun)."""
        return render_template(template, self.slot or (self.class_noun or ""), self.class_noun)

    def encode_prompts(self, prompts: Sequence[str]) -> EncodedPrompts:
        """Text conditioning for ``prompts`` (concept marks honoured; with ``route_class_word``, a prompt
        without marks has every whole-word occurrence of the class noun marked)."""
        if self.prompt_encoder is None:
            raise RuntimeError("this pipeline has no prompt encoder (set in __post_init__)")
        if self.route_class_word and self.class_noun:
            prompts = [route_class_word(p, self.class_noun) for p in prompts]
        return self.prompt_encoder.encode(list(prompts))

    # -- noise prediction -------------------------------------------------------------------------
    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Hold the runner's processors installed for the block (use around training so that
        gradient-checkpoint recomputation in backward sees them)."""
        with self.runner.installed(self.unet):
            yield

    def predict(
        self, z_t: torch.Tensor, t: torch.Tensor, cond: EncodedPrompts | Sequence[str]
    ) -> torch.Tensor:
        """Noise prediction for rows of (z_t, t, conditioning); differentiable (used by training).

        Raises:
            ValueError: mismatched batch sizes.
        """
        if not isinstance(cond, EncodedPrompts):
            cond = self.encode_prompts(cond)
        if z_t.shape[0] != len(cond) or t.shape[0] != z_t.shape[0]:
            raise ValueError(f"batch mismatch: z_t {z_t.shape[0]} rows, t {t.shape[0]}, prompts {len(cond)}")
        out, rows = self.runner(self.unet, z_t, t.to(z_t.device), cond)
        self.unet_rows += rows
        return out

    @torch.no_grad()
    def eps(self, z_t: torch.Tensor, t: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """Conditional noise prediction ε(z_t, t, prompt) without guidance — ``metrics.lfd.EpsFn``.

        Prompts are used as given (render templates first with :meth:`render`).
        """
        self.eps_calls += 1
        self.eps_rows += int(z_t.shape[0])
        z = z_t.to(self.device, self.dtype)
        out = self.predict(z, t.to(self.device).long(), list(prompts))
        return out.to(z_t.dtype)

    def reset_counters(self) -> None:
        self.eps_calls = self.eps_rows = self.unet_rows = 0

    # -- images and latents -----------------------------------------------------------------------
    def _vae(self) -> Any:
        if self.components.vae is None:
            raise ValueError("this model has no VAE (built for counting/timing only)")
        return self.components.vae

    @torch.no_grad()
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Latents (posterior mean × scaling factor) of images [N, 3, H, W] in [-1, 1]."""
        vae = self._vae()
        dist = vae.encode(images.to(vae.device, vae.dtype)).latent_dist
        return dist.mean * self.components.scaling_factor

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> list[Any]:
        """PIL images from UNet-space latents [N, C, h, w]."""
        from PIL import Image

        vae = self._vae()
        x = vae.decode(latents.to(vae.device, vae.dtype) / self.components.scaling_factor).sample
        x = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        return [Image.fromarray(a) for a in x]

    def initial_latents(self, seeds: Sequence[int], height: int, width: int) -> torch.Tensor:
        """Starting noise: row i drawn on CPU from ``torch.Generator().manual_seed(seeds[i])``."""
        channels = int(self.unet.config.in_channels)
        f = self.components.vae_scale_factor
        shape = (channels, height // f, width // f)
        return torch.stack(
            [torch.randn(shape, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
        )

    @torch.no_grad()
    def _denoise(
        self,
        prompts: list[str],
        seeds: list[int],
        steps: int,
        guidance: float,
        eta: float,
        height: int,
        width: int,
    ) -> torch.Tensor:
        from diffusers import DDIMScheduler

        scheduler = DDIMScheduler.from_config(self.components.scheduler.config)
        scheduler.set_timesteps(steps, device=self.device)
        latents = self.initial_latents(seeds, height, width).to(self.device, self.dtype)
        latents = latents * scheduler.init_noise_sigma
        cond = self.encode_prompts(prompts)
        use_cfg = guidance > 1.0
        if use_cfg:
            cond = EncodedPrompts.cat([self.encode_prompts([""] * len(prompts)), cond])
        generator = torch.Generator(device=self.device).manual_seed(int(seeds[0])) if eta > 0 else None
        for t in scheduler.timesteps:
            z = torch.cat([latents, latents]) if use_cfg else latents
            z = scheduler.scale_model_input(z, t)
            tt = torch.full((z.shape[0],), int(t), device=self.device, dtype=torch.long)
            eps = self.predict(z, tt, cond)
            if use_cfg:
                uncond, c = eps.chunk(2)
                eps = uncond + guidance * (c - uncond)
            latents = scheduler.step(eps, t, latents, eta=eta, generator=generator).prev_sample
        return latents

    def generate(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        *,
        steps: int | None = None,
        guidance: float | None = None,
        eta: float | None = None,
        height: int | None = None,
        width: int | None = None,
        batch_size: int = 4,
        return_latents: bool = False,
        decode: bool = True,
        progress: bool = False,
    ) -> GenerationOutput:
        """Images for each (prompt, seed) pair with DDIM and classifier-free guidance.

        The unconditional branch is the empty prompt with no concept marks (so no residuals). With
        ``eta == 0`` (default) a fixed seed gives identical images on CPU; with ``eta > 0`` the
        sampler noise is drawn per batch and depends on the batch composition.

        Args:
            prompts, seeds: equal-length lists; prompts are used as given (render templates first).
            steps, guidance, eta: default to this pipeline's ``inference`` settings.
            height, width: default to the model's native resolution.
            batch_size: rows per UNet call (before CFG doubling).
            return_latents: also return the final latents; ``decode=False`` skips the VAE.

        Returns:
            :class:`GenerationOutput`.

        Raises:
            ValueError: mismatched lengths, bad sizes or settings.
        """
        prompts, seeds = list(prompts), [int(s) for s in seeds]
        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        steps = int(self.inference.get("steps", 50) if steps is None else steps)
        guidance = float(self.inference.get("guidance", 7.5) if guidance is None else guidance)
        eta = float(self.inference.get("eta", 0.0) if eta is None else eta)
        height = int(height or self.components.native_resolution)
        width = int(width or self.components.native_resolution)
        f = self.components.vae_scale_factor
        if steps < 1 or batch_size < 1 or height % f or width % f:
            raise ValueError(
                f"bad generation settings: steps={steps}, batch_size={batch_size}, size={height}x{width}"
            )
        from tqdm.auto import tqdm

        images: list[Any] = []
        latents: list[torch.Tensor] = []
        starts = range(0, len(prompts), batch_size)
        for start in tqdm(starts, desc=f"generate[{self.method}]", disable=not progress):
            sl = slice(start, start + batch_size)
            lat = self._denoise(prompts[sl], seeds[sl], steps, guidance, eta, height, width)
            if return_latents or not decode:
                latents.append(lat.detach().to("cpu", torch.float32))
            if decode:
                images.extend(self.decode_latents(lat))
        return GenerationOutput(images=images, latents=torch.cat(latents) if latents else None)

    def sample_latents(self, prompts: Sequence[str], seeds: Sequence[int], **kwargs: Any) -> torch.Tensor:
        """Final latents z0 [N, C, h, w] (float32, CPU) for (prompt, seed) pairs, without decoding —
        the base-model samples that LFD noises. Keyword arguments as :meth:`generate`."""
        out = self.generate(prompts, seeds, decode=False, return_latents=True, **kwargs)
        if out.latents is None:
            raise RuntimeError("generate() returned no latents although return_latents=True")
        return out.latents
