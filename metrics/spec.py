"""Self-description of every metric: key, version, role, orientation, named inputs and what computes it.

The harness evaluates a suite's metric list through one function that reads these specs: it gives each
metric the inputs it declares, calls its ``compute`` function (``package.module:function``, imported on
first use) and writes one row per metric. The leaderboard reads the same specs for arrows, versions,
roles (which metric is a fidelity, an overfitting measure, a floor), pairings and plots: no leaderboard
code decides anything by a metric's name. Adding a metric is its module in ``metrics/`` calling
:func:`register_metric` (or an entry in :data:`_SPECS` for a built-in).

Inputs are named as *source × extractor*: ``"generated:clip"`` is the features of the generated images
under the suite's extractor named ``clip`` (the suite profile's ``extractors`` map names them), passed to
the compute function as the keyword ``generated_clip`` unless the spec maps keywords to references
itself. Sources are in :data:`SOURCES`; inputs that are not features (the model, the LFD reference, the
identity scores) are in :data:`NAMED_INPUTS`.

Importing this module imports nothing heavy (no torch).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, cast

# Where features come from: each source × any extractor of the suite is an input ("generated:dino").
SOURCES: Mapping[str, str] = MappingProxyType(
    {
        "generated": "image features [N, d] (L2-normalised) of the N generated images",
        "reference": "image features [R, d] of the concept's R reference photos",
        "base": "image features [N, d] of the base model's images, same prompts and seeds, slot = class noun",
        "base_alt": "the same for the base model's images on a disjoint set of seeds (seed + 10000): W2's sampling floor and mmd_base's null",
        "masked_generated": "image features [N, d] of the generated images with the subject painted grey "
        "(each with the subject mask of the base model's image for its prompt and seed)",
        "masked_base": "image features [N, d] of the base model's images, subject painted grey",
        "masked_reference": "image features [R, d] of the reference photos, subject painted grey",
        "subject_generated": "image features [N, d] of the subject alone in each generated image: its own "
        "subject mask (the base model's noise difference for the class noun), outside it grey, cropped "
        "around it and resized",
        "subject_reference": "image features [R, d] of the subject alone in each reference photo (the same)",
        "subject_base": "image features [N, d] of the subject alone in the base model's images (the same)",
        "context_generated": "image features [N, d] of the generated images with the subject painted grey, "
        "each with its own subject mask (noise difference) grown by 1/16 of the side and filled to its "
        "bounding box (leakage@2): the context alone",
        "context_reference": "image features [R, d] of the reference photos' contexts (their own masks)",
        "context_base_alt": "image features [N, d] of the contexts of the base model's images on the disjoint "
        "seed set (seed + 10000), their own masks: the null of leakage",
        "heldout": "image features [H, d] of held-out views of the concept in contexts its training images "
        "never show (suites whose profile names heldout_views; a rendered world can draw them)",
        "prompt": "text features [N, d] of each generated image's prompt, slot = class noun (an image-text "
        "extractor only)",
        "prompt_truncations": "how many of those prompts were truncated to the text encoder's context (int; "
        "an image-text extractor only)",
    }
)
# Sources that need an image-text extractor (one whose backbone has a text encoder).
TEXT_SOURCES = frozenset({"prompt", "prompt_truncations"})
# Sources of the reference photos' own features: a leave-one-out function reads the one its metric uses.
REFERENCE_SOURCES = frozenset({"reference", "subject_reference"})

# Inputs that are not features of an extractor.
NAMED_INPUTS: Mapping[str, str] = MappingProxyType(
    {
        "generated_identity": "per-image scores [N] in [0, 1] that the generated image shows the concept, from the "
        "suite's identity scorer (only suites whose profile names one, e.g. a synthetic world's oracle)",
        "custom_eps": "the customized model's conditional noise predictor (z_t, t, prompts) -> eps",
        "layout_generated": "float64 [N, 3] the subject's layout in each generated image from its own mask "
        "(benchmark.masks.layout: centroid x, y and the square root of the area share)",
        "layout_reference": "float64 [R, 3] the same for the concept's reference photos",
        "layout_base_alt": "float64 [N, 3] the same for the base model's images on the disjoint seed set",
        "plan_prompts": "int [N] the prompt index of each image in the generation plan's order (the order of "
        "the generated images and of the base model's images alike)",
        "lfd_reference": "metrics.lfd.LFDReference: base samples z0, their prompts, the base model's cached "
        "predictions on the grid, the noise schedule, timesteps, seed, batch size and weighting; the "
        "prompt set is the metric's option 'prompt_set' ('lfd' or 'lfd_class')",
    }
)
# Inputs only a method's job has (a customized model): an image folder cannot serve them.
MODEL_INPUTS = frozenset({"custom_eps", "lfd_reference"})

ROLES: Mapping[str, str] = MappingProxyType(
    {
        "fidelity": "did the method learn: the concept or the prompt in its images (higher is better)",
        "overfitting": "what learning cost: damage outside the concept or collapse onto the training photos",
        "floor": "what the paired overfitting metric reads from sampling alone (a property of the concept, "
        "computed once with the base model's rows)",
        "diagnostic": "reported, never ranked",
        "grader": "ground truth that grades the measured metrics (a synthetic suite's oracle; docs/VALIDITY.md): "
        "computed and stored in the rows, never shown or ranked on the leaderboard",
    }
)
AGGREGATIONS = ("mean",)
PLOT_AXES = ("x", "y")


def parse_input(ref: str) -> tuple[str, str | None]:
    """``"generated:clip"`` -> ``("generated", "clip")``; a named input -> ``(name, None)``.

    Raises:
        ValueError: an unknown source or named input.
    """
    source, sep, extractor = ref.partition(":")
    if not sep:
        if ref not in NAMED_INPUTS:
            raise ValueError(
                f"unknown input {ref!r}: use 'source:extractor' (sources: {', '.join(SOURCES)}) or one of "
                f"{', '.join(NAMED_INPUTS)}"
            )
        return ref, None
    if source not in SOURCES or not extractor:
        raise ValueError(f"unknown input {ref!r}: sources are {', '.join(SOURCES)}, as 'source:extractor'")
    return source, extractor


def keyword_for(ref: str) -> str:
    """The keyword a compute function receives input ``ref`` under: ``source_extractor`` or the name."""
    source, extractor = parse_input(ref)
    return f"{source}_{extractor}" if extractor else source


@dataclass(frozen=True)
class MetricValue:
    """What a metric's compute function returns: the value, its sample count and extra facts for the row."""

    value: float
    n: int
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricSpec:
    """What a metric is, how it is computed and what it means on the leaderboard.

    Attributes:
        key, version, name, higher_is_better, definition, display_scale: its description.
        inputs: what ``compute`` receives: input references (``"generated:clip"``, ``"lfd_reference"``;
            see the module docstring), each passed under :func:`keyword_for` of it, or a mapping
            keyword -> reference. Stored as the mapping.
        compute: ``package.module:function`` returning a :class:`MetricValue`.
        role: one of :data:`ROLES`.
        options: fixed keyword arguments for ``compute`` (and for the inputs, e.g. an LFD prompt set).
        pairs_with: for a floor, the key of the metric it is the floor of.
        significance: the ``extra`` field of each row that holds a p-value of "differs from the base
            model" (read by the headline), or "".
        aggregation: how rows combine over concepts on the leaderboard (:data:`AGGREGATIONS`).
        headline: position on the matched-fidelity headline (fidelity: preference for its fidelity
            axis, lowest first; overfitting: column order), or None to leave it off.
        plots: the page's plots this metric is an axis of, ``{plot slug: "x" | "y"}``.
        leave_one_out: ``package.module:function`` that scores the reference photos against themselves
            (leave-one-out; keyword ``reference``): the ``real`` rows, a fidelity's ceiling; "" for none.
        backbone: what its rows' ``backbone`` names; "" derives it from the inputs (the one extractor
            they use, ``latent`` for a model input, ``identity`` for the identity scores); ``masks`` for a
            metric of the subject masks alone (the base model's noise difference).
        reference: a property of the concept, not of a method (a W2 floor): computed once per concept,
            in the base model's rows only.
        structural_zero: an exact 0 is zero by construction, not measured (LFD for a method that cannot
            change a prompt without its concept): the leaderboard prints it "0 (structural)" with no
            interval and keeps it out of rankings, matched-fidelity readings and paired differences.
        share: its value is a share of the row's ``n`` images (a proportion), so its standard error is the
            binomial sqrt(p(1-p)/n); otherwise a row's spread is its ``extra["se"]`` when recorded. Read
            where the leaderboard asks whether a method's fidelity is above the base model's by more than
            sampling noise.
    """

    key: str
    version: int
    name: str
    higher_is_better: bool
    inputs: Mapping[str, str] | Sequence[str]
    definition: str
    compute: str = ""
    role: str = "diagnostic"
    options: Mapping[str, Any] = field(default_factory=dict)
    display_scale: float = 1.0
    pairs_with: str = ""
    significance: str = ""
    aggregation: str = "mean"
    headline: int | None = None
    plots: Mapping[str, str] = field(default_factory=dict)
    leave_one_out: str = ""
    backbone: str = ""
    reference: bool = False
    share: bool = False
    structural_zero: bool = False

    def __post_init__(self) -> None:
        pairs = self.inputs.items() if isinstance(self.inputs, Mapping) else ((None, r) for r in self.inputs)
        table: dict[str, str] = {}
        for kw, ref in pairs:
            try:
                word = kw or keyword_for(ref)
                parse_input(ref)
            except ValueError as err:
                raise ValueError(f"metric {self.key!r}: {err}") from None
            table[word] = ref
        object.__setattr__(self, "inputs", MappingProxyType(table))
        problems = []
        if self.role not in ROLES:
            problems.append(f"role must be one of {', '.join(ROLES)}")
        if self.aggregation not in AGGREGATIONS:
            problems.append(f"aggregation must be one of {AGGREGATIONS}")
        if bad := {a for a in self.plots.values() if a not in PLOT_AXES}:
            problems.append(f"plot axes must be 'x' or 'y', got {sorted(bad)}")
        if (self.role == "floor") != bool(self.pairs_with):
            problems.append("a floor names the metric it pairs with (pairs_with), and only a floor does")
        for ref in (self.compute, self.leave_one_out):
            if ref and ref.count(":") != 1:
                problems.append(f"{ref!r} is not 'package.module:function'")
        if not self.backbone and len(self.backbones_used()) > 1:
            problems.append(
                f"inputs use several backbones {sorted(self.backbones_used())}: name one in backbone"
            )
        if problems:
            raise ValueError(f"metric {self.key!r}: " + "; ".join(problems))

    @property
    def id(self) -> str:
        """Versioned identifier, e.g. ``lfd@2``."""
        return f"{self.key}@{self.version}"

    @property
    def arrow(self) -> str:
        """``↑`` when higher is better, ``↓`` otherwise."""
        return "↑" if self.higher_is_better else "↓"

    @property
    def bindings(self) -> Mapping[str, str]:
        """Keyword -> input reference, in declaration order (``inputs`` as stored)."""
        return cast(Mapping[str, str], self.inputs)  # __post_init__ stores every form as a mapping

    @property
    def refs(self) -> tuple[str, ...]:
        """The input references, in declaration order."""
        return tuple(self.bindings.values())

    def extractors(self) -> tuple[str, ...]:
        """The suite extractors its inputs name, in order, without repeats."""
        names = [parse_input(r)[1] for r in self.refs]
        return tuple(dict.fromkeys(n for n in names if n))

    def backbones_used(self) -> set[str]:
        used = set(self.extractors())
        if MODEL_INPUTS & set(self.refs):
            used.add("latent")
        if "generated_identity" in self.refs:
            used.add("identity")
        return used

    @property
    def row_backbone(self) -> str:
        """What its rows' ``backbone`` names: an extractor's name, ``latent`` or ``identity``."""
        return self.backbone or next(iter(sorted(self.backbones_used())), "")

    def function(self, which: str = "compute") -> Callable[..., MetricValue]:
        """The compute function (``which="leave_one_out"``: the reference-photo one), imported now.

        Raises:
            ValueError: no such function, or it cannot be imported.
        """
        from benchmark.io import resolve

        ref = getattr(self, which)
        if not ref:
            raise ValueError(f"metric {self.key!r} declares no {which} function")
        return resolve(ref, f"metric {self.key!r} {which} function")  # type: ignore[no-any-return]


