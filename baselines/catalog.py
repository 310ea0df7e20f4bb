"""What each registered method trains on a given model: numbers and artifact bytes (``overfit-bench methods``)."""

from __future__ import annotations

import math
from typing import Any

from baselines import METHODS, get_method


def describe_method(name: str, pipeline: Any, config: Any = None) -> dict[str, Any]:
    """One method's entry: ``name``, ``trainable_params``, ``artifact_bytes_fp32``/``_fp16`` (tensor
    payload; the safetensors header adds well under 1% for every method here), ``tensors``,
    ``description``, ``source``, ``version``, ``config_hash``, ``recipe_steps``.

    Counts come from :meth:`Method.trainable_shapes`, i.e. from the method's definition applied to the
    model's modules; tests check them against the tensors a real ``fit`` creates.
    """
    method = get_method(name)
    shapes = method.trainable_shapes(pipeline, config)
    numbers = sum(math.prod(s) for s in shapes.values())
    cfg = method.resolve_config(config)
    return {
        "name": name,
        "trainable_params": int(numbers),
        "artifact_bytes_fp32": int(numbers * 4),
        "artifact_bytes_fp16": int(numbers * 2),
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
