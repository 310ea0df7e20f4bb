"""The manifest format as typed models (pydantic v2): what ``data_manifests/*.json`` may contain.

:mod:`benchmark.data.manifest` validates a decoded manifest with :func:`validate_document` and builds
its :class:`~benchmark.data.manifest.Manifest` from the result. Field types and constraints (patterns,
ranges, required and unknown fields) are declared here; the few rules that span fields (a concept's
prompt set exists, paths are listed once, ``images_per_prompt`` equals the number of seeds) are model
validators. The JSON Schema in ``data_manifests/schema/manifest.schema.json`` is exported from these
models (``python -m benchmark.data.schema --write``; a test fails when the committed file is stale).

Errors come back as one :class:`~benchmark.data.errors.ManifestError` line naming the file and the
field, never as pydantic's multi-line report.
"""

from __future__ import annotations

import argparse
import json
import re
import string
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from benchmark.data.errors import ManifestError

SCHEMA = 1
SOURCE_TYPES = ("pinned", "imported", "derived", "generated")
KINDS = ("live", "object")

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
COMMIT_PATTERN = r"^[0-9a-f]{40}$"
GENERATOR_PATTERN = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"
TEXT_PATTERN = r"\S"
# a path part is anything without '/' or '\' except '.' and '..' (no look-arounds: the Rust engine)
_PART = r"(?:[^/\\.][^/\\]*|\.[^/\\.][^/\\]*|\.\.[^/\\]+)"
RELPATH_PATTERN = rf"^{_PART}(?:/{_PART})*$"

# What each pattern means, for error messages ("expected <this>, got ...").
PATTERN_MEANING = {
    ID_PATTERN: "an id of letters, digits, '_', '.', '-'",
    SHA256_PATTERN: "64 lowercase hex digits",
    COMMIT_PATTERN: "a 40-digit hex commit",
    GENERATOR_PATTERN: "an import path 'package.module:function'",
    TEXT_PATTERN: "a non-empty string",
    RELPATH_PATTERN: "a relative POSIX path without '.' or '..' parts",
}

_JSON = Any  # any JSON value: kept verbatim by the manifest


def expected(what: str, got: Any, at: str = "") -> PydanticCustomError:
    """The error a validator raises: ``at`` is a field path below the validated value (``"[2].id"``)."""
    return PydanticCustomError("expected", "expected {what}", {"what": what, "got": got, "at": at})


def _template(*slots: str) -> Callable[[str], str]:
    """A check that a prompt's format fields are exactly ``slots``, each once."""

    def check(text: str) -> str:
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
        except ValueError as err:
            raise expected(f"a prompt with slots {list(slots)} ({err})", text) from err
        if sorted(fields) != sorted(slots):
            want = " and ".join("{" + s + "}" for s in slots) if slots else "no {...} slots"
            raise expected(f"a prompt with exactly {want}", text)
        return text

    return check


def _no_duplicates(items: list[str]) -> list[str]:
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item in seen:
            raise expected("no duplicates", item, at=f"[{i}]")
        seen.add(item)
    return items


def _distinct_seeds(seeds: list[int]) -> list[int]:
    if len(set(seeds)) != len(seeds):
        raise expected("distinct integers", seeds)
    return seeds


def _schema_version(value: int) -> int:
    if value != SCHEMA:
        raise expected(f"schema {SCHEMA} (this version of overfit-bench)", value)
    return value


def _profile_reference(value: Any) -> Any:
    if not isinstance(value, str | dict):
        raise expected("a profile object or the name of a profile", value)
    return value


Text = Annotated[str, StringConstraints(pattern=TEXT_PATTERN)]
Identifier = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
RelPath = Annotated[str, StringConstraints(pattern=RELPATH_PATTERN)]
Count = Annotated[int, Field(ge=0)]
Positive = Annotated[int, Field(ge=1)]
ConceptTemplate = Annotated[Text, AfterValidator(_template("concept"))]
ClassTemplate = Annotated[Text, AfterValidator(_template("class"))]
PlainPrompt = Annotated[Text, AfterValidator(_template())]
SchemaVersion = Annotated[
    int, AfterValidator(_schema_version), WithJsonSchema({"const": SCHEMA, "type": "integer"})
]
ProfileReference = Annotated[
    _JSON,
    AfterValidator(_profile_reference),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string"}, {"type": "object"}],
            "description": "a profile object, or the name of one in data_manifests/profiles/",
        }
    ),
]
Seeds = Annotated[list[Count], Field(min_length=1), AfterValidator(_distinct_seeds)]


class _Strict(BaseModel):
    """JSON values as written: no coercion ("1" is not 1), unknown fields refused."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class _Open(BaseModel):
    """An object whose documented fields are typed and whose other fields are kept verbatim."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


