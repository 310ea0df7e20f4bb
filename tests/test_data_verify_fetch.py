"""``data verify`` and ``data fetch``: every corruption case named, atomic writes, resume after a kill."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest

import benchmark.data.fetch as fetch
from benchmark.cli import main
from benchmark.data.integrity import check_file
from benchmark.data.manifest import FileEntry, load_manifest
from benchmark.data.synthetic import write_synthetic_suite

REPO = Path(__file__).resolve().parents[1]
DATA = os.environ.get("OVERFIT_BENCH_DATA")
needs_data = pytest.mark.skipif(
    not DATA,
    reason="OVERFIT_BENCH_DATA is not set (CI sets it to ../shared/datasets); DreamBench copy not available",
)


def _suite(tmp_path: Path, **kwargs: object) -> tuple[Path, Path]:
    """A synthetic pinned suite: (manifest path, suite folder)."""
    manifest = write_synthetic_suite(tmp_path / "upstream", **kwargs)  # type: ignore[arg-type]
    return manifest, tmp_path / "upstream" / "synthetic"


def _cli(*argv: str | Path) -> int:
    return main([str(a) for a in argv])


def _parts(folder: Path) -> list[Path]:
    return sorted(folder.rglob(".*.part"))


def _entries(manifest: Path) -> list[FileEntry]:
    m = load_manifest(manifest)
    return [*m.files, *m.image_entries()]


# --------------------------------------------------------------------------------------------------
# verify


def test_verify_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest, root = _suite(tmp_path)
    assert _cli("data", "verify", "synthetic", "--manifest", manifest, "--root", root) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert "synthetic v1: OK, 2 concepts / 6 images (+1 metadata files)" in out[0]


def test_verify_names_every_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest, root = _suite(tmp_path, n_concepts=3)
    missing = root / "images/dog0/00.png"
    missing.unlink()
    short = root / "images/dog0/01.png"
    short.write_bytes(short.read_bytes()[:-5])
    flipped = root / "images/teapot1/00.png"
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0x01
    flipped.write_bytes(bytes(data))
    folder = root / "images/teapot1/01.png"
    folder.unlink()
    folder.mkdir()
    (root / "LICENSE.txt").write_text("edited\n", encoding="utf-8")
    assert _cli("data", "verify", "synthetic", "--manifest", manifest, "--root", root) == 1
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 5  # one line per bad file, nothing else on stdout
    by_file = {line.split(": ", 1)[0]: line for line in lines}
    assert by_file[str(missing)].startswith(f"{missing}: missing (expected ")
    assert "size mismatch (expected" in by_file[str(short)] and "found" in by_file[str(short)]
    assert "checksum mismatch (expected sha256" in by_file[str(flipped)]
    assert "not a regular file" in by_file[str(folder)]
    assert "LICENSE.txt" in " ".join(by_file)
    assert "FAILED, 5 bad file(s)" in captured.err and "data fetch synthetic" in captured.err


@pytest.mark.parametrize("kind", ["truncated", "not-an-image"])
def test_verify_reports_unreadable_images(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A manifest that pins a broken file: checksums match, decoding fails.
    manifest, root = _suite(tmp_path, n_concepts=1, images_per_concept=1, image_size=64)
    img = root / "images/dog0/00.png"
    img.write_bytes(img.read_bytes()[:200] if kind == "truncated" else b"GIF? no, plain text\n")
    text = manifest.read_text(encoding="utf-8")
    entry = load_manifest(manifest).image_entries()[0]
    digest, size = hashlib.sha256(img.read_bytes()).hexdigest(), img.stat().st_size
    manifest.write_text(
        text.replace(entry.sha256, digest).replace(f'"bytes": {entry.size}', f'"bytes": {size}')
    )
    assert _cli("data", "verify", "synthetic", "--manifest", manifest, "--root", root) == 1
    out = capsys.readouterr().out
    assert f"{img}: unreadable image (" in out
    assert _cli("data", "verify", "synthetic", "--manifest", manifest, "--root", root, "--no-decode") == 0


def test_verify_missing_root_and_unknown_suite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest, _ = _suite(tmp_path)
    assert _cli("data", "verify", "synthetic", "--manifest", manifest, "--root", tmp_path / "nowhere") == 1
    assert "suite folder not found" in capsys.readouterr().out
    assert _cli("data", "verify", "dreambnch") == 2
    assert "did you mean 'dreambench'" in capsys.readouterr().err
    assert _cli("data", "verify", "other", "--manifest", manifest) == 2
    assert "defines suite 'synthetic', not 'other'" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# fetch


def test_fetch_from_local_copy_then_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest, src = _suite(tmp_path)
    dest = tmp_path / "dest"
    args = [
        "data",
        "fetch",
        "synthetic",
        "--manifest",
        manifest,
        "--root",
        dest,
        "--from",
        src,
        "--no-progress",
    ]
    assert _cli(*args) == 0
    assert "7 written, 0 already present" in capsys.readouterr().out
    assert _cli("data", "verify", "synthetic", "--manifest", manifest, "--root", dest) == 0
    assert _parts(dest) == []
    stamp = (dest / "images/dog0/00.png").stat().st_mtime_ns
    assert _cli(*args) == 0
    assert "0 written, 7 already present" in capsys.readouterr().out
    assert (dest / "images/dog0/00.png").stat().st_mtime_ns == stamp


def test_fetch_of_a_complete_copy_writes_nothing(tmp_path: Path) -> None:
    manifest, src = _suite(tmp_path)
    dest = tmp_path / "dest"
    assert fetch.fetch_files(_entries(manifest), dest, source_dir=src).ok
    (dest / fetch.LOCK_NAME).unlink()
    before = sorted(p.name for p in dest.rglob("*"))
    report = fetch.fetch_files(_entries(manifest), dest, url_for=lambda e: None)  # no source needed
    assert report.ok and len(report.kept) == 7 and report.written == []
    assert sorted(p.name for p in dest.rglob("*")) == before  # not even a lock file


def test_fetch_reports_a_folder_in_place_of_a_file(tmp_path: Path) -> None:
    manifest, src = _suite(tmp_path)
    dest = tmp_path / "dest"
    (dest / "images/dog0/00.png").mkdir(parents=True)
    report = fetch.fetch_files(_entries(manifest), dest, source_dir=src)
    assert [(p.path, p.kind) for p in report.problems] == [(dest / "images/dog0/00.png", "missing")]
    assert "a folder has this file's name" in report.problems[0].detail
    assert len(report.written) == 6


def test_fetch_accepts_the_data_root_as_source(tmp_path: Path) -> None:
    manifest, src = _suite(tmp_path)
    report = fetch.fetch_files(
        _entries(manifest),
        tmp_path / "dest",
        source_dir=fetch.resolve_source_dir(src.parent, "synthetic", _entries(manifest)),
    )
    assert report.ok and len(report.written) == 7


def test_fetch_replaces_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest, src = _suite(tmp_path)
    dest = tmp_path / "dest"
    report = fetch.fetch_files(_entries(manifest), dest, source_dir=src)
    assert report.ok
    bad = dest / "images/teapot1/02.png"
    bad.write_bytes(b"garbage")
    assert (
        _cli(
            "data",
            "fetch",
            "synthetic",
            "--manifest",
            manifest,
            "--root",
            dest,
            "--from",
            src,
            "--no-progress",
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"{bad}: did not match the manifest; removed and fetched again" in out
    assert "1 written, 6 already present" in out
    assert bad.read_bytes() == (src / "images/teapot1/02.png").read_bytes()


def test_fetch_never_installs_a_bad_source_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest, src = _suite(tmp_path)
    (src / "images/dog0/01.png").write_bytes(b"corrupted in the source")
    (src / "images/dog0/02.png").unlink()
    dest = tmp_path / "dest"
    assert (
        _cli(
            "data",
            "fetch",
            "synthetic",
            "--manifest",
            manifest,
            "--root",
            dest,
            "--from",
            src,
            "--no-progress",
        )
        == 1
    )
    out = capsys.readouterr().out
    assert (
        f"{dest / 'images/dog0/01.png'}: source {src / 'images/dog0/01.png'} does not match the manifest"
        in out
    )
    assert (
        f"{dest / 'images/dog0/02.png'}: could not fetch from {src / 'images/dog0/02.png'}: not found" in out
    )
    assert "FAILED, 2 file(s) not fetched" in out
    assert not (dest / "images/dog0/01.png").exists() and not (dest / "images/dog0/02.png").exists()
    assert (dest / "images/dog0/00.png").exists() and _parts(dest) == []


def test_fetch_source_larger_than_expected_is_cut_off(tmp_path: Path) -> None:
    manifest, src = _suite(tmp_path, n_concepts=1, images_per_concept=1)
    path = src / "images/dog0/00.png"
    path.write_bytes(path.read_bytes() + b"\0" * (3 * 1024 * 1024))
    report = fetch.fetch_files(_entries(manifest), tmp_path / "dest", source_dir=src)
    assert [p.kind for p in report.problems] == ["source"]
    assert "more than the expected" in report.problems[0].detail
    assert not (tmp_path / "dest/images/dog0/00.png").exists() and _parts(tmp_path / "dest") == []


def test_fetch_downloads_from_the_url_pattern(tmp_path: Path) -> None:
    # file:// URLs go through the same urllib code path as https:// without touching the network.
    upstream = tmp_path / "upstream" / "synthetic"
    manifest = write_synthetic_suite(tmp_path / "upstream", url_pattern=f"file://{upstream}/{{path}}")
    dest = tmp_path / "dest"
    assert _cli("data", "fetch", "synthetic", "--manifest", manifest, "--root", dest, "--no-progress") == 0
    assert _cli("data", "verify", "synthetic", "--manifest", manifest, "--root", dest) == 0


def test_fetch_without_any_source_says_so(tmp_path: Path) -> None:
    manifest, _ = _suite(tmp_path)
    report = fetch.fetch_files(_entries(manifest), tmp_path / "dest", url_for=lambda e: None)
    assert len(report.problems) == 7
    assert all("pass --from DIR" in p.detail for p in report.problems)


def test_fetch_network_errors_are_retried_and_http_errors_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest, _ = _suite(tmp_path, n_concepts=1, images_per_concept=1)
    calls: list[str] = []

    def fake_urlopen(req: object, timeout: float) -> object:
        url = req.full_url  # type: ignore[attr-defined]
        calls.append(url)
        if url.endswith("LICENSE.txt"):
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)  # type: ignore[arg-type]
        raise urllib.error.URLError("connection refused")

    monkeypatch.setattr("urllib.request.urlopen", fake_urlopen)
    monkeypatch.setattr(fetch.time, "sleep", lambda s: None)
    monkeypatch.setattr(fetch, "_check_reachable", lambda urls, timeout: None)  # the host "answers"
    report = fetch.fetch_files(
        _entries(manifest), tmp_path / "dest", url_for=lambda e: f"https://example.invalid/{e.path}"
    )
    details = {p.path.name: p.detail for p in report.problems}
    assert "HTTP 404 Not Found" in details["LICENSE.txt"]
    assert "network error" in details["00.png"]
    assert sum(u.endswith("LICENSE.txt") for u in calls) == 1  # 404 is final
    assert sum(u.endswith("00.png") for u in calls) == 3  # transient: retried


def test_fetch_without_a_network_fails_at_once_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import time

    # port 9 (discard) on this machine refuses the connection at once: the host cannot be reached
    manifest = write_synthetic_suite(tmp_path / "upstream", url_pattern="http://127.0.0.1:9/{path}")
    dest = tmp_path / "dest"
    start = time.monotonic()
    code = _cli("data", "fetch", "synthetic", "--manifest", manifest, "--root", dest, "--no-progress")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and time.monotonic() - start < 15
    assert len(err) == 1 and "cannot reach 127.0.0.1" in err[0] and "--from DIR" in err[0]
    assert not any(p.is_file() and not p.name.startswith(".") for p in dest.rglob("*"))


def test_fetch_interrupted_by_an_exception_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest, src = _suite(tmp_path, image_size=64)
    dest = tmp_path / "dest"
    entries = _entries(manifest)
    monkeypatch.setattr(fetch, "CHUNK_SIZE", 256)
    written = [0]
    real = fetch._write_chunk

    def interrupting(out: object, chunk: bytes) -> None:
        written[0] += len(chunk)
        if written[0] > sum(e.size for e in entries) // 2:
            raise KeyboardInterrupt
        real(out, chunk)  # type: ignore[arg-type]

    monkeypatch.setattr(fetch, "_write_chunk", interrupting)
    with pytest.raises(KeyboardInterrupt):
        fetch.fetch_files(entries, dest, source_dir=src)
    present = [e for e in entries if (dest / e.path).exists()]
    assert 0 < len(present) < len(entries)
    assert all(check_file(dest / e.path, e) is None for e in present)  # complete or absent, never partial
    assert _parts(dest) == []  # the temporary file was removed on the way out
    monkeypatch.setattr(fetch, "_write_chunk", real)
    report = fetch.fetch_files(entries, dest, source_dir=src)
    assert report.ok and len(report.kept) == len(present)


KILL_SCRIPT = r"""
import os, signal, sys
import benchmark.data.fetch as fetch

