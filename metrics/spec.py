"""Self-description of every metric: key, version, orientation, named inputs and what computes it.

The harness evaluates a suite's metric list through one function that reads these specs: it gives each
metric the named inputs it declares (:data:`INPUTS`), calls its ``compute`` function
(``package.module:function``, imported on first use) and writes one row per metric. The leaderboard reads
the same specs for arrows and versions. Adding a metric over existing inputs is its module in
``metrics/`` plus an entry in :data:`_SPECS` (or :func:`register_metric` for a metric of your own).

Importing this module imports nothing heavy (no torch).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# The named inputs a metric can declare, and what the harness passes for each.
INPUTS: Mapping[str, str] = MappingProxyType(
    {
        "generated_clip": "CLIP image features [N, d] (L2-normalised) of the N generated images",
        "generated_dino": "DINO image features [N, d] (L2-normalised) of the N generated images",
        "reference_clip": "CLIP image features [R, d] of the concept's R reference photos",
        "reference_dino": "DINO image features [R, d] of the concept's R reference photos",
        "prompt_clip": "CLIP text features [N, d] of each generated image's prompt, slot = class noun",
        "prompt_truncations": "how many of those prompts were truncated to the text encoder's context (int)",
        "base_clip": "CLIP image features [N, d] of the base model's images, same prompts and seeds, slot = "
        "class noun",
        "base_clip_alt": "the same for the base model's images on a disjoint set of seeds (W2's sampling floor)",
        "masked_generated_clip": "CLIP image features [N, d] of the generated images with the subject painted "
        "grey (each with the subject mask of the base model's image for its prompt and seed)",
        "masked_base_clip": "CLIP image features [N, d] of the base model's images, subject painted grey",
        "masked_reference_clip": "CLIP image features [R, d] of the reference photos, subject painted grey",
        "generated_identity": "per-image scores [N] in [0, 1] that the generated image shows the concept, from the "
        "suite's identity scorer (only suites whose profile names one, e.g. a synthetic world's oracle)",
        "custom_eps": "the customized model's conditional noise predictor (z_t, t, prompts) -> eps",
        "lfd_reference": "metrics.lfd.LFDReference: base samples z0, their prompts, the base model's cached "
        "predictions on the grid, the noise schedule, timesteps, seed, batch size and weighting; the "
        "prompt set is the metric's option 'prompt_set' ('lfd' or 'lfd_class')",
    }
)

# Which backbone a metric's row names (``backbone`` field): the CLIP slot, the DINO slot, or the latent
# space of the base model.
BACKBONE_SLOTS = ("clip", "dino", "latent", "identity")


@dataclass(frozen=True)
class MetricValue:
    """What a metric's compute function returns: the value, its sample count and extra facts for the row."""

    value: float
    n: int
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricSpec:
    """What a metric is and how it is computed.

    Attributes:
        key, version, name, higher_is_better, definition, display_scale: its description.
        inputs: names from :data:`INPUTS`, passed to ``compute`` as keyword arguments.
        compute: ``package.module:function`` returning a :class:`MetricValue`.
        backbone: which backbone its rows name: ``"clip"``, ``"dino"`` or ``"latent"``.
        options: fixed keyword arguments for ``compute`` (and for the inputs, e.g. an LFD prompt set).
        reference: a property of the concept, not of a method (a W2 floor): computed once per concept,
            in the base model's rows only.
    """

    key: str
    version: int
    name: str
    higher_is_better: bool
    inputs: tuple[str, ...]
    definition: str
    compute: str = ""
    backbone: str = "clip"
    options: Mapping[str, Any] = field(default_factory=dict)
    display_scale: float = 1.0
    reference: bool = False

    def __post_init__(self) -> None:
        unknown = [i for i in self.inputs if i not in INPUTS]
        if unknown:
            raise ValueError(f"metric {self.key!r}: unknown input(s) {unknown}; known: {', '.join(INPUTS)}")
        if self.backbone not in BACKBONE_SLOTS:
            raise ValueError(f"metric {self.key!r}: backbone must be one of {BACKBONE_SLOTS}")
        if self.compute and self.compute.count(":") != 1:
            raise ValueError(
                f"metric {self.key!r}: compute {self.compute!r} is not 'package.module:function'"
            )

    @property
    def id(self) -> str:
        """Versioned identifier, e.g. ``lfd@2``."""
        return f"{self.key}@{self.version}"

    @property
    def arrow(self) -> str:
        """``↑`` when higher is better, ``↓`` otherwise."""
        return "↑" if self.higher_is_better else "↓"

    def function(self) -> Callable[..., MetricValue]:
        """The compute function (imported now).

        Raises:
            ValueError: no compute function, or it cannot be imported.
        """
        from benchmark.io import resolve

        if not self.compute:
            raise ValueError(f"metric {self.key!r} declares no compute function")
        return resolve(self.compute, f"metric {self.key!r} compute function")  # type: ignore[no-any-return]


