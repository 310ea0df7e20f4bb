"""The result row as a typed model (pydantic v2): the one definition of what a row may hold.

:func:`leaderboard.rows.parse_row` reads rows through :class:`RowModel`, and
:func:`benchmark.results.make_row` checks every row it makes with it, so the harness cannot write a
row the leaderboard would refuse. Values are taken as written (strict: ``"0.3"`` is not a number); an
invalid row raises :class:`RowError` with one line naming the place (``path:line``) and the field.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic_core import PydanticCustomError

from metrics.spec import METRICS


class RowError(ValueError):
    """A result row (or a results file) is malformed; the message names file, line and field."""


def parse_created_at(text: str) -> datetime:
    """Parse an ISO 8601 timestamp; a naive timestamp is taken as UTC.

    Raises:
        ValueError: ``text`` is not ISO 8601.
    """
    stamp = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=timezone.utc)


def _known_metric(key: str) -> str:
    if key not in METRICS:
        raise PydanticCustomError(
            "message",
            "unknown metric {key} (known: {known})",
            {"key": repr(key), "known": ", ".join(METRICS)},
        )
    return key


def _timestamp(text: str) -> str:
    try:
        parse_created_at(text)
    except ValueError:
        raise PydanticCustomError("expected", "an ISO 8601 timestamp") from None
    return text


Text = Annotated[str, StringConstraints(pattern=r"\S")]
Version = int | Text
"""A suite or method version: an integer, or a non-empty string such as ``"2024-06"``."""
Positive = Annotated[int, Field(ge=1)]


class RowModel(BaseModel):
    """One result row as written to a results file (fields beyond these are ignored)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    suite: Text
    suite_version: Version
    method: Text
    method_version: Version
    rung: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    concept: Text
    metric: Annotated[Text, AfterValidator(_known_metric)]
    metric_version: Positive
    value: Annotated[float, Field(allow_inf_nan=False)]
    n: Positive
    backbone: Text | None
    config_hash: Text
    created_at: Annotated[Text, AfterValidator(_timestamp)]
    package_version: Text
    git_rev: Text | None
    extra: dict[str, Any] | None = None


_WORDS = {
    "int_type": "an integer",
    "float_type": "a finite number",
    "finite_number": "a finite number",
    "string_type": "a string",
    "string_pattern_mismatch": "a non-empty string",
    "dict_type": "an object",
    "greater_than_equal": "an integer >= 1",
    "greater_than": "null or a positive number",
    "expected": "",
}


def validate_row(obj: Any, where: str) -> RowModel:
    """Validate one decoded row.

    Raises:
        RowError: ``where: missing field(s) ...`` or ``where: field 'name': expected ..., got ...``.
    """
    if not isinstance(obj, dict):
        raise RowError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    try:
        return RowModel.model_validate(obj)
    except ValidationError as err:
        errors = err.errors(include_url=False)
        missing = [str(e["loc"][0]) for e in errors if e["type"] == "missing"]
        if missing:
            raise RowError(f"{where}: missing field(s) {', '.join(repr(m) for m in missing)}") from None
        first = errors[0]
        name = str(first["loc"][0])
        if first["type"] == "message":
            raise RowError(f"{where}: field {name!r}: {first['msg']}") from None
        # a union (versions, optional fields) reports one error per member: "an integer or a string"
        alternatives = [e for e in errors if e["loc"][0] == name] if len(first["loc"]) > 1 else [first]
        words = [_WORDS.get(e["type"]) or e["msg"] for e in alternatives]
        got = obj.get(name)
        raise RowError(f"{where}: field {name!r}: expected {' or '.join(words)}, got {got!r}") from None
