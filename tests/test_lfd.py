"""LFD: closed forms with analytic Gaussian noise predictors, invariances, caching and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from metrics.lfd import (
    PredictionCache,
    default_timesteps,
    latent_fisher_divergence,
    lfd_breakdown,
    paired_noise,
)

SHAPE = (4, 2, 2)  # latent [C, H, W]; D = 16
D = 16


def sd_alphas(n: int = 1000) -> torch.Tensor:
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, n, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, 0)


AC = sd_alphas()
TS = default_timesteps(1000, 10)


def gaussian_eps(mean: torch.Tensor, std: float):
    """Exact eps-predictor of data N(mean, std^2 I) under the VP forward process."""

    def eps(z_t: torch.Tensor, t: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        abar = AC[t].to(z_t.dtype).view(-1, *([1] * (z_t.ndim - 1)))
        sigma = (1 - abar).sqrt()
        var = abar * std**2 + sigma**2
        return sigma * (z_t - abar.sqrt() * mean) / var

    return eps


def base_samples(n: int, std: float = 1.0, seed: int = 0) -> tuple[torch.Tensor, list[str]]:
    g = torch.Generator().manual_seed(seed)
    z0 = torch.randn((n, *SHAPE), generator=g, dtype=torch.float64) * std
    prompts = [f"a photo of thing {i % 3}" for i in range(n)]
    return z0, prompts


# --- closed forms ---------------------------------------------------------------------------------


def test_model_against_itself_is_exactly_zero() -> None:
    z0, prompts = base_samples(12)
    f = gaussian_eps(torch.zeros(SHAPE, dtype=torch.float64), 1.0)
    for weighting in ("eps", "score"):
        assert latent_fisher_divergence(f, f, z0, prompts, AC, TS, weighting=weighting) == 0.0


@pytest.mark.parametrize("weighting", ["eps", "score"])
def test_mean_shifted_gaussians_exact(weighting: str) -> None:
    # Data N(mu_b, s^2 I) vs N(mu_c, s^2 I): eps_c - eps_b = sigma sqrt(abar)(mu_b - mu_c)/v_t, constant in
    # z_t, so the estimator equals the Fisher divergence for every sample draw.
    s = 0.7
    mu_b = torch.zeros(SHAPE, dtype=torch.float64)
    mu_c = torch.linspace(-1, 1, D, dtype=torch.float64).view(SHAPE)
    z0, prompts = base_samples(9, std=s)
    dmu2 = float(((mu_c - mu_b) ** 2).sum())
    expected = 0.0
    for t in TS:
        abar = float(AC[t])
        sigma2 = 1 - abar
        v = abar * s**2 + sigma2
        fd_score = abar * dmu2 / (v**2 * D)
        expected += fd_score * (sigma2 if weighting == "eps" else 1.0)
    expected /= len(TS)
    got = latent_fisher_divergence(
        gaussian_eps(mu_b, s), gaussian_eps(mu_c, s), z0, prompts, AC, TS, weighting=weighting
    )
    assert got == pytest.approx(expected, rel=1e-10)  # float64 throughout; rounding only


@pytest.mark.parametrize("weighting", ["eps", "score"])
def test_constant_offset_exact(weighting: str) -> None:
    z0, prompts = base_samples(5)
    base = gaussian_eps(torch.zeros(SHAPE, dtype=torch.float64), 1.0)
    offset = torch.full(SHAPE, 0.25, dtype=torch.float64)

    def custom(z, t, p):
        return base(z, t, p) + offset

    got = latent_fisher_divergence(base, custom, z0, prompts, AC, TS, weighting=weighting)
    weights = [1.0 if weighting == "eps" else 1.0 / (1 - float(AC[t])) for t in TS]
    assert got == pytest.approx(0.0625 * sum(weights) / len(TS), rel=1e-10)


@pytest.mark.parametrize("weighting", ["eps", "score"])
def test_variance_mismatch_matches_expectation(weighting: str) -> None:
    # Data N(0, s_b^2) vs N(0, s_c^2): E over base samples of w sigma^2 (1/v_c - 1/v_b)^2 ||z_t||^2/D
    # = w sigma^2 (1/v_c - 1/v_b)^2 v_b. Monte Carlo with N·D = 32,000 terms: relative std < 1%,
    # so a 5% tolerance is > 5 sigma.
    s_b, s_c = 1.0, 1.5
    z0, prompts = base_samples(2000, std=s_b, seed=1)
    expected = 0.0
    for t in TS:
        abar = float(AC[t])
        sigma2 = 1 - abar
        vb, vc = abar * s_b**2 + sigma2, abar * s_c**2 + sigma2
        term = sigma2 * (1 / vc - 1 / vb) ** 2 * vb
        expected += term if weighting == "eps" else term / sigma2
    expected /= len(TS)
    zero = torch.zeros(SHAPE, dtype=torch.float64)
    got = latent_fisher_divergence(
        gaussian_eps(zero, s_b),
        gaussian_eps(zero, s_c),
        z0,
        prompts,
        AC,
        TS,
        weighting=weighting,
        batch_size=500,
    )
    assert got == pytest.approx(expected, rel=0.05)


# --- golden value -----------------------------------------------------------------------------------


GOLDEN = 0.08466863172382491


def test_golden_value_fixed_seed() -> None:
    # Pins the paired-noise scheme: a change to row_noise_seed or the sampling order changes this.
    z0, prompts = base_samples(4, seed=3)
    zero = torch.zeros(SHAPE, dtype=torch.float64)
    got = latent_fisher_divergence(
        gaussian_eps(zero, 1.0), gaussian_eps(zero, 2.0), z0, prompts, AC, [100, 500], seed=7
    )
    # Recorded from this implementation (float64); 1e-9 relative absorbs BLAS-free rounding only.
    assert got == pytest.approx(GOLDEN, rel=1e-9)


# --- invariances ----------------------------------------------------------------------------------


def _pair():
    zero = torch.zeros(SHAPE, dtype=torch.float64)
    return gaussian_eps(zero, 1.0), gaussian_eps(zero, 1.8)


def test_batch_size_invariance() -> None:
    z0, prompts = base_samples(23)
    f, g = _pair()
    values = {
        bs: latent_fisher_divergence(f, g, z0, prompts, AC, TS, batch_size=bs) for bs in (1, 4, 7, 23, 64)
    }
    assert len(set(values.values())) == 1, values  # bit-identical: per-row terms, fixed reduction order


def test_row_and_timestep_order_invariance() -> None:
    z0, prompts = base_samples(17)
    f, g = _pair()
    ref = latent_fisher_divergence(f, g, z0, prompts, AC, TS)
    perm = torch.randperm(17, generator=torch.Generator().manual_seed(0))
    shuffled = latent_fisher_divergence(f, g, z0[perm], [prompts[i] for i in perm], AC, list(reversed(TS)))
    assert shuffled == pytest.approx(ref, rel=1e-13)  # only the float64 summation order differs


def test_adding_rows_keeps_existing_noise() -> None:
    z0, prompts = base_samples(6)
    a = paired_noise(0, 100, prompts[:3], z0[:3].float())
    b = paired_noise(0, 100, prompts, z0.float())
    assert torch.equal(a, b[:3])
    assert not torch.equal(paired_noise(1, 100, prompts[:3], z0[:3].float()), a)  # seed matters


def test_breakdown_consistent() -> None:
    z0, prompts = base_samples(9)
    f, g = _pair()
    res = lfd_breakdown(f, g, z0, prompts, AC, TS)
    assert res.value == pytest.approx(sum(res.per_timestep.values()) / len(TS), rel=1e-12)
    assert set(res.per_prompt) == set(prompts)
    assert res.terms.shape == (len(TS), 9)
    # Both data variances are washed out by noise at large t (v_t -> 1), so the divergence shrinks.
    assert res.per_timestep[TS[0]] > res.per_timestep[TS[-1]]


def test_default_timesteps() -> None:
    assert default_timesteps(1000, 10) == [91, 182, 272, 363, 454, 545, 636, 727, 817, 908]
    assert default_timesteps(12, 10) == list(range(1, 11))
    with pytest.raises(ValueError):
        default_timesteps(5, 10)


def test_prediction_cache_serves_second_method_without_base_calls() -> None:
    z0, prompts = base_samples(8)
    f, g = _pair()
    calls = {"n": 0}

    def counted(z, t, p):
        calls["n"] += z.shape[0]
        return f(z, t, p)

    cache = PredictionCache(counted)
    first = latent_fisher_divergence(cache, g, z0, prompts, AC, TS, batch_size=3)
    assert calls["n"] == 8 * len(TS)
    second = latent_fisher_divergence(cache, g, z0, prompts, AC, TS, batch_size=5)
    assert calls["n"] == 8 * len(TS)  # every base row came from the cache
    assert first == second
    restored = PredictionCache()
    restored.load_state_dict(cache.state_dict())
    assert latent_fisher_divergence(restored, g, z0, prompts, AC, TS) == first


# --- bad input ------------------------------------------------------------------------------------


def _call(**over):
    z0, prompts = base_samples(3)
    f, g = _pair()
    kw = dict(base_eps=f, custom_eps=g, z0=z0, prompts=prompts, alphas_cumprod=AC, timesteps=TS)
    kw.update(over)
    extra = {k: kw.pop(k) for k in ("weighting", "seed", "batch_size") if k in kw}
    return latent_fisher_divergence(
        kw["base_eps"],
        kw["custom_eps"],
        kw["z0"],
        kw["prompts"],
        kw["alphas_cumprod"],
        kw["timesteps"],
        **extra,
    )


def _nan_eps(z, t, p):
    return torch.full_like(z, float("nan"))


def _bad_shape_eps(z, t, p):
    return z[:, :1]


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"weighting": "kl"}, "unknown weighting"),
        ({"z0": torch.zeros((0, *SHAPE))}, "empty"),
        ({"z0": torch.zeros(3)}, "at least one latent dimension"),
        ({"z0": [[0.0]]}, "torch.Tensor"),
        ({"prompts": ["a", "b"]}, "2 entries but z0 has 3 rows"),
        ({"prompts": "abc"}, "list of strings"),
        ({"timesteps": []}, "timesteps is empty"),
        ({"timesteps": [1000]}, "outside the schedule"),
        ({"timesteps": [-1]}, "outside the schedule"),
        ({"timesteps": [1.5]}, "not an integer"),
        ({"timesteps": [5, 5]}, "duplicates"),
        ({"alphas_cumprod": torch.zeros(10)}, r"\(0, 1\]"),
        ({"alphas_cumprod": torch.ones((2, 2))}, "1-D"),
        ({"custom_eps": _nan_eps}, "custom_eps returned NaN"),
        ({"base_eps": _bad_shape_eps}, "base_eps returned shape"),
        ({"batch_size": 0}, "batch_size"),
        ({"z0": torch.full((3, *SHAPE), float("nan"))}, "z0 contains NaN"),
    ],
)
def test_bad_input_raises(over: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _call(**over)


def test_score_weighting_rejects_zero_noise_level() -> None:
    ac = AC.clone()
    ac[0] = 1.0
    with pytest.raises(ValueError, match="sigma_t > 0"):
        _call(alphas_cumprod=ac, timesteps=[0], weighting="score")
    assert math.isfinite(_call(alphas_cumprod=ac, timesteps=[0], weighting="eps"))


def test_the_row_carries_the_monte_carlo_standard_error() -> None:
    from metrics.lfd import LFDReference, lfd_breakdown, lfd_metric, monte_carlo_se

    torch.manual_seed(0)
    z0 = torch.randn(6, 2, 2, 2)
    prompts = ["a", "b", "a", "b", "a", "b"]
    ac = torch.linspace(0.99, 0.01, 100, dtype=torch.float64)

    def base(z, t, p):
        return 0.5 * z

    def custom(z, t, p):
        return 0.5 * z + 0.1 * torch.tensor([1.0 if q == "a" else 3.0 for q in p]).view(-1, 1, 1, 1)

    ref = LFDReference(z0, prompts, base, ac, [10, 50], seed=0, batch_size=4)
    out = lfd_metric(custom, ref)
    res = lfd_breakdown(base, custom, z0, prompts, ac, [10, 50], seed=0, batch_size=4)
    per_row = res.terms.mean(dim=0)  # rows "a" give 0.01, rows "b" 0.09 (constant offsets)
    assert per_row.tolist() == pytest.approx([0.01, 0.09] * 3)
    expected = float(per_row.std(unbiased=True)) / 6**0.5
    assert out.extra["se"] == pytest.approx(expected) == pytest.approx(monte_carlo_se(res))
    assert out.value == pytest.approx(0.05) and out.n == 6
    same = lfd_metric(base, ref)
    assert same.value == 0.0 and same.extra["se"] == 0.0
    # prompt as the unit: two prompt means 0.01 and 0.09, so sd(means) / sqrt(2) = 0.04
    assert out.extra["se_prompt"] == pytest.approx(0.04)
    assert same.extra["se_prompt"] == 0.0


def test_prompt_se_is_the_cluster_robust_form_and_equals_monte_carlo_with_one_row_per_prompt() -> None:
    from metrics.lfd import LFDResult, monte_carlo_se, prompt_se

    def result(per_row: list[float]) -> LFDResult:
        terms = torch.tensor([per_row, per_row], dtype=torch.float64)  # two timesteps, same terms
        return LFDResult(float(terms.mean()), {}, {}, "eps", len(per_row), (1, 2), terms)

    # unequal clusters: a = {1, 3} (total 4), b = {8} (total 8); mean 4, residual totals 4 - 8 = -4 and
    # 8 - 4 = 4, se = sqrt(2/1 * 32) / 3 = 8/3 (by hand)
    assert prompt_se(result([1.0, 3.0, 8.0]), ["a", "a", "b"]) == pytest.approx(8 / 3)
    # one row per prompt: the prompt-unit error is the row-independent one
    rows = [0.3, 0.1, 0.7, 0.2]
    assert prompt_se(result(rows), ["p", "q", "r", "s"]) == pytest.approx(monte_carlo_se(result(rows)))
    # rows that agree within a prompt but not across prompts: the prompt-unit error is the larger one
    clustered = [0.1, 0.1, 0.1, 0.9, 0.9, 0.9]
    prompts = ["a", "a", "a", "b", "b", "b"]
    assert prompt_se(result(clustered), prompts) > monte_carlo_se(result(clustered))
    assert prompt_se(result(rows), ["p"] * 4) is None
    with pytest.raises(ValueError, match="prompts has 3 entries"):
        prompt_se(result(rows), ["p", "q", "r"])


# --- row keys: the noise draw does not depend on how a machine rounded z0 -------------------------------


def test_row_keys_make_noise_independent_of_z0_bytes() -> None:
    z0, prompts = base_samples(5)
    z0 = z0.float()
    nudged = torch.nextafter(z0, torch.full_like(z0, float("inf")))  # every value one float32 ulp up
    keys = [f"seed={i}" for i in range(5)]
    assert torch.equal(paired_noise(0, 100, prompts, z0, keys), paired_noise(0, 100, prompts, nudged, keys))
    # without keys the bytes seed the noise: one ulp draws entirely different noise
    assert not torch.allclose(paired_noise(0, 100, prompts, z0), paired_noise(0, 100, prompts, nudged))
    # keys, not positions: a reordered set keeps each row's noise
    perm = [4, 2, 0, 1, 3]
    reordered = paired_noise(0, 100, [prompts[i] for i in perm], z0[perm], [keys[i] for i in perm])
    assert torch.equal(reordered, paired_noise(0, 100, prompts, z0, keys)[perm])


def test_row_keys_lfd_moves_only_by_the_predictors_on_a_nudged_z0() -> None:
    z0, prompts = base_samples(8)
    f, g = _pair()
    keys = [f"seed={i}" for i in range(8)]
    nudged = z0 * (1 + 1e-12)
    a = latent_fisher_divergence(f, g, z0, prompts, AC, TS, row_keys=keys)
    b = latent_fisher_divergence(f, g, nudged, prompts, AC, TS, row_keys=keys)
    assert b == pytest.approx(a, rel=1e-9)


@pytest.mark.parametrize(
    ("keys", "match"),
    [(["a"], "one per z0 row"), ("abc", "list of strings"), (["k"] * 4, "repeat a \\(prompt, key\\)")],
)
def test_row_keys_validation(keys, match) -> None:
    z0 = torch.zeros((4, *SHAPE), dtype=torch.float64)
    f, g = _pair()
    with pytest.raises(ValueError, match=match):
        latent_fisher_divergence(f, g, z0, ["p"] * 4, AC, TS, row_keys=keys)
