"""Crash-safe files for the toy trainers: checkpoints and arrays written atomically
(:func:`benchmark.io.atomic_write`: temp name + rename), sha256 manifests, folder replacement.

A reader never sees a half-written checkpoint: every file is written next to its target under a
temporary name, flushed, and renamed over it in one step.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from benchmark.io import atomic_write, atomic_write_bytes, sha256_file

SHA256_MANIFEST = "SHA256SUMS"


def atomic_torch_save(path: str | Path, obj: Any) -> Path:
    """``torch.save(obj)`` to ``path`` atomically. Returns the path."""
    import torch

    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def atomic_numpy_save(path: str | Path, array: Any) -> Path:
    """``numpy.save(array)`` to ``path`` (which should end in ``.npy``) atomically. Returns the path."""
    import numpy as np

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, array)

    return atomic_write(path, write)


def load_torch(path: str | Path) -> Any:
    """Load a checkpoint written by :func:`atomic_torch_save` (tensors, numbers, strings, dicts).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a readable checkpoint (the message names it).
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: checkpoint not found")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several unrelated types for a corrupt file
        raise ValueError(f"{p}: not a readable checkpoint ({err})") from err


def write_sha256_manifest(folder: str | Path) -> Path:
    """Write ``SHA256SUMS`` (``<sha256>  <relative path>`` per file, sorted) covering every other file
    under ``folder``.

    Returns:
        The manifest's path.
    """
    root = Path(folder)
    lines = [
        f"{sha256_file(p)}  {p.relative_to(root).as_posix()}"
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != SHA256_MANIFEST
    ]
    return atomic_write_bytes(root / SHA256_MANIFEST, ("\n".join(lines) + "\n").encode("utf-8"))


def verify_sha256_manifest(folder: str | Path) -> list[str]:
    """Check a folder against its ``SHA256SUMS``.

    Returns:
        Problems found (missing, changed or unlisted files); empty when the folder matches.

    Raises:
        FileNotFoundError: the folder has no ``SHA256SUMS``.
    """
    root = Path(folder)
    manifest = root / SHA256_MANIFEST
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: no sha256 manifest")
    listed: dict[str, str] = {}
    for line in manifest.read_text(encoding="utf-8").splitlines():
        if line.strip():
            digest, rel = line.split("  ", 1)
            listed[rel] = digest
    problems = []
    for rel, digest in sorted(listed.items()):
        p = root / rel
        if not p.is_file():
            problems.append(f"missing: {rel}")
        elif sha256_file(p) != digest:
            problems.append(f"changed: {rel}")
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {SHA256_MANIFEST}
    problems.extend(f"unlisted: {rel}" for rel in sorted(present - set(listed)))
    return problems


def replace_dir(src: str | Path, dst: str | Path) -> Path:
    """Move the finished folder ``src`` to ``dst``, replacing any old ``dst`` (two renames, then cleanup).

    Returns:
        ``dst``.
    """
    src_p, dst_p = Path(src), Path(dst)
    old = dst_p.with_name(f".{dst_p.name}.old-{os.getpid()}")
    if dst_p.exists():
        os.replace(dst_p, old)
    os.replace(src_p, dst_p)
    if old.exists():
        shutil.rmtree(old)
    return dst_p