fetch.CHUNK_SIZE = int(sys.argv[1])
limit = int(sys.argv[2])
written = [0]
real = fetch._write_chunk

def killing(out, chunk):
    if written[0] + len(chunk) > limit:
        real(out, chunk[: limit - written[0]])
        out.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    written[0] += len(chunk)
    real(out, chunk)

fetch._write_chunk = killing
from benchmark.cli import main
sys.exit(main(sys.argv[3:]))
"""


def _fetch_killed_half_way(manifest: str | Path, suite: str, src: Path, dest: Path, chunk: int) -> None:
    """Run ``data fetch`` in a subprocess that SIGKILLs itself half-way through the bytes."""
    entries = [*load_manifest(manifest).files, *load_manifest(manifest).image_entries()]
    half = sum(e.size for e in entries) // 2
    argv = ["data", "fetch", suite, "--root", str(dest), "--from", str(src), "--no-progress"]
    if Path(str(manifest)).suffix == ".json":
        argv += ["--manifest", str(manifest)]
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(chunk), str(half), *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    finals = [e for e in entries if (dest / e.path).exists()]
    assert 0 < len(finals) < len(entries)
    for e in finals:  # a file with its final name is complete and verified
        assert check_file(dest / e.path, e) is None
    parts = _parts(dest)
    assert len(parts) == 1  # the file being copied when the process died
    expected = {fetch.part_path(dest / e.path): e.size for e in entries}
    assert parts[0].stat().st_size < expected[parts[0]]


def test_fetch_killed_half_way_then_rerun_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest, src = _suite(tmp_path, n_concepts=3, images_per_concept=3, image_size=48)
    dest = tmp_path / "dest"
    _fetch_killed_half_way(manifest, "synthetic", src, dest, chunk=512)
    args = [
        "data",
        "fetch",
        "synthetic",
        "--manifest",
        manifest,
        "--root",
        dest,
        "--from",
        src,
        "--no-progress",
    ]
    assert _cli(*args) == 0
    assert _cli("data", "verify", "synthetic", "--manifest", manifest, "--root", dest) == 0
    assert _parts(dest) == []


# --------------------------------------------------------------------------------------------------
# The real DreamBench copy


@needs_data
def test_verify_shared_dreambench(capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(str(DATA)) / "dreambench"
    assert _cli("data", "verify", "dreambench", "--root", root, "--no-decode") == 0
    out = capsys.readouterr().out.strip()
    assert "dreambench v1: OK, 30 concepts / 158 images" in out and len(out.splitlines()) == 1


@needs_data
def test_verify_dreambench_with_one_altered_and_one_deleted_photo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shared = Path(str(DATA)) / "dreambench"
    root = tmp_path / "dreambench"
    for path in shared.rglob("*"):  # a tree of symlinks: cheap, and the shared copy stays untouched
        target = root / path.relative_to(shared)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)
    altered = root / "dataset/dog/02.jpg"
    data = bytearray(altered.read_bytes())
    altered.unlink()
    data[1000] ^= 0xFF
    altered.write_bytes(bytes(data))
    deleted = root / "dataset/teapot/03.jpg"
    deleted.unlink()
    assert _cli("data", "verify", "dreambench", "--root", root, "--no-decode") == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{altered}: checksum mismatch (expected sha256 ")
    assert lines[1].startswith(f"{deleted}: missing (expected ")


@needs_data
def test_fetch_into_the_complete_shared_copy_is_a_no_op(capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(str(DATA)) / "dreambench"
    assert _cli("data", "fetch", "dreambench", "--root", root, "--no-progress") == 0  # no download needed
    assert "(0 written, 161 already present)" in capsys.readouterr().out


@needs_data
def test_fetch_dreambench_killed_half_way_then_rerun(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = Path(str(DATA)) / "dreambench"
    dest = tmp_path / "dreambench"
    _fetch_killed_half_way("dreambench", "dreambench", src, dest, chunk=64 * 1024)
    args = ["data", "fetch", "dreambench", "--root", dest, "--from", src, "--no-progress"]
    assert _cli(*args) == 0
    out = capsys.readouterr().out
    assert "dreambench v1: OK, 161 files verified" in out
    assert _cli("data", "verify", "dreambench", "--root", dest, "--no-decode") == 0
    assert _parts(dest) == []
    shutil.rmtree(dest)
