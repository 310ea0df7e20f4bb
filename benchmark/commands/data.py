"""``overfit-bench data``: verify, fetch and import a suite's reference files.

    overfit-bench data list
    overfit-bench data verify SUITE [--root DIR]
    overfit-bench data fetch SUITE [--root DIR] [--from DIR]
    overfit-bench data import customconcept101 --from DIR [--root DIR] [--force]

``--root`` is the suite's own folder (default ``<data root>/<suite>``, the data root being
``$OVERFIT_BENCH_DATA`` or ``<cache>/data``). Exit codes: 0 all files match, 1 some file is bad or
could not be fetched/imported, 2 bad usage (unknown suite, malformed manifest, missing folder).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("data", help="verify, fetch or import a suite's reference images")
    actions = p.add_subparsers(dest="data_action", metavar="ACTION", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("suite", help="suite name (see `overfit-bench data list`)")
        q.add_argument(
            "--root", type=Path, help="the suite's own folder (default: <data root>/<suite folder>)"
        )
        q.add_argument("--manifest", type=Path, help="use this manifest file instead of the shipped one")

    actions.add_parser("list", help="list the suites and where their files are expected")
    v = actions.add_parser("verify", help="check every file against the manifest")
    common(v)
    v.add_argument("--no-decode", action="store_true", help="skip decoding the images (size + sha256 only)")
    f = actions.add_parser("fetch", help="copy (--from) or download the pinned files, verifying each")
    common(f)
    f.add_argument(
        "--from", dest="source", type=Path, help="copy from this local folder instead of downloading"
    )
    f.add_argument("--no-progress", action="store_true", help="no progress bar")
    i = actions.add_parser(
        "import", help="verify an image folder and record its checksums (customconcept101)"
    )
    common(i)
    i.add_argument(
        "--from", dest="source", type=Path, required=True, help="the unzipped upstream image folder"
    )
    i.add_argument("--force", action="store_true", help="replace a record whose checksums differ")
    i.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from benchmark.data.errors import DataError, VerificationError

    try:
        if args.data_action == "list":
            return _list()
        manifest = _manifest(args)
        if manifest.source_type == "generated":
            return _generated(manifest, args.root, args.data_action)
        root = args.root if args.root is not None else _default_root(manifest)
        if args.data_action == "verify":
            return _verify(manifest, root, decode=not args.no_decode)
        if args.data_action == "fetch":
            return _fetch(manifest, root, args.source, progress=not args.no_progress)
        return _import(manifest, root, args.source, force=args.force, progress=not args.no_progress)
    except VerificationError as err:
        print(err, file=sys.stderr)
        return 1
    except (DataError, KeyError, FileNotFoundError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {message}", file=sys.stderr)
        return 2


def _manifest(args: argparse.Namespace) -> Any:
    from benchmark.data.manifest import load_manifest

    manifest = load_manifest(args.manifest if args.manifest is not None else args.suite)
    if manifest.name != args.suite:
        raise ValueError(f"{manifest.origin} defines suite {manifest.name!r}, not {args.suite!r}")
    return manifest


def _generated(manifest: Any, root: Path | None, action: str) -> int:
    """``verify`` / ``fetch`` of a generated suite: render what is missing, check every image's pixels."""
    from benchmark.suites import suite_from_manifest

    if action == "import":
        raise ValueError(f"suite {manifest.name!r} is generated; there is nothing to import")
    suite = suite_from_manifest(manifest, root=root)
    n_images = sum(len(c.images) for c in suite.concepts)
    print(
        f"{manifest.name} v{manifest.version}: OK, {len(suite.concepts)} concepts / {n_images} images rendered "
        f"and matching the manifest's pixel checksums in {suite.root}"
    )
    return 0


def _default_root(manifest: Any) -> Path:
    from benchmark.suites import suite_dir

    return suite_dir(manifest)


