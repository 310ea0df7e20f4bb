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
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

from benchmark.data.errors import ManifestError

SCHEMA = 1
SOURCE_TYPES = ("pinned", "imported", "derived", "generated")
KINDS = ("live", "object")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_MANIFEST_PACKAGE = "data_manifests"
_COMMON_KEYS = frozenset(
    {"schema", "name", "version", "title", "description", "notes", "source", "license", "evaluation"}
)
_FULL_KEYS = {"data_dir", "files", "prompt_source", "prompt_sets", "concepts", "lfd_prompts", "class_prompts"}
_DERIVED_KEYS = {"concepts", "prompt_indices", "lfd_prompt_indices", "class_prompt_indices"}
_SEED_KEYS = {"seeds", "images_per_prompt"}
_KEYS = {
    "pinned": _COMMON_KEYS | _FULL_KEYS | _SEED_KEYS,
    "derived": _COMMON_KEYS | _DERIVED_KEYS | _SEED_KEYS,
    "generated": _COMMON_KEYS | {"data_dir", "config"},
}
_KEYS["imported"] = _KEYS["pinned"]


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
# Validation


class _Checker:
    """Field access with error messages that name the manifest file and the field path."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def fail(self, where: str, expected: str, got: Any) -> ManifestError:
        shown = repr(got)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        return ManifestError(f"{self.origin}: field '{where}': expected {expected}, got {shown}")

    def get(self, obj: Mapping[str, Any], key: str, where: str, *, optional: bool = False) -> Any:
        if key not in obj:
            if optional:
                return None
            full = f"{where}.{key}" if where else key
            raise ManifestError(f"{self.origin}: missing field '{full}'")
        return obj[key]

    def mapping(self, value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(where, "an object", value)
        return value

    def sequence(self, value: Any, where: str, *, nonempty: bool = True) -> Sequence[Any]:
        if not isinstance(value, list) or (nonempty and not value):
            raise self.fail(where, "a non-empty list" if nonempty else "a list", value)
        return value

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, "a non-empty string", value)
        return value

    def integer(self, value: Any, where: str, *, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(where, f"an integer >= {minimum}", value)
        return value

    def identifier(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not _ID_RE.match(value):
            raise self.fail(where, "an id of letters, digits, '_', '.', '-'", value)
        return value

    def relpath(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value or "\\" in value:
            raise self.fail(where, "a relative POSIX path", value)
        p = PurePosixPath(value)
        if p.is_absolute() or any(part in ("", ".", "..") for part in value.split("/")):
            raise self.fail(where, "a relative POSIX path without '.' or '..' parts", value)
        return value

    def file_entry(self, value: Any, where: str, *, is_image: bool) -> FileEntry:
        obj = self.mapping(value, where)
        path = self.relpath(self.get(obj, "path", where), f"{where}.path")
        sha = self.get(obj, "sha256", where)
        if not isinstance(sha, str) or not _SHA_RE.match(sha):
            raise self.fail(f"{where}.sha256", "64 lowercase hex digits", sha)
        size = self.integer(self.get(obj, "bytes", where), f"{where}.bytes", minimum=1)
        return FileEntry(path=path, sha256=sha, size=size, is_image=is_image)

    def template(self, value: Any, where: str, slots: tuple[str, ...]) -> str:
        """A prompt whose format fields are exactly ``slots`` (each once)."""
        text = self.text(value, where)
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
        except ValueError as err:
            raise self.fail(where, f"a prompt with slots {list(slots)} ({err})", text) from err
        if sorted(fields) != sorted(slots):
            want = " and ".join("{" + s + "}" for s in slots) if slots else "no {...} slots"
            raise self.fail(where, f"a prompt with exactly {want}", text)
        return text


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
    ck = _Checker(origin)
    top = ck.mapping(obj, "<top>")
    if raw_bytes is None:
        raw_bytes = json.dumps(top, sort_keys=True).encode("utf-8")
    digest = hashlib.sha256(raw_bytes).hexdigest()
    schema = ck.integer(ck.get(top, "schema", ""), "schema", minimum=1)
    if schema != SCHEMA:
        raise ck.fail("schema", f"schema {SCHEMA} (this version of overfit-bench)", schema)
    name = ck.identifier(ck.get(top, "name", ""), "name")
    version = ck.integer(ck.get(top, "version", ""), "version", minimum=1)
    source = ck.mapping(ck.get(top, "source", ""), "source")
    stype = ck.get(source, "type", "source")
    if stype not in SOURCE_TYPES:
        raise ck.fail("source.type", f"one of {list(SOURCE_TYPES)}", stype)
    unknown = sorted(set(top) - _KEYS[stype])
    if unknown:
        raise ManifestError(
            f"{origin}: unknown field(s) {unknown} for a {stype!r} manifest; expected only {sorted(_KEYS[stype])}"
        )
    if stype == "derived":
        manifest = _parse_derived(ck, top, name, version, source, digest)
    elif stype == "generated":
        manifest = _parse_generated(ck, top, name, version, source, digest)
    else:
        manifest = _parse_full(ck, top, name, version, source, digest)
    evaluation = top.get("evaluation")
    if evaluation is not None and not isinstance(evaluation, (str, Mapping)):
        raise ck.fail("evaluation", "a profile object or the name of a profile", evaluation)
    if isinstance(evaluation, Mapping):
        evaluation = MappingProxyType(dict(evaluation))
    return dataclasses.replace(manifest, evaluation=evaluation)


def _parse_common_lists(
    ck: _Checker, top: Mapping[str, Any]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[int, ...], int]:
    lfd = tuple(
        ck.template(p, f"lfd_prompts[{i}]", ())
        for i, p in enumerate(ck.sequence(ck.get(top, "lfd_prompts", ""), "lfd_prompts"))
    )
    cls = tuple(
        ck.template(p, f"class_prompts[{i}]", ("class",))
        for i, p in enumerate(ck.sequence(ck.get(top, "class_prompts", ""), "class_prompts"))
    )
    seeds = tuple(
        ck.integer(s, f"seeds[{i}]") for i, s in enumerate(ck.sequence(ck.get(top, "seeds", ""), "seeds"))
    )
    if len(set(seeds)) != len(seeds):
        raise ck.fail("seeds", "distinct integers", list(seeds))
    ipp = ck.integer(ck.get(top, "images_per_prompt", ""), "images_per_prompt", minimum=1)
    if ipp != len(seeds):
        raise ck.fail(
            "images_per_prompt", f"the number of seeds ({len(seeds)}): image k of a prompt uses seeds[k]", ipp
        )
    _check_duplicates(ck, "lfd_prompts", lfd)
    _check_duplicates(ck, "class_prompts", cls)
    return lfd, cls, seeds, ipp


def _check_duplicates(ck: _Checker, where: str, items: Sequence[str]) -> None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item in seen:
            raise ck.fail(f"{where}[{i}]", "no duplicates", item)
        seen.add(item)


def _parse_full(
    ck: _Checker, top: Mapping[str, Any], name: str, version: int, source: Mapping[str, Any], digest: str
) -> Manifest:
    stype = source["type"]
    pattern = ck.get(source, "url_pattern", "source", optional=True)
    if pattern is not None:
        ck.text(pattern, "source.url_pattern")
        if "{path}" not in pattern:
            raise ck.fail("source.url_pattern", "a pattern with a {path} slot", pattern)
        if "{commit}" in pattern:
            commit = ck.get(source, "commit", "source")
            if not isinstance(commit, str) or not re.fullmatch(r"[0-9a-f]{40}", commit):
                raise ck.fail("source.commit", "a 40-digit hex commit", commit)
    data_dir = ck.relpath(ck.get(top, "data_dir", "", optional=True) or name, "data_dir")
    lic = ck.mapping(ck.get(top, "license", ""), "license")
    ck.text(ck.get(lic, "name", "license"), "license.name")
    files = tuple(
        ck.file_entry(f, f"files[{i}]", is_image=False)
        for i, f in enumerate(
            ck.sequence(ck.get(top, "files", "", optional=True) or [], "files", nonempty=False)
        )
    )
    raw_sets = ck.mapping(ck.get(top, "prompt_sets", ""), "prompt_sets")
    if not raw_sets:
        raise ck.fail("prompt_sets", "at least one prompt set", {})
    prompt_sets: dict[str, tuple[str, ...]] = {}
    for set_name, prompts in raw_sets.items():
        where = f"prompt_sets.{set_name}"
        items = tuple(
            ck.template(p, f"{where}[{i}]", ("concept",)) for i, p in enumerate(ck.sequence(prompts, where))
        )
        _check_duplicates(ck, where, items)
        prompt_sets[set_name] = items

    concepts: list[ConceptSpec] = []
    seen_ids: set[str] = set()
    seen_paths: set[str] = {f.path for f in files}
    for i, raw in enumerate(ck.sequence(ck.get(top, "concepts", ""), "concepts")):
        where = f"concepts[{i}]"
        c = ck.mapping(raw, where)
        cid = ck.identifier(ck.get(c, "id", where), f"{where}.id")
        if cid in seen_ids:
            raise ck.fail(f"{where}.id", "a unique concept id", cid)
        seen_ids.add(cid)
        class_noun = ck.text(ck.get(c, "class_noun", where), f"{where}.class_noun")
        kind = ck.get(c, "kind", where)
        if kind not in KINDS:
            raise ck.fail(f"{where}.kind", f"one of {list(KINDS)}", kind)
        pset = ck.get(c, "prompt_set", where)
        if pset not in prompt_sets:
            raise ck.fail(f"{where}.prompt_set", f"one of the prompt_sets {sorted(prompt_sets)}", pset)
        images: tuple[FileEntry, ...] | None
        image_dir: str | None = None
        if stype == "pinned":
            images = tuple(
                ck.file_entry(e, f"{where}.images[{j}]", is_image=True)
                for j, e in enumerate(ck.sequence(ck.get(c, "images", where), f"{where}.images"))
            )
            for j, e in enumerate(images):
                if e.path in seen_paths:
                    raise ck.fail(f"{where}.images[{j}].path", "a path listed once in the manifest", e.path)
                seen_paths.add(e.path)
        else:
            images = None
            image_dir = ck.relpath(ck.get(c, "image_dir", where), f"{where}.image_dir")
            if image_dir in seen_paths:
                raise ck.fail(f"{where}.image_dir", "a folder used by one concept only", image_dir)
            seen_paths.add(image_dir)
        upstream = c.get("upstream") or {}
        ck.mapping(upstream, f"{where}.upstream")
        concepts.append(
            ConceptSpec(
                id=cid,
                class_noun=class_noun,
                kind=kind,
                prompt_set=pset,
                images=images,
                image_dir=image_dir,
                upstream=MappingProxyType(dict(upstream)),
            )
        )
    if stype == "imported":
        ck.mapping(ck.get(source, "images", "source"), "source.images")
    lfd, cls, seeds, ipp = _parse_common_lists(ck, top)
    _check_lfd_prompts(ck, lfd, concepts)
    return Manifest(
        name=name,
        version=version,
        data_dir=data_dir,
        source=MappingProxyType(dict(source)),
        license=MappingProxyType(dict(lic)),
        files=files,
        prompt_sets=MappingProxyType(prompt_sets),
        concepts=tuple(concepts),
        lfd_prompts=lfd,
        class_prompts=cls,
        seeds=seeds,
        images_per_prompt=ipp,
        origin=ck.origin,
        sha256=digest,
    )


def mentions(prompt: str, noun: str) -> bool:
    """Whether ``prompt`` contains ``noun`` as whole words (case-insensitive, plural -s/-es allowed)."""
    words = r"\s+".join(re.escape(w) for w in noun.lower().split())
    return re.search(rf"\b{words}(?:s|es)?\b", prompt.lower()) is not None


def _check_lfd_prompts(ck: _Checker, lfd: Sequence[str], concepts: Sequence[ConceptSpec]) -> None:
    nouns = sorted({c.class_noun for c in concepts})
    for i, prompt in enumerate(lfd):
        hit = [n for n in nouns if mentions(prompt, n)]
        if hit:
            raise ck.fail(
                f"lfd_prompts[{i}]", f"a prompt that names no concept class (it names {hit})", prompt
            )


def _parse_derived(
    ck: _Checker, top: Mapping[str, Any], name: str, version: int, source: Mapping[str, Any], digest: str
) -> Manifest:
    base_name = ck.identifier(ck.get(source, "suite", "source"), "source.suite")
    base_version = ck.integer(ck.get(source, "suite_version", "source"), "source.suite_version", minimum=1)
    try:
        base = load_manifest(base_name)
    except KeyError as err:
        raise ManifestError(f"{ck.origin}: field 'source.suite': {err.args[0]}") from err
    if base.version != base_version:
        raise ManifestError(
            f"{ck.origin}: derived from {base_name} version {base_version}, but {base_name} is now version "
            f"{base.version}; review the subset and bump this manifest's version"
        )
    if base.source_type != "pinned":
        raise ck.fail("source.suite", "a suite whose images are pinned in its manifest", base_name)

    def pick(key: str, items: Sequence[str]) -> tuple[str, ...]:
        idx = [ck.integer(v, f"{key}[{i}]") for i, v in enumerate(ck.sequence(ck.get(top, key, ""), key))]
        bad = [i for i in idx if i >= len(items)]
        if bad:
            raise ck.fail(key, f"indices below {len(items)}", bad)
        return tuple(items[i] for i in idx)

    ids = [
        ck.identifier(v, f"concepts[{i}]")
        for i, v in enumerate(ck.sequence(ck.get(top, "concepts", ""), "concepts"))
    ]
    try:
        concepts = tuple(base.concept(cid) for cid in ids)
    except KeyError as err:
        raise ManifestError(f"{ck.origin}: field 'concepts': {err.args[0]}") from err
    used_sets = sorted({c.prompt_set for c in concepts})
    prompt_sets = {s: pick("prompt_indices", base.prompt_sets[s]) for s in used_sets}
    lfd = pick("lfd_prompt_indices", base.lfd_prompts)
    cls = pick("class_prompt_indices", base.class_prompts)
    seeds = tuple(
        ck.integer(s, f"seeds[{i}]") for i, s in enumerate(ck.sequence(ck.get(top, "seeds", ""), "seeds"))
    )
    ipp = ck.integer(ck.get(top, "images_per_prompt", ""), "images_per_prompt", minimum=1)
    if ipp != len(seeds) or len(set(seeds)) != len(seeds):
        raise ck.fail("images_per_prompt", f"the number of distinct seeds ({len(set(seeds))})", ipp)
    combined = hashlib.sha256(f"{digest}:{base.sha256}".encode()).hexdigest()
    return Manifest(
        name=name,
        version=version,
        data_dir=base.data_dir,
        source=base.source,
        license=base.license,
        files=base.files,
        prompt_sets=MappingProxyType(prompt_sets),
        concepts=concepts,
        lfd_prompts=lfd,
        class_prompts=cls,
        seeds=seeds,
        images_per_prompt=ipp,
        origin=ck.origin,
        sha256=combined,
        derived_from=f"{base.name}@{base.version}",
    )


def _parse_generated(
    ck: _Checker, top: Mapping[str, Any], name: str, version: int, source: Mapping[str, Any], digest: str
) -> Manifest:
    generator = ck.text(ck.get(source, "generator", "source"), "source.generator")
    if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", generator):
        raise ck.fail("source.generator", "an import path 'package.module:function'", generator)
    data_dir = ck.relpath(ck.get(top, "data_dir", "", optional=True) or name, "data_dir")
    lic = ck.mapping(ck.get(top, "license", "", optional=True) or {"name": "see generator"}, "license")
    config = ck.mapping(ck.get(top, "config", "", optional=True) or {}, "config")
    return Manifest(
        name=name,
        version=version,
        data_dir=data_dir,
        source=MappingProxyType(dict(source)),
        license=MappingProxyType(dict(lic)),
        files=(),
        prompt_sets=MappingProxyType({}),
        concepts=(),
        lfd_prompts=(),
        class_prompts=(),
        seeds=(),
        images_per_prompt=0,
        origin=ck.origin,
        sha256=digest,
        generator=generator,
        config=MappingProxyType(dict(config)),
    )
