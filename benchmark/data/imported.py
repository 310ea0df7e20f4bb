"""Import-based suites (CustomConcept101): the image checksums are recorded on first verified import.

Upstream distributes CustomConcept101's images as one zip behind a Google Drive link, with no
checksums. ``overfit-bench data import customconcept101 --from DIR`` checks the folder structure
against the manifest (one folder per concept), decodes every image, copies the images into the
suite folder atomically and writes the record ``<suite folder>/verified.json`` with each image's
sha256 and size. From then on the suite loads only files that match that record, and a later
import must reproduce it (``--force`` re-records).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from benchmark.data.errors import ImageLoadError, ManifestError, NotImportedError, Problem, VerificationError
from benchmark.data.manifest import FileEntry, Manifest
from benchmark.data.schema import validate_record
from benchmark.io import atomic_write_json

log = logging.getLogger(__name__)

RECORD_NAME = "verified.json"
RECORD_SCHEMA = 1


def record_path(suite_dir: Path) -> Path:
    """Where an import-based suite keeps its verified checksums: ``<suite folder>/verified.json``."""
    return suite_dir / RECORD_NAME


def import_command(manifest: Manifest) -> str:
    """The command a user runs to create the record (used in error messages)."""
    return f"overfit-bench data import {manifest.name} --from DIR"


def read_record(manifest: Manifest, suite_dir: Path) -> dict[str, tuple[FileEntry, ...]]:
    """Read the import record of an import-based suite.

    Returns:
        Concept id → its recorded image entries (paths relative to ``suite_dir``).

    Raises:
        NotImportedError: there is no record yet (the message gives the import command).
        ManifestError: the record is malformed, belongs to another suite, or its concepts differ
            from the manifest's.
    """
    path = record_path(suite_dir)
    if not path.is_file():
        problem = Problem(path, "not-imported", f"no verified image record; run `{import_command(manifest)}`")
        raise NotImportedError(
            f"suite {manifest.name!r} has no verified images in {suite_dir}: its images are not "
            f"distributed with checksums, so they must be imported once with `{import_command(manifest)}` "
            "(DIR = the unzipped upstream benchmark_dataset folder)",
            [problem],
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ManifestError(f"{path}: cannot read the import record ({err})") from err
    doc = validate_record(raw, str(path))
    if doc.schema_version != RECORD_SCHEMA:
        raise ManifestError(
            f"{path}: field 'schema': expected record schema {RECORD_SCHEMA}, got {doc.schema_version!r}"
        )
    if doc.suite != manifest.name:
        raise ManifestError(f"{path}: field 'suite': expected the suite {manifest.name!r}, got {doc.suite!r}")
    want = {c.id for c in manifest.concepts}
    if set(doc.concepts) != want:
        missing, extra = sorted(want - set(doc.concepts)), sorted(set(doc.concepts) - want)
        raise ManifestError(
            f"{path}: field 'concepts': expected the manifest's {len(want)} concepts (missing {missing}, "
            f"extra {extra}), got '...'"
        )
    out: dict[str, tuple[FileEntry, ...]] = {}
    for c in manifest.concepts:
        entries = tuple(FileEntry(e.path, e.sha256, e.bytes, is_image=True) for e in doc.concepts[c.id])
        prefix = f"{c.image_dir}/"
        for i, e in enumerate(entries):
            if not e.path.startswith(prefix) or "/" in e.path[len(prefix) :]:
                raise ManifestError(
                    f"{path}: field 'concepts.{c.id}[{i}].path': expected a file directly inside "
                    f"{c.image_dir}/, got {e.path!r}"
                )
        out[c.id] = entries
    return out


@dataclass
class ImportReport:
    """What an import did."""

    record: Path
    concepts: int
    images: int
    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    recorded_now: bool = True


def _resolve_strip(manifest: Manifest, source: Path) -> int:
    """How many leading parts of each ``image_dir`` to drop to find the concept folders in ``source``.

    ``source`` may be the parent of the upstream folder (``source/benchmark_dataset/<concept>``,
    strip 0) or that folder itself (``source/<concept>``, strip 1); whichever finds more concept
    folders wins.
    """
    dirs = [PurePosixPath(c.image_dir or "") for c in manifest.concepts]

    def hits(strip: int) -> int:
        return sum(source.joinpath(*d.parts[strip:]).is_dir() for d in dirs if len(d.parts) > strip)

    return 1 if hits(1) > hits(0) else 0


def _concept_source(base: Path, strip: int, image_dir: str) -> Path:
    parts = PurePosixPath(image_dir).parts[strip:]
    return base.joinpath(*parts)


def scan_import_source(
    manifest: Manifest, source: Path
) -> tuple[dict[str, list[tuple[Path, FileEntry]]], list[str]]:
    """Check an import folder and hash + decode every image in it.

    Returns:
        ``(found, ignored)``: concept id → ``[(source file, entry)]`` sorted by name, and the
        files that were skipped (hidden, sub-folders, non-image suffixes).

    Raises:
        FileNotFoundError: ``source`` is not a folder.
        VerificationError: a concept folder is missing or empty, or an image does not decode;
            every such problem is listed.
    """
    from benchmark.io import is_image_name, open_rgb, sha256_file

    if not source.is_dir():
        raise FileNotFoundError(f"{source}: import folder not found")
    strip = _resolve_strip(manifest, source)
    problems: list[Problem] = []
    ignored: list[str] = []
    found: dict[str, list[tuple[Path, FileEntry]]] = {}
    for c in manifest.concepts:
        image_dir = c.image_dir or ""
        folder = _concept_source(source, strip, image_dir)
        if not folder.is_dir():
            problems.append(
                Problem(
                    folder, "structure", f"missing concept folder for {c.id!r} (images of a {c.class_noun})"
                )
            )
            continue
        files: list[tuple[Path, FileEntry]] = []
        for item in sorted(folder.iterdir(), key=lambda p: p.name):
            if item.name.startswith(".") or item.is_dir() or not is_image_name(item.name):
                ignored.append(str(item))
                continue
            try:
                open_rgb(item)
                digest, size = sha256_file(item), item.stat().st_size
            except ImageLoadError as err:
                problems.append(Problem(item, "unreadable", f"unreadable image ({err.reason})"))
                continue
            except OSError as err:
                problems.append(Problem(item, "unreadable", f"cannot be read ({err.strerror or err})"))
                continue
            if size == 0:
                problems.append(Problem(item, "unreadable", "empty file"))
                continue
            files.append((item, FileEntry(f"{image_dir}/{item.name}", digest, size, is_image=True)))
        if not files and not any(p.path.parent == folder for p in problems):
            problems.append(
                Problem(folder, "structure", f"no image files for {c.id!r} (expected .jpg/.png/... files)")
            )
        found[c.id] = files
    if problems:
        raise VerificationError(
            f"import of {manifest.name} from {source} refused; nothing was written:", problems
        )
    return found, ignored


def import_images(
    manifest: Manifest, source: Path, suite_dir: Path, *, force: bool = False, progress: bool = False
) -> ImportReport:
    """Verify an upstream image folder, copy it into ``suite_dir`` and record its checksums.

    Args:
        manifest: an import-based manifest (``source.type == "imported"``).
        source: the unzipped upstream folder (the one holding the concept folders, or its parent).
        suite_dir: the suite's folder under the data root; the record goes to ``verified.json`` in it.
        force: replace an existing record whose checksums differ.
        progress: show a progress bar while copying.

    Returns:
        An :class:`ImportReport`.

    Raises:
        ValueError: the suite pins its images in the manifest (use ``data fetch``).
        FileNotFoundError: ``source`` is not a folder.
        VerificationError: the folder is malformed, an image does not decode, a copy does not
            verify, or the images differ from the existing record and ``force`` is false.
    """
    from benchmark.data.fetch import fetch_files

    if manifest.source_type != "imported":
        raise ValueError(
            f"suite {manifest.name!r} pins its images in its manifest; use `overfit-bench data fetch`"
        )
    found, ignored = scan_import_source(manifest, source)
    for path in ignored:
        log.warning("ignored (not an image file): %s", path)
    new = {cid: tuple(e for _, e in files) for cid, files in found.items()}
    rec = record_path(suite_dir)
    recorded_now = True
    if rec.exists():
        old = read_record(manifest, suite_dir)
        if old == new:
            recorded_now = False
        elif not force:
            raise VerificationError(
                f"{source} differs from the images recorded in {rec} on first import; "
                "pass --force to record the new files:",
                _record_diff(suite_dir, old, new),
            )
    entries = [e for files in new.values() for e in files]
    sources = {e.path: src for files in found.values() for src, e in files}
    report = fetch_files(
        entries, suite_dir, source_files=sources, progress=progress, desc=f"import {manifest.name}"
    )
    if not report.ok:
        raise VerificationError(f"copying {manifest.name} into {suite_dir} failed:", report.problems)
    if recorded_now:
        _write_record(manifest, suite_dir, source, new)
    return ImportReport(
        record=rec,
        concepts=len(new),
        images=len(entries),
        written=report.written,
        kept=report.kept,
        ignored=ignored,
        recorded_now=recorded_now,
    )


def _record_diff(
    suite_dir: Path, old: Mapping[str, tuple[FileEntry, ...]], new: Mapping[str, tuple[FileEntry, ...]]
) -> list[Problem]:
    problems: list[Problem] = []
    for cid in sorted(set(old) | set(new)):
        a = {e.path: e for e in old.get(cid, ())}
        b = {e.path: e for e in new.get(cid, ())}
        for path in sorted(set(a) | set(b)):
            if path not in b:
                problems.append(Problem(suite_dir / path, "missing", "recorded, but not in the new folder"))
            elif path not in a:
                problems.append(Problem(suite_dir / path, "structure", "in the new folder, but not recorded"))
            elif a[path] != b[path]:
                problems.append(
                    Problem(
                        suite_dir / path,
                        "checksum",
                        f"recorded {a[path].size} bytes sha256 {a[path].sha256}, new {b[path].size} bytes "
                        f"sha256 {b[path].sha256}",
                    )
                )
    return problems


def _write_record(
    manifest: Manifest, suite_dir: Path, source: Path, concepts: Mapping[str, tuple[FileEntry, ...]]
) -> None:
    record = {
        "schema": RECORD_SCHEMA,
        "suite": manifest.name,
        "manifest_version": manifest.version,
        "manifest_sha256": manifest.sha256,
        "imported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "imported_from": str(source.resolve()),
        "concepts": {
            cid: [{"path": e.path, "sha256": e.sha256, "bytes": e.size} for e in entries]
            for cid, entries in concepts.items()
        },
    }
    path = record_path(suite_dir)
    atomic_write_json(path, record, indent=1, sort_keys=False)
