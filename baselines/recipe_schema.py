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

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError


class RecipeError(ValueError):
    """A recipe file is malformed (the message names the file and the field)."""


Text = Annotated[str, StringConstraints(pattern=r"\S")]


class RecipeModel(BaseModel):
    """A recipe file: the SD-1.5 recipe (``defaults``, with its ``source`` and ``deviations``) and the
    upstream variants as named ``budgets`` that override some of its keys."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    name: Text
    description: str = ""
    source: Text
    deviations: list[str] = []
    defaults: dict[str, Any]
    budgets: dict[str, dict[str, Any]] | None = None  # ``budgets:`` with nothing under it is none


_WORDS = {
    "string_type": "a string",
    "string_pattern_mismatch": "a non-empty string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
}


def validate_recipe(obj: Any, origin: str) -> RecipeModel:
    """Validate a decoded recipe file.

    Raises:
        RecipeError: ``origin: missing field 'name'``, ``origin: unknown field(s) [...]; expected only
            [...]`` or ``origin: field 'path': expected ..., got ...`` (the first problem, one line).
    """
    try:
        return RecipeModel.model_validate(obj)
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        loc = ".".join(str(part) for part in first["loc"])
        if first["type"] == "missing":
            raise RecipeError(f"{origin}: missing field {loc!r}") from None
        if first["type"] == "extra_forbidden":
            known = list(RecipeModel.model_fields)
            raise RecipeError(f"{origin}: unknown field {loc!r}; expected only {known}") from None
        what = _WORDS.get(first["type"], first["msg"])
        raise RecipeError(
            f"{origin}: field {loc or '<top>'!r}: expected {what}, got {first['input']!r}"
        ) from None
