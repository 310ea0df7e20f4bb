"""Fixed concept suites: ``load_suite(name)`` gives concepts, prompts, seeds and verified image paths.

A suite is defined by its manifest ``data_manifests/<name>.json`` (SPEC §3); adding a suite is adding
a manifest. Its files live in ``<data root>/<data_dir>/`` laid out as upstream, where the data root
is the ``data_root`` argument, else ``$OVERFIT_BENCH_DATA``, else ``<cache>/data`` with
``<cache>`` = ``$OVERFIT_BENCH_CACHE`` or the user cache directory. So
``OVERFIT_BENCH_DATA=../shared/datasets`` finds ``../shared/datasets/dreambench/dataset/dog/00.jpg``.

Nothing is trusted unchecked: every reference image is compared with the manifest (or, for
import-based suites, the import record) by size and sha256 before its path is handed out.

Example::

    suite = load_suite("dreambench")
    for concept in suite.concepts:
        concept.images     # [Path(.../dataset/dog/00.jpg), ...], verified
        concept.prompts    # ["a {concept} in the jungle", ...]
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from benchmark.data.errors import (
    DataError,
    ImageLoadError,
    ManifestError,
    NotImportedError,
    Problem,
    VerificationError,
)
from benchmark.data.manifest import ConceptSpec, FileEntry, Manifest, available_suites, load_manifest

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "Concept",
    "DataError",
    "ImageLoadError",
    "ManifestError",
    "NotImportedError",
    "Problem",
    "Suite",
    "VerificationError",
    "available_suites",
    "default_data_root",
    "load_suite",
    "select_concepts",
    "suite_dir",
    "suite_from_manifest",
]


def default_data_root() -> Path:
    """The data root when none is given: ``$OVERFIT_BENCH_DATA``, else ``<cache>/data``.

    ``<cache>`` is :func:`benchmark.paths.cache_dir` (``$OVERFIT_BENCH_CACHE``, else the user cache
    directory). Nothing is created.
    """
    env = os.environ.get("OVERFIT_BENCH_DATA")
    if env:
        return Path(env).expanduser()
    from benchmark.paths import cache_dir

    return cache_dir() / "data"


def suite_dir(manifest: Manifest, data_root: str | Path | None = None) -> Path:
    """The folder that holds a suite's files: ``<data root>/<manifest.data_dir>``."""
    root = Path(data_root).expanduser() if data_root is not None else default_data_root()
    return root / manifest.data_dir


def generated_dir(
    manifest: Manifest, data_root: str | Path | None = None, *, cache: str | Path | None = None
) -> Path:
    """Where a ``generated`` suite renders its files: ``<data_root>/<data_dir>`` when a data root is
    given explicitly, else ``<cache>/generated/<data_dir>-v<version>`` (``$OVERFIT_BENCH_DATA`` is for
    downloaded data and is not written to). ``cache`` is the command's ``--cache`` folder; without it
    :func:`benchmark.paths.cache_dir` resolves the default."""
    if data_root is not None:
        return Path(data_root).expanduser() / manifest.data_dir
    from benchmark.paths import cache_dir

    return cache_dir(cache) / "generated" / f"{manifest.data_dir}-v{manifest.version}"


