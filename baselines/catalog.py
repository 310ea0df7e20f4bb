"""What each registered method trains on a given model: numbers and artifact bytes (``overfit-bench methods``)."""

from __future__ import annotations

import math
from typing import Any

from baselines import METHODS, get_method

FILE_SIZE_LIMIT = 256 << 20


def artifact_file_bytes(method: Any, shapes: dict[str, tuple[int, ...]], cfg: dict[str, Any]) -> int:
    """Size of the artifact file ``fit`` would write (fp32 tensors + header with the resolved config),
    measured by saving zeros of the right shapes to a temporary file."""
    import tempfile

    import torch

    from baselines.artifact import Artifact

    tensors = {k: torch.zeros(s) for k, s in shapes.items()}
    meta = {
        "version": method.version,
        "config": cfg,
        "config_hash": method.config_hash(cfg),
        "class_noun": "dog",
        "slot": method.slot_text("dog", cfg),
        "concept_id": "dog",
        "seed": 0,
        "steps": cfg.get("steps"),
        "eval_loss_before": 1.0,
        "eval_loss_after": 1.0,
    }
    with tempfile.TemporaryDirectory(prefix="overfit-bench-size-") as tmp:
        return Artifact(method.name, tensors, meta).save(f"{tmp}/a.safetensors")


def describe_method(name: str, pipeline: Any, config: Any = None) -> dict[str, Any]:
    """One method's entry: ``name``, ``trainable_params``, ``artifact_bytes_fp32``/``_fp16`` (tensor
    payload), ``artifact_file_bytes`` (the fp32 safetensors file with its header, measured; ``None``
    above 256 MiB of payload), ``tensors``, ``description``, ``source``, ``version``,
    ``config_hash``, ``recipe_steps``.

    Counts come from :meth:`Method.trainable_shapes`, i.e. from the method's definition applied to the
    model's modules; tests check them against the tensors a real ``fit`` creates.
    """
    method = get_method(name)
    shapes = method.trainable_shapes(pipeline, config)
    numbers = sum(math.prod(s) for s in shapes.values())
    cfg = method.resolve_config(config)
    small = numbers * 4 <= FILE_SIZE_LIMIT
    return {
        "name": name,
        "trainable_params": int(numbers),
        "artifact_bytes_fp32": int(numbers * 4),
        "artifact_bytes_fp16": int(numbers * 2),
        "artifact_file_bytes": artifact_file_bytes(method, shapes, cfg) if small else None,
        "tensors": len(shapes),
        "version": method.version,
        "config_hash": method.config_hash(config),
        "recipe_steps": cfg.get("steps"),
        "description": method.description,
        "source": method.source,
    }


def describe_methods(pipeline: Any, names: list[str] | None = None) -> list[dict[str, Any]]:
    """:func:`describe_method` for ``names`` (default: every registered method)."""
    return [describe_method(n, pipeline) for n in (names or list(METHODS))]
