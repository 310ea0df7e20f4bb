"""The output of ``fit``: the trained tensors only (safetensors) plus JSON metadata."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from benchmark.io import atomic_write

META_KEY = "overfit_bench"


@dataclass
class Artifact:
    """A fitted customization.

    Attributes:
        method: the method's registered name (or import path).
        tensors: the trained tensors by name — exactly the method's trainable numbers.
        meta: JSON-serialisable facts stored in the file header: ``version``, ``config`` (resolved),
            ``config_hash``, ``class_noun``, ``slot``, ``concept_id``, ``seed``, ``steps``,
            ``eval_loss_before``/``eval_loss_after``.
        log: the training log (``losses`` per optimizer step), kept in memory for the caller to store
            wherever it likes; not written into the artifact file, which stays tensors + a small header.
    """

    method: str
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    log: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def num_params(self) -> int:
        """Number of stored numbers."""
        return sum(int(t.numel()) for t in self.tensors.values())

    @property
    def nbytes(self) -> int:
        """Bytes of tensor payload (the safetensors file adds a small JSON header)."""
        return sum(int(t.numel()) * t.element_size() for t in self.tensors.values())

    def to(self, dtype: torch.dtype) -> Artifact:
        """A copy with floating tensors cast to ``dtype`` (e.g. ``torch.float16`` for a smaller file)."""
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in self.tensors.items()}
        return Artifact(self.method, tensors, dict(self.meta), dict(self.log))

    def save(self, path: str | Path) -> int:
        """Write a single ``.safetensors`` file atomically (temp file + rename): the tensors and ``meta``.

        Returns:
            The file size in bytes.
        """
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {META_KEY: json.dumps({"method": self.method, **self.meta}, sort_keys=True, allow_nan=False)}
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in self.tensors.items()}
        atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))
        return path.stat().st_size

    @classmethod
    def load(cls, path: str | Path) -> Artifact:
        """Read an artifact written by :meth:`save`.

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file is not an overfit-bench artifact.
        """
        from safetensors import safe_open
        from safetensors.torch import load_file

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"artifact {path} does not exist")
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        if META_KEY not in header:
            raise ValueError(f"{path} is not an overfit-bench artifact (no {META_KEY!r} metadata)")
        meta = json.loads(header[META_KEY])
        method = meta.pop("method")
        return cls(method=method, tensors=load_file(str(path)), meta=meta)