class Concept:
    """One concept of a suite.

    Attributes:
        id: the concept id (DreamBench subject name, e.g. ``"dog"``).
        class_noun: the class word (``"dog"``, ``"stuffed animal"``).
        kind: ``"live"`` or ``"object"``.
        prompt_set: the name of the concept's prompt list in the manifest.
    """

    def __init__(
        self,
        spec: ConceptSpec,
        prompts: Sequence[str],
        root: Path,
        entries: Sequence[FileEntry] | None,
        *,
        suite_name: str,
        repair_hint: str,
        missing_record: NotImportedError | None = None,
        verified: bool = False,
    ) -> None:
        self.id = spec.id
        self.class_noun = spec.class_noun
        self.kind = spec.kind
        self.prompt_set = spec.prompt_set
        self.spec = spec
        self._prompts = tuple(prompts)
        self._root = root
        self._entries = tuple(entries) if entries is not None else None
        self._suite_name = suite_name
        self._repair_hint = repair_hint
        self._missing_record = missing_record
        self._verified = verified

    def __repr__(self) -> str:
        return f"Concept(id={self.id!r}, class_noun={self.class_noun!r}, kind={self.kind!r})"

    @property
    def prompts(self) -> list[str]:
        """Evaluation prompt templates, each with one ``{concept}`` slot."""
        return list(self._prompts)

    @property
    def image_entries(self) -> tuple[FileEntry, ...]:
        """The manifest (or import-record) entries of the reference images.

        Raises:
            NotImportedError: an import-based suite has no record yet.
        """
        if self._entries is None:
            raise self._missing_record or NotImportedError(f"concept {self.id!r} has no image record")
        return self._entries

    def problems(self) -> list[Problem]:
        """Check the reference images now (size and sha256).

        Returns:
            One :class:`Problem` per bad file (empty when all match).

        Raises:
            NotImportedError: an import-based suite has no record yet.
        """
        from benchmark.data.integrity import check_files

        return check_files(self._root, self.image_entries)

    def verify(self) -> None:
        """Verify the reference images once; later calls return immediately.

        Raises:
            VerificationError: a file is missing or differs from the manifest (all are listed).
            NotImportedError: an import-based suite has no record yet.
        """
        if self._verified:
            return
        problems = self.problems()
        if problems:
            raise VerificationError(
                f"suite {self._suite_name!r}, concept {self.id!r}: {len(problems)} reference image(s) do not "
                f"match; {self._repair_hint}",
                problems,
            )
        self._verified = True

    @property
    def images(self) -> list[Path]:
        """Local paths of the reference images, in manifest order, after verification.

        Raises:
            VerificationError: a file is missing or differs from the manifest.
            NotImportedError: an import-based suite has no record yet.
        """
        self.verify()
        return [self._root / e.path for e in self.image_entries]

    def load_images(self) -> list[Image.Image]:
        """The verified reference images decoded to RGB (:func:`benchmark.io.open_rgb`).

        Returns:
            A list of ``PIL.Image.Image`` in mode ``RGB``.

        Raises:
            VerificationError, NotImportedError: as :attr:`images`.
            ImageLoadError: a file does not decode.
        """
        from benchmark.io import open_rgb

        return [open_rgb(p) for p in self.images]


class Suite:
    """A loaded suite. Attribute values come from the manifest; see :func:`load_suite`.

    Attributes:
        name: the suite name.
        version: the manifest version (bumped whenever a change could move a number).
        concepts: the concepts, in manifest order.
        lfd_prompts: non-customized prompts for ``lfd`` (no slot; they name no concept class).
        class_prompts: templates with a ``{class}`` slot for ``lfd_class``.
        seeds: generation seeds; image ``k`` of a prompt uses ``seeds[k]``.
        images_per_prompt: images generated per (concept, prompt); equals ``len(seeds)``.
        root: the folder holding the suite's files.
        manifest: the parsed manifest (``manifest.sha256`` identifies it exactly, for cache keys).
    """

    def __init__(self, manifest: Manifest, concepts: Sequence[Concept], root: Path) -> None:
        self.manifest = manifest
        self.name = manifest.name
        self.version = manifest.version
        self.concepts: list[Concept] = list(concepts)
        self.lfd_prompts: list[str] = list(manifest.lfd_prompts)
        self.class_prompts: list[str] = list(manifest.class_prompts)
        self.seeds: list[int] = list(manifest.seeds)
        self.images_per_prompt = manifest.images_per_prompt
        self.root = root

    def __repr__(self) -> str:
        return f"Suite(name={self.name!r}, version={self.version}, concepts={len(self.concepts)}, root={str(self.root)!r})"

    def concept(self, concept_id: str) -> Concept:
        """The concept with this id.

        Raises:
            KeyError: no such concept (the message suggests the closest id).
        """
        for c in self.concepts:
            if c.id == concept_id:
                return c
        self.manifest.concept(concept_id)  # raises KeyError with a suggestion
        raise KeyError(concept_id)  # pragma: no cover - manifest and suite share their ids


