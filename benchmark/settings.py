"""Evaluation settings of a suite: model, backbones, sampler, LFD grid, method budget.

A suite is its manifest: the manifest's ``evaluation`` field holds the suite's evaluation *profile*,
inline (an object) or by name (a string naming ``data_manifests/profiles/<name>.json``).
:func:`settings_for` reads it from there. Everything in a profile can change numbers, so the settings'
:meth:`EvalSettings.identity` is hashed into every stage's cache key and into each result row's
``config_hash``. *Where* a model or backbone is loaded from (a ``package.module:function`` loader) is
not part of the identity: the model enters keys with a digest of its files and a backbone with its
weights tag.

Profile fields (``model``, the extractors and the sampler are required; ``description`` is free
text), declared as the typed model :class:`benchmark.profile_schema.ProfileModel` (strict types, unknown
fields refused; JSON Schema in ``data_manifests/schema/profile.schema.json``)::

    {"model": "tiny" | "<hub id>" | "<folder>",
     "model_loader": "pkg.module:function",          # optional: returns the model's folder
     "extractors": {                                  # the feature extractors metric inputs name
         "clip": {"kind": "clip", "name": ..., "weights": ..., "seed": 0, "revision": ...,
                  "loader": "pkg.module:function"},
         "dino": {"kind": "dino", ...}, ...},
     "resolution": 512, "steps": 50, "guidance": 7.5, "gen_batch_size": 4,
     "lfd_timesteps": 10, "lfd_weighting": "eps", "lfd_seed": 0, "lfd_batch_size": 8,
     "budget": null, "fit_seed": 0, "method_overrides": {"*": {...}, "<method>": {...}},
     "budgets": {"*": {...}, "<method>": {...}},     # the overrides of the budget `budget` names
     "metrics": null,                                 # optional list of metric keys (default: all)
     "rungs": [0.5, 1, 2],                            # training budgets scored, × tuned steps (default [1])
     "reference_method": "infusion",                  # the leaderboard's paired differences compare with it
     "headline_levels": [0.49, 0.60],                 # fidelity levels the headline reads at, fixed in
     "headline_levels_rule": "...",                   # advance by the rule stated here
     "headline_specific": "heldout_gap",              # the concept-specific measure heading the headline,
     "headline_specific_rule": "..."}                 # chosen before the rows by the rule stated here
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.profile_schema import EXTRACTOR_KINDS as EXTRACTOR_KINDS
from benchmark.profile_schema import FULL_LADDER as FULL_LADDER
from benchmark.profile_schema import ProfileError as ProfileError
from benchmark.profile_schema import parse_rungs as parse_rungs
from benchmark.profile_schema import validate_profile

if TYPE_CHECKING:
    from benchmark.data.manifest import Manifest

PROFILE_PACKAGE = "data_manifests.profiles"


@dataclass(frozen=True)
class BackboneSpec:
    """A feature extractor by kind, architecture name and weights (tag, local file, or None = random).

    ``loader`` (``package.module:function``, called like :func:`metrics.backbones.load_backbone`) serves
    a backbone that ``metrics`` does not know, e.g. the toy suite's oracle backbones.
    """

    kind: str
    name: str
    weights: str | None
    seed: int = 0
    loader: str | None = None
    revision: str | None = None  # the Hugging Face commit of hub weights (None: the cached main, recorded)

    def identity(self) -> dict[str, Any]:
        """What can move a number: kind, name, weights, seed, pinned revision (not where it loads from)."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "weights": self.weights,
            "seed": self.seed,
        }
        if self.revision is not None:
            out["revision"] = self.revision
        return out


