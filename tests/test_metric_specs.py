"""Every registered metric spec against its compute function: signature, small random inputs, and the
harness's compute functions against independent references."""

from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np
import pytest
import torch

from metrics.lfd import LFDReference
from metrics.similarity import (
    clip_i_metric,
    clip_t_metric,
    dino_metric,
    identity_metric,
    leave_one_out_metric,
)
from metrics.spec import METRICS, MetricSpec, MetricValue, parse_input

N, R, D = 6, 4, 5


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(size=(n, D))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _lfd_reference() -> LFDReference:
    z0 = torch.randn(4, 2, 2, 2, generator=torch.Generator().manual_seed(0))
    ac = torch.linspace(0.99, 0.01, 100, dtype=torch.float64)
    return LFDReference(z0, ["a", "b", "a", "b"], lambda z, t, p: 0.5 * z, ac, [10, 50], seed=0, batch_size=2)


def _value(ref: str, rng: np.random.Generator) -> Any:
    """A small random value of input ``ref`` (features are unit rows; the customized model is the base
    model plus 0.1 on every coordinate, so its LFD is 0.01 exactly)."""
    source, _ = parse_input(ref)
    if source == "prompt_truncations":
        return 0
    if source in ("reference", "masked_reference"):
        return _unit(rng, R)
    if source == "generated_identity":
        return rng.uniform(size=N)
    if source == "custom_eps":
        return lambda z, t, p: 0.5 * z + 0.1
    if source == "lfd_reference":
        return _lfd_reference()
    if source == "layout_reference":
        return rng.uniform(size=(R, 3))
    if source.startswith("layout_"):
        return rng.uniform(size=(N, 3))
    if source == "plan_prompts":
        return np.arange(N) // 2  # two images per prompt
    return _unit(rng, N)


def _signature_problems(spec: MetricSpec, fn: Any, given: set[str]) -> list[str]:
    params = inspect.signature(fn).parameters
    problems = [
        f"{spec.key}: {name!r} is not a parameter of {fn.__name__}" for name in given if name not in params
    ]
    required = {n for n, p in params.items() if p.default is inspect.Parameter.empty}
    problems += [
        f"{spec.key}: {fn.__name__} needs {n!r}, which the spec does not give" for n in required - given
    ]
    return problems


@pytest.mark.parametrize("key", sorted(METRICS))
def test_every_spec_matches_its_compute_function(key: str) -> None:
    spec = METRICS[key]
    fn = spec.function()
    assert not _signature_problems(spec, fn, set(spec.bindings) | set(spec.options))
    rng = np.random.default_rng(0)
    kwargs = {kw: _value(ref, rng) for kw, ref in spec.bindings.items()}
    first = fn(**kwargs, **dict(spec.options))
    again = fn(**kwargs, **dict(spec.options))
    assert isinstance(first, MetricValue) and math.isfinite(first.value) and first.n > 0
    assert (first.value, first.n) == (again.value, again.n)  # deterministic on fixed inputs
    if "custom_eps" in spec.bindings:
        assert first.value == pytest.approx(0.01)  # a constant 0.1 offset on every coordinate
    if spec.leave_one_out:
        loo = spec.function("leave_one_out")
        assert not _signature_problems(spec, loo, {"reference"})
        assert loo(reference=_unit(rng, R)).n == R * (R - 1)


@pytest.mark.parametrize("key", sorted(METRICS))
def test_every_spec_names_what_the_leaderboard_reads(key: str) -> None:
    spec = METRICS[key]
    assert spec.role in ("fidelity", "overfitting", "floor", "diagnostic", "grader")
    if spec.role == "grader":  # ground truth: never a headline axis, never on the page
        assert spec.headline is None and not spec.plots
    if spec.role == "floor":
        assert METRICS[spec.pairs_with].role == "overfitting" and spec.reference
    if spec.role == "fidelity":
        assert spec.higher_is_better
    if spec.role == "overfitting":
        assert not spec.higher_is_better


def test_similarity_compute_functions_match_independent_references() -> None:
    rng = np.random.default_rng(1)
    gen, ref, txt = rng.normal(size=(N, D)), rng.normal(size=(R, D)), rng.normal(size=(N, D))
    g = gen / np.linalg.norm(gen, axis=1, keepdims=True)
    r = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    t = txt / np.linalg.norm(txt, axis=1, keepdims=True)
    clip_t = clip_t_metric(gen, txt, prompt_truncations=2)
    assert clip_t.value == pytest.approx(float(np.mean(np.einsum("nd,nd->n", g, t))), rel=1e-12)
    assert clip_t.n == N and clip_t.extra == {"truncated": 2}
    all_pairs = float(np.mean(g @ r.T))
    assert clip_i_metric(gen, ref).value == pytest.approx(all_pairs, rel=1e-12)
    assert dino_metric(gen, ref).value == pytest.approx(all_pairs, rel=1e-12) and dino_metric(gen, ref).n == N
    cos = r @ r.T
    off_diagonal = float((cos.sum() - np.trace(cos)) / (R * (R - 1)))
    assert leave_one_out_metric(ref).value == pytest.approx(off_diagonal, rel=1e-12)
    scores = np.array([1.0, 0.0, 1.0, 1.0])
    assert identity_metric(scores).value == 0.75 and identity_metric(scores).n == 4
    with pytest.raises(ValueError, match="no scores"):
        identity_metric(np.array([]))


def test_the_metric_table_in_docs_is_generated_from_the_specs() -> None:
    from pathlib import Path

    from benchmark.commands.metrics import markdown_table

    doc = (Path(__file__).resolve().parents[1] / "docs" / "METRICS.md").read_text(encoding="utf-8")
    assert markdown_table() in doc, (
        "docs/METRICS.md is stale: paste `overfit-bench metrics --markdown` into it"
    )
