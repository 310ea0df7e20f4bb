"""The validity study's report: the rank agreements, controls, ladder and populations read from the study's
output (:func:`benchmark.toy.validity.run_study`), the generated block of docs/VALIDITY.md, its figure and
``docs/validity/validity.json`` (:func:`write_outputs`). Reads only the study's output, never a model or
the oracle, so ``python -m benchmark.toy.validity --report-only`` re-renders without running anything."""

from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.toy.agreement import spearman
from benchmark.toy.validity_design import ATTRS, COPY, LADDER, PROBE_SCENE, TUNED_RUNGS

BEGIN = "<!-- validity:begin -->"
END = "<!-- validity:end -->"


def _mean(xs: Sequence[float]) -> float:
    return float(np.mean(xs)) if len(xs) else float("nan")


def _by_label(runs: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in runs:
        out[r["label"]].append(r)
    return dict(out)


def _avg(items: Sequence[Mapping[str, Any]], part: str, key: str) -> float:
    vals = [float(r[part].get(key, float("nan"))) for r in items]
    vals = [v for v in vals if not math.isnan(v)]
    return _mean(vals)


def _f(x: float, digits: int = 3) -> str:
    return "—" if isinstance(x, float) and math.isnan(x) else f"{x:.{digits}f}"


AGREEMENT: tuple[tuple[str, str, str, str], ...] = (
    # metric, oracle measure, expected sign, what it checks
    ("subject_dino", "identity", "+", "subject DINO vs oracle concept identity (shape and pattern)"),
    ("subject_clip_i", "identity", "+", "subject CLIP-I vs oracle concept identity"),
    ("clip_i", "identity", "+", "CLIP-I (full image) vs oracle concept identity"),
    ("dino", "identity", "+", "DINO (full image) vs oracle concept identity"),
    ("clip_t", "fidelity", "+", "CLIP-T vs oracle prompt fidelity"),
    ("w2", "train_background", "+", "W2 vs share of images stuck on a training background"),
    ("w2", "background_acc", "-", "W2 vs oracle accuracy of the asked new background"),
    ("leakage", "train_background", "+", "leakage vs share of images stuck on a training background"),
    ("leakage", "background_acc", "-", "leakage vs oracle accuracy of the asked new background"),
    ("mmd_base", "train_background", "+", "MMD² from base vs share of images stuck on a training background"),
    (
        "heldout_gap",
        "train_background",
        "+",
        "held-out gap vs share of images stuck on a training background",
    ),
    ("layout", "train_position", "+", "layout vs share of subjects at the training images' position"),
    ("layout", "position_acc", "-", "layout vs oracle accuracy of the asked position"),
    ("collapse", "train_background", "+", "collapse vs share of images stuck on a training background"),
    ("collapse", "background_acc", "-", "collapse vs oracle accuracy of the asked new background"),
    ("lfd", "nonconcept_drop", "+", "LFD vs drop of oracle accuracy on non-concept prompts (base − method)"),
    *(
        (
            "lfd",
            f"nonconcept_drop_{k}",
            "+",
            f"LFD vs drop of the oracle's {k} accuracy on non-concept prompts",
        )
        for k in ATTRS
    ),
)
# fidelity metrics whose independence from the training background is read (partial ρ given identity)
CONTEXT_FREE = ("subject_dino", "subject_clip_i", "clip_i", "dino")


def _oracle_reader(runs: Sequence[Mapping[str, Any]], measure: str) -> Any:
    if not measure.startswith("nonconcept_drop"):
        return lambda r: float(r["oracle"][measure])
    attr = measure.removeprefix("nonconcept_drop")
    key = f"nonconcept{attr}_acc"  # nonconcept_acc, nonconcept_shape_acc, ...
    base_nc = {r["concept"]: r["oracle"].get(key, float("nan")) for r in runs if r["label"] == "base"}
    return lambda r: (
        float(base_nc.get(r["concept"], float("nan"))) - float(r["oracle"].get(key, float("nan")))
    )


def damage_power(runs: Sequence[Mapping[str, Any]], methods: Sequence[str]) -> dict[str, Any]:
    """The damage oracle's power: each (run, concept)'s pooled-drop standard error (the prompt as the unit,
    paired with the base model's images of the same captions and seeds) against the spread between the
    methods' mean drops at their tuned budgets (issue 24's target: s.e. below a quarter of it)."""
    from benchmark.toy.damage import drop_se

    base = {r["concept"]: r["oracle"] for r in runs if r["label"] == "base"}
    ses = [
        drop_se(base[r["concept"]]["nonconcept_per_prompt"], r["oracle"]["nonconcept_per_prompt"])
        for r in runs
        if r["label"] != "base" and "nonconcept_per_prompt" in r["oracle"] and r["concept"] in base
    ]
    reader = _oracle_reader(runs, "nonconcept_drop")
    means = [_mean([reader(r) for r in runs if r["label"] == m]) for m in methods if m != "base"]
    means = [m for m in means if not math.isnan(m)]
    if not ses or len(means) < 2:
        return {}
    spread = float(np.std(means, ddof=1))
    return {
        "median_se": float(np.median(ses)),
        "max_se": float(np.max(ses)),
        "spread_methods_sd": spread,
        "n_runs": len(ses),
        "n_methods": len(means),
        "met": bool(np.median(ses) < spread / 4),
    }


def agreement(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Spearman ρ of each metric with its oracle counterpart, read every way
    (:func:`benchmark.toy.agreement.agreement_row`); ``rho`` and ``n`` are the pooled ρ over every run."""
    from benchmark.toy.agreement import agreement_row

    out = []
    for metric, measure, sign, what in AGREEMENT:
        row = agreement_row(runs, metric, _oracle_reader(runs, measure))
        out.append(
            {
                "metric": metric,
                "oracle": measure,
                "expected": sign,
                "rho": row["all"]["pooled"],
                "n": row["all"]["n"],
                "what": what,
                "ways": row,
            }
        )
    return out


def context_independence(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Partial Spearman ρ of each fidelity metric with the training-background share given the oracle's
    identity, over the runs that are not endpoints (a fidelity that copying cannot raise: near 0)."""
    from benchmark.toy.agreement import is_endpoint, partial_spearman

    out = []
    for metric in CONTEXT_FREE:
        kept = [r for r in runs if metric in r["metrics"] and not is_endpoint(str(r["label"]))]
        x = [float(r["metrics"][metric]) for r in kept]
        y = [float(r["oracle"]["train_background"]) for r in kept]
        z = [float(r["oracle"]["identity"]) for r in kept]
        out.append(
            {
                "metric": metric,
                "partial_rho": partial_spearman(x, y, z) if kept else float("nan"),
                "n": len(kept),
            }
        )
    return out


NO_COLLAPSE_MARGIN = 1 / 32  # one image of the 32 a concept gets


def learning_independence(runs: Sequence[Mapping[str, Any]], metric: str = "collapse") -> dict[str, Any]:
    """Spearman ρ of ``metric`` with the oracle's identity among the runs (not endpoints) that do not
    collapse: ``rho`` over those whose training-background share is 0 (issue 23's reading), ``rho_margin``
    over those at most the base model's share for the concept plus one image in 32. Learning the
    subject's look should move neither."""
    from benchmark.toy.agreement import is_endpoint

    base_tb = {r["concept"]: r["oracle"]["train_background"] for r in runs if r["label"] == "base"}
    kept = [r for r in runs if metric in r["metrics"] and not is_endpoint(str(r["label"]))]
    zero = [r for r in kept if float(r["oracle"]["train_background"]) == 0.0]
    margin = [
        r
        for r in kept
        if r["oracle"]["train_background"] <= base_tb.get(r["concept"], 0.0) + NO_COLLAPSE_MARGIN
    ]

    def rho(part: list[Mapping[str, Any]]) -> float:
        xs = [float(r["metrics"][metric]) for r in part]
        ys = [float(r["oracle"]["identity"]) for r in part]
        return spearman(xs, ys) if len(xs) >= 3 else float("nan")

    return {"rho": rho(zero), "n": len(zero), "rho_margin": rho(margin), "n_margin": len(margin)}


# concept-specific measures: the oracle share each should follow, read with identity partialled out
COLLAPSE_COUNTERPART = {
    "leakage": "train_background",
    "w2": "train_background",
    "mmd_base": "train_background",
    "heldout_gap": "train_background",
    "collapse": "train_background",
    "layout": "train_position",
}


def collapse_given_identity(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Partial Spearman ρ of each concept-specific measure with its oracle share given the oracle's
    identity, over the runs that are not endpoints (a measure learning cannot fake: high)."""
    from benchmark.toy.agreement import is_endpoint, partial_spearman

    out = []
    for metric, share in COLLAPSE_COUNTERPART.items():
        kept = [r for r in runs if metric in r["metrics"] and not is_endpoint(str(r["label"]))]
        x = [float(r["metrics"][metric]) for r in kept]
        y = [float(r["oracle"][share]) for r in kept if share in r["oracle"]]
        z = [float(r["oracle"]["identity"]) for r in kept]
        ok = kept and len(y) == len(x)
        out.append(
            {
                "metric": metric,
                "share": share,
                "partial_rho": partial_spearman(x, y, z) if ok else float("nan"),
                "n": len(kept),
            }
        )
    return out


def render_report(study: Mapping[str, Any], command: str) -> str:
    """The generated part of docs/VALIDITY.md (tables from :func:`run_study`'s output)."""
    from leaderboard.markdown import table_lines

    lines = [f"_Generated by `{command}`; do not edit between the markers._", ""]
    q = study["base_quality"]
    lines += ["### 1. Base-model quality (oracle accuracy on base generations)", ""]
    lines += table_lines(
        ["split", "n", "shape", "colour", "background", "position"],
        [
            [split.replace("_", "-"), str(int(q[split]["n"])), *(f"{100 * q[split][k]:.1f}%" for k in ATTRS)]
            for split in ("held_out", "held_in")
        ],
    )
    probe = q.get("position_probe")
    if probe is not None:
        lines += [
            "",
            f'Position probe ({int(probe["seeds"])} seeds × the five positions, "{PROBE_SCENE}"): '
            f"asked position read {100 * probe['accuracy']:.1f}%; the read position is the same for all "
            f"five prompts on {100 * probe['same_for_all_prompts']:.0f}% of seeds (100%: the starting "
            "noise, not the caption, sets the position).",
        ]
    reach = q.get("text_reachability") or {}
    if reach:
        lines += [
            "",
            'Recombination concepts said in words to the base model ("a red heart with stripes", 16 seeds): '
            "the oracle reads the concept's shape and pattern on "
            + ", ".join(f"{cid} {100 * v:.0f}%" for cid, v in reach.items())
            + " of the images.",
        ]
    oracle_eval = study.get("oracle_eval") or {}
    held = oracle_eval.get("held_out") if isinstance(oracle_eval, Mapping) else None
    if isinstance(held, Mapping):
        lines += [
            "",
            "The oracle on freshly rendered scenes of held-out combinations: "
            + ", ".join(f"{k} {100 * float(v):.1f}%" for k, v in held.items() if k != "n")
            + ".",
        ]
    groups = _by_label(study["runs"])
    label_over = f"{study['study_method']} ×{study['factor']}"
    budgets = study.get("budgets") or {}
    lines += [
        "",
        "### Identity of every run (oracle: share of images showing the concept's shape and pattern)",
        "",
    ]
    rows = []
    for label, items in groups.items():
        recomb = [r for r in items if r.get("tier") == "recombination"]
        novel = [r for r in items if r.get("tier") == "novel"]
        b = budgets.get(label, {})
        budget = f"{b['lr']:g}, {b['steps']}" if "lr" in b and "steps" in b else "—"
        rows.append(
            [
                label,
                budget,
                _f(_avg(items, "oracle", "identity")),
                _f(_avg(recomb, "oracle", "identity")),
                _f(_avg(novel, "oracle", "identity")),
            ]
        )
    lines += table_lines(["run", "lr, steps", "all concepts", "recombination", "novel"], rows)
    tuned = {r["concept"]: r["oracle"]["train_background"] for r in groups.get(study["study_method"], [])}
    over = {r["concept"]: r["oracle"]["train_background"] for r in groups.get(label_over, [])}
    more = sum(1 for c in tuned if c in over and over[c] > tuned[c])
    lines += [
        "",
        f"Over-training shows on {more} of {len(tuned)} concepts: {label_over}'s training-background share "
        f"exceeds {study['study_method']}'s there.",
    ]
    lines += ["", "### 2. Concept-specific overfitting (mean over concepts)", ""]
    lines += table_lines(
        [
            "run",
            "oracle: asked background shown ↑",
            "oracle: training background shown ↓",
            "oracle: asked position ↑",
            "oracle: identity ↑",
            "W2 ↓",
        ],
        [
            [
                label,
                _f(_avg(items, "oracle", "background_acc")),
                _f(_avg(items, "oracle", "train_background")),
                _f(_avg(items, "oracle", "position_acc")),
                _f(_avg(items, "oracle", "identity")),
                _f(_avg(items, "metrics", "w2")),
            ]
            for label in ("base", study["study_method"], label_over, COPY)
            for items in [groups.get(label, [])]
        ],
    )
    lines += ["", "### 3. Concept-agnostic overfitting (mean over concepts)", ""]
    lines += table_lines(
        ["run", "LFD ↓", "LFD (class prompts) ↓", "oracle accuracy on non-concept prompts ↑"],
        [
            [
                label,
                _f(_avg(items, "metrics", "lfd"), 4),
                _f(_avg(items, "metrics", "lfd_class"), 4),
                _f(_avg(items, "oracle", "nonconcept_acc")),
            ]
            for label, items in groups.items()
            if label != COPY
        ],
    )
    # the spread between methods at their tuned budgets (a rung's label is "<method> ×<rung>")
    power = damage_power(study["runs"], [label for label in budgets if " ×" not in label])
    if power:
        from benchmark.toy.damage import DAMAGE_SEEDS, N_PROMPTS

        lines += [
            "",
            f"Non-concept prompts: {N_PROMPTS} held-in captions without the concept's shape × "
            f"{len(DAMAGE_SEEDS)} seeds per run and concept (`benchmark.toy.damage`). Standard error of a "
            f"run's drop (the prompt as the unit): median {power['median_se']:.4f}, max {power['max_se']:.4f} "
            f"over {power['n_runs']} (run, concept) pairs; s.d. of the {power['n_methods']} methods' mean drops "
            f"at their tuned budgets {power['spread_methods_sd']:.4f}; median s.e. below a quarter of it: "
            f"{'yes' if power['met'] else 'no'}.",
        ]
    lines += ["", "### 4. Rank agreement (Spearman ρ over every run × rung × concept)", ""]
    lines += [
        "Pooled over (run, concept) pairs and the mean of the per-concept ρ; *all* includes the endpoints "
        "(base, copy and the rendered controls), *runs* leaves them out, *runs, no zeros* also leaves out "
        "the runs whose value is exactly 0 by construction (counted in *zeros*, never ranked).",
        "",
    ]
    rank = []
    for a in agreement(study["runs"]):
        w = a["ways"]
        cells = []
        for part in ("all", "no_endpoints", "no_endpoints_no_zeros"):
            cells += [_f(w[part]["pooled"], 2), _f(w[part]["within"], 2), str(w[part]["n"])]
        rank.append([a["metric"], a["what"], a["expected"], *cells, str(w["zeros"])])
    lines += table_lines(
        [
            "metric",
            "oracle counterpart",
            "sign",
            "all: pooled",
            "all: within",
            "n",
            "runs: pooled",
            "runs: within",
            "n",
            "runs, no zeros: pooled",
            "runs, no zeros: within",
            "n",
            "zeros",
        ],
        rank,
    )
    lines += [
        "",
        "Concept-specific measures vs oracle identity among runs (not endpoints) that do not collapse — "
        "learning alone must not move them: "
        + "; ".join(
            f"{m} ρ {_f(i['rho'], 2)} over {i['n']} runs with training-background share 0, "
            f"{_f(i['rho_margin'], 2)} over {i['n_margin']} within one image of the base model's share"
            for m in ("leakage", "heldout_gap", "layout", "mmd_base", "w2", "collapse")
            for i in [learning_independence(study["runs"], m)]
        )
        + ".",
        "",
        "Partial ρ of each concept-specific measure with its oracle share given the oracle's identity, runs "
        "only (learning cannot fake it: high): "
        + "; ".join(
            f"{c['metric']} with {c['share']} {_f(c['partial_rho'], 2)} (n {c['n']})"
            for c in collapse_given_identity(study["runs"])
        )
        + ".",
        "",
        "Partial ρ with the training-background share given the oracle's identity, runs only (a fidelity "
        "that copying cannot raise: near 0): "
        + "; ".join(
            f"{c['metric']} {_f(c['partial_rho'], 2)} (n {c['n']})"
            for c in context_independence(study["runs"])
        )
        + ".",
    ]
    lines += _population_section(study["runs"])
    lines += _control_section(study["runs"])
    ladder = ladder_labels(study)
    lines += [
        "",
        f"### 6. The over-training ladder ({', '.join(ladder)}: one training run, its rungs)",
        "",
    ]
    lad_rows = []
    for key, part in (
        ("train_background", "oracle"),
        ("identity", "oracle"),
        ("leakage", "metrics"),
        ("heldout_gap", "metrics"),
        ("layout", "metrics"),
        ("mmd_base", "metrics"),
        ("w2", "metrics"),
        ("collapse", "metrics"),
        ("subject_dino", "metrics"),
    ):
        mono = ladder_monotone(study["runs"], ladder, key, part)
        means = [_f(_avg(_by_label(study["runs"]).get(lab, []), part, key)) for lab in ladder]
        name = f"oracle: {key}" if part == "oracle" else key
        lad_rows.append([name, *means, f"{len(mono['non_decreasing'])}/{mono['concepts']}"])
    lines += table_lines(["measure", *ladder, "non-decreasing on"], lad_rows)
    lines += [
        "",
        "Per-run numbers: `docs/validity/validity.json`. Figure: `docs/validity/w2_vs_oracle.svg`.",
        "",
    ]
    return "\n".join(lines)


def ladder_labels(study: Mapping[str, Any]) -> list[str]:
    """The over-training ladder's labels, ×1 to ×factor."""
    method, factor = study["study_method"], study["factor"]
    return [f"{method} ladder ×{factor * r:g}" for r in LADDER[:-1]] + [f"{method} ×{factor}"]


def ladder_monotone(
    runs: Sequence[Mapping[str, Any]], labels: Sequence[str], key: str, part: str = "metrics"
) -> dict[str, Any]:
    """Concepts on which ``key`` never decreases along the ladder ``labels`` (every rung present)."""
    by: dict[str, dict[str, float]] = defaultdict(dict)
    for r in runs:
        if r["label"] in labels and key in r[part]:
            by[r["concept"]][r["label"]] = float(r[part][key])
    complete = {c: [v[lab] for lab in labels] for c, v in by.items() if all(lab in v for lab in labels)}
    ok = sorted(c for c, vals in complete.items() if all(b >= a for a, b in itertools.pairwise(vals)))
    return {"concepts": len(complete), "non_decreasing": ok}


CONTROL_METRICS = (
    "subject_dino",
    "subject_clip_i",
    "clip_i",
    "dino",
    "clip_t",
    "w2",
    "mmd_base",
    "leakage",
    "heldout_gap",
    "layout",
    "collapse",
)
# The concept-specific overfitting measures read against issue 23's control targets.
COLLAPSE_MEASURES = ("w2", "mmd_base", "leakage", "heldout_gap", "layout", "collapse")


def tuned_only(runs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The runs the study read until 2026-12-07: the main run at its tuned budget and the base model, the
    ladder, the copy and the rendered controls (every entry whose ``rung`` is in :data:`TUNED_RUNGS`)."""
    return [r for r in runs if r.get("rung") in TUNED_RUNGS]


def population_targets(runs: Sequence[Mapping[str, Any]]) -> list[tuple[str, float, int]]:
    """Issue 22's and 23's rank targets over ``runs`` (runs only: no endpoints), as ``(what, value, n)``."""
    from benchmark.toy.agreement import agreement_row

    out: list[tuple[str, float, int]] = []
    for metric in ("heldout_gap", "leakage"):
        row = agreement_row(runs, metric, _oracle_reader(runs, "train_background"))["no_endpoints"]
        out.append((f"{metric}: ρ with training-background share, pooled (≥ 0.8)", row["pooled"], row["n"]))
        out.append((f"{metric}: ρ with training-background share, within (≥ 0.7)", row["within"], row["n"]))
        part = next(c for c in collapse_given_identity(runs) if c["metric"] == metric)
        out.append((f"{metric}: partial ρ given identity (≥ 0.7)", part["partial_rho"], part["n"]))
        ind = learning_independence(runs, metric)
        out.append((f"{metric}: ρ with identity at share 0 (|ρ| ≤ 0.2)", ind["rho"], ind["n"]))
    for metric in ("subject_dino", "subject_clip_i"):
        row = agreement_row(runs, metric, _oracle_reader(runs, "identity"))["no_endpoints"]
        out.append((f"{metric}: ρ with identity, pooled (≥ 0.8)", row["pooled"], row["n"]))
        out.append((f"{metric}: ρ with identity, within", row["within"], row["n"]))
        part = next(c for c in context_independence(runs) if c["metric"] == metric)
        out.append(
            (
                f"{metric}: partial ρ with training-background share given identity (≤ 0.2)",
                part["partial_rho"],
                part["n"],
            )
        )
    row = agreement_row(runs, "lfd", _oracle_reader(runs, "nonconcept_drop"))
    for key in ("no_endpoints", "no_endpoints_no_zeros"):
        for way in ("pooled", "within"):
            what = "runs" if key == "no_endpoints" else "runs, no zeros"
            out.append(
                (f"lfd: ρ with the non-concept accuracy drop, {what}, {way}", row[key][way], row[key]["n"])
            )
    return out


def _population_section(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Issue 22's and 23's rank targets over every rung of the main run and over its tuned budget only."""
    from leaderboard.markdown import table_lines

    every, tuned = population_targets(runs), population_targets(tuned_only(runs))
    lines = [
        "",
        "### 4b. The rank targets over every rung and over the tuned budget only",
        "",
        "Runs only (the endpoints — base, copy, rendered controls — left out; n counts (run, concept) pairs). "
        "*Every rung*: every rung of the main run for every trainable method (the default run's ¼, ½, 1, 2×) "
        "and the DreamBooth ladder, the population of the tables above. *Tuned budget only*: the main run's "
        "rung 1 and the ladder, the population this study read until 2026-12-07.",
        "",
    ]
    rows = [
        [what, _f(a, 2), str(n_a), _f(b, 2), str(n_b)]
        for (what, a, n_a), (_, b, n_b) in zip(every, tuned, strict=True)
    ]
    return lines + table_lines(["target", "every rung", "n", "tuned budget only", "n"], rows)


def _control_section(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every metric on the rendered 2 × 2 controls, mean over concepts, and the fidelity targets."""
    from benchmark.toy.agreement import CONTROLS, collapse_targets, control_table, fidelity_targets
    from leaderboard.markdown import table_lines

    table = control_table(runs, CONTROL_METRICS)
    if not table:
        return []
    lines = [
        "",
        "### 5. The rendered controls (learned × collapsed), mean over concepts",
        "",
        "*ideal*: the concept as each prompt asks (learned, not collapsed); *copy*: the training images "
        "(learned, collapsed); *context-only*: the class noun's plain object on the training images' "
        "backgrounds and positions (collapsed, not learned); *base*: the base model (neither).",
        "",
    ]
    rows = []
    for metric, per in table.items():
        means = [_mean([v[c] for v in per.values() if c in v]) for c in CONTROLS]
        cells = [_f(m) for m in means]
        if metric in CONTEXT_FREE:
            t = fidelity_targets(per)
            verdict = (
                f"ideal ≥ 0.8 × copy on {len(t['ideal_ok'])}/{t['concepts']}; "
                f"context-only ≤ base + 0.1 × (copy − base) on {len(t['context_ok'])}/{t['concepts']}"
            )
        elif metric in COLLAPSE_MEASURES:
            t = collapse_targets(per)
            verdict = (
                f"context-only ≥ 0.7 × copy on {len(t['context_ok'])}/{t['concepts']}; ideal ≤ 0.1 × copy on "
                f"{len(t['ideal_ok'])}/{t['concepts']}; base ≤ 0.1 × copy on {len(t['base_ok'])}/{t['concepts']}; "
                f"all three on {len(t['all_ok'])}/{t['concepts']}"
            )
        else:
            verdict = ""
        rows.append([metric, *cells, verdict])
    lines += table_lines(["metric", *CONTROLS, "targets (per concept)"], rows)
    return lines


def w2_figure(study: Mapping[str, Any]) -> str:
    """An SVG scatter of W2 against the oracle's training-background share, one point per run × concept."""
    pts = [
        (float(r["metrics"]["w2"]), float(r["oracle"]["train_background"]), r["label"])
        for r in study["runs"]
        if "w2" in r["metrics"]
    ]
    labels = sorted({p[2] for p in pts})
    palette = [
        "#1f77b4",
        "#ff7f0e",
        "#2ca02c",
        "#d62728",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#7f7f7f",
        "#bcbd22",
        "#17becf",
    ]
    colour = {lab: palette[i % len(palette)] for i, lab in enumerate(labels)}
    from leaderboard.svg import Axes, AxesStyle, draw_axes

    w, h, left, bottom, top, right = 640, 400, 60, 50, 20, 170
    xmax = max((p[0] for p in pts), default=1.0) * 1.05 or 1.0
    ax = Axes(left, top, w - left - right, h - bottom - top, 0.0, xmax, 0.0, 1.0)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
    ]
    out += draw_axes(
        ax,
        [(xmax * t / 5, f"{xmax * t / 5:.2f}") for t in range(6)],
        [(t / 5, f"{t / 5:.1f}") for t in range(6)],
        "W2 (clip-slot features, vs base)",
        "oracle: share on a training background",
        title_y=h - 12,
        style=AxesStyle(frame=None, spines='stroke="black"', grid=None, tick="", title=""),
    )
    for x, y, lab in pts:
        out.append(
            f'<circle cx="{ax.px(x):.1f}" cy="{ax.py(y):.1f}" r="4" fill="{colour[lab]}" fill-opacity="0.8"/>'
        )
    for i, lab in enumerate(labels):
        yy = top + 16 * i + 8
        out.append(f'<circle cx="{w - right + 16}" cy="{yy}" r="4" fill="{colour[lab]}"/>')
        out.append(f'<text x="{w - right + 26}" y="{yy + 4}">{lab}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_outputs(study: Mapping[str, Any], doc: Path, command: str) -> None:
    """Write ``validity.json`` and the figure next to ``doc`` and refresh the tables inside ``doc``.

    Raises:
        ValueError: ``doc`` exists but lacks the begin/end markers.
    """
    folder = doc.parent / "validity"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "validity.json").write_text(
        json.dumps(study, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    (folder / "w2_vs_oracle.svg").write_text(w2_figure(study), encoding="utf-8")
    block = f"{BEGIN}\n{render_report(study, command)}{END}"
    if doc.exists():
        text = doc.read_text(encoding="utf-8")
        if BEGIN not in text or END not in text:
            raise ValueError(f"{doc}: missing the markers {BEGIN} / {END}")
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        doc.write_text(head + block + tail, encoding="utf-8")
    else:
        doc.write_text(f"# Validity of the toy suite\n\n{block}\n", encoding="utf-8")