_SPECS = (
    MetricSpec(
        key="clip_t",
        version=1,
        name="CLIP-T (prompt fidelity)",
        higher_is_better=True,
        inputs=MappingProxyType(
            {
                "generated_clip": "generated:clip",
                "prompt_clip": "prompt:clip",
                "prompt_truncations": "prompt_truncations:clip",
            }
        ),
        compute="metrics.similarity:clip_t_metric",
        role="fidelity",
        plots=MappingProxyType({"fidelity": "y"}),
        definition="mean over generated images of cos(CLIP_img(x), CLIP_txt(p)); p is the prompt with the "
        "concept slot rendered as the class noun (no identifier tokens). Raw cosine.",
    ),
    MetricSpec(
        key="clip_i",
        version=1,
        name="CLIP-I (subject fidelity)",
        higher_is_better=True,
        inputs=("generated:clip", "reference:clip"),
        compute="metrics.similarity:clip_i_metric",
        role="fidelity",
        leave_one_out="metrics.similarity:leave_one_out_metric",
        definition="mean cosine over all (generated, reference) pairs of CLIP image embeddings. Raw cosine.",
    ),
    MetricSpec(
        key="dino",
        version=1,
        name="DINO (subject fidelity)",
        higher_is_better=True,
        inputs=("generated:dino", "reference:dino"),
        compute="metrics.similarity:dino_metric",
        role="fidelity",
        leave_one_out="metrics.similarity:leave_one_out_metric",
        definition="mean cosine over all (generated, reference) pairs of DINO ViT-S/16 CLS embeddings. Full "
        "images: a copied training background raises it as much as the subject does (docs/VALIDITY.md).",
    ),
    MetricSpec(
        key="subject_dino",
        version=1,
        name="Subject DINO (subject only, own masks)",
        higher_is_better=True,
        inputs=MappingProxyType(
            {"generated": "subject_generated:dino", "reference": "subject_reference:dino"}
        ),
        compute="metrics.similarity:subject_similarity_metric",
        role="fidelity",
        headline=0,
        plots=MappingProxyType({"fidelity": "x", "specific-vs-fidelity": "x", "agnostic-vs-fidelity": "x"}),
        leave_one_out="metrics.similarity:leave_one_out_metric",
        definition="mean over generated images of the mean cosine to every reference photo, of DINO embeddings "
        "of the subject alone: each image (generated and reference) masked with its own subject mask (where "
        "the class noun changes the base model's noise prediction; benchmark.masks, noise-difference@1), "
        "outside the mask painted grey, cropped to a square around the mask and resized. Backgrounds and "
        "layout are gone, so copying the training photos' context cannot raise it. Rows carry se, the "
        "standard error over generated images.",
    ),
    MetricSpec(
        key="subject_clip_i",
        version=1,
        name="Subject CLIP-I (subject only, own masks)",
        higher_is_better=True,
        inputs=MappingProxyType(
            {"generated": "subject_generated:clip", "reference": "subject_reference:clip"}
        ),
        compute="metrics.similarity:subject_similarity_metric",
        role="fidelity",
        leave_one_out="metrics.similarity:leave_one_out_metric",
        definition="subject_dino@1 with CLIP image embeddings.",
    ),
    MetricSpec(
        key="lfd",
        version=2,
        name="Latent Fisher Divergence (non-customized prompts)",
        higher_is_better=False,
        inputs=("custom_eps", "lfd_reference"),
        compute="metrics.lfd:lfd_metric",
        role="overfitting",
        headline=3,
        plots=MappingProxyType({"agnostic-vs-fidelity": "y"}),
        options=MappingProxyType({"prompt_set": "lfd"}),
        structural_zero=True,
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
        role="overfitting",
        headline=4,
        options=MappingProxyType({"prompt_set": "lfd_class"}),
        structural_zero=True,
        definition="lfd@2 evaluated on prompts of the bare class noun (slot not filled with the concept).",
    ),
    MetricSpec(
        key="w2",
        version=1,
        name="Concept-specific 2-Wasserstein distance",
        higher_is_better=False,
        inputs=("generated:clip", "base:clip"),
        compute="metrics.wasserstein:w2_metric",
        role="overfitting",
        headline=1,
        definition="exact empirical W2 (squared-Euclidean cost, uniform weights, POT emd2; square root reported) "
        "between L2-normalised CLIP image features of the customized model's generations and the base "
        "model's generations for the same prompts and seeds with the slot rendered as the class noun. Paired "
        "seeds: an unchanged model reads 0 by construction, and the value is not comparable with its floor "
        "(unpaired); mmd_base@1 is its calibrated companion. Rows keep p_value, a paired permutation test "
        "(199 random swaps), which saturates at 0.005 and is no longer read by the leaderboard.",
    ),
    MetricSpec(
        key="mmd_base",
        version=1,
        name="Distance from the base model (unbiased MMD², disjoint seeds)",
        higher_is_better=False,
        inputs=MappingProxyType({"generated": "generated:clip", "base": "base_alt:clip"}),
        compute="metrics.mmd:mmd_base_metric",
        role="overfitting",
        significance="p_value",
        headline=2,
        definition="unbiased MMD² (KID's kernel (x·y/d + 1)³, L2-normalised CLIP-slot features) between the "
        "customized model's images and the base model's images for the same prompts on disjoint seeds "
        "(seed + 10000). Its expectation is 0 when the two come from one distribution, at any n, so it "
        "needs no floor; an unchanged model reads 0 up to sampling noise (it can be negative). Rows carry "
        "p_value (label permutation on the pooled sets, 9,999 draws), z (standardised against the "
        "permutations; it does not saturate) and null_sd.",
    ),
    MetricSpec(
        key="leakage",
        version=2,
        name="Context leakage (own masks, calibrated on the base model)",
        higher_is_better=False,
        inputs=MappingProxyType(
            {
                "generated": "context_generated:dino",
                "reference": "context_reference:dino",
                "base": "context_base_alt:dino",
            }
        ),
        compute="metrics.leakage:leakage_metric",
        role="overfitting",
        headline=0,
        plots=MappingProxyType({"specific-vs-fidelity": "y"}),
        definition="2·AUROC − 1 of s(g) against s(b): s(x) is the highest cosine of an image's context (its own "
        "subject mask, grown by 1/16 of the side and filled to its bounding box, painted grey; DINO-slot "
        "features) to any training image's context; g the generated "
        "images, b the base model's images for the same prompts on disjoint seeds (+10000). 0: contexts as "
        "close to the training contexts as the base model's; 1: every generated context closer than every "
        "base one (a copy). Rows carry auroc and se (Hanley–McNeil).",
    ),
    MetricSpec(
        key="layout",
        version=1,
        name="Layout leakage (own masks, calibrated on the base model)",
        higher_is_better=False,
        inputs=MappingProxyType(
            {
                "generated": "layout_generated",
                "reference": "layout_reference",
                "base_alt": "layout_base_alt",
                "prompts": "plan_prompts",
            }
        ),
        compute="metrics.layout:layout_metric",
        role="overfitting",
        backbone="masks",
        definition="2·AUROC − 1 of u(g) against u(b): u(x) = d_asked(x) − d_train(x), the distance of the "
        "image's subject layout (own mask: centroid and square root of the area share) to the nearest "
        "base-model image of the same prompt (half of the disjoint-seed images) minus that to the nearest "
        "training image; g the generated images, b the other half of the base model's disjoint-seed images. "
        "0: subjects stand where the prompt puts them as often as the base model's; 1: every generated "
        "subject nearer a training layout than any base one. Leakage's layout companion, reported apart.",
    ),
    MetricSpec(
        key="heldout_gap",
        version=1,
        name="Held-out gap (training images vs the concept in other contexts)",
        higher_is_better=False,
        inputs=MappingProxyType(
            {
                "generated": "generated:clip",
                "reference": "reference:clip",
                "heldout": "heldout:clip",
                "base": "base_alt:clip",
            }
        ),
        compute="metrics.heldout:heldout_gap_metric",
        role="overfitting",
        definition="mean over generated images of [highest cosine to a training image − highest cosine to a "
        "held-out view of the concept in other contexts] (CLIP-slot features, whole images), minus the same "
        "mean over the base model's images for the same prompts on disjoint seeds (+10000). 0: no nearer "
        "the training images than the base model is; positive: pulled towards the training contexts. "
        "Suites with held-out views only (a rendered world). Rows carry gap_generated, gap_base and se.",
    ),
    MetricSpec(
        key="identity",
        version=1,
        name="Identity (suite's ground-truth scorer)",
        higher_is_better=True,
        inputs=("generated_identity",),
        compute="metrics.similarity:identity_metric",
        role="grader",
        share=True,
        definition="share of generated images the suite's identity scorer reads as the concept (on a synthetic "
        "suite with an oracle: it reads the concept's shape and pattern). Exists only for suites with ground truth; "
        "it grades the measured metrics (docs/VALIDITY.md) and is never on the leaderboard (role grader).",
    ),
    MetricSpec(
        key="w2_floor",
        version=1,
        name="W2 sampling floor (base vs base, disjoint seeds)",
        higher_is_better=False,
        inputs=MappingProxyType({"base_clip": "base:clip", "base_clip_alt": "base_alt:clip"}),
        compute="metrics.wasserstein:w2_floor_metric",
        role="floor",
        pairs_with="w2",
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
        inputs=("masked_generated:clip", "masked_base:clip", "masked_reference:clip"),
        compute="metrics.collapse:collapse_metric",
        role="diagnostic",
        definition="Retired from the headline (a diagnostic): it follows the class noun more than the training "
        "contexts (docs/VALIDITY.md); leakage replaces it. mean over generated images of cos(g_i, mu) - cos(b_i, mu): g_i and b_i are CLIP features "
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


def by_role(role: str, metrics: Mapping[str, MetricSpec] | None = None) -> tuple[MetricSpec, ...]:
    """The registered metrics of ``role``, in registration order."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    return tuple(s for s in (metrics or METRICS).values() if s.role == role)


def headline_metrics(role: str, lead: str = "") -> tuple[str, ...]:
    """Keys of the metrics of ``role`` that the headline shows, in their headline order (fidelity: the
    preferred fidelity axis first). ``lead``: a metric of ``role`` that heads the list instead (a suite
    profile's ``headline_specific``), the others following in their order; "": none.

    Raises:
        ValueError: ``lead`` is not a metric of ``role``.
    """
    chosen = [s for s in by_role(role) if s.headline is not None]
    order = tuple(s.key for s in sorted(chosen, key=lambda s: (s.headline, s.key)))
    if not lead:
        return order
    if lead not in {s.key for s in by_role(role)}:
        raise ValueError(f"headline lead {lead!r} is not a metric of role {role!r}")
    return (lead, *(k for k in order if k != lead))


def floor_of(key: str) -> str | None:
    """The key of the floor metric paired with ``key`` (W2's sampling floor), or None."""
    return next((s.key for s in METRICS.values() if s.role == "floor" and s.pairs_with == key), None)


def plot_axes(slug: str) -> dict[str, str]:
    """The metric keys on plot ``slug``'s axes, ``{"x": key, "y": key}`` (missing axes left out).

    Raises:
        ValueError: two metrics claim the same axis.
    """
    axes: dict[str, str] = {}
    for s in METRICS.values():
        axis = s.plots.get(slug)
        if axis is None:
            continue
        if axis in axes:
            raise ValueError(f"plot {slug!r}: metrics {axes[axis]!r} and {s.key!r} both claim axis {axis}")
        axes[axis] = s.key
    return axes
