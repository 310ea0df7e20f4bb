"""Training seed against concept (issue 24, item 5): how much of each metric's spread is the training run's
seed, and how much is the concept.

Every trainable built-in is trained again on every toy concept at its tuned budget with a second training
seed (``fit_seed`` = :data:`SECOND_SEED`; the committed rows used 0) and scored by the same path; sampling
seeds, prompts and everything else stay. Per metric and method, with v[c, s] the value on concept c with
training seed s (two seeds), a one-way random-effects reading by moments:

- seed variance: the mean over concepts of the unbiased variance over seeds, (v[c,0] − v[c,1])² / 2;
- concept variance: the variance over concepts of the seed means, less seed variance / 2 (floored at 0);
- seed share: seed / (seed + concept).

Reported pooled over methods (mean of the components) and per method; methods whose value is 0 by
construction on a metric (structural zeros) are left out of that metric.

Command line::

    python -m benchmark.toy.seed_study --out docs/validity     # seed_study.{json,md}; trains 88 models (11 methods x 8)
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

SECOND_SEED = 1
COMMITTED = Path(__file__).resolve().parents[2] / "leaderboard" / "results" / "toy.jsonl"


def components(values: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """``values[concept] = [v_seed0, v_seed1]`` → seed and concept variance components and the seed share."""
    pairs = np.asarray([values[c] for c in sorted(values)], dtype=float)
    seed = float(np.mean(np.var(pairs, axis=1, ddof=1)))
    concept = max(0.0, float(np.var(pairs.mean(axis=1), ddof=1)) - seed / pairs.shape[1])
    total = seed + concept
    return {
        "seed_var": seed,
        "concept_var": concept,
        "seed_share": seed / total if total > 0 else float("nan"),
    }


def table(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per metric: the components per method and pooled (rows of both seeds; ``extra.fit_seed`` absent = 0)."""
    from metrics.spec import METRICS

    values: dict[tuple[str, str], dict[str, list[float]]] = {}
    for r in rows:
        if r.get("rung") not in (None, 1.0) or r["method"] in ("base", "real"):
            continue
        seed = int((r.get("extra") or {}).get("fit_seed", 0))
        cell = values.setdefault((r["metric"], r["method"]), {}).setdefault(r["concept"], [np.nan, np.nan])
        cell[0 if seed == 0 else 1] = float(r["value"])
    out: dict[str, Any] = {}
    for metric in [m for m in METRICS if any(k[0] == m for k in values)]:
        per_method = {}
        for (m, method), by_concept in sorted(values.items()):
            if m != metric:
                continue
            complete = {c: v for c, v in by_concept.items() if not np.isnan(v).any()}
            if len(complete) < 2:
                continue
            if all(v == [0.0, 0.0] for v in complete.values()) and METRICS[metric].structural_zero:
                continue  # zero by construction: no seed, no concept
            per_method[method] = components(complete)
        if not per_method:
            continue
        seed_var = float(np.mean([v["seed_var"] for v in per_method.values()]))
        concept_var = float(np.mean([v["concept_var"] for v in per_method.values()]))
        total = seed_var + concept_var
        out[metric] = {
            "pooled": {
                "seed_var": seed_var,
                "concept_var": concept_var,
                "seed_share": seed_var / total if total > 0 else float("nan"),
                "methods": len(per_method),
            },
            "methods": per_method,
        }
    return out


LFD_METRICS = ("lfd", "lfd_class")


