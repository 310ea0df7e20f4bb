"""The evaluation profile as a typed model (pydantic v2): what a profile may contain.

A profile is ``data_manifests/profiles/<name>.json`` or a manifest's inline ``evaluation`` object;
:func:`benchmark.settings.settings_from_profile` validates it with :func:`validate_profile` and builds the
:class:`~benchmark.settings.EvalSettings` from the result. Field types and constraints are declared
here; values are taken as written (strict: ``"512"`` is not 512; an integer is a number). The JSON Schema
in ``data_manifests/schema/profile.schema.json`` is exported from these models (``python -m
benchmark.profile_schema --write``; a test fails when the committed file is stale).

Errors come back as one :class:`ProfileError` line naming the profile and the field
(``data_manifests/profiles/toy.json.steps: expected an integer >= 1, got 0``).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from benchmark.data.schema import GENERATOR_PATTERN, describe, expected, field_path


class ProfileError(ValueError):
    """An evaluation profile is missing or malformed (the message names the manifest and field)."""


EXTRACTOR_KINDS = ("clip", "dino")
"""``clip``: an image-text model (open_clip by default; serves the text sources); ``dino``: an image model
(timm by default). A ``loader`` may serve either kind with a model ``metrics`` does not know."""

FULL_LADDER: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
RUNGS_EXPECTED = "positive numbers (e.g. 0.5,1,2) or 'full'"


def parse_rungs(value: Any, where: str = "rungs") -> tuple[float, ...]:
    """Rungs from a list of positive numbers, a comma-separated string, or ``"full"`` (:data:`FULL_LADDER`);
    sorted, without duplicates, always including 1.0 (the tuned budget).

    Raises:
        ProfileError: anything else (the message names ``where``).
    """
    if value == "full":
        return FULL_LADDER
    items = value.split(",") if isinstance(value, str) else value
    try:
        rungs = sorted({float(v) for v in items} | {1.0})
    except (TypeError, ValueError):
        rungs = []  # not numbers
    if not rungs or any(not 0 < r < float("inf") for r in rungs):
        raise ProfileError(f"{where}: expected {RUNGS_EXPECTED}, got {value!r}")
    return tuple(rungs)


def _rungs(value: Any) -> tuple[float, ...]:
    try:
        return parse_rungs(value)
    except ProfileError:
        raise expected(RUNGS_EXPECTED, value) from None


LEVELS_EXPECTED = "a list of strictly increasing finite numbers"


def _levels(value: Any) -> tuple[float, ...]:
    """Headline fidelity levels: strictly increasing finite numbers (empty: none)."""
    try:
        levels = tuple(float(v) for v in value) if isinstance(value, (list, tuple)) else None
    except (TypeError, ValueError):
        levels = None
    if levels is None or any(not math.isfinite(v) for v in levels) or list(levels) != sorted(set(levels)):
        raise expected(LEVELS_EXPECTED, value) from None
    return levels


def _extractor_name(name: str) -> str:
    if not name.isidentifier() or name in ProfileModel.model_fields:
        raise PydanticCustomError(
            "message",
            "extractor name {name} must be an identifier other than a profile field",
            {"name": repr(name)},
        )
    return name


Text = Annotated[str, StringConstraints(pattern=r"\S")]
ImportPath = Annotated[str, StringConstraints(pattern=GENERATOR_PATTERN)]
Positive = Annotated[int, Field(ge=1)]
Overrides = dict[str, dict[str, Any]]
ExtractorName = Annotated[
    str, AfterValidator(_extractor_name), WithJsonSchema({"type": "string", "pattern": r"^[A-Za-z_]\w*$"})
]
Rungs = Annotated[
    tuple[float, ...],
    BeforeValidator(_rungs),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}},
                {"type": "string", "description": "comma-separated numbers, or 'full'"},
            ],
            "description": "training budgets scored, as multiples of the tuned steps (1 is always added)",
        }
    ),
]


Levels = Annotated[
    tuple[float, ...],
    BeforeValidator(_levels),
    WithJsonSchema(
        {
            "type": "array",
            "items": {"type": "number"},
            "description": "fidelity levels the headline reads at (ascending), fixed before any method's rows",
        }
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class ExtractorModel(_Strict):
    """A feature extractor: kind, architecture name and weights (tag, local file, or null = random)."""

    kind: Literal["clip", "dino"]
    name: Text
    weights: str | None
    seed: int = 0
    loader: ImportPath | None = Field(default=None, description="package.module:function serving it")
    revision: str | None = Field(default=None, description="the Hugging Face commit of hub weights")


class ProfileModel(_Strict):
    """An evaluation profile: every field of :class:`~benchmark.settings.EvalSettings`, and a free-text
    ``description``."""

    description: str = Field(default="", description="documentation only")
    model: Text
    model_loader: ImportPath | None = None
    model_revision: str | None = None
    extractors: Annotated[dict[ExtractorName, ExtractorModel], Field(min_length=1)]
    resolution: Positive
    steps: Positive
    guidance: float
    gen_batch_size: Positive = 4
    lfd_timesteps: Positive = 10
    lfd_weighting: Literal["eps", "score"] = "eps"
    lfd_seed: int = 0
    lfd_batch_size: Positive = 8
    budget: str | None = None
    fit_seed: int = 0
    method_overrides: Overrides = Field(default_factory=dict, description="per method name, or '*'")
    metrics: list[str] | None = Field(default=None, description="metric keys (null: every one served)")
    rungs: Rungs = (1.0,)
    identity_scorer: ImportPath | None = None
    heldout_views: ImportPath | None = None
    reference_method: str = Field(
        default="infusion",
        description="the method the leaderboard's paired differences compare every other with",
    )
    headline_levels: Levels = ()
    headline_levels_rule: str = Field(
        default="", description="how the headline levels were fixed, before any method's rows existed"
    )
    headline_notes: list[Text] = Field(
        default_factory=list,
        description="measured findings the leaderboard prints under the suite's headline",
    )
    headline_specific: str = Field(
        default="",
        description="the concept-specific overfitting measure (a metric key of role overfitting) that heads the "
        "headline's overfitting columns; empty: the metric registry's order",
    )
    headline_specific_rule: str = Field(
        default="", description="how the headline's concept-specific measure was chosen, before its rows"
    )
    budgets: Overrides = Field(default_factory=dict, description="the overrides of the budget 'budget' names")
    torch_threads: Positive | None = None

    @model_validator(mode="after")
    def _specific_known(self) -> ProfileModel:
        from metrics.spec import METRICS

        if self.headline_specific:
            overfitting = sorted(k for k, s in METRICS.items() if s.role == "overfitting")
            if self.headline_specific not in overfitting:
                raise PydanticCustomError(
                    "message",
                    "{value} is not a metric of role overfitting; use one of: {known}",
                    {
                        "at": "headline_specific",
                        "value": repr(self.headline_specific),
                        "known": ", ".join(overfitting),
                    },
                )
        return self

    @model_validator(mode="after")
    def _budget_named(self) -> ProfileModel:
        if self.budgets and not self.budget:
            raise PydanticCustomError(
                "message", "set 'budget' to the name these budgets are recorded under", {"at": "budgets"}
            )
        return self


def validate_profile(profile: Any, where: str) -> ProfileModel:
    """Validate a decoded profile.

    Raises:
        ProfileError: one line naming ``where`` and the first bad field (:func:`profile_error`).
    """
    try:
        return ProfileModel.model_validate(profile)
    except ValidationError as err:
        raise profile_error(err, where) from None


def profile_error(err: ValidationError, where: str) -> ProfileError:
    """Pydantic's first error as one line, ``<where>.<field>: expected <what>, got <value>``; the unknown
    or missing fields of one object are listed together."""
    errors = err.errors(include_url=False)
    kind, loc, ctx = errors[0]["type"], tuple(errors[0]["loc"]), errors[0].get("ctx") or {}
    if kind in ("extra_forbidden", "missing"):
        names = sorted(str(e["loc"][-1]) for e in errors if e["type"] == kind and e["loc"][:-1] == loc[:-1])
        at = f"{where}.{field_path(loc[:-1])}" if loc[:-1] else where
        if kind == "missing":
            return ProfileError(f"{at}: missing field(s) {names}")
        known = sorted((ExtractorModel if loc[:-1] else ProfileModel).model_fields)
        return ProfileError(f"{at}: unknown field(s) {names}; known: {known}")
    path = field_path(
        loc[:-2] if loc[-1:] == ("[key]",) else loc, str(ctx.get("at", ""))
    )  # a key: its object
    at = f"{where}.{path}" if path else where
    if kind == "message":
        return ProfileError(f"{at}: {errors[0]['msg']}")
    got = ctx["got"] if "got" in ctx else errors[0]["input"]
    what = "a non-empty object" if kind == "too_short" and isinstance(got, dict) else describe(errors[0])
    return ProfileError(f"{at}: expected {what}, got {got!r}")


# ----------------------------------------------------------------------------------------------------
# JSON Schema export

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "data_manifests" / "schema" / "profile.schema.json"


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of an evaluation profile."""
    schema = ProfileModel.model_json_schema()
    del schema["title"], schema["description"]  # the model's own: replaced by the file's
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "data_manifests/schema/profile.schema.json",
        "title": "overfit-bench evaluation profile",
        "description": "Generated by `python -m benchmark.profile_schema --write` from "
        "benchmark/profile_schema.py; do not edit. A profile is data_manifests/profiles/<name>.json or a "
        "manifest's inline 'evaluation' object. Extractor names must not be profile fields, and 'budgets' "
        "needs 'budget': the loader checks those.",
        **schema,
    }


def schema_text() -> str:
    """The committed file's exact text."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmark.profile_schema [--write | --check]``: print, write or check the JSON Schema."""
    from benchmark.data.schema import schema_command

    return schema_command(argv, "benchmark.profile_schema", SCHEMA_FILE, schema_text())


if __name__ == "__main__":
    sys.exit(main())