def select_concepts(suite: Suite, wanted: Sequence[str] | None) -> list[Concept]:
    """The suite's concepts, or the named subset in the given order.

    Raises:
        KeyError: an unknown concept id (the message suggests the closest ones).
    """
    by_id = {c.id: c for c in suite.concepts}
    if not wanted:
        return list(suite.concepts)
    out = []
    for cid in wanted:
        if cid not in by_id:
            close = difflib.get_close_matches(cid, list(by_id), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise KeyError(f"suite {suite.name!r} has no concept {cid!r}{hint}")
        out.append(by_id[cid])
    return out


def load_suite(
    name: str | Path,
    data_root: str | Path | None = None,
    *,
    verify: bool = True,
    cache: str | Path | None = None,
) -> Suite:
    """Load a suite by name (a manifest in ``data_manifests/``) or from a manifest file path.

    Args:
        name: ``"dreambench"``, ``"customconcept101"``, ``"smoke"``, ... or a path to a ``.json`` manifest.
        data_root: the folder holding ``<suite>/``; default :func:`default_data_root`.
        verify: check every reference image now (default). With ``False`` only the manifest is read;
            each concept's ``images`` is still verified on first access.
        cache: the cache folder a ``generated`` suite renders into when no ``data_root`` is given
            (a command's ``--cache``); default :func:`benchmark.paths.cache_dir`.

    Returns:
        The :class:`Suite`.

    Raises:
        KeyError: unknown suite name (the message lists the known ones and the closest match).
        ManifestError: the manifest or an import record is malformed.
        VerificationError: (``verify=True``) reference images are missing or differ; all are listed.
        NotImportedError: (``verify=True``) an import-based suite has not been imported yet.
    """
    return suite_from_manifest(load_manifest(name), data_root, verify=verify, cache=cache)


def suite_from_manifest(
    manifest: Manifest,
    data_root: str | Path | None = None,
    *,
    verify: bool = True,
    root: Path | None = None,
    cache: str | Path | None = None,
) -> Suite:
    """Build a :class:`Suite` from a parsed manifest; ``root`` overrides the suite folder itself.

    Returns and raises as :func:`load_suite`. A ``generated`` suite is built by the manifest's
    generator hook, ``package.module:function`` called as ``function(manifest, root) -> Suite``.
    """
    if manifest.source_type == "generated":
        where = root if root is not None else generated_dir(manifest, data_root, cache=cache)
        return _generated(manifest, where)
    folder = root if root is not None else suite_dir(manifest, data_root)
    records: dict[str, tuple[FileEntry, ...]] | None = None
    missing: NotImportedError | None = None
    if manifest.source_type == "imported":
        from benchmark.data.imported import import_command, read_record

        try:
            records = read_record(manifest, folder)
        except NotImportedError as err:
            if verify:
                raise
            missing = err
        hint = f"re-import with `{import_command(manifest)}`"
    else:
        hint = f"run `overfit-bench data fetch {manifest.name} --root {folder}` to repair"
    concepts: list[Concept] = []
    for spec in manifest.concepts:
        entries: Sequence[FileEntry] | None
        if manifest.source_type == "imported":
            entries = records[spec.id] if records is not None else None
        else:
            entries = spec.images
        concepts.append(
            Concept(
                spec,
                manifest.prompt_sets[spec.prompt_set],
                folder,
                entries,
                suite_name=manifest.name,
                repair_hint=hint,
                missing_record=missing,
            )
        )
    suite = Suite(manifest, concepts, folder)
    if verify:
        problems = [p for c in concepts for p in c.problems()]
        if problems:
            raise VerificationError(
                f"suite {manifest.name!r} in {folder}: {len(problems)} reference file(s) missing or not matching "
                f"the manifest; {hint}:",
                problems,
            )
        for c in concepts:
            c._verified = True
    return suite


def _generated(manifest: Manifest, folder: Path) -> Suite:
    from benchmark.io import resolve

    try:
        func = resolve(manifest.generator or "", "generator")
    except ValueError as err:
        raise ManifestError(f"{manifest.origin}: {err}") from err
    suite = func(manifest, folder)
    if not isinstance(suite, Suite):
        raise ManifestError(
            f"{manifest.origin}: generator {manifest.generator!r} returned {type(suite).__name__}, expected a Suite"
        )
    return suite
