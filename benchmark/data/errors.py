"""Exceptions raised by the suite-data layer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmark.io import ImageLoadError

__all__ = ["DataError", "ImageLoadError", "ManifestError", "NotImportedError", "Problem", "VerificationError"]


class DataError(Exception):
    """Base class of every error about suite data (manifests, files, images)."""


class ManifestError(DataError, ValueError):
    """A manifest (or an import record) is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Problem:
    """One bad file: where it is, what is wrong (``kind``) and what was expected (``detail``).

    ``kind`` is one of ``missing``, ``size``, ``checksum``, ``unreadable``, ``not-imported``,
    ``source`` (the fetch source failed) or ``structure`` (an import folder is malformed).
    """

    path: Path
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.detail}"


class VerificationError(DataError):
    """Files do not match their manifest or import record; ``problems`` lists every bad file."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        self.problems = list(problems)
        lines = [message, *(f"  {p}" for p in self.problems)]
        super().__init__("\n".join(lines))


class NotImportedError(VerificationError):
    """An import-based suite (``customconcept101``) has no verified image record yet."""
