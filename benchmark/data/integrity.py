"""Check files against manifest entries: presence, byte size, sha256 and (optionally) decodability."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from benchmark.data.errors import ImageLoadError, Problem
from benchmark.data.manifest import FileEntry
from benchmark.io import open_rgb, sha256_file


def expected(entry: FileEntry) -> str:
    """How a manifest entry is described in messages: ``<bytes> bytes, sha256 <hex>``."""
    return f"{entry.size} bytes, sha256 {entry.sha256}"


def check_file(path: Path, entry: FileEntry, *, decode: bool = False) -> Problem | None:
    """Compare one file with its manifest entry.

    Checks, in order: the file exists and is a regular file, its size, its sha256 and, when
    ``decode`` is true and the entry is an image, that it decodes (:func:`benchmark.io.open_rgb`).

    Returns:
        ``None`` when the file matches, else the first :class:`Problem` found.
    """
    if not path.exists():
        return Problem(path, "missing", f"missing (expected {expected(entry)})")
    if not path.is_file():
        return Problem(path, "missing", f"not a regular file (expected a file of {expected(entry)})")
    try:
        size = path.stat().st_size
        if size != entry.size:
            return Problem(path, "size", f"size mismatch (expected {entry.size} bytes, found {size})")
        digest = sha256_file(path)
    except OSError as err:
        return Problem(
            path, "unreadable", f"cannot be read ({err.strerror or err}); expected {expected(entry)}"
        )
    if digest != entry.sha256:
        return Problem(
            path, "checksum", f"checksum mismatch (expected sha256 {entry.sha256}, found {digest})"
        )
    if decode and entry.is_image:
        try:
            open_rgb(path)
        except ImageLoadError as err:
            return Problem(path, "unreadable", f"unreadable image ({err.reason})")
    return None


def check_files(
    root: Path,
    entries: Iterable[FileEntry],
    *,
    decode: bool = False,
    progress: bool = False,
    desc: str = "verify",
) -> list[Problem]:
    """Check every entry under ``root`` (entry paths are relative to it).

    Returns:
        One :class:`Problem` per bad file, in manifest order (empty when everything matches).
    """
    items = list(entries)
    problems: list[Problem] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(items), desc=desc, unit="file", leave=False)
    try:
        for entry in items:
            problem = check_file(root / entry.path, entry, decode=decode)
            if problem is not None:
                problems.append(problem)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return problems