def lfd_uncertainty(result: Mapping[str, Any], second: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per LFD metric and method, three standard deviations of one run's value, on one scale:

    - ``se``: the row's Monte-Carlo error (base samples independent, prompt set fixed), root mean square over
      the second seed's concepts;
    - ``se_prompt``: the same rows' error with the prompt as the unit (root mean square);
    - ``seed_sd``: the training seed's standard deviation, √(seed variance) of :func:`table`'s components.

    Rows without ``se_prompt`` (metric record < 4) are left out of its mean."""
    out: dict[str, Any] = {}
    for metric in LFD_METRICS:
        if metric not in result:
            continue
        per_method: dict[str, dict[str, float]] = {}
        for method, comp in result[metric]["methods"].items():
            extras = [
                r.get("extra") or {}
                for r in second
                if r["metric"] == metric and r["method"] == method and r.get("rung") in (None, 1.0)
            ]
            se = [float(e["se"]) for e in extras if e.get("se") is not None]
            sp = [float(e["se_prompt"]) for e in extras if e.get("se_prompt") is not None]
            per_method[method] = {
                "se": float(np.sqrt(np.mean(np.square(se)))) if se else float("nan"),
                "se_prompt": float(np.sqrt(np.mean(np.square(sp)))) if sp else float("nan"),
                "seed_sd": float(np.sqrt(comp["seed_var"])),
            }
        out[metric] = per_method
    return out


def render(result: Mapping[str, Any], command: str, uncertainty: Mapping[str, Any] | None = None) -> str:
    from leaderboard.markdown import table_lines

    lines = [
        "# Training seed against concept",
        "",
        f"_Generated by `{command}`: every trainable method retrained on every toy concept at its tuned "
        f"budget with training seed {SECOND_SEED} (committed rows: seed 0)._",
        "",
        "Variance components by moments over the 8 concepts × 2 training seeds, averaged over methods "
        "(structural zeros left out). Seed share = seed / (seed + concept).",
        "",
    ]
    rows = []
    for metric, part in result.items():
        p = part["pooled"]
        spread = ", ".join(f"{m} {v['seed_share']:.2f}" for m, v in part["methods"].items())
        rows.append(
            [
                metric,
                f"{p['seed_var']:.3g}",
                f"{p['concept_var']:.3g}",
                f"{p['seed_share']:.2f}",
                str(p["methods"]),
                spread,
            ]
        )
    lines += table_lines(
        ["metric", "seed variance", "concept variance", "seed share", "methods", "seed share per method"],
        rows,
    )
    if uncertainty:
        lines += [
            "",
            "## LFD: three standard deviations of one run's value",
            "",
            "Per method, root mean square over the 8 concepts: `se` (the row's Monte-Carlo error, prompt set "
            "fixed), `se_prompt` (prompt as the unit) and the training seed's standard deviation "
            "(√ seed variance above). The last column is their sum in quadrature, prompt-unit and seed.",
            "",
        ]
        urows = []
        for metric, per_method in uncertainty.items():
            for method, u in per_method.items():
                total = float(np.sqrt(u["se_prompt"] ** 2 + u["seed_sd"] ** 2))
                urows.append(
                    [
                        metric,
                        method,
                        f"{u['se']:.3g}",
                        f"{u['se_prompt']:.3g}",
                        f"{u['seed_sd']:.3g}",
                        f"{total:.3g}",
                    ]
                )
        lines += table_lines(["metric", "method", "se", "se_prompt", "seed sd", "prompt ⊕ seed"], urows)
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.toy.seed_study", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--out", type=Path, default=Path("docs/validity"), help="where seed_study.{json,md} go"
    )
    parser.add_argument(
        "--run", type=Path, default=Path("runs/toy-seed1"), help="the second seed's run folder"
    )
    parser.add_argument(
        "--cache", type=Path, help="cache folder (default: $OVERFIT_BENCH_CACHE or the user cache dir)"
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default: 2)")
    parser.add_argument("--report-only", action="store_true", help="re-read the run's rows without training")
    args = parser.parse_args(argv)
    from baselines import list_methods, load_method
    from benchmark.paths import checked_cache_dir
    from benchmark.runner import run_suite
    from benchmark.settings import settings_for

    trainable = [m for m in list_methods() if load_method(m).trains]
    if not args.report_only:
        settings = settings_for("toy").replace(fit_seed=SECOND_SEED, rungs=(1.0,))  # the tuned budget only
        run_suite(
            suite="toy",
            methods=trainable,
            concepts=None,
            settings=settings,
            run_dir=args.run,
            cache_root=checked_cache_dir(args.cache),
            progress=False,
            workers=args.workers,
        )
    second = [json.loads(x) for x in (args.run / "results.jsonl").read_text().splitlines() if x.strip()]
    for r in second:
        r.setdefault("extra", {})
        r["extra"] = {**(r["extra"] or {}), "fit_seed": SECOND_SEED}
    first = [json.loads(x) for x in COMMITTED.read_text().splitlines() if x.strip()]
    result = table(
        [r for r in first if r["method"] in trainable] + [r for r in second if r["method"] in trainable]
    )
    from benchmark.io import atomic_write_json

    uncertainty = lfd_uncertainty(result, second)
    atomic_write_json(args.out / "seed_study.json", {**result, "lfd_uncertainty": uncertainty}, indent=1)
    text = render(result, "python -m benchmark.toy.seed_study", uncertainty)
    (args.out / "seed_study.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
