"""The method interface (SPEC §4) and the shared ``fit``/``load`` machinery of built-in methods.

A method has ``fit(concept, pipeline, config, *, seed, progress=True) -> Artifact``,
``load(artifact, pipeline) -> CustomizedPipeline`` and ``render(template, concept)``. Built-in methods
subclass :class:`Method` and implement one hook, :meth:`Method.customize`, which builds the customized
pipeline and its trainable tensors — the same code runs for training and for loading, so a loaded
artifact reproduces the trained model exactly. Outside methods only need the three calls
(:class:`baselines.contract.Method`).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from baselines.artifact import Artifact
from baselines.config import Recipe, config_hash, load_recipe, resolve_config
from baselines.data import ConceptInfo, class_images, concept_info, encode_latent_set, load_images, load_masks
from baselines.models import Components, components_of
from baselines.pipeline import CustomizedPipeline
from baselines.prompts import render_template
from baselines.training import KEEP_LAST, TrainConfig, TrainingData, TrainResult, train

logger = logging.getLogger(__name__)

# Keys that change how long a run lasts or where it saves, not what a given step computes.
_RESUME_NEUTRAL = ("steps", "checkpoint_every", "budget")


@dataclass
class Customization:
    """What :meth:`Method.customize` returns: the pipeline and the tensors it trains/loads
    (``params`` are exactly the artifact's tensors)."""

    pipeline: CustomizedPipeline
    params: dict[str, torch.Tensor] = field(default_factory=dict)


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _class_noun_of(concept: Any) -> str:
    if isinstance(concept, str):
        return concept
    noun = getattr(concept, "class_noun", None)
    if not isinstance(noun, str) or not noun:
        raise ValueError(f"expected a concept with a class_noun (or a class noun string), got {concept!r}")
    return noun


class Method:
    """Base class of built-in methods. Subclasses set ``name``, ``recipe_file`` and implement
    :meth:`customize`, :meth:`slot_text` and :meth:`trainable_shapes`."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    recipe_file: ClassVar[str] = ""
    trains: ClassVar[bool] = True
    summary: ClassVar[str] = ""

    def __init__(self) -> None:
        self._recipe: Recipe | None = None

    # -- recipe and config ------------------------------------------------------------------------
    @property
    def recipe(self) -> Recipe:
        if self._recipe is None:
            self._recipe = load_recipe(self.recipe_file)
        return self._recipe

    @property
    def description(self) -> str:
        """One line about the method (``summary``, else the recipe's description)."""
        return self.summary or self.recipe.description

    @property
    def source(self) -> str:
        return self.recipe.source

    def resolve_config(self, config: Any = None) -> dict[str, Any]:
        """Recipe defaults ← ``config['budget']`` overrides ← the rest of ``config``.

        Raises:
            ValueError: unknown key/budget (closest names suggested) or a wrong type.
        """
        return resolve_config(self.recipe, config)

    def config_hash(self, config: Any = None) -> str:
        """A stable sha256 of (method name, version, resolved config) — the harness's cache key."""
        return config_hash(self.name, self.version, self.resolve_config(config))

    # -- slot rendering ---------------------------------------------------------------------------
    def slot_text(self, class_noun: str, cfg: dict[str, Any]) -> str:
        """What ``{concept}`` becomes for this method."""
        return class_noun

    def render(self, template: str, concept: Any, config: Any = None) -> str:
        """A ``{concept}``/``{class}`` template rendered for ``concept`` (an object with
        ``class_noun``, or the class noun itself)."""
        noun = _class_noun_of(concept)
        return render_template(template, self.slot_text(noun, self.resolve_config(config)), noun)

    # -- hooks ------------------------------------------------------------------------------------
    def customize(
        self,
        comps: Components,
        cfg: dict[str, Any],
        class_noun: str,
        tensors: dict[str, torch.Tensor] | None,
        *,
        seed: int = 0,
    ) -> Customization:
        """Build the customized pipeline. ``tensors=None``: fresh trainable tensors (requires_grad;
        any random initialisation drawn from ``seed``); otherwise load ``tensors`` (an artifact's) frozen."""
        raise NotImplementedError

    def trainable_shapes(self, pipeline: Any, config: Any = None) -> dict[str, tuple[int, ...]]:
        """Names and shapes of the trained tensors for ``pipeline``'s architecture, computed from the
        method's definition without building it (for ``overfit-bench methods``)."""
        raise NotImplementedError

    def training_prompts(self, cfg: dict[str, Any], class_noun: str) -> list[str]:
        """The rendered training prompts (sampled uniformly)."""
        slot = self.slot_text(class_noun, cfg)
        return [render_template(t, slot, class_noun) for t in cfg["templates"]]

    # -- fit / load -------------------------------------------------------------------------------
    def fit(
        self,
        concept: Any,
        pipeline: Any,
        config: Any = None,
        *,
        seed: int,
        progress: bool = True,
        work_dir: str | Path | None = None,
    ) -> Artifact:
        """Train on ``concept`` and return the artifact.

        Args:
            concept: ``id``, ``class_noun``, ``images`` (paths), optional ``masks``.
            pipeline: the base model (left unchanged).
            config: overrides of the recipe (dict/dataclass, optional ``budget``).
            seed: seeds every random draw of training.
            work_dir: checkpoints and generated class images go here; a rerun resumes.

        Returns:
            :class:`Artifact` with the trained tensors, metadata (config, hash, eval losses) and the
            training log (per-step losses).

        Raises:
            ValueError: bad concept or config.
        """
        cfg = self.resolve_config(config)
        info = concept_info(concept)
        comps = components_of(pipeline)
        meta: dict[str, Any] = {
            "version": self.version,
            "config": cfg,
            "config_hash": config_hash(self.name, self.version, cfg),
            "class_noun": info.class_noun,
            "slot": self.slot_text(info.class_noun, cfg),
            "concept_id": info.id,
            "seed": int(seed),
        }
        result = None
        log: dict[str, Any] = {}
        with frozen(comps):
            custom = self.customize(comps, cfg, info.class_noun, None, seed=seed)
            if self.trains:
                result = self._train(custom, comps, cfg, info, seed, progress, work_dir)
        if result is not None:
            log["losses"] = result.losses
            log["resumed_from"] = result.resumed_from
            meta.update(
                eval_loss_before=_finite_or_none(result.eval_before),
                eval_loss_after=_finite_or_none(result.eval_after),
                steps=result.steps,
            )
        tensors = {k: v.detach().to("cpu", torch.float32).clone() for k, v in custom.params.items()}
        return Artifact(method=self.name, tensors=tensors, meta=meta, log=log)

    def _training_data(
        self,
        comps: Components,
        cfg: dict[str, Any],
        info: ConceptInfo,
        progress: bool,
        work_dir: Path | None,
    ) -> TrainingData:
        if comps.vae is None:
            raise ValueError("training needs a VAE; this model was built without one")
        res = int(cfg["resolution"] or comps.native_resolution)
        if res <= 0 or res % comps.vae_scale_factor:
            raise ValueError(
                f"resolution {res} must be a positive multiple of the VAE factor {comps.vae_scale_factor}"
            )
        latent = res // comps.vae_scale_factor
        images = load_images(info.images, res, cfg["resize"], cfg["interpolation"])
        masks = None
        if cfg["use_mask"] and info.masks is not None:
            masks = load_masks(info.masks, res, latent, cfg["resize"], cfg["interpolation"])
        elif cfg["use_mask"]:
            logger.info("concept %s has no masks; training with an unmasked loss", info.id)
        data = TrainingData(
            instance=encode_latent_set(comps.vae, images, masks),
            prompts=self.training_prompts(cfg, info.class_noun),
            hflip=float(cfg["hflip"]),
            scaling_factor=comps.scaling_factor,
        )
        if cfg.get("prior_preservation"):
            data.prior_prompts = [render_template(cfg["class_prompt"], info.class_noun, info.class_noun)]
            gen = cfg["class_generation"]
            base = CustomizedPipeline(comps, method="base", class_noun=info.class_noun)
            found = class_images(
                base,
                data.prior_prompts[0],
                int(cfg["num_class_images"]),
                seed=int(gen.get("seed", 0)),
                steps=int(gen["steps"]),
                guidance=float(gen["guidance"]),
                cache_dir=work_dir / "class_images" if work_dir is not None else None,
                progress=progress,
            )
            class_tensor = load_images(found, res, cfg["resize"], cfg["interpolation"])
            data.prior = encode_latent_set(comps.vae, class_tensor)
        return data

    def _train(
        self,
        custom: Customization,
        comps: Components,
        cfg: dict[str, Any],
        info: ConceptInfo,
        seed: int,
        progress: bool,
        work_dir: str | Path | None,
    ) -> TrainResult:
        wd = Path(work_dir) if work_dir is not None else None
        tcfg = TrainConfig.from_config(cfg)
        data = self._training_data(comps, cfg, info, progress, wd)
        neutral = {k: v for k, v in cfg.items() if k not in _RESUME_NEUTRAL}
        key = config_hash(
            self.name, self.version, {"config": neutral, "seed": seed, "data": info.fingerprint()}
        )
        return train(
            custom.pipeline,
            custom.params,
            data,
            tcfg,
            seed=seed,
            progress=progress,
            checkpoint_dir=wd / "checkpoints" if wd is not None else None,
            resume_key=key,
            keep_last=wd is not None and (wd / KEEP_LAST).exists(),
        )

    def load(self, artifact: Artifact | str | Path, pipeline: Any) -> CustomizedPipeline:
        """The customized pipeline of an artifact (or an artifact file) on top of ``pipeline``.

        Raises:
            ValueError: the artifact belongs to another method or has the wrong tensors.
        """
        art = artifact if isinstance(artifact, Artifact) else Artifact.load(artifact)
        if art.method != self.name:
            raise ValueError(f"artifact was made by method {art.method!r}, not {self.name!r}")
        if str(art.meta.get("version")) != self.version:
            logger.warning(
                "artifact version %s differs from %s version %s",
                art.meta.get("version"),
                self.name,
                self.version,
            )
        comps = components_of(pipeline)
        cfg = dict(art.meta["config"])
        custom = self.customize(comps, cfg, str(art.meta["class_noun"]), dict(art.tensors))
        expected = set(custom.params)
        if expected != set(art.tensors):
            raise ValueError(
                f"artifact tensors do not match {self.name}: {sorted(expected ^ set(art.tensors))[:5]}"
            )
        custom.pipeline.meta.update(art.meta)
        return custom.pipeline

    # -- helpers for subclasses -------------------------------------------------------------------
    def make_pipeline(
        self, comps: Components, cfg: dict[str, Any], class_noun: str, **kwargs: Any
    ) -> CustomizedPipeline:
        """A :class:`CustomizedPipeline` with this method's name, slot and inference defaults."""
        return CustomizedPipeline(
            comps,
            method=self.name,
            slot=self.slot_text(class_noun, cfg),
            class_noun=class_noun,
            inference=dict(cfg.get("inference") or {}),
            **kwargs,
        )


@contextlib.contextmanager
def frozen(comps: Components) -> Iterator[None]:
    """The base model's parameters do not require grad inside the block (flags restored afterwards), so
    training touches and accumulates gradients in nothing but the method's own tensors."""
    params = [p for m in (comps.unet, comps.text_encoder, comps.vae) if m is not None for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)


def new_param(value: torch.Tensor, trainable: bool) -> torch.Tensor:
    """A float32 leaf tensor holding ``value`` (a ``Parameter`` when trainable)."""
    t = value.detach().to(torch.float32).clone()
    return torch.nn.Parameter(t) if trainable else t


def take(
    tensors: dict[str, torch.Tensor] | None, name: str, default: torch.Tensor, device: Any
) -> torch.Tensor:
    """A trainable tensor initialised from ``default`` (``tensors is None``) or a frozen tensor loaded
    from ``tensors[name]``.

    Raises:
        ValueError: ``name`` missing from ``tensors`` or of the wrong shape.
    """
    if tensors is None:
        return new_param(default.to(device), True)
    if name not in tensors:
        raise ValueError(f"artifact has no tensor {name!r}")
    value = tensors[name]
    if tuple(value.shape) != tuple(default.shape):
        raise ValueError(
            f"artifact tensor {name!r} has shape {tuple(value.shape)}, expected {tuple(default.shape)}"
        )
    return new_param(value.to(device), False)
