"""The shipped toy-world weights: the base model (a diffusers folder), the oracle checkpoint and the
rulers (learned toy CLIP / DINO backbones).

All are produced by the project's own scripts (``python -m benchmark.toy.train_base`` and
``python -m benchmark.toy.oracle``, ``python -m benchmark.toy.train_rulers``) and committed with their training records and sha256 sums;
:func:`base_model_dir` and :func:`oracle_checkpoint` check those sums before anything loads them.
"""

from __future__ import annotations

import functools
from pathlib import Path

ASSETS = Path(__file__).resolve().parent
BASE_MODEL = ASSETS / "base_model"
ORACLE = ASSETS / "oracle"
RULERS = ASSETS / "rulers"
_TRAIN_HINT = (
    "train it with `python -m benchmark.toy.train_base --out DIR --stage all` (see docs/VALIDITY.md)"
)


@functools.cache
def _checked(folder: Path, what: str, hint: str) -> Path:
    from benchmark.toy.io import verify_sha256_manifest

    if not (folder / "SHA256SUMS").is_file():
        raise FileNotFoundError(f"the toy {what} is missing from {folder} (no SHA256SUMS); {hint}")
    problems = verify_sha256_manifest(folder)
    if problems:
        raise ValueError(f"the toy {what} in {folder} does not match its SHA256SUMS: {'; '.join(problems)}")
    return folder


def base_model_dir() -> Path:
    """The toy base model's ``StableDiffusionPipeline`` folder, after checking its sha256 sums.

    Raises:
        FileNotFoundError: the folder is missing.
        ValueError: a file differs from ``SHA256SUMS``.
    """
    return _checked(BASE_MODEL, "base model", _TRAIN_HINT)


def oracle_checkpoint() -> Path:
    """The toy oracle's checkpoint file, after checking its sha256 sums.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: the file differs from ``SHA256SUMS``.
    """
    hint = "train it with `python -m benchmark.toy.oracle --out DIR` and copy the export here"
    return _checked(ORACLE, "oracle", hint) / "oracle_checkpoint.pt"


def ruler_checkpoint(name: str) -> Path:
    """A shipped toy ruler's inference checkpoint (``toy-contrastive`` or ``toy-ssl``, see
    :mod:`benchmark.toy.rulers`), after checking its folder's sha256 sums.

    Raises:
        FileNotFoundError: the folder is missing.
        ValueError: an unknown name, or a file differs from ``SHA256SUMS`` (the message names it).
    """
    known = ("toy-contrastive", "toy-ssl")
    if name not in known:
        raise ValueError(f"unknown toy ruler {name!r}; known: {', '.join(known)}")
    hint = f"train it with `python -m benchmark.toy.train_rulers --which ... --out DIR --export` ({name})"
    return _checked(RULERS / name, f"ruler {name}", hint) / "ruler_checkpoint.pt"
