"""Evaluation settings per suite: model, backbones, sampler, LFD grid, method budget.

Everything here changes numbers, so the whole settings object is hashed into every stage's cache
key and into each result row's ``config_hash``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BackboneSpec:
    """A feature backbone by kind, architecture name and weights (tag, local file, or None = random)."""

    kind: str
    name: str
    weights: str | None
    seed: int = 0


@dataclass(frozen=True)
class EvalSettings:
    """How a suite is evaluated. ``budget`` picks the training budget in each method's recipe."""

    model: str
    clip: BackboneSpec
    dino: BackboneSpec
    resolution: int
    steps: int
    guidance: float
    gen_batch_size: int = 4
    lfd_timesteps: int = 10
    lfd_weighting: str = "eps"
    lfd_seed: int = 0
    lfd_batch_size: int = 8
    budget: str | None = None
    fit_seed: int = 0
    # per method name, or "*" for every method (keys a method's recipe lacks are skipped for "*")
    method_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        """JSON-able description used in cache keys."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> EvalSettings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalSettings:
        """Inverse of :meth:`identity` (used to ship settings to Ray workers)."""
        data = dict(data)
        data["clip"] = BackboneSpec(**data["clip"])
        data["dino"] = BackboneSpec(**data["dino"])
        return cls(**data)


TINY_CLIP = BackboneSpec("clip", "tiny-clip", None)
TINY_DINO = BackboneSpec("dino", "tiny-dino", None)
REAL_CLIP = BackboneSpec("clip", "ViT-B-32", "openai")
REAL_DINO = BackboneSpec("dino", "vit_small_patch16_224.dino", "dino")

TOY_CLIP = BackboneSpec("clip", "toy-clip", "toy")
TOY_DINO = BackboneSpec("dino", "toy-dino", "toy")

# The toy world: hflip off (a flip swaps left/right positions, which the suite asks for);
# learning rates tuned on the toy base model (docs/DECISIONS.md).
_TOY_OVERRIDES: dict[str, dict[str, Any]] = {
    "*": {"hflip": 0.0},
    "dreambooth": {"lr": 2e-4},
    "dreambooth-lora": {"lr": 2e-3},
}

_SD15 = EvalSettings(
    model="stable-diffusion-v1-5/stable-diffusion-v1-5",
    clip=REAL_CLIP,
    dino=REAL_DINO,
    resolution=512,
    steps=50,
    guidance=7.5,
)

SUITE_SETTINGS: dict[str, EvalSettings] = {
    # The whole grid in about a minute on a 2-core CPU: tiny pipeline and backbones at 64 px.
    "smoke": EvalSettings(
        model="tiny",
        clip=TINY_CLIP,
        dino=TINY_DINO,
        resolution=64,
        steps=4,
        guidance=5.0,
        lfd_timesteps=4,
        budget="toy",
        method_overrides={
            "*": {
                "steps": 4,
                "batch_size": 1,
                "grad_accum": 1,
                "num_class_images": 1,
                "checkpoint_every": 1000,
                "eval_samples": 1,
                "class_generation": {"steps": 4, "guidance": 5.0, "seed": 0},
            }
        },
    ),
    # The embedded toy world: the shipped 32-px toy base model, oracle backbones, DDIM 25, guidance 5.
    "toy": EvalSettings(
        model="toy",
        clip=TOY_CLIP,
        dino=TOY_DINO,
        resolution=32,
        steps=25,
        guidance=5.0,
        gen_batch_size=32,
        lfd_timesteps=10,
        lfd_batch_size=48,
        budget="toy",
        method_overrides=_TOY_OVERRIDES,
    ),
    # SD-1.5 at 512 px, DDIM 50 steps, guidance 7.5, real CLIP ViT-B/32 and DINO ViT-S/16.
    "dreambench": _SD15,
    "customconcept101": _SD15,
}


def settings_for(suite: str, **overrides: Any) -> EvalSettings:
    """The default settings of ``suite`` with ``overrides`` applied (``None`` values ignored).

    Raises:
        KeyError: no settings for this suite.
    """
    if suite not in SUITE_SETTINGS:
        raise KeyError(f"no evaluation settings for suite {suite!r}; known: {', '.join(SUITE_SETTINGS)}")
    changes = {k: v for k, v in overrides.items() if v is not None}
    return SUITE_SETTINGS[suite].replace(**changes) if changes else SUITE_SETTINGS[suite]