_SPECS = (
    MetricSpec(
        key="clip_t",
        version=1,
        name="CLIP-T (prompt fidelity)",
        higher_is_better=True,
        inputs=("generated_clip", "prompt_clip", "prompt_truncations"),
        compute="metrics.similarity:clip_t_metric",
        definition="mean over generated images of cos(CLIP_img(x), CLIP_txt(p)); p is the prompt with the "
        "concept slot rendered as the class noun (no identifier tokens). Raw cosine.",
    ),
    MetricSpec(
        key="clip_i",
        version=1,
        name="CLIP-I (subject fidelity)",
        higher_is_better=True,
        inputs=("generated_clip", "reference_clip"),
        compute="metrics.similarity:clip_i_metric",
        definition="mean cosine over all (generated, reference) pairs of CLIP image embeddings. Raw cosine.",
    ),
    MetricSpec(
        key="dino",
        version=1,
        name="DINO (subject fidelity)",
        higher_is_better=True,
        inputs=("generated_dino", "reference_dino"),
        compute="metrics.similarity:dino_metric",
        backbone="dino",
        definition="mean cosine over all (generated, reference) pairs of DINO ViT-S/16 CLS embeddings.",
    ),
    MetricSpec(
        key="lfd",
        version=2,
        name="Latent Fisher Divergence (non-customized prompts)",
        higher_is_better=False,
        inputs=("custom_eps", "lfd_reference"),
        compute="metrics.lfd:lfd_metric",
        backbone="latent",
        options=MappingProxyType({"prompt_set": "lfd"}),
        definition="mean over timesteps t and base samples z0 of w(t)·||eps_custom(z_t,t,c) - eps_base(z_t,t,c)||^2/D "
        "with paired noise, conditional predictions, over prompts that do not contain the concept. v2: the "
        "paired noise of a base sample is seeded by its (prompt, generation seed), not by its float bytes, "
        "so every machine draws the same noise.",
    ),
    MetricSpec(
        key="lfd_class",
        version=2,
        name="Latent Fisher Divergence (bare class prompts)",
        higher_is_better=False,
        inputs=("custom_eps", "lfd_reference"),
        compute="metrics.lfd:lfd_metric",
        backbone="latent",
        options=MappingProxyType({"prompt_set": "lfd_class"}),
        definition="lfd@2 evaluated on prompts of the bare class noun (slot not filled with the concept).",
    ),
    MetricSpec(
        key="w2",
        version=1,
        name="Concept-specific 2-Wasserstein distance",
        higher_is_better=False,
        inputs=("generated_clip", "base_clip"),
        compute="metrics.wasserstein:w2_metric",
        definition="exact empirical W2 (squared-Euclidean cost, uniform weights, POT emd2; square root reported) "
        "between L2-normalised CLIP image features of the customized model's generations and the base "
        "model's generations for the same prompts and seeds with the slot rendered as the class noun. Each "
        "row also carries p_value, a paired permutation test (199 random swaps of (method, base) pairs) of "
        "whether the method differs from the base model at all.",
    ),
    MetricSpec(
        key="identity",
        version=1,
        name="Identity (suite's ground-truth scorer)",
        higher_is_better=True,
        inputs=("generated_identity",),
        compute="metrics.similarity:identity_metric",
        backbone="identity",
        definition="share of generated images the suite's identity scorer reads as the concept (on a synthetic "
        "suite with an oracle: it reads the concept's shape and pattern). Exists only for suites with ground truth.",
    ),
    MetricSpec(
        key="w2_floor",
        version=1,
        name="W2 sampling floor (base vs base, disjoint seeds)",
        higher_is_better=False,
        inputs=("base_clip", "base_clip_alt"),
        compute="metrics.wasserstein:w2_floor_metric",
        reference=True,
        definition="w2 between the base model's generations and its generations for the same prompts on a "
        "disjoint seed set (seed + 10000): the distance that sampling alone produces, per concept, shown in "
        "the base row of the W2 column.",
    ),
    MetricSpec(
        key="collapse",
        version=1,
        name="Context collapse (subject masked)",
        higher_is_better=False,
        inputs=("masked_generated_clip", "masked_base_clip", "masked_reference_clip"),
        compute="metrics.collapse:collapse_metric",
        definition="mean over generated images of cos(g_i, mu) - cos(b_i, mu): g_i and b_i are CLIP features "
        "of the generated image and of the base model's image for the same prompt and seed, both with the "
        "subject painted grey (mask: the base image's class-word cross-attention in the base model, dilated "
        "by 1/16 of the side), mu the mean direction of the reference photos with their subject masked. "
        "How much the contexts (backgrounds, layouts) move towards the training photos' contexts; 0 for "
        "the base model; learning the subject's look alone does not move it.",
    ),
)

_REGISTRY: dict[str, MetricSpec] = {s.key: s for s in _SPECS}
METRICS: Mapping[str, MetricSpec] = MappingProxyType(_REGISTRY)
"""Every known metric by key (a read-only view: the built-ins above plus any :func:`register_metric`)."""


def register_metric(spec: MetricSpec) -> None:
    """Make a metric of your own known to the harness and the leaderboard (call it before a run).

    Raises:
        ValueError: a metric with this key is already known, or the spec has no compute function.
    """
    if spec.key in _REGISTRY:
        raise ValueError(f"a metric with key {spec.key!r} is already registered")
    if not spec.compute:
        raise ValueError(f"metric {spec.key!r} declares no compute function")
    _REGISTRY[spec.key] = spec


def unregister_metric(key: str) -> None:
    """Forget a metric added with :func:`register_metric` (built-in metrics cannot be removed).

    Raises:
        KeyError: unknown key. ValueError: a built-in metric.
    """
    if key in {s.key for s in _SPECS}:
        raise ValueError(f"{key!r} is a built-in metric")
    del _REGISTRY[key]


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