@dataclass(frozen=True)
class EvalSettings:
    """How a suite is evaluated. ``budget`` names the training budget (``budgets``, or a recipe's own
    budget of that name: :func:`benchmark.budgets.budget_config`)."""

    model: str
    # the named feature extractors (name -> spec) that metric inputs such as "generated:clip" refer to
    extractors: Mapping[str, BackboneSpec]
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
    # where the model's folder comes from (package.module:function); None: ``model`` is the id or folder
    model_loader: str | None = None
    # the Hugging Face commit of a hub model (None: a folder, or the cached main)
    model_revision: str | None = None
    # metric keys this suite reports (None: every registered metric whose inputs the run can give)
    metrics: tuple[str, ...] | None = None
    # training budgets each trainable method is scored at, as multiples of its tuned steps (a
    # trajectory from one training run); 1.0 is the tuned budget. Rows carry their rung.
    rungs: tuple[float, ...] = (1.0,)
    # a scorer of whether an image shows its concept (package.module:function returning one), for suites
    # with ground truth (the toy world's oracle); gives the identity metric and the fidelity axis
    identity_scorer: str | None = None
    # held-out views of a concept in contexts its training images never show (package.module:function
    # (concept config, size) -> images), for suites that can render them (the toy world); the
    # heldout_gap metric. Its stage key names it, so it is not part of the settings' identity.
    heldout_views: str | None = None
    # the method every other is compared with in the leaderboard's paired differences (not part of the
    # settings' identity: it changes no row)
    reference_method: str = "infusion"
    # the fidelity levels the leaderboard's headline reads every overfitting measure at (ascending), fixed
    # before any method's rows by the rule ``headline_levels_rule`` states (not part of the settings'
    # identity: they change no row); empty: the headline has no matched-fidelity reading
    headline_levels: tuple[float, ...] = ()
    headline_levels_rule: str = ""
    # sentences the leaderboard prints under the suite's headline: measured findings that explain it (e.g.
    # why a method never reaches a level), each naming the study that measured it (changes no row)
    headline_notes: tuple[str, ...] = ()
    # the concept-specific overfitting measure that heads the headline's overfitting columns (a metric key
    # of role overfitting; the others follow in the registry's headline order) and the rule that chose it,
    # fixed before the rows it applies to; "": the registry's order (changes no row)
    headline_specific: str = ""
    headline_specific_rule: str = ""
    # the overrides of the budget named ``budget``, per method name or "*" for every method (keys a recipe
    # lacks are skipped for "*"); empty: those of the profile named like the budget, if it has some
    budgets: dict[str, dict[str, Any]] = field(default_factory=dict)
    # torch CPU threads per job; fixed by a profile so its numbers do not depend on the machine's cores
    # (float32 reductions do) nor on how many jobs run side by side (None: torch's default)
    torch_threads: int | None = None

    def identity(self) -> dict[str, Any]:
        """JSON-able description used in cache keys and row hashes (loaders left out)."""
        data = self.to_dict()
        data.pop("model_loader")
        data.pop("heldout_views")
        data.pop("reference_method")
        data.pop("headline_levels")
        data.pop("headline_levels_rule")
        data.pop("headline_notes")
        data.pop("headline_specific")
        data.pop("headline_specific_rule")
        data.pop("rungs")  # each rung is its own fit and its own rows (which carry the rung)
        data.pop("budgets")  # reaches rows only through each method's resolved config (its config_hash)
        # each extractor under its own name (names cannot shadow a field): a profile with the extractors
        # clip and dino keeps the keys, hence the cache keys and row hashes, it had as two fixed slots
        data.pop("extractors")
        data.update({name: spec.identity() for name, spec in self.extractors.items()})
        if self.metrics is None:
            data.pop("metrics")
        if self.identity_scorer is None:
            data.pop("identity_scorer")
        if self.model_revision is None:
            data.pop("model_revision")
        if self.torch_threads is None:
            data.pop("torch_threads")
        return data

    def to_dict(self) -> dict[str, Any]:
        """Everything, as plain data (a run's ``run.json``); :meth:`from_dict` inverts it. Jobs get the
        settings object itself (:class:`benchmark.jobspec.JobSpec`)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["extractors"] = {name: dataclasses.asdict(spec) for name, spec in self.extractors.items()}
        data["method_overrides"] = {k: dict(v) for k, v in self.method_overrides.items()}
        data["metrics"] = list(self.metrics) if self.metrics is not None else None
        data["rungs"] = list(self.rungs)
        data["headline_levels"] = list(self.headline_levels)
        data["headline_notes"] = list(self.headline_notes)
        return data

    def replace(self, **changes: Any) -> EvalSettings:
        return dataclasses.replace(self, **changes)

    def sampler_kwargs(self) -> dict[str, Any]:
        """The sampler keywords of every generation under these settings (``generate``/``sample_latents``
        of :class:`baselines.pipeline.CustomizedPipeline`): steps, guidance, square size, batch size."""
        return {
            "steps": self.steps,
            "guidance": self.guidance,
            "height": self.resolution,
            "width": self.resolution,
            "batch_size": self.gen_batch_size,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalSettings:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        data["extractors"] = {name: BackboneSpec(**spec) for name, spec in data["extractors"].items()}
        if data.get("metrics") is not None:
            data["metrics"] = tuple(data["metrics"])
        if "rungs" in data:
            data["rungs"] = tuple(float(r) for r in data["rungs"])
        if "headline_notes" in data:
            data["headline_notes"] = tuple(data["headline_notes"])
        if "headline_levels" in data:
            data["headline_levels"] = tuple(float(v) for v in data["headline_levels"])
        return cls(**data)

    def extractor(self, name: str) -> BackboneSpec:
        """The extractor named ``name``.

        Raises:
            KeyError: the suite has no such extractor (the message lists those it has).
        """
        if name not in self.extractors:
            raise KeyError(
                f"the suite's profile has no extractor {name!r} (it has: {', '.join(self.extractors)}); add it "
                "to the profile's 'extractors'"
            )
        return self.extractors[name]


def load_profile(name: str) -> dict[str, Any]:
    """A named profile, ``data_manifests/profiles/<name>.json``, as decoded (not validated).

    Raises:
        ProfileError: no such profile (the message lists the known ones) or invalid JSON.
    """
    root = resources.files(PROFILE_PACKAGE)
    known = sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".json"))
    if name not in known:
        raise ProfileError(f"no evaluation profile {name!r} (known: {', '.join(known)})")
    try:
        data = json.loads((root / f"{name}.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ProfileError(f"data_manifests/profiles/{name}.json: not valid JSON ({err})") from err
    return data  # checked by settings_from_profile


def settings_from_profile(profile: Mapping[str, Any], where: str = "profile") -> EvalSettings:
    """Validate a profile object (:class:`benchmark.profile_schema.ProfileModel`) and build the
    :class:`EvalSettings` from the fields it sets (the others keep the dataclass defaults).

    Raises:
        ProfileError: a missing or unknown field, or a field of the wrong type (named with ``where``).
    """
    if isinstance(profile, Mapping) and "extractors" not in profile and {"clip", "dino"} & set(profile):
        raise ProfileError(
            f"{where}: 'clip' and 'dino' are now entries of 'extractors'; move them there with their kind, e.g. "
            '"extractors": {"clip": {"kind": "clip", ...}, "dino": {"kind": "dino", ...}}'
        )
    doc = validate_profile(dict(profile) if isinstance(profile, Mapping) else profile, where)
    data = {name: getattr(doc, name) for name in doc.model_fields_set - {"description"}}
    data["extractors"] = {name: BackboneSpec(**bb.model_dump()) for name, bb in doc.extractors.items()}
    if doc.metrics is not None:
        data["metrics"] = tuple(doc.metrics)
    if "headline_notes" in data:
        data["headline_notes"] = tuple(doc.headline_notes)
    return EvalSettings(**data)


def manifest_settings(manifest: Manifest) -> EvalSettings:
    """The evaluation settings a manifest names (inline, or by profile name).

    Raises:
        ProfileError: the manifest has no ``evaluation`` field, or it is invalid.
    """
    ev = manifest.evaluation
    if ev is None:
        raise ProfileError(
            f"{manifest.origin}: suite {manifest.name!r} has no 'evaluation' profile; add one to its manifest "
            "(an object, or the name of a profile in data_manifests/profiles/)"
        )
    if isinstance(ev, str):
        return settings_from_profile(load_profile(ev), f"data_manifests/profiles/{ev}.json")
    return settings_from_profile(ev, f"{manifest.origin}: evaluation")


def settings_for(suite: str | Path, **overrides: Any) -> EvalSettings:
    """The evaluation settings of ``suite`` (a shipped suite's name or a manifest file) with
    ``overrides`` applied (``None`` values ignored).

    Raises:
        KeyError: unknown suite name.
        ManifestError: the manifest file is unreadable or malformed.
        ProfileError: the manifest's evaluation profile is missing or invalid.
    """
    from benchmark.data.manifest import load_manifest

    settings = manifest_settings(load_manifest(suite))
    changes = {k: v for k, v in overrides.items() if v is not None}
    if "model" in changes and "model_loader" not in changes:
        changes["model_loader"] = None  # an explicit model replaces the profile's, loader and all
        changes.setdefault("model_revision", None)
    return settings.replace(**changes) if changes else settings
