"""Latent Fisher Divergence (``lfd@2``, SPEC §2.1).

    LFD(c) = mean over t in T, n of  w(t) · ||eps_custom(z_t, t, c) - eps_base(z_t, t, c)||^2 / D
    z_t = sqrt(abar_t) z0 + sigma_t xi,   sigma_t = sqrt(1 - abar_t)

with w(t) = 1 (``weighting="eps"``) or 1/sigma_t^2 (``"score"``, the score-space Fisher divergence).

Paired noise: xi for a row depends only on (seed, t, prompt, the row's key), never on its position,
the batch size or the other rows. The row's key is what identifies the base sample — the harness passes
the seed it was generated with (``row_keys``); without keys it is the row's z0 values (float32 bytes).
Both models see the same z_t, the result does not move when rows or timesteps are reordered or
re-batched, and a cache of base predictions keyed by its inputs (:class:`PredictionCache`) stays valid
when rows are added. Keys that name the sample, not its bytes, keep the noise draw identical on machines
whose float32 kernels round z0 differently (a z0 that differs in its last bit would otherwise draw
entirely new noise: a different Monte-Carlo sample, LFD moving by several per cent).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from metrics.spec import MetricValue

EpsFn = Callable[[torch.Tensor, torch.Tensor, list[str]], torch.Tensor]

WEIGHTINGS = ("eps", "score")


@dataclass(frozen=True)
class LFDResult:
    """LFD with its breakdown.

    ``value`` is the mean over all (t, n) terms; ``per_timestep`` maps each t to the mean over n;
    ``per_prompt`` maps each prompt to the mean over its rows and all t.
    """

    value: float
    per_timestep: dict[int, float]
    per_prompt: dict[str, float]
    weighting: str
    n_samples: int
    timesteps: tuple[int, ...]
    terms: Any = field(repr=False, default=None)  # float64 tensor [|T|, N]


def default_timesteps(num_train_timesteps: int = 1000, n: int = 10) -> list[int]:
    """``n`` timesteps evenly spaced over [0, num_train_timesteps - 1], extremes excluded."""
    if n < 1 or num_train_timesteps < n + 2:
        raise ValueError(f"cannot place {n} interior timesteps in a schedule of {num_train_timesteps}")
    step = (num_train_timesteps - 1) / (n + 1)
    return [round(step * (k + 1)) for k in range(n)]


def row_noise_seed(seed: int, t: int, prompt: str, z0_row: torch.Tensor, row_key: str | None = None) -> int:
    """The 63-bit generator seed of one (row, timestep): a hash of seed, t, prompt and the row's key
    (``row_key``; when None, z0's float32 bytes)."""
    h = hashlib.sha256()
    if row_key is None:
        h.update(f"lfd@1|{seed}|{t}|".encode())
        h.update(prompt.encode("utf-8"))
        h.update(b"|")
        h.update(z0_row.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    else:
        h.update(f"lfd@2|{seed}|{t}|".encode())
        h.update(prompt.encode("utf-8"))
        h.update(b"|key|")
        h.update(row_key.encode("utf-8"))
    return int.from_bytes(h.digest()[:8], "little") & ((1 << 63) - 1)


def paired_noise(
    seed: int,
    t: int,
    prompts: Sequence[str],
    z0: torch.Tensor,
    row_keys: Sequence[str] | None = None,
) -> torch.Tensor:
    """Standard normal noise for each row of ``z0`` at timestep ``t`` (float32, on CPU); ``row_keys``
    (one per row) seed it by key instead of by z0's bytes."""
    out = torch.empty((z0.shape[0], *z0.shape[1:]), dtype=torch.float32)
    for i in range(z0.shape[0]):
        key = None if row_keys is None else row_keys[i]
        g = torch.Generator().manual_seed(row_noise_seed(seed, t, prompts[i], z0[i], key))
        out[i] = torch.randn(z0.shape[1:], generator=g, dtype=torch.float32)
    return out


def _check_row_keys(row_keys: Any, prompts: list[str]) -> list[str] | None:
    if row_keys is None:
        return None
    if isinstance(row_keys, str) or not isinstance(row_keys, Sequence):
        raise ValueError("row_keys must be a list of strings, one per z0 row")
    keys = list(row_keys)
    if len(keys) != len(prompts) or not all(isinstance(k, str) for k in keys):
        raise ValueError(f"row_keys must be {len(prompts)} strings (one per z0 row), got {len(keys)} entries")
    pairs = set(zip(prompts, keys, strict=True))
    if len(pairs) != len(keys):
        raise ValueError("row_keys repeat a (prompt, key) pair: two rows would draw the same noise")
    return keys


def _check_inputs(
    z0: Any, prompts: Any, alphas_cumprod: Any, timesteps: Iterable[int], weighting: str, batch_size: int
) -> tuple[torch.Tensor, list[str], torch.Tensor, tuple[int, ...]]:
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}; expected one of {WEIGHTINGS}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(z0, torch.Tensor):
        raise ValueError(f"z0 must be a torch.Tensor of shape [N, ...], got {type(z0).__name__}")
    if z0.ndim < 2:
        raise ValueError(
            f"z0 must have shape [N, ...] with at least one latent dimension, got {tuple(z0.shape)}"
        )
    if z0.shape[0] == 0:
        raise ValueError("z0 is empty: no base samples to evaluate LFD on")
    if not torch.isfinite(z0).all():
        raise ValueError("z0 contains NaN or inf values")
    if isinstance(prompts, str) or not isinstance(prompts, Sequence):
        raise ValueError("prompts must be a list of strings, one per z0 row")
    prompt_list = list(prompts)
    if len(prompt_list) != z0.shape[0]:
        raise ValueError(f"prompts has {len(prompt_list)} entries but z0 has {z0.shape[0]} rows")
    if not all(isinstance(p, str) for p in prompt_list):
        raise ValueError("prompts must all be strings")
    ac = torch.as_tensor(alphas_cumprod).detach().to("cpu", torch.float64)
    if ac.ndim != 1 or ac.numel() == 0:
        raise ValueError(f"alphas_cumprod must be a non-empty 1-D tensor, got shape {tuple(ac.shape)}")
    if not torch.isfinite(ac).all() or (ac <= 0).any() or (ac > 1).any():
        raise ValueError("alphas_cumprod must hold finite values in (0, 1]")
    ts: list[int] = []
    for t in timesteps:
        if isinstance(t, torch.Tensor):
            t = t.item()
        if isinstance(t, bool) or not float(t).is_integer():
            raise ValueError(f"timestep {t!r} is not an integer")
        ti = int(t)
        if not 0 <= ti < ac.numel():
            raise ValueError(f"timestep {ti} is outside the schedule [0, {ac.numel() - 1}]")
        ts.append(ti)
    if not ts:
        raise ValueError("timesteps is empty")
    if len(set(ts)) != len(ts):
        raise ValueError(f"timesteps has duplicates: {ts}")
    if weighting == "score" and any(float(ac[t]) >= 1.0 for t in ts):
        raise ValueError("weighting='score' needs sigma_t > 0, but alphas_cumprod[t] == 1 at a requested t")
    return z0, prompt_list, ac, tuple(ts)


def _predict(fn: EpsFn, which: str, z_t: torch.Tensor, t: int, prompts: list[str]) -> torch.Tensor:
    tt = torch.full((z_t.shape[0],), t, dtype=torch.long, device=z_t.device)
    out = fn(z_t, tt, prompts)
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"{which} returned {type(out).__name__}, expected a tensor")
    if tuple(out.shape) != tuple(z_t.shape):
        raise ValueError(f"{which} returned shape {tuple(out.shape)} for z_t of shape {tuple(z_t.shape)}")
    if not torch.isfinite(out).all():
        raise ValueError(f"{which} returned NaN or inf at timestep {t}")
    return out