class FileDoc(_Strict):
    """One pinned file: ``{"path", "sha256", "bytes"}``."""

    path: RelPath
    sha256: Annotated[str, StringConstraints(pattern=SHA256_PATTERN)]
    bytes: Positive


class LicenseDoc(_Open):
    """The suite's licence: ``name`` is required; ``spdx``, ``urls``, ``notice`` ... are kept as written."""

    name: Text


class UpstreamSource(_Open):
    """Where a pinned or imported suite comes from (``repository``, ``layout`` ... are kept as written)."""

    type: Literal["pinned", "imported"]
    url_pattern: Text | None = None
    commit: Annotated[str, StringConstraints(pattern=COMMIT_PATTERN)] | None = None

    @model_validator(mode="after")
    def _slots(self) -> UpstreamSource:
        pattern = self.url_pattern
        if pattern is not None and "{path}" not in pattern:
            raise expected("a pattern with a {path} slot", pattern, at="url_pattern")
        if pattern is not None and "{commit}" in pattern and self.commit is None:
            raise expected("a 40-digit hex commit", None, at="commit")
        return self


class PinnedSource(UpstreamSource):
    type: Literal["pinned"]


class ImportedSource(UpstreamSource):
    type: Literal["imported"]
    images: dict[str, _JSON] = Field(description="where the images come from and how they are recorded")


class DerivedSource(_Open):
    type: Literal["derived"]
    suite: Identifier
    suite_version: Positive


class GeneratedSource(_Open):
    type: Literal["generated"]
    generator: Annotated[str, StringConstraints(pattern=GENERATOR_PATTERN)]


class _ConceptDoc(_Strict):
    id: Identifier
    class_noun: Text
    kind: Literal["live", "object"]
    prompt_set: str
    upstream: dict[str, _JSON] | None = Field(default=None, description="upstream's own fields, verbatim")


class PinnedConcept(_ConceptDoc):
    images: Annotated[list[FileDoc], Field(min_length=1)]


class ImportedConcept(_ConceptDoc):
    image_dir: RelPath


class _Common(_Strict):
    schema_version: SchemaVersion = Field(alias="schema")
    name: Identifier
    version: Positive
    title: str | None = None
    description: str | None = None
    notes: str | None = None
    evaluation: ProfileReference = None


class _FullDoc(_Common):
    data_dir: RelPath | None = None
    license: LicenseDoc
    files: list[FileDoc] | None = None
    prompt_source: _JSON = Field(default=None, description="how the templates were derived (documentation)")
    prompt_sets: Annotated[
        dict[str, Annotated[list[ConceptTemplate], Field(min_length=1), AfterValidator(_no_duplicates)]],
        Field(min_length=1),
    ]
    lfd_prompts: Annotated[list[PlainPrompt], Field(min_length=1), AfterValidator(_no_duplicates)]
    class_prompts: Annotated[list[ClassTemplate], Field(min_length=1), AfterValidator(_no_duplicates)]
    seeds: Seeds
    images_per_prompt: Positive

    def _concepts(self) -> Sequence[_ConceptDoc]:
        raise NotImplementedError

    @model_validator(mode="after")
    def _cross_checks(self) -> _FullDoc:
        if self.images_per_prompt != len(self.seeds):
            raise expected(
                f"the number of seeds ({len(self.seeds)}): image k of a prompt uses seeds[k]",
                self.images_per_prompt,
                at="images_per_prompt",
            )
        _check_concepts(self._concepts(), self.prompt_sets, [f.path for f in self.files or ()])
        _check_lfd_prompts(self.lfd_prompts, {c.class_noun for c in self._concepts()})
        return self


class PinnedManifest(_FullDoc):
    """A suite whose every file, images included, is pinned by checksum in the manifest."""

    source: PinnedSource
    concepts: Annotated[list[PinnedConcept], Field(min_length=1)]

    def _concepts(self) -> Sequence[_ConceptDoc]:
        return self.concepts


class ImportedManifest(_FullDoc):
    """A suite whose image checksums are recorded on first import (one folder per concept)."""

    source: ImportedSource
    concepts: Annotated[list[ImportedConcept], Field(min_length=1)]

    def _concepts(self) -> Sequence[_ConceptDoc]:
        return self.concepts


class DerivedManifest(_Common):
    """A subset of a pinned suite: concepts by id, prompts by index, its own seeds."""

    source: DerivedSource
    license: dict[str, _JSON] | None = None
    concepts: Annotated[list[Identifier], Field(min_length=1)]
    prompt_indices: Annotated[list[Count], Field(min_length=1)]
    lfd_prompt_indices: Annotated[list[Count], Field(min_length=1)]
    class_prompt_indices: Annotated[list[Count], Field(min_length=1)]
    seeds: Annotated[list[Count], Field(min_length=1)]
    images_per_prompt: Positive

    @model_validator(mode="after")
    def _seed_count(self) -> DerivedManifest:
        distinct = len(set(self.seeds))
        if self.images_per_prompt != len(self.seeds) or distinct != len(self.seeds):
            raise expected(
                f"the number of distinct seeds ({distinct})", self.images_per_prompt, at="images_per_prompt"
            )
        return self


