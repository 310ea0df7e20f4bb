"""LFD's weighting, chosen on the tuning concepts only (issue 24, item 2), against a damage oracle with power
(item 1).

The paper gives LFD no weighting formula; ``lfd@2`` is the ε-MSE (w = 1) over 10 evenly spaced timesteps.
This study compares weightings on the suite's *tuning* concepts (``toy-tuning``), never on the evaluated
ones, with the rule below fixed in this file (and docs/DECISIONS.md) before it was first run.

Pairs: the six weight-tuning built-ins (:data:`METHODS`) at the learning rate the tuning protocol chose for
each, at every rung of the protocol's ladder (its toy budget's steps × ¼, ½, 1, 2, 4), on both tuning
concepts: 6 × 5 × 2 = 60 (run, concept) pairs whose fits are the tuning sweep's own (cached). None of these
methods is zero by construction on non-concept prompts; a pair whose LFD is exactly 0 would be left out and
counted.

Damage (the oracle grades, it never measures): the drop of the oracle's prompt accuracy (share of the
attributes a prompt names that the oracle reads back) from the base model to the customized model, on
:data:`N_PROMPTS` non-concept captions drawn from the toy world (held-in combinations, no scene with the
concept's shape) × :data:`DAMAGE_SEEDS`, paired by prompt and seed; pooled over attributes and per
attribute. Its standard error takes the prompt as the unit (seeds averaged within a prompt).

LFD: per-timestep terms ``||ε_custom − ε_base||² / D`` (ε-weighted) on the suite's LFD samples and paired
noise, on the union of the 5-, 10- and 20-point grids; every candidate is a reweighting and a subset of
those terms:

- weighting ``w(t)``: ``eps`` (1, today's), ``score`` (1/σ²), ``snr`` (ᾱ/σ², the signal-to-noise ratio),
  ``sigma2`` (σ² = 1/(1 + SNR): the high-noise end, where the toy world's shape, colour and background are
  decided);
- range: ``all``, ``low`` (t < 500), ``high`` (t ≥ 500);
- count: the 5-, 10- or 20-point grid (then restricted to the range).

The rule (:func:`choose`): every candidate's Spearman ρ with the pooled damage over the pairs, pooled over
both concepts. The winner is the candidate with the highest pooled ρ (ties: fewer timesteps, then the
order above). It replaces today's (``eps``, ``all``, 10) only if its pooled ρ exceeds today's by at least
:data:`MARGIN` and its within-concept ρ (mean of the two concepts') is not below today's; otherwise today's
stays. A winner that differs would ship as a new metric version, today's kept.

Command line::

    python -m benchmark.toy.lfd_weighting --out docs/validity   # lfd_weighting.{json,md}
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.toy.damage import (
    DAMAGE_ATTRS,
    DAMAGE_SEEDS,
    N_PROMPTS,
    accuracy_table,
    damage_prompts,
    drops,
    readings,
)

METHODS = ("dreambooth", "dreambooth-lora", "dora", "lokr", "oft", "custom-diffusion")
WEIGHTINGS = ("eps", "score", "snr", "sigma2")
RANGES = ("all", "low", "high")
COUNTS = (5, 10, 20)
SPLIT_T = 500
CURRENT = ("eps", "all", 10)
MARGIN = 0.10


def weight(kind: str, abar: float) -> float:
    """``w(t)`` of a weighting, from ``ᾱ_t`` (σ² = 1 − ᾱ)."""
    sigma2 = 1.0 - abar
    return {"eps": 1.0, "score": 1.0 / sigma2, "snr": abar / sigma2, "sigma2": sigma2}[kind]


def grids(num_train_timesteps: int = 1000) -> dict[int, list[int]]:
    """The evenly spaced grids of each count (``metrics.lfd.default_timesteps``)."""
    from metrics.lfd import default_timesteps

    return {n: default_timesteps(num_train_timesteps, n) for n in COUNTS}


def candidates() -> list[tuple[str, str, int]]:
    """Every (weighting, range, count), in the rule's tie order."""
    return [(w, r, n) for w in WEIGHTINGS for r in RANGES for n in COUNTS]


def candidate_timesteps(rng: str, count: int, grid: Mapping[int, Sequence[int]]) -> list[int]:
    ts = list(grid[count])
    if rng == "low":
        return [t for t in ts if t < SPLIT_T]
    if rng == "high":
        return [t for t in ts if t >= SPLIT_T]
    return ts