def _list() -> int:
    from benchmark.data.manifest import available_suites, load_manifest
    from benchmark.suites import default_data_root, generated_dir

    data_root = default_data_root()
    print(f"data root: {data_root}")
    for name in available_suites():
        m = load_manifest(name)
        base = f" (subset of {m.derived_from})" if m.derived_from else ""
        where = data_root / m.data_dir
        n_concepts = len(m.concepts)
        if m.source_type == "generated":
            where, base = generated_dir(m), " (rendered on first use)"
            n_concepts = len((m.config or {}).get("concepts", []))
        print(f"{m.name:<18} v{m.version}  {n_concepts:>3} concepts  {m.source_type:<9} {where}{base}")
    return 0


def _entries(manifest: Any, root: Path) -> tuple[list[Any], list[Any], list[Any]]:
    """(metadata files, image entries, problems that stop image checks: a missing import record)."""
    from benchmark.data.errors import NotImportedError

    if manifest.source_type == "imported":
        from benchmark.data.imported import read_record

        try:
            record = read_record(manifest, root)
        except NotImportedError as err:
            return list(manifest.files), [], list(err.problems)
        return list(manifest.files), [e for c in manifest.concepts for e in record[c.id]], []
    return list(manifest.files), manifest.image_entries(), []


def _verify(manifest: Any, root: Path, *, decode: bool) -> int:
    from benchmark.data.integrity import check_files

    files, images, problems = _entries(manifest, root)
    if not root.is_dir():
        print(f"{root}: suite folder not found (expected the {manifest.name} files laid out as upstream)")
        return 1
    problems = check_files(root, [*files, *images], decode=decode, progress=sys.stderr.isatty()) + problems
    for problem in problems:
        print(problem)
    n_concepts = len(manifest.concepts)
    if problems:
        print(
            f"{manifest.name} v{manifest.version}: FAILED, {len(problems)} bad file(s) in {root}; "
            f"repair with `{_repair(manifest, root)}`",
            file=sys.stderr,
        )
        return 1
    checked = "size, sha256 and decoding" if decode else "size and sha256"
    print(
        f"{manifest.name} v{manifest.version}: OK, {n_concepts} concepts / {len(images)} images "
        f"(+{len(files)} metadata files) match the manifest ({checked}) in {root}"
    )
    return 0


def _repair(manifest: Any, root: Path) -> str:
    if manifest.source_type == "imported":
        return f"overfit-bench data import {manifest.name} --from DIR --root {root}"
    return f"overfit-bench data fetch {manifest.name} --root {root}"


def _fetch(manifest: Any, root: Path, source: Path | None, *, progress: bool) -> int:
    from benchmark.data.fetch import fetch_files, resolve_source_dir

    files, images, _ = _entries(manifest, root)
    entries = [*files, *images]
    if source is not None:
        source = resolve_source_dir(source, manifest.data_dir, entries)
    report = fetch_files(
        entries,
        root,
        source_dir=source,
        url_for=manifest.url,
        progress=progress,
        desc=f"fetch {manifest.name}",
    )
    for path in report.removed_bad:
        print(f"{root / path}: did not match the manifest; removed and fetched again")
    for problem in report.problems:
        print(problem)
    origin = source if source is not None else manifest.source.get("repository", "upstream")
    summary = f"{len(report.written)} written, {len(report.kept)} already present"
    if manifest.source_type == "imported":
        summary += f"; images are not downloadable: import them with `{_repair(manifest, root)}`"
    if not report.ok:
        print(
            f"{manifest.name}: FAILED, {len(report.problems)} file(s) not fetched from {origin} ({summary})"
        )
        return 1
    print(f"{manifest.name} v{manifest.version}: OK, {len(entries)} files verified in {root} ({summary})")
    return 0


def _import(manifest: Any, root: Path, source: Path, *, force: bool, progress: bool) -> int:
    from benchmark.data.imported import import_images

    report = import_images(manifest, source, root, force=force, progress=progress)
    state = "recorded in" if report.recorded_now else "match the existing record"
    print(
        f"{manifest.name} v{manifest.version}: OK, {report.concepts} concepts / {report.images} images verified "
        f"and {state} {report.record} ({len(report.written)} copied, {len(report.kept)} already present, "
        f"{len(report.ignored)} non-image files ignored)"
    )
    return 0