class GeneratedManifest(_Common):
    """A suite rendered by a generator function from ``config`` (the embedded toy suites)."""

    source: GeneratedSource
    data_dir: RelPath | None = None
    license: LicenseDoc | None = None
    config: dict[str, _JSON] | None = Field(default=None, description="the generator's settings")


DOCUMENTS: dict[str, type[_Common]] = {
    "pinned": PinnedManifest,
    "imported": ImportedManifest,
    "derived": DerivedManifest,
    "generated": GeneratedManifest,
}


class _Header(_Open):
    """What is read before the document type is known (so those errors come first, as before)."""

    schema_version: SchemaVersion = Field(alias="schema")
    name: Identifier
    version: Positive
    source: Annotated[dict[str, _JSON], Field()]

    @model_validator(mode="after")
    def _source_type(self) -> _Header:
        if "type" not in self.source:
            raise PydanticCustomError("missing_at", "missing", {"at": "source.type"})
        if self.source["type"] not in SOURCE_TYPES:
            raise expected(f"one of {list(SOURCE_TYPES)}", self.source["type"], at="source.type")
        return self


def _check_concepts(concepts: Sequence[_ConceptDoc], prompt_sets: dict[str, Any], files: list[str]) -> None:
    seen_ids: set[str] = set()
    seen_paths = set(files)
    for i, c in enumerate(concepts):
        where = f"concepts[{i}]"
        if c.id in seen_ids:
            raise expected("a unique concept id", c.id, at=f"{where}.id")
        seen_ids.add(c.id)
        if c.prompt_set not in prompt_sets:
            raise expected(
                f"one of the prompt_sets {sorted(prompt_sets)}", c.prompt_set, at=f"{where}.prompt_set"
            )
        if isinstance(c, PinnedConcept):
            for j, e in enumerate(c.images):
                if e.path in seen_paths:
                    raise expected(
                        "a path listed once in the manifest", e.path, at=f"{where}.images[{j}].path"
                    )
                seen_paths.add(e.path)
        elif isinstance(c, ImportedConcept):
            if c.image_dir in seen_paths:
                raise expected("a folder used by one concept only", c.image_dir, at=f"{where}.image_dir")
            seen_paths.add(c.image_dir)


def mentions(prompt: str, noun: str) -> bool:
    """Whether ``prompt`` contains ``noun`` as whole words (case-insensitive, plural -s/-es allowed)."""
    words = r"\s+".join(re.escape(w) for w in noun.lower().split())
    return re.search(rf"\b{words}(?:s|es)?\b", prompt.lower()) is not None


def _check_lfd_prompts(lfd: Sequence[str], nouns: set[str]) -> None:
    for i, prompt in enumerate(lfd):
        hit = [n for n in sorted(nouns) if mentions(prompt, n)]
        if hit:
            raise expected(
                f"a prompt that names no concept class (it names {hit})", prompt, at=f"lfd_prompts[{i}]"
            )


# ----------------------------------------------------------------------------------------------------
# Validation entry point and error messages


class ImportRecordDoc(_Open):
    """An imported suite's ``verified.json``: image entries per concept (other fields are informational)."""

    schema_version: int = Field(alias="schema")
    suite: str
    concepts: dict[str, Annotated[list[FileDoc], Field(min_length=1)]]


def validate_record(obj: Any, origin: str) -> ImportRecordDoc:
    """Validate a decoded import record.

    Raises:
        ManifestError: one line naming ``origin`` and the first bad field.
    """
    if not isinstance(obj, dict):
        raise ManifestError(f"{origin}: field '<top>': expected an object, got {_shown(obj)}")
    try:
        return ImportRecordDoc.model_validate(obj)
    except ValidationError as err:
        raise manifest_error(err, origin, obj) from None


def validate_document(obj: Any, origin: str) -> _Common:
    """Validate a decoded manifest against the model of its ``source.type``.

    Returns:
        The validated document (a :class:`PinnedManifest`, :class:`ImportedManifest`,
        :class:`DerivedManifest` or :class:`GeneratedManifest`).

    Raises:
        ManifestError: one line naming ``origin`` and the first bad field.
    """
    if not isinstance(obj, dict):
        raise ManifestError(f"{origin}: field '<top>': expected an object, got {_shown(obj)}")
    try:
        _Header.model_validate(obj)
        model = DOCUMENTS[obj["source"]["type"]]
        return model.model_validate(obj)
    except ValidationError as err:
        raise manifest_error(err, origin, obj) from None