def candidate_value(
    per_t: Mapping[int, float],
    alphas: Sequence[float],
    cand: tuple[str, str, int],
    grid: Mapping[int, Sequence[int]],
) -> float:
    """A candidate's LFD from the ε-weighted per-timestep means: mean over its timesteps of w(t)·term(t)."""
    kind, rng, count = cand
    ts = candidate_timesteps(rng, count, grid)
    return float(np.mean([weight(kind, float(alphas[t])) * per_t[t] for t in ts]))


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    from scipy.stats import spearmanr

    if len(x) < 3 or np.ptp(np.asarray(x, dtype=float)) == 0 or np.ptp(np.asarray(y, dtype=float)) == 0:
        return float("nan")  # undefined for a constant input
    return float(spearmanr(x, y).statistic)


def agreement(pairs: Sequence[Mapping[str, Any]], value: str, damage: str = "drop") -> dict[str, float]:
    """ρ(value, damage) pooled, within each concept (and their mean), and at method level (per method: the
    mean over its rungs and concepts)."""
    out = {"pooled": spearman([p[value] for p in pairs], [p[damage] for p in pairs])}
    within = []
    for concept in sorted({p["concept"] for p in pairs}):
        sub = [p for p in pairs if p["concept"] == concept]
        out[f"within:{concept}"] = spearman([p[value] for p in sub], [p[damage] for p in sub])
        within.append(out[f"within:{concept}"])
    out["within"] = float(np.mean(within))
    methods = sorted({p["method"] for p in pairs})
    means = [
        (
            np.mean([p[value] for p in pairs if p["method"] == m]),
            np.mean([p[damage] for p in pairs if p["method"] == m]),
        )
        for m in methods
    ]
    out["method_level"] = spearman([a for a, _ in means], [b for _, b in means])
    # a diagnostic, not part of the rule: ρ over one method's rungs and concepts, per method
    for m in methods:
        sub = [p for p in pairs if p["method"] == m]
        out[f"method:{m}"] = spearman([p[value] for p in sub], [p[damage] for p in sub])
    out["within_method"] = float(np.mean([out[f"method:{m}"] for m in methods]))
    return out


def choose(table: Mapping[tuple[str, str, int], Mapping[str, float]]) -> dict[str, Any]:
    """The rule (module docstring) applied to ``table[candidate] = agreement(...)``."""
    order = candidates()
    best = max(order, key=lambda c: (table[c]["pooled"], -c[2], -order.index(c)))
    now = table[CURRENT]
    switch = (
        best != CURRENT
        and table[best]["pooled"] >= now["pooled"] + MARGIN
        and table[best]["within"] >= now["within"]
    )
    return {
        "best": list(best),
        "current": list(CURRENT),
        "ships": list(best if switch else CURRENT),
        "switch": switch,
    }


# ------------------------------------------------------------------------------------------- measuring


def measure(cache: Path, out: Path, progress: bool = False) -> dict[str, Any]:
    """Every (method, rung, concept) pair's per-timestep LFD terms and damage (the sweep's cached fits; new
    generations for the damage oracle). Writes ``out/lfd_weighting_pairs.json`` after every pair (a killed
    run resumes from it)."""
    from baselines import load_method
    from benchmark.io import atomic_write_json
    from benchmark.settings import settings_for
    from benchmark.stages import base_samples, lfd_prompt_sets, lfd_row_keys, load_customized, load_tensor
    from benchmark.toy.assets import oracle_checkpoint
    from benchmark.toy.oracle import load_oracle
    from benchmark.toy.suite import concept_config
    from benchmark.toy.tuning import TUNING_SUITE, rate_context, sweep_budget
    from metrics.lfd import PredictionCache, lfd_breakdown

    oracle = load_oracle(oracle_checkpoint())
    settings = settings_for(TUNING_SUITE)
    grid = grids()
    union = sorted({t for ts in grid.values() for t in ts})
    partial = out / "lfd_weighting_pairs.json"
    done: dict[str, Any] = json.loads(partial.read_text()) if partial.is_file() else {"pairs": [], "base": {}}
    done["grids"] = {str(k): v for k, v in grid.items()}
    seen = {(p["method"], p["steps"], p["concept"]) for p in done["pairs"]}
    base_eps: dict[str, Any] = {}

    def oracle_readings(pipe: Any, prompts: list[str]) -> list[dict[str, str]]:
        return readings(oracle, pipe, prompts, settings.sampler_kwargs())

    for name in METHODS:
        handle = load_method(name)
        lr = float(settings.method_overrides[name]["lr"])  # the protocol's choice
        _, _, ladder = sweep_budget(handle, cache, settings)
        ctx = rate_context(handle, lr, cache, settings, ladder=ladder)
        base_pipe = ctx.base_pipeline()
        done["alphas_cumprod"] = [float(a) for a in base_pipe.alphas_cumprod]
        for concept in ctx.suite.concepts:
            prompts = damage_prompts(concept_config(ctx.suite, concept.id)["shape"])
            rows = [p for p in prompts for _ in DAMAGE_SEEDS]
            if concept.id not in done["base"]:
                done["base"][concept.id] = accuracy_table(oracle_readings(base_pipe, prompts), rows).tolist()
            base_acc = np.asarray(done["base"][concept.id], dtype=float)
            lfd_prompts = lfd_prompt_sets(ctx, concept)["lfd"]
            samples, _ = base_samples(ctx, lfd_prompts)
            z0 = load_tensor(samples / "z0.safetensors")
            lfd_rows = json.loads((samples / "prompts.json").read_text())
            base_eps.setdefault(concept.id, PredictionCache(base_pipe.eps))
            for steps in ladder:
                if (name, steps, concept.id) in seen:
                    continue
                pipe, _ = load_customized(ctx, handle.with_steps(steps), concept)
                res = lfd_breakdown(
                    base_eps[concept.id],
                    pipe.eps,
                    z0,
                    lfd_rows,
                    base_pipe.alphas_cumprod,
                    union,
                    seed=settings.lfd_seed,
                    batch_size=settings.lfd_batch_size,
                    row_keys=lfd_row_keys(ctx, lfd_prompts),
                )
                run_acc = accuracy_table(oracle_readings(pipe, prompts), rows)
                pair = {
                    "method": name,
                    "lr": lr,
                    "steps": steps,
                    "rung": steps / ladder[2],  # of the toy budget's steps, as the sweep's ladder
                    "tuned": steps == int(settings.method_overrides[name]["steps"]),
                    "concept": concept.id,
                    "per_t": {str(t): v for t, v in res.per_timestep.items()},
                    **drops(base_acc, run_acc, len(prompts)),
                }
                done["pairs"].append(pair)
                atomic_write_json(partial, done)
                if progress:
                    print(
                        f"{name} {steps} {concept.id}: drop {pair['drop']:+.3f} ± {pair['drop_se']:.3f}",
                        flush=True,
                    )
    return done


