"""Self-description of every metric: key, version, orientation and required inputs.

The leaderboard and the harness read these specs; nothing else hard-codes an arrow or a version.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class MetricSpec:
    """What a metric is: its key, definition version, orientation and inputs."""

    key: str
    version: int
    name: str
    higher_is_better: bool
    inputs: tuple[str, ...]
    definition: str
    display_scale: float = 1.0

    @property
    def id(self) -> str:
        """Versioned identifier, e.g. ``lfd@1``."""
        return f"{self.key}@{self.version}"

    @property
    def arrow(self) -> str:
        """``↑`` when higher is better, ``↓`` otherwise."""
        return "↑" if self.higher_is_better else "↓"


_SPECS = (
    MetricSpec(
        key="clip_t",
        version=1,
        name="CLIP-T (prompt fidelity)",
        higher_is_better=True,
        inputs=("generated_images", "prompts_with_class_noun", "clip_backbone"),
        definition="mean over generated images of cos(CLIP_img(x), CLIP_txt(p)); p is the prompt with the "
        "concept slot rendered as the class noun (no identifier tokens). Raw cosine.",
    ),
    MetricSpec(
        key="clip_i",
        version=1,
        name="CLIP-I (subject fidelity)",
        higher_is_better=True,
        inputs=("generated_images", "reference_images", "clip_backbone"),
        definition="mean cosine over all (generated, reference) pairs of CLIP image embeddings. Raw cosine.",
    ),
    MetricSpec(
        key="dino",
        version=1,
        name="DINO (subject fidelity)",
        higher_is_better=True,
        inputs=("generated_images", "reference_images", "dino_backbone"),
        definition="mean cosine over all (generated, reference) pairs of DINO ViT-S/16 CLS embeddings.",
    ),
    MetricSpec(
        key="lfd",
        version=1,
        name="Latent Fisher Divergence (non-customized prompts)",
        higher_is_better=False,
        inputs=("base_eps", "custom_eps", "base_latents", "lfd_prompts", "alphas_cumprod", "timesteps"),
        definition="mean over timesteps t and base samples z0 of w(t)·||eps_custom(z_t,t,c) - eps_base(z_t,t,c)||^2/D "
        "with paired noise, conditional predictions, over prompts that do not contain the concept.",
    ),
    MetricSpec(
        key="lfd_class",
        version=1,
        name="Latent Fisher Divergence (bare class prompts)",
        higher_is_better=False,
        inputs=("base_eps", "custom_eps", "base_latents", "class_prompts", "alphas_cumprod", "timesteps"),
        definition="lfd@1 evaluated on prompts of the bare class noun (slot not filled with the concept).",
    ),
    MetricSpec(
        key="w2",
        version=1,
        name="Concept-specific 2-Wasserstein distance",
        higher_is_better=False,
        inputs=("generated_images", "base_class_images", "clip_backbone"),
        definition="exact empirical W2 (squared-Euclidean cost, uniform weights, POT emd2; square root reported) "
        "between L2-normalised CLIP image features of the customized model's generations and the base "
        "model's generations for the same prompts and seeds with the slot rendered as the class noun.",
    ),
)

METRICS: MappingProxyType[str, MetricSpec] = MappingProxyType({s.key: s for s in _SPECS})


def get_metric(key: str) -> MetricSpec:
    """Return the spec for ``key`` (with or without ``@version``).

    Raises:
        KeyError: unknown key or version; the message lists the closest known keys.
    """
    base, _, version = key.partition("@")
    if base not in METRICS:
        close = difflib.get_close_matches(base, list(METRICS), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(METRICS)}"
        raise KeyError(f"unknown metric {key!r}{hint}")
    spec = METRICS[base]
    if version and version != str(spec.version):
        raise KeyError(f"metric {base!r} has version {spec.version}, not {version!r}")
    return spec