def manifest_error(err: ValidationError, origin: str, obj: dict[str, Any]) -> ManifestError:
    """Pydantic's first error as one line: ``<origin>: field '<path>': expected <what>, got <value>``."""
    errors = err.errors(include_url=False)
    first = errors[0]
    loc = tuple(first["loc"])
    if first["type"] == "extra_forbidden":
        parent = loc[:-1]
        names = sorted(
            str(e["loc"][-1]) for e in errors if e["type"] == "extra_forbidden" and e["loc"][:-1] == parent
        )
        if not parent:
            stype = obj["source"]["type"]
            known = sorted(f.alias or n for n, f in DOCUMENTS[stype].model_fields.items())
            return ManifestError(
                f"{origin}: unknown field(s) {names} for a {stype!r} manifest; expected only {known}"
            )
        return ManifestError(f"{origin}: field '{field_path(parent)}': unknown field(s) {names}")
    ctx = first.get("ctx") or {}
    path = field_path(loc, str(ctx.get("at", "")))
    if first["type"] in ("missing", "missing_at"):
        return ManifestError(f"{origin}: missing field '{path}'")
    got = ctx["got"] if "got" in ctx else first["input"]
    return ManifestError(f"{origin}: field '{path}': expected {describe(first)}, got {_shown(got)}")


def field_path(loc: Sequence[str | int], at: str = "") -> str:
    """``("concepts", 0, "id")`` as ``concepts[0].id``; ``at`` is appended (``"[2]"`` or ``"a.b"``)."""
    out = ""
    for part in [*loc, *([at] if at else [])]:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("["):
            out += part
        else:
            out += f".{part}" if out else part
    return out


def describe(error: Any) -> str:
    """What a pydantic error says was expected, in the words of this project's messages."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "expected":
        return str(ctx["what"])
    if kind == "string_pattern_mismatch":
        return PATTERN_MEANING.get(ctx["pattern"], f"a string matching {ctx['pattern']}")
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        sign = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[
            kind
        ]
        bound = next(iter(ctx.values()))
        return f"{'an integer' if isinstance(bound, int) else 'a number'} {sign} {bound}"
    if kind == "too_short":
        return "a non-empty list" if ctx.get("min_length") == 1 else f"at least {ctx.get('min_length')} items"
    if kind == "literal_error":
        return f"one of [{ctx['expected'].replace(' or ', ', ')}]"
    return _TYPE_WORDS.get(kind, str(error["msg"]))


_TYPE_WORDS = {
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "dataclass_type": "an object",
    "finite_number": "a finite number",
}


def _shown(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


# ----------------------------------------------------------------------------------------------------
# JSON Schema export

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "data_manifests" / "schema" / "manifest.schema.json"


def _document_type(value: Any) -> str | None:
    source = value.get("source") if isinstance(value, dict) else getattr(value, "source", None)
    stype = source.get("type") if isinstance(source, dict) else getattr(source, "type", None)
    return stype if isinstance(stype, str) else None


ManifestDocument = Annotated[
    Annotated[PinnedManifest, Tag("pinned")]
    | Annotated[ImportedManifest, Tag("imported")]
    | Annotated[DerivedManifest, Tag("derived")]
    | Annotated[GeneratedManifest, Tag("generated")],
    Discriminator(_document_type),
]


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a manifest file: one of the four document types."""
    schema = TypeAdapter(ManifestDocument).json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "data_manifests/schema/manifest.schema.json",
        "title": f"overfit-bench suite manifest (schema {SCHEMA})",
        "description": "Generated by `python -m benchmark.data.schema --write` from benchmark/data/schema.py; "
        "do not edit. Rules across fields (a concept's prompt set exists, images_per_prompt equals the "
        "number of seeds, prompt slots, unique ids and paths) are checked by the loader only.",
        **schema,
    }


def schema_text() -> str:
    """The committed file's exact text."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def schema_command(argv: Sequence[str] | None, module: str, path: Path, text: str) -> int:
    """``python -m <module> [--write | --check]``: print, write or check a generated JSON Schema file
    (``path``, whose exact content is ``text``); exit 1 when ``--check`` finds it stale."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {module}", description="Print, write or check the generated JSON Schema."
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help=f"write {path.name}")
    group.add_argument("--check", action="store_true", help="exit 1 when the committed file is stale")
    args = parser.parse_args(argv)
    if args.write:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    elif args.check:
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        if current != text:
            print(f"{path} is stale: run python -m {module} --write", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmark.data.schema [--write | --check]``: print, write or check the JSON Schema."""
    return schema_command(argv, "benchmark.data.schema", SCHEMA_FILE, schema_text())


if __name__ == "__main__":
    sys.exit(main())