# ------------------------------------------------------------------------------------------- analysis


def analyse(done: Mapping[str, Any]) -> dict[str, Any]:
    """Every candidate's agreement with the damage, the rule's choice, the damage oracle's power, and the
    per-attribute agreement of today's weighting and the winner."""
    grid = {int(k): v for k, v in done["grids"].items()}
    alphas = done["alphas_cumprod"]
    pairs = [dict(p) for p in done["pairs"]]
    for p in pairs:
        per_t = {int(t): v for t, v in p["per_t"].items()}
        for cand in candidates():
            p["|".join(map(str, cand))] = candidate_value(per_t, alphas, cand, grid)
    zeros = [p for p in pairs if p["|".join(map(str, CURRENT))] == 0.0]
    pairs = [p for p in pairs if p not in zeros]
    table = {cand: agreement(pairs, "|".join(map(str, cand))) for cand in candidates()}
    choice = choose(table)
    at_budget = [p for p in pairs if p["tuned"]]
    method_means = [np.mean([p["drop"] for p in at_budget if p["method"] == m]) for m in METHODS]
    power = {
        "prompts": N_PROMPTS,
        "seeds": len(DAMAGE_SEEDS),
        "images_per_pair": N_PROMPTS * len(DAMAGE_SEEDS),
        "median_se": float(np.median([p["drop_se"] for p in pairs])),
        "max_se": float(np.max([p["drop_se"] for p in pairs])),
        "spread_methods_at_budget_sd": float(np.std(method_means, ddof=1)),
        "spread_pairs_sd": float(np.std([p["drop"] for p in pairs], ddof=1)),
    }
    power["se_below_quarter_spread"] = bool(power["median_se"] < power["spread_methods_at_budget_sd"] / 4)
    per_attr = {}
    for cand in {tuple(choice["best"]), CURRENT}:
        key = "|".join(map(str, cand))
        per_attr[key] = {k: agreement(pairs, key, f"drop_{k}") for k in DAMAGE_ATTRS}
    return {
        "n_pairs": len(pairs),
        "structural_zeros_left_out": len(zeros),
        "table": {"|".join(map(str, c)): v for c, v in table.items()},
        "choice": choice,
        "power": power,
        "per_attribute": per_attr,
        "pairs": [
            {k: p[k] for k in ("method", "lr", "steps", "rung", "tuned", "concept", "drop", "drop_se", "acc")}
            | {f"drop_{k}": p[f"drop_{k}"] for k in DAMAGE_ATTRS}
            | {"lfd_current": p["|".join(map(str, CURRENT))]}
            for p in pairs
        ],
    }