def lfd_breakdown(
    base_eps: EpsFn,
    custom_eps: EpsFn,
    z0: torch.Tensor,
    prompts: Sequence[str],
    alphas_cumprod: Any,
    timesteps: Iterable[int],
    *,
    weighting: str = "eps",
    seed: int = 0,
    batch_size: int = 16,
    row_keys: Sequence[str] | None = None,
) -> LFDResult:
    """LFD with per-timestep and per-prompt means. Arguments as :func:`latent_fisher_divergence`."""
    z0, prompt_list, ac, ts = _check_inputs(z0, prompts, alphas_cumprod, timesteps, weighting, batch_size)
    keys = _check_row_keys(row_keys, prompt_list)
    n = z0.shape[0]
    dim = math.prod(z0.shape[1:])
    terms = torch.zeros((len(ts), n), dtype=torch.float64)
    z0_d = z0.detach()
    for ti, t in enumerate(ts):
        abar = float(ac[t])
        sigma = math.sqrt(1.0 - abar)
        weight = 1.0 if weighting == "eps" else 1.0 / (sigma * sigma)
        for start in range(0, n, batch_size):
            rows = slice(start, min(start + batch_size, n))
            chunk_prompts = prompt_list[rows]
            chunk_keys = None if keys is None else keys[rows]
            xi = paired_noise(seed, t, chunk_prompts, z0_d[rows], chunk_keys).to(z0.device, z0.dtype)
            z_t = math.sqrt(abar) * z0_d[rows] + sigma * xi
            eb = _predict(base_eps, "base_eps", z_t, t, chunk_prompts)
            ec = _predict(custom_eps, "custom_eps", z_t, t, chunk_prompts)
            diff = ec.detach().to(torch.float64) - eb.detach().to(torch.float64)
            terms[ti, rows] = weight * diff.flatten(1).pow(2).sum(dim=1).cpu() / dim
    per_t = {t: float(terms[i].mean()) for i, t in enumerate(ts)}
    per_prompt: dict[str, float] = {}
    for p in sorted(set(prompt_list)):
        idx = [i for i, q in enumerate(prompt_list) if q == p]
        per_prompt[p] = float(terms[:, idx].mean())
    return LFDResult(
        value=float(terms.mean()),
        per_timestep=per_t,
        per_prompt=per_prompt,
        weighting=weighting,
        n_samples=n,
        timesteps=ts,
        terms=terms,
    )


