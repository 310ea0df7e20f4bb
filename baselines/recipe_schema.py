"""The recipe file's top level as a typed model (pydantic v2): what ``baselines/recipes/*.yaml`` may hold.

:func:`baselines.config.load_recipe` validates a decoded recipe with :func:`validate_recipe` and builds
its :class:`~baselines.config.Recipe` from the result. The keys *inside* ``defaults`` and each budget are
the method's own (any names; a budget's values keep the types of the defaults): those are checked by
:func:`baselines.config.merge_config`, not here.

Errors come back as one :class:`RecipeError` line naming the file and the field
(``baselines/recipes/lokr.yaml: field 'defaults': expected an object, got 3``). The converter is a small
cousin of :func:`benchmark.data.schema.manifest_error`: ``baselines`` imports nothing of ``benchmark``
but its ``io``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError


class RecipeError(ValueError):
    """A recipe file is malformed (the message names the file and the field)."""


Text = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"\S")]
Stripped = Annotated[str, StringConstraints(strip_whitespace=True)]


class RecipeModel(BaseModel):
    """A recipe file: the SD-1.5 recipe (``defaults``, with its ``source`` and ``deviations``) and the
    upstream variants as named ``budgets`` that override some of its keys (text is stripped)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    name: Text
    description: Stripped = ""
    source: Text
    deviations: tuple[Stripped, ...] = Field(default=(), strict=False)  # a YAML list
    defaults: dict[str, Any]
    budgets: dict[str, dict[str, Any]] = {}


_WORDS = {
    "string_type": "a string",
    "string_pattern_mismatch": "a non-empty string",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
}


def validate_recipe(obj: Any, origin: str) -> RecipeModel:
    """Validate a decoded recipe file.

    Raises:
        RecipeError: the first problem, one line naming ``origin`` and the field.
    """
    try:
        return RecipeModel.model_validate(obj)
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        path = ".".join(str(part) for part in first["loc"]) or "<top>"
        if first["type"] == "missing":
            message = f"missing field {path!r}"
        elif first["type"] == "extra_forbidden":
            message = f"unknown field {path!r}; expected only {list(RecipeModel.model_fields)}"
        else:
            what = _WORDS.get(first["type"], first["msg"])
            message = f"field {path!r}: expected {what}, got {first['input']!r}"
        raise RecipeError(f"{origin}: {message}") from None