def render(result: Mapping[str, Any], command: str) -> str:
    """docs/validity/lfd_weighting.md."""
    from leaderboard.markdown import table_lines

    pw, ch = result["power"], result["choice"]
    out = [
        "# LFD weighting study on the tuning concepts",
        "",
        f"_Generated by `{command}`; the rule is in `benchmark/toy/lfd_weighting.py`, fixed before the first run._",
        "",
        f"{result['n_pairs']} (method, rung, concept) pairs on the tuning concepts (six weight-tuning methods at "
        "their tuned learning rates × five rungs × two concepts); structural zeros left out: "
        f"{result['structural_zeros_left_out']}.",
        "",
        "## Damage oracle",
        "",
        f"{pw['prompts']} non-concept captions × {pw['seeds']} seeds = {pw['images_per_pair']} images per pair and "
        f"for the base model. Standard error of a pair's drop (prompt as the unit): median {pw['median_se']:.4f}, "
        f"max {pw['max_se']:.4f}. Spread between methods (s.d. of the six methods' mean drop at the tuned "
        f"budget): {pw['spread_methods_at_budget_sd']:.4f}; over all pairs: {pw['spread_pairs_sd']:.4f}. "
        f"Median s.e. below a quarter of the spread between methods: {'yes' if pw['se_below_quarter_spread'] else 'no'}.",
        "",
        "## Candidates (Spearman ρ with the pooled drop)",
        "",
    ]
    rows = []
    for key, v in sorted(result["table"].items(), key=lambda kv: -kv[1]["pooled"]):
        w, r, n = key.split("|")
        mark = " (today's)" if key == "|".join(map(str, CURRENT)) else ""
        concepts = [k for k in v if k.startswith("within:")]
        rows.append(
            [f"{w}{mark}", r, n, f"{v['pooled']:.3f}", f"{v['within']:.3f}"]
            + [f"{v[k]:.3f}" for k in concepts]
            + [f"{v['method_level']:.3f}"]
        )
    concepts = [k.split(":", 1)[1] for k in next(iter(result["table"].values())) if k.startswith("within:")]
    out += table_lines(
        [
            "weighting",
            "timesteps",
            "count",
            "ρ pooled",
            "ρ within (mean)",
            *[f"ρ {c}" for c in concepts],
            "ρ method level",
        ],
        rows,
    )
    out += [
        "",
        "## The rule's choice",
        "",
        f"Best: {' / '.join(map(str, ch['best']))}; today's: {' / '.join(map(str, ch['current']))}. "
        + (
            "The best clears the margin and the within-concept condition: it ships as a new LFD version."
            if ch["switch"]
            else f"The best does not clear the rule (≥ {MARGIN} above today's pooled ρ and not below its "
            "within-concept ρ), so today's weighting stays."
        ),
        "",
        "## Per attribute",
        "",
    ]
    rows = []
    for key, attrs in result["per_attribute"].items():
        for k, v in attrs.items():
            rows.append(
                [
                    key.replace("|", " / "),
                    k,
                    f"{v['pooled']:.3f}",
                    f"{v['within']:.3f}",
                    f"{v['method_level']:.3f}",
                ]
            )
    out += table_lines(["candidate", "attribute", "ρ pooled", "ρ within", "ρ method level"], rows)
    now = result["table"]["|".join(map(str, CURRENT))]
    per_method = [k.split(":", 1)[1] for k in now if k.startswith("method:")]
    out += [
        "",
        "## Within one method (a diagnostic, not part of the rule)",
        "",
        "Today's weighting, ρ with the pooled drop over one method's rungs and both concepts: "
        + ", ".join(f"{m} {now[f'method:{m}']:.3f}" for m in per_method)
        + f" (mean {now['within_method']:.3f}); across the methods' means: {now['method_level']:.3f}.",
    ]
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    from benchmark.paths import checked_cache_dir

    parser = argparse.ArgumentParser(
        prog="python -m benchmark.toy.lfd_weighting", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--out", type=Path, default=Path("docs/validity"), help="where lfd_weighting.{json,md} go"
    )
    parser.add_argument(
        "--cache", type=Path, help="cache folder (default: $OVERFIT_BENCH_CACHE or the user cache dir)"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="re-analyse the measured pairs (OUT/lfd_weighting_pairs.json) without measuring anything",
    )
    args = parser.parse_args(argv)
    if args.report_only:
        saved = args.out / "lfd_weighting_pairs.json"
        if not saved.is_file():
            print(
                f"lfd_weighting: error: {saved}: no measured pairs; run without --report-only",
                file=sys.stderr,
            )
            return 2
        done = json.loads(saved.read_text(encoding="utf-8"))
    else:
        import torch

        torch.set_num_threads(args.threads)
        done = measure(checked_cache_dir(args.cache), args.out, progress=True)
    result = analyse(done)
    from benchmark.io import atomic_write_json

    atomic_write_json(args.out / "lfd_weighting.json", result, indent=1)
    (args.out / "lfd_weighting.md").write_text(
        render(result, "python -m benchmark.toy.lfd_weighting"), encoding="utf-8"
    )
    ch = result["choice"]
    print(
        f"best {ch['best']} (ρ {result['table']['|'.join(map(str, ch['best']))]['pooled']:.3f}); ships {ch['ships']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