def latent_fisher_divergence(
    base_eps: EpsFn,
    custom_eps: EpsFn,
    z0: torch.Tensor,
    prompts: Sequence[str],
    alphas_cumprod: Any,
    timesteps: Iterable[int],
    *,
    weighting: str = "eps",
    seed: int = 0,
    batch_size: int = 16,
    row_keys: Sequence[str] | None = None,
) -> float:
    """Latent Fisher Divergence between a base and a customized noise predictor (SPEC §2.1).

    Args:
        base_eps, custom_eps: ``(z_t [B,...], t LongTensor [B], prompts list[str]) -> eps [B,...]``,
            conditional predictions (no classifier-free guidance).
        z0: base-model samples, Tensor [N, ...].
        prompts: N strings, the prompt each z0 row belongs to.
        alphas_cumprod: 1-D tensor indexed by timestep.
        timesteps: ints in [0, len(alphas_cumprod) - 1], no duplicates.
        weighting: ``"eps"`` (w = 1, training-loss units) or ``"score"`` (w = 1/sigma_t^2).
        seed: seeds the paired noise (see module docstring).
        batch_size: rows per predictor call; never changes the result beyond the predictors' own
            batch-dependence.
        row_keys: optional, one string per row naming its base sample (e.g. its generation seed); seeds
            the paired noise by (prompt, key) instead of by z0's bytes, so the noise draw does not depend
            on how a machine's kernels rounded z0. (prompt, key) pairs must be unique.

    Returns:
        The mean of w(t)·||eps_custom - eps_base||^2/D over all (t, n), as a Python float
        (accumulated in float64).

    Raises:
        ValueError: shape mismatch, empty set, NaN input or prediction, unknown weighting, a timestep
            outside the schedule, duplicated timesteps, a bad batch size.
    """
    return lfd_breakdown(
        base_eps,
        custom_eps,
        z0,
        prompts,
        alphas_cumprod,
        timesteps,
        weighting=weighting,
        seed=seed,
        batch_size=batch_size,
        row_keys=row_keys,
    ).value


