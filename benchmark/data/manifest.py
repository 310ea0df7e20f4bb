"""Suite manifests: parse and validate the JSON files in ``data_manifests/``.

A manifest pins everything about a suite that can move a number (SPEC §3). This module only reads
and checks manifests; it never touches the suite's data files. The format is documented in
``data_manifests/README.md``.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from benchmark.data import schema
from benchmark.data.errors import ManifestError
from benchmark.data.schema import KINDS, SCHEMA, SOURCE_TYPES, mentions

__all__ = [
    "KINDS",
    "SCHEMA",
    "SOURCE_TYPES",
    "ConceptSpec",
    "FileEntry",
    "Manifest",
    "available_suites",
    "load_manifest",
    "mentions",
    "parse_manifest",
]

_MANIFEST_PACKAGE = "data_manifests"


@dataclass(frozen=True)
class FileEntry:
    """One file of a suite: its path relative to the suite folder, sha256 and size in bytes."""

    path: str
    sha256: str
    size: int
    is_image: bool = False


@dataclass(frozen=True)
class ConceptSpec:
    """A concept as the manifest describes it.

    ``images`` is ``None`` for import-based suites, whose image checksums live in the import record
    (see :mod:`benchmark.data.imported`); ``image_dir`` is then the concept's folder.
    """

    id: str
    class_noun: str
    kind: str
    prompt_set: str
    images: tuple[FileEntry, ...] | None
    image_dir: str | None = None
    upstream: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Manifest:
    """A parsed, validated manifest. ``sha256`` hashes the manifest bytes (and its base suite's)."""

    name: str
    version: int
    data_dir: str
    source: Mapping[str, Any]
    license: Mapping[str, Any]
    files: tuple[FileEntry, ...]
    prompt_sets: Mapping[str, tuple[str, ...]]
    concepts: tuple[ConceptSpec, ...]
    lfd_prompts: tuple[str, ...]
    class_prompts: tuple[str, ...]
    seeds: tuple[int, ...]
    images_per_prompt: int
    origin: str
    sha256: str
    derived_from: str | None = None
    generator: str | None = None
    config: Mapping[str, Any] | None = None  # a generated suite's generator settings
    # how the suite is evaluated: a profile object, or the name of one in data_manifests/profiles/
    evaluation: Mapping[str, Any] | str | None = None

    @property
    def source_type(self) -> str:
        """``pinned``, ``imported`` or ``generated`` (a derived suite reports its base's type)."""
        return str(self.source["type"])

    def url(self, entry: FileEntry) -> str | None:
        """The pinned upstream URL of ``entry``, or ``None`` when the suite has no URL pattern."""
        pattern = self.source.get("url_pattern")
        if not pattern:
            return None
        return str(pattern).format(commit=self.source.get("commit", ""), path=entry.path)

    def image_entries(self) -> list[FileEntry]:
        """Every reference image pinned by the manifest (empty for import-based suites)."""
        return [e for c in self.concepts for e in (c.images or ())]

    def concept(self, concept_id: str) -> ConceptSpec:
        """The concept with this id.

        Raises:
            KeyError: no such concept (the message suggests the closest id).
        """
        for c in self.concepts:
            if c.id == concept_id:
                return c
        close = difflib.get_close_matches(concept_id, [c.id for c in self.concepts], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise KeyError(f"suite {self.name!r} has no concept {concept_id!r}{hint}")


# ----------------------------------------------------------------------------------------------------
# Reading


def available_suites() -> list[str]:
    """Names of the manifests shipped in ``data_manifests/`` (one ``<name>.json`` per suite), sorted."""
    root = resources.files(_MANIFEST_PACKAGE)
    return sorted(
        p.name[: -len(".json")]
        for p in root.iterdir()
        if p.name.endswith(".json") and not p.name.startswith(("_", "."))
    )


def load_manifest(name_or_path: str | Path) -> Manifest:
    """Load a shipped manifest by suite name, or any manifest file by path.

    Returns:
        The validated :class:`Manifest` (a derived suite is resolved against its base).

    Raises:
        KeyError: no shipped manifest has that name (the message lists the known names).
        ManifestError: the file is not valid JSON or breaks the manifest format.
    """
    text, origin = _read_manifest_text(name_or_path)
    return parse_manifest(_loads(text, origin), origin=origin, raw_bytes=text.encode("utf-8"))


def _read_manifest_text(name_or_path: str | Path) -> tuple[str, str]:
    as_path = Path(name_or_path)
    if isinstance(name_or_path, Path) or as_path.suffix == ".json" or len(as_path.parts) > 1:
        if not as_path.is_file():
            raise ManifestError(f"{as_path}: manifest file not found")
        return as_path.read_text(encoding="utf-8"), str(as_path)
    name = str(name_or_path)
    names = available_suites()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise KeyError(f"unknown suite {name!r} (known suites: {', '.join(names)}){hint}")
    res = resources.files(_MANIFEST_PACKAGE) / f"{name}.json"
    return res.read_text(encoding="utf-8"), f"data_manifests/{name}.json"


def _loads(text: str, origin: str) -> Any:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise ManifestError(f"{origin}: duplicate key {k!r}")
            out[k] = v
        return out

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as err:
        raise ManifestError(f"{origin}: not valid JSON ({err})") from err


# ----------------------------------------------------------------------------------------------------
# Building a Manifest from a validated document (the format itself is declared in benchmark/data/schema.py)


def parse_manifest(obj: Any, *, origin: str = "<manifest>", raw_bytes: bytes | None = None) -> Manifest:
    """Validate a decoded manifest and build a :class:`Manifest`.

    Args:
        obj: the decoded JSON object.
        origin: where it came from, used in error messages.
        raw_bytes: the file's bytes, hashed into ``Manifest.sha256`` (default: canonical JSON).

    Returns:
        The manifest; a derived manifest comes back resolved against its base suite.

    Raises:
        ManifestError: a field is missing or malformed (the message names file and field).
    """
    doc = schema.validate_document(obj, origin)
    if raw_bytes is None:
        raw_bytes = json.dumps(obj, sort_keys=True).encode("utf-8")
    digest = hashlib.sha256(raw_bytes).hexdigest()
    if isinstance(doc, schema.DerivedManifest):
        manifest = _parse_derived(doc, origin, digest)
    elif isinstance(doc, schema.GeneratedManifest):
        manifest = _parse_generated(doc, obj, origin, digest)
    else:  # pinned or imported
        manifest = _parse_full(
            cast(schema.PinnedManifest | schema.ImportedManifest, doc), obj, origin, digest
        )
    evaluation = obj.get("evaluation")
    if isinstance(evaluation, Mapping):
        evaluation = MappingProxyType(dict(evaluation))
    return dataclasses.replace(manifest, evaluation=evaluation)


def _file_entry(doc: schema.FileDoc, *, is_image: bool) -> FileEntry:
    return FileEntry(path=doc.path, sha256=doc.sha256, size=doc.bytes, is_image=is_image)


def _parse_full(
    doc: schema.PinnedManifest | schema.ImportedManifest, raw: Mapping[str, Any], origin: str, digest: str
) -> Manifest:
    concepts = []
    for c, raw_concept in zip(doc.concepts, raw["concepts"], strict=True):
        images = image_dir = None
        if isinstance(c, schema.PinnedConcept):
            images = tuple(_file_entry(e, is_image=True) for e in c.images)
        elif isinstance(c, schema.ImportedConcept):
            image_dir = c.image_dir
        concepts.append(
            ConceptSpec(
                id=c.id,
                class_noun=c.class_noun,
                kind=c.kind,
                prompt_set=c.prompt_set,
                images=images,
                image_dir=image_dir,
                upstream=MappingProxyType(dict(raw_concept.get("upstream") or {})),
            )
        )
    return Manifest(
        name=doc.name,
        version=doc.version,
        data_dir=doc.data_dir or doc.name,
        # source and license keep every field as written (the models type only the documented ones)
        source=MappingProxyType(dict(raw["source"])),
        license=MappingProxyType(dict(raw["license"])),
        files=tuple(_file_entry(f, is_image=False) for f in doc.files or ()),
        prompt_sets=MappingProxyType({k: tuple(v) for k, v in doc.prompt_sets.items()}),
        concepts=tuple(concepts),
        lfd_prompts=tuple(doc.lfd_prompts),
        class_prompts=tuple(doc.class_prompts),
        seeds=tuple(doc.seeds),
        images_per_prompt=doc.images_per_prompt,
        origin=origin,
        sha256=digest,
    )


def _parse_derived(doc: schema.DerivedManifest, origin: str, digest: str) -> Manifest:
    base_name, base_version = doc.source.suite, doc.source.suite_version
    try:
        base = load_manifest(base_name)
    except KeyError as err:
        raise ManifestError(f"{origin}: field 'source.suite': {err.args[0]}") from err
    if base.version != base_version:
        raise ManifestError(
            f"{origin}: derived from {base_name} version {base_version}, but {base_name} is now version "
            f"{base.version}; review the subset and bump this manifest's version"
        )
    if base.source_type != "pinned":
        raise ManifestError(
            f"{origin}: field 'source.suite': expected a suite whose images are pinned in its manifest, "
            f"got {base_name!r}"
        )

    def pick(key: str, indices: Sequence[int], items: Sequence[str]) -> tuple[str, ...]:
        bad = [i for i in indices if i >= len(items)]
        if bad:
            raise ManifestError(f"{origin}: field '{key}': expected indices below {len(items)}, got {bad!r}")
        return tuple(items[i] for i in indices)

    try:
        concepts = tuple(base.concept(cid) for cid in doc.concepts)
    except KeyError as err:
        raise ManifestError(f"{origin}: field 'concepts': {err.args[0]}") from err
    used_sets = sorted({c.prompt_set for c in concepts})
    return Manifest(
        name=doc.name,
        version=doc.version,
        data_dir=base.data_dir,
        source=base.source,
        license=base.license,
        files=base.files,
        prompt_sets=MappingProxyType(
            {s: pick("prompt_indices", doc.prompt_indices, base.prompt_sets[s]) for s in used_sets}
        ),
        concepts=concepts,
        lfd_prompts=pick("lfd_prompt_indices", doc.lfd_prompt_indices, base.lfd_prompts),
        class_prompts=pick("class_prompt_indices", doc.class_prompt_indices, base.class_prompts),
        seeds=tuple(doc.seeds),
        images_per_prompt=doc.images_per_prompt,
        origin=origin,
        sha256=hashlib.sha256(f"{digest}:{base.sha256}".encode()).hexdigest(),
        derived_from=f"{base.name}@{base.version}",
    )


def _parse_generated(
    doc: schema.GeneratedManifest, raw: Mapping[str, Any], origin: str, digest: str
) -> Manifest:
    return Manifest(
        name=doc.name,
        version=doc.version,
        data_dir=doc.data_dir or doc.name,
        source=MappingProxyType(dict(raw["source"])),
        license=MappingProxyType(dict(raw.get("license") or {"name": "see generator"})),
        files=(),
        prompt_sets=MappingProxyType({}),
        concepts=(),
        lfd_prompts=(),
        class_prompts=(),
        seeds=(),
        images_per_prompt=0,
        origin=origin,
        sha256=digest,
        generator=doc.source.generator,
        config=MappingProxyType(dict(raw.get("config") or {})),
    )
