"""Copy or download a suite's files, verifying each one and writing atomically.

Every file is streamed into a hidden temporary name next to its destination
(``.<name>.part``), hashed while it is written, flushed to disk and renamed to its final name only
when size and sha256 match the manifest. Hence a file that carries its final name is always
complete and verified; an interrupted run leaves at most a ``.part`` file, which the next run
overwrites. Files already present and matching are kept (that is how a rerun resumes); present but
wrong files are deleted before they are fetched again, so no bad file stays in place.

This is the only module that opens network connections, and only inside :func:`fetch_files`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from benchmark.data.errors import Problem
from benchmark.data.integrity import check_file, expected
from benchmark.data.manifest import FileEntry

log = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20
LOCK_NAME = ".overfit-bench.lock"
USER_AGENT = "overfit-bench (data fetch)"


def part_path(final: Path) -> Path:
    """The temporary name a file is written under before it is renamed to ``final``."""
    return final.with_name(f".{final.name}.part")


@dataclass
class FetchReport:
    """What :func:`fetch_files` did: relative paths written, kept (already valid) and the failures."""

    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    removed_bad: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every file is now in place and verified."""
        return not self.problems


class _SourceError(Exception):
    """The source of one file failed (missing file, HTTP error); not retried when ``final``."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


def resolve_source_dir(source_dir: Path, data_dir: str, entries: Sequence[FileEntry]) -> Path:
    """Accept either the suite's own folder or a data root that contains it.

    Returns:
        ``source_dir`` when it holds the first manifest file, else ``source_dir/data_dir`` when
        that does, else ``source_dir`` unchanged (each file will then be reported missing).

    Raises:
        FileNotFoundError: ``source_dir`` is not a folder.
    """
    if not source_dir.is_dir():
        raise FileNotFoundError(f"{source_dir}: source folder not found")
    if not entries or (source_dir / entries[0].path).exists():
        return source_dir
    nested = source_dir / data_dir
    if (nested / entries[0].path).exists():
        log.info("using %s (the %s folder inside %s)", nested, data_dir, source_dir)
        return nested
    return source_dir


def fetch_files(
    entries: Iterable[FileEntry],
    root: Path,
    *,
    source_dir: Path | None = None,
    source_files: Mapping[str, Path] | None = None,
    url_for: Callable[[FileEntry], str | None] | None = None,
    progress: bool = False,
    desc: str = "fetch",
    retries: int = 3,
    timeout: float = 60.0,
) -> FetchReport:
    """Bring every entry to ``root/<entry.path>``, verified.

    Args:
        entries: the files to fetch (paths relative to ``root``).
        root: the suite's folder; created if needed.
        source_dir: copy from this folder (laid out like ``root``) instead of downloading.
        source_files: copy each entry from an explicit local file (keyed by ``entry.path``).
        url_for: maps an entry to its download URL (used when ``source_dir`` is ``None``).
        progress: show a byte progress bar on stderr.
        retries: attempts per file for transient network errors.
        timeout: seconds before a stalled download counts as failed.

    Returns:
        A :class:`FetchReport`; ``report.problems`` names every file that could not be fetched.

    Raises:
        ValueError: ``source_dir`` is ``root`` itself.
        filelock.Timeout: never (waits for another fetch into the same folder to finish).
    """
    from filelock import FileLock

    items = list(entries)
    root.mkdir(parents=True, exist_ok=True)
    if source_dir is not None and source_dir.resolve() == root.resolve():
        raise ValueError(f"{source_dir}: the source folder is the destination; use `data verify` to check it")
    sources: dict[str, str] = {}
    for entry in items:
        if source_files is not None:
            src = source_files.get(entry.path)
            sources[entry.path] = str(src) if src is not None else ""
        elif source_dir is not None:
            sources[entry.path] = str(source_dir / entry.path)
        else:
            sources[entry.path] = (url_for(entry) if url_for is not None else None) or ""
    local = source_dir is not None or source_files is not None
    report = FetchReport()
    pending = [e for e in items if not ((root / e.path).is_file() and check_file(root / e.path, e) is None)]
    if not pending:  # nothing to write: no lock file either, so a read-only complete copy just verifies
        report.kept = [e.path for e in items]
        return report
    with FileLock(str(root / LOCK_NAME)):
        todo: list[FileEntry] = []
        pending_paths = {e.path for e in pending}
        for entry in items:
            final = root / entry.path
            if entry.path not in pending_paths or (final.is_file() and check_file(final, entry) is None):
                report.kept.append(entry.path)
                continue
            if final.is_dir() and not final.is_symlink():
                report.problems.append(
                    Problem(final, "missing", f"a folder has this file's name; remove it ({expected(entry)})")
                )
                continue
            if final.exists() or final.is_symlink():
                log.debug("%s does not match the manifest; removing it before fetching it again", final)
                final.unlink()
                report.removed_bad.append(entry.path)
            todo.append(entry)
        if not local and todo:
            _check_reachable([sources[e.path] for e in todo], timeout)
        bar = _progress_bar(sum(e.size for e in todo), desc) if progress and todo else None
        try:
            for entry in todo:
                problem = _fetch_one(entry, root, sources[entry.path], local, bar, retries, timeout)
                if problem is None:
                    report.written.append(entry.path)
                else:
                    report.problems.append(problem)
        finally:
            if bar is not None:
                bar.close()
    return report


def _check_reachable(urls: Sequence[str], timeout: float) -> None:
    """Fail at once, before any download, when the first URL's host cannot be reached at all.

    Raises:
        EnvironmentProblem: no connection to the host (the message says how to fetch from a local copy).
    """
    import socket
    from urllib.parse import urlsplit

    from benchmark.errors import EnvironmentProblem

    url = next((u for u in urls if u.startswith(("http://", "https://"))), None)
    if url is None:
        return
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "", port), timeout=min(timeout, 10.0)).close()
    except OSError as err:
        raise EnvironmentProblem(
            f"cannot reach {parts.hostname} ({err.strerror or err}); nothing was downloaded. Check the "
            "network, or copy a local copy of the files with `overfit-bench data fetch SUITE --from DIR`"
        ) from None


def _progress_bar(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024)


def _fetch_one(
    entry: FileEntry, root: Path, origin: str, local: bool, bar: Any, retries: int, timeout: float
) -> Problem | None:
    final = root / entry.path
    if not origin:
        return Problem(
            final,
            "source",
            f"no source: the manifest pins no URL for it; pass --from DIR ({expected(entry)})",
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    attempts = 1 if local else max(1, retries)
    attempt = 0
    while True:
        attempt += 1
        sent = [0]

        def on_bytes(n: int, sent: list[int] = sent) -> None:
            sent[0] += n
            if bar is not None:
                bar.update(n)

        try:
            with _open_source(origin, local, timeout) as src:
                digest, size = _stream_to_part(src, final, entry, on_bytes)
        except _SourceError as err:
            if bar is not None and sent[0]:
                bar.update(-sent[0])
            if err.retry and attempt < attempts:
                log.warning("%s: %s; retrying (%d/%d)", origin, err, attempt, attempts)
                time.sleep(min(2.0**attempt, 10.0))
                continue
            return Problem(final, "source", f"could not fetch from {origin}: {err}; nothing written")
        break
    if size != entry.size or digest != entry.sha256:
        part_path(final).unlink(missing_ok=True)
        what = (
            f"size mismatch (expected {entry.size} bytes, got {size})"
            if size != entry.size
            else f"checksum mismatch (expected sha256 {entry.sha256}, got {digest})"
        )
        return Problem(
            final, "source", f"source {origin} does not match the manifest: {what}; nothing written"
        )
    os.replace(part_path(final), final)
    _fsync_dir(final.parent)
    return None


class _open_source:
    def __init__(self, origin: str, local: bool, timeout: float) -> None:
        self.origin, self.local, self.timeout = origin, local, timeout
        self.fh: IO[bytes] | Any = None

    def __enter__(self) -> IO[bytes] | Any:
        if self.local:
            try:
                self.fh = open(self.origin, "rb")
            except FileNotFoundError as err:
                raise _SourceError("not found in the source folder", retry=False) from err
            except OSError as err:
                raise _SourceError(f"cannot read it ({err.strerror or err})", retry=False) from err
            return self.fh
        import urllib.error
        import urllib.request

        req = urllib.request.Request(self.origin, headers={"User-Agent": USER_AGENT})
        try:
            self.fh = urllib.request.urlopen(req, timeout=self.timeout)
        except urllib.error.HTTPError as err:
            raise _SourceError(
                f"HTTP {err.code} {err.reason}", retry=err.code >= 500 or err.code == 429
            ) from err
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            raise _SourceError(f"network error ({getattr(err, 'reason', err)})", retry=True) from err
        return self.fh

    def __exit__(self, *exc: object) -> None:
        if self.fh is not None:
            self.fh.close()


def _write_chunk(out: IO[bytes], chunk: bytes) -> None:
    """Write one chunk (a separate function so tests can interrupt a copy half-way)."""
    out.write(chunk)


def _stream_to_part(
    src: IO[bytes] | Any, final: Path, entry: FileEntry, on_bytes: Callable[[int], None]
) -> tuple[str, int]:
    """Stream ``src`` into ``part_path(final)``, hashing as it goes.

    Returns:
        ``(sha256, bytes written)``; the part file is removed again on any error.

    Raises:
        _SourceError: reading the source failed or it sent more bytes than the manifest allows.
    """
    tmp = part_path(final)
    h = hashlib.sha256()
    size = 0
    try:
        with open(tmp, "wb") as out:
            while True:
                try:
                    chunk = src.read(CHUNK_SIZE)
                except (OSError, TimeoutError) as err:
                    raise _SourceError(f"read failed after {size} bytes ({err})", retry=True) from err
                if not chunk:
                    break
                size += len(chunk)
                if size > entry.size:
                    raise _SourceError(f"more than the expected {entry.size} bytes", retry=False)
                h.update(chunk)
                _write_chunk(out, chunk)
                on_bytes(len(chunk))
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return h.hexdigest(), size


def _fsync_dir(path: Path) -> None:
    """Persist a rename on POSIX file systems; a no-op where directories cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
