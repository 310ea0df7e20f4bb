"""leakage@2: context match to the training contexts, calibrated against the base model (AUROC)."""

from __future__ import annotations

import numpy as np
import pytest

from metrics.leakage import auroc, context_match, hanley_mcneil_se, leakage_metric


def test_auroc_equals_the_pair_count_with_half_ties() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 30).astype(float), rng.integers(0, 5, 20).astype(float)
    pairs = (a[:, None] > b[None, :]).sum() + 0.5 * (a[:, None] == b[None, :]).sum()
    assert auroc(a, b) == pytest.approx(pairs / (30 * 20))


def test_hanley_mcneil_closed_form_at_chance() -> None:
    # a = 0.5, n = m = 10: Q1 = Q2 = 1/3, var = (0.25 + 9/12 + 9/12) / 100
    assert hanley_mcneil_se(0.5, 10, 10) == pytest.approx(np.sqrt(0.0175))
    assert hanley_mcneil_se(1.0, 10, 10) == pytest.approx(0.0)


def test_a_copy_of_the_training_contexts_leaks_fully_and_the_base_model_not_at_all() -> None:
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(5, 8))
    base = rng.normal(size=(32, 8))
    copy = reference[np.arange(32) % 5]
    out = leakage_metric(copy, reference, base)
    assert out.value == pytest.approx(1.0) and out.extra["auroc"] == pytest.approx(1.0) and out.n == 32
    same = leakage_metric(base, reference, base)
    assert same.value == pytest.approx(0.0) and same.extra["se"] > 0


def test_context_match_is_the_highest_cosine_and_rejects_bad_input() -> None:
    ref = np.array([[1.0, 0.0], [0.0, 1.0]])
    got = context_match(np.array([[1.0, 1.0], [2.0, 0.0]]), ref)
    assert got == pytest.approx([1 / np.sqrt(2), 1.0])
    with pytest.raises(ValueError, match="different feature sizes"):
        context_match(np.ones((2, 3)), ref)
    with pytest.raises(ValueError, match="zero-norm"):
        context_match(np.zeros((1, 2)), ref)
