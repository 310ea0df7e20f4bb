"""Check files against manifest entries: presence, byte size, sha256 and (optionally) decodability."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from benchmark.data.errors import ImageLoadError, Problem
from benchmark.data.manifest import FileEntry

CHUNK_SIZE = 1 << 20


def sha256_file(path: str | Path) -> tuple[str, int]:
    """Hash a file in chunks.

    Returns:
        ``(hex sha256, size in bytes)``.

    Raises:
        OSError: the file cannot be read.
    """
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK_SIZE):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def expected(entry: FileEntry) -> str:
    """How a manifest entry is described in messages: ``<bytes> bytes, sha256 <hex>``."""
    return f"{entry.size} bytes, sha256 {entry.sha256}"


def check_file(path: Path, entry: FileEntry, *, decode: bool = False) -> Problem | None:
    """Compare one file with its manifest entry.

    Checks, in order: the file exists and is a regular file, its size, its sha256 and, when
    ``decode`` is true and the entry is an image, that it decodes (:func:`load_image`).

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
        digest, _ = sha256_file(path)
    except OSError as err:
        return Problem(
            path, "unreadable", f"cannot be read ({err.strerror or err}); expected {expected(entry)}"
        )
    if digest != entry.sha256:
        return Problem(
            path, "checksum", f"checksum mismatch (expected sha256 {entry.sha256}, found {digest})"
        )
    if decode and entry.is_image:
        from benchmark.data.images import load_image

        try:
            load_image(path)
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