class PredictionCache:
    """Memoises a noise predictor row by row, keyed by (t, prompt, z_t bytes).

    Wrap the base model's predictor once per suite: because paired noise depends only on each row's
    own inputs, every method's LFD evaluation asks for the same (z_t, t, prompt) rows and hits the
    cache. ``calls`` counts rows sent to the wrapped predictor; ``state_dict``/``load_state_dict``
    persist the cache.
    """

    def __init__(self, fn: EpsFn | None = None) -> None:
        self.fn = fn
        self.store: dict[str, torch.Tensor] = {}
        self.calls = 0

    @staticmethod
    def key(z_t_row: torch.Tensor, t: int, prompt: str) -> str:
        h = hashlib.sha256(f"{t}|{prompt}|".encode())
        h.update(z_t_row.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        return h.hexdigest()

    def __call__(self, z_t: torch.Tensor, t: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        keys = [self.key(z_t[i], int(t[i]), prompts[i]) for i in range(z_t.shape[0])]
        missing = [i for i, k in enumerate(keys) if k not in self.store]
        if missing:
            if self.fn is None:
                raise KeyError(f"{len(missing)} rows are not cached and no predictor was given")
            idx = torch.tensor(missing, device=z_t.device)
            out = self.fn(z_t[idx], t[idx], [prompts[i] for i in missing])
            self.calls += len(missing)
            for j, i in enumerate(missing):
                self.store[keys[i]] = out[j].detach().to("cpu").clone()
        return torch.stack([self.store[k] for k in keys]).to(device=z_t.device, dtype=z_t.dtype)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.store)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.store.update(state)


@dataclass(frozen=True)
class LFDReference:
    """Everything about the base model that one LFD prompt set needs (the ``lfd_reference`` input).

    Attributes:
        z0: base-model samples [N, ...]; prompts: the prompt of each row.
        base_eps: the base model's predictor (usually a :class:`PredictionCache` of its predictions).
        alphas_cumprod, timesteps, seed, batch_size, weighting, row_keys: as
            :func:`latent_fisher_divergence`.
    """

    z0: torch.Tensor
    prompts: Sequence[str]
    base_eps: EpsFn
    alphas_cumprod: Any
    timesteps: Sequence[int]
    seed: int = 0
    batch_size: int = 16
    weighting: str = "eps"
    row_keys: Sequence[str] | None = None


def lfd_metric(custom_eps: EpsFn, lfd_reference: LFDReference, prompt_set: str = "lfd") -> MetricValue:
    """``lfd@2`` / ``lfd_class@2`` (the compute function their specs name): LFD of ``custom_eps`` against
    the reference's base predictions; the row's extra holds the per-timestep means, the weighting and the
    Monte-Carlo standard error ``se`` (:func:`monte_carlo_se`).
    ``prompt_set`` only names which reference the harness passed."""
    ref = lfd_reference
    res = lfd_breakdown(
        ref.base_eps,
        custom_eps,
        ref.z0,
        ref.prompts,
        ref.alphas_cumprod,
        ref.timesteps,
        weighting=ref.weighting,
        seed=ref.seed,
        batch_size=ref.batch_size,
        row_keys=ref.row_keys,
    )
    extra = {
        "per_timestep": {str(t): v for t, v in res.per_timestep.items()},
        "weighting": res.weighting,
        "se": monte_carlo_se(res),
        "se_prompt": prompt_se(res, ref.prompts),
    }
    return MetricValue(res.value, res.n_samples, extra)


def prompt_se(result: LFDResult, prompts: Sequence[str]) -> float | None:
    """The standard error of an LFD value with the prompt as the unit: each base sample's mean over
    timesteps, totalled per prompt, and the cluster-robust standard error of their mean
    (:func:`metrics.clustered_se.cluster_robust_se`). It reads the value as an estimate for other
    non-concept prompts like these, where :func:`monte_carlo_se` holds the prompt set fixed. None for
    fewer than two prompts."""
    from metrics.clustered_se import cluster_robust_se

    if result.terms is None:
        return None
    per_row = result.terms.mean(dim=0).numpy()
    if len(prompts) != per_row.shape[0]:
        raise ValueError(f"prompts has {len(prompts)} entries but the result has {per_row.shape[0]} rows")
    groups = sorted(set(prompts))
    if len(groups) < 2:
        return None
    index = {p: i for i, p in enumerate(groups)}
    sums = np.zeros(len(groups))
    counts = np.zeros(len(groups))
    for value, p in zip(per_row, prompts, strict=True):
        sums[index[p]] += value
        counts[index[p]] += 1
    return cluster_robust_se(sums, counts)


def monte_carlo_se(result: LFDResult) -> float:
    """The Monte-Carlo standard error of an LFD value: the standard deviation over base samples of each
    sample's mean over timesteps, divided by sqrt(N) (0 for one sample or identical terms)."""
    per_row = result.terms.mean(dim=0) if result.terms is not None else None
    if per_row is None or per_row.numel() < 2:
        return 0.0
    return float(per_row.std(unbiased=True) / math.sqrt(per_row.numel()))
