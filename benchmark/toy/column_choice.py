"""Which measure heads the toy headline's concept-specific column: ``leakage@2`` or ``heldout_gap@1``, chosen
on the tuning concepts only by the rule docs/DECISIONS.md committed (2026-12-07) before it was computed.

Evidence, all from the suite ``toy-tuning`` (never an evaluated concept, never a committed row):

- the four rendered controls of both tuning concepts (:mod:`benchmark.toy.controls`), scored through the
  image-folder path;
- the 60 tuning runs that :mod:`benchmark.toy.lfd_weighting` reads: the six weight-tuning built-ins
  (:data:`benchmark.toy.lfd_weighting.METHODS`) at the learning rate the tuning protocol chose, at every
  rung of the protocol's ladder (the toy budget's steps × ¼, ½, 1, 2, 4) on both concepts, their images
  generated on the suite's prompts and seeds and scored through the same metric stage as any run;
- the oracle's reading of every image set (training-background share and identity, as the validity study
  reads them: :func:`benchmark.toy.controls.oracle_readout`). The oracle grades; it never measures.

Score (:func:`score`): how many of issue 23's eight targets a candidate meets here —

1–3. context-only ≥ 0.7 × copy, ideal ≤ 0.1 × copy, base ≤ 0.1 × copy, each on both tuning concepts;
4–5. Spearman ρ with the training-background share over the tuning runs ≥ 0.8 pooled, ≥ 0.7 mean within
     concept;
6.   partial ρ with the training-background share given identity ≥ 0.7;
7.   |ρ| with identity over the tuning runs whose training-background share is 0 ≤ 0.2 (not met with fewer
     than :data:`MIN_ZERO_SHARE_RUNS` such runs);
8.   DreamBooth's tuning rungs from its tuned rung to 4×: non-decreasing on both concepts.

The higher score heads the column; a tie keeps ``leakage@2`` (:func:`choose`). Targets 4–7 are read over
the tuning runs (no endpoints); the ρ with the endpoints (the controls) and without exact zeros are reported
beside them, never scored.

Command line (images and the partial results under ``--work``, default ``runs/toy/column_choice``; a killed
run resumes from its ``column_choice_runs.json``)::

    python -m benchmark.toy.column_choice --out docs/validity   # column_choice.{json,md}
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CANDIDATES: tuple[str, ...] = ("leakage", "heldout_gap")  # order = tie-break: the first is kept on a tie
METRIC_IDS: tuple[str, ...] = ("leakage@2", "heldout_gap@1")
LADDER_METHOD = "dreambooth"
MIN_ZERO_SHARE_RUNS = 10
TARGETS: tuple[str, ...] = (
    "context_only",
    "ideal",
    "base",
    "rho_pooled",
    "rho_within",
    "partial_rho",
    "identity_at_zero_share",
    "ladder",
)
RUNS_FILE = "column_choice_runs.json"
COMMAND = "python -m benchmark.toy.column_choice --out docs/validity"


# ------------------------------------------------------------------------------------------- scoring


def _finite(x: float) -> bool:
    return x is not None and math.isfinite(float(x))


def ladder_ok(runs: Sequence[Mapping[str, Any]], metric: str, method: str = LADDER_METHOD) -> dict[str, Any]:
    """Whether ``metric`` never decreases over ``method``'s rungs from its tuned rung to the top, per concept.

    Returns:
        ``{"concepts": {concept: [values from the tuned rung up]}, "met": bool}``; met only when every
        concept has its tuned rung and each list is non-decreasing.
    """
    by: dict[str, list[Mapping[str, Any]]] = {}
    for r in runs:
        if r.get("method") == method and metric in r["metrics"]:
            by.setdefault(str(r["concept"]), []).append(r)
    out: dict[str, list[float]] = {}
    met = bool(by)
    for concept, rs in sorted(by.items()):
        rs = sorted(rs, key=lambda r: int(r["steps"]))
        tuned = [i for i, r in enumerate(rs) if r["tuned"]]
        if not tuned:
            met = False
            continue
        vals = [float(r["metrics"][metric]) for r in rs[tuned[0] :]]
        out[concept] = vals
        met = met and all(b >= a for a, b in itertools.pairwise(vals))
    return {"concepts": out, "met": met}


def score(runs: Sequence[Mapping[str, Any]], metric: str) -> dict[str, Any]:
    """The rule's eight targets for ``metric`` over the tuning evidence ``runs`` (controls labelled
    ``control:<name>`` with ``metrics`` and ``oracle``; tuning runs with ``method``, ``steps``, ``tuned``,
    ``concept``, ``metrics`` and ``oracle``).

    Returns:
        ``{"met": {target: bool}, "score": int, "values": {...}}``.
    """
    from benchmark.toy.agreement import (
        agreement_row,
        collapse_targets,
        control_table,
        is_endpoint,
        partial_spearman,
        spearman,
    )

    table = control_table(runs, [metric]).get(metric, {})
    targets = collapse_targets(table)
    concepts = sorted({str(r["concept"]) for r in runs})
    controls_met = {
        "context_only": set(targets["context_ok"]) >= set(concepts) and bool(concepts),
        "ideal": set(targets["ideal_ok"]) >= set(concepts) and bool(concepts),
        "base": set(targets["base_ok"]) >= set(concepts) and bool(concepts),
    }
    share = lambda r: float(r["oracle"]["train_background"])  # noqa: E731
    agree = agreement_row(runs, metric, share)
    tuning = [r for r in runs if not is_endpoint(str(r["label"])) and metric in r["metrics"]]
    x = [float(r["metrics"][metric]) for r in tuning]
    partial = partial_spearman(
        x, [share(r) for r in tuning], [float(r["oracle"]["identity"]) for r in tuning]
    )
    zero = [r for r in tuning if share(r) == 0.0]
    zero_rho = (
        spearman([float(r["metrics"][metric]) for r in zero], [float(r["oracle"]["identity"]) for r in zero])
        if len(zero) >= 3
        else float("nan")
    )
    ladder = ladder_ok(tuning, metric)
    pooled, within = agree["no_endpoints"]["pooled"], agree["no_endpoints"]["within"]
    met = {
        **controls_met,
        "rho_pooled": _finite(pooled) and pooled >= 0.8,
        "rho_within": _finite(within) and within >= 0.7,
        "partial_rho": _finite(partial) and partial >= 0.7,
        "identity_at_zero_share": len(zero) >= MIN_ZERO_SHARE_RUNS
        and _finite(zero_rho)
        and abs(zero_rho) <= 0.2,
        "ladder": ladder["met"],
    }
    return {
        "met": met,
        "score": sum(bool(v) for v in met.values()),
        "values": {
            "controls": table,
            "agreement": agree,
            "partial_rho": partial,
            "identity_at_zero_share": {"rho": zero_rho, "n": len(zero)},
            "ladder": ladder["concepts"],
            "full_ladder_non_decreasing": full_ladder(tuning, metric),
        },
    }


def full_ladder(
    runs: Sequence[Mapping[str, Any]], metric: str, method: str = LADDER_METHOD
) -> dict[str, bool]:
    """Informational, not scored: per concept, whether ``metric`` is non-decreasing over all of ``method``'s
    rungs (¼ to 4×)."""
    by: dict[str, list[tuple[int, float]]] = {}
    for r in runs:
        if r.get("method") == method and metric in r["metrics"]:
            by.setdefault(str(r["concept"]), []).append((int(r["steps"]), float(r["metrics"][metric])))
    out = {}
    for concept, pairs in sorted(by.items()):
        vals = [v for _, v in sorted(pairs)]
        out[concept] = all(b >= a for a, b in itertools.pairwise(vals))
    return out


def choose(scores: Mapping[str, int], order: Sequence[str] = CANDIDATES) -> str:
    """The candidate with the highest score; a tie goes to the earlier one in ``order`` (``leakage``).

    Raises:
        ValueError: a candidate of ``order`` has no score.
    """
    missing = [c for c in order if c not in scores]
    if missing:
        raise ValueError(f"column_choice: no score for {', '.join(missing)}")
    best = max(scores[c] for c in order)
    return next(c for c in order if scores[c] == best)


# ------------------------------------------------------------------------------------------- measuring


def _restricted(ctx: Any) -> Any:
    """``ctx`` evaluating only the two candidates (the metric stage's cache keys do not depend on which
    other metrics a profile lists)."""
    import dataclasses

    return dataclasses.replace(ctx, settings=ctx.settings.replace(metrics=tuple(METRIC_IDS)))


def _values(ctx: Any, concept: Any, files: Sequence[Path], source: str) -> dict[str, float]:
    from benchmark.scoring import ImageInputs, evaluate

    sub = _restricted(ctx)
    return {spec.key: float(v.value) for spec, v in evaluate(sub, ImageInputs(sub, concept, files, source))}


def measure(
    cache: Path,
    work: Path,
    progress: bool = False,
    values: Callable[[Any, Any, Sequence[Path], str], dict[str, float]] | None = None,
    runs_file: str = RUNS_FILE,
) -> list[dict[str, Any]]:
    """Every control and tuning run's two candidate values and oracle readout; writes ``work/runs_file``
    after each (a killed run resumes from it) and the control folders under ``work``. ``values`` (default:
    the two candidates of this rule) reads a run's metrics from (context, concept, files, source key)."""
    from baselines import load_method
    from benchmark.io import atomic_write_json
    from benchmark.jobs import job_context
    from benchmark.jobspec import JobSpec
    from benchmark.settings import settings_for
    from benchmark.stages import generate, generation_plan, image_files
    from benchmark.toy.assets import oracle_checkpoint
    from benchmark.toy.controls import CONTROLS, PREFIX, oracle_readout, write_controls
    from benchmark.toy.lfd_weighting import METHODS
    from benchmark.toy.oracle import load_oracle
    from benchmark.toy.tuning import TUNING_SUITE, rate_context, sweep_budget

    oracle = load_oracle(oracle_checkpoint())
    settings = settings_for(TUNING_SUITE)
    partial = work / runs_file
    read = values or _values
    runs: list[dict[str, Any]] = json.loads(partial.read_text())["runs"] if partial.is_file() else []
    seen = {(r["label"], r["concept"]) for r in runs}

    def keep(run: dict[str, Any]) -> None:
        runs.append(run)
        seen.add((run["label"], run["concept"]))
        atomic_write_json(partial, {"runs": runs})
        if progress:
            print(f"{run['label']} {run['concept']}: {run['metrics']}", flush=True)

    ctx = job_context(JobSpec(suite=TUNING_SUITE, settings=settings, cache=cache, run_dir=work / "run"))
    concepts = list(ctx.suite.concepts)
    if any((PREFIX + c, k.id) not in seen for c in CONTROLS for k in concepts):
        from benchmark.image_scoring import check_folder

        root = work / "controls"
        for control, folder in write_controls(ctx, concepts, root, CONTROLS).items():
            shown = check_folder(ctx, folder, concepts)
            for concept in concepts:
                if (PREFIX + control, concept.id) in seen:
                    continue
                from benchmark.scoring import files_digest

                source = "folder:" + files_digest(shown[concept.id])[:24]
                keep(
                    {
                        "label": PREFIX + control,
                        "concept": concept.id,
                        "metrics": read(ctx, concept, shown[concept.id], source),
                        "oracle": oracle_readout(ctx, oracle, concept, shown[concept.id]),
                    }
                )
    for name in METHODS:
        handle = load_method(name)
        lr = float(settings.method_overrides[name]["lr"])  # the protocol's choice
        tuned = int(settings.method_overrides[name]["steps"])
        _, _, ladder = sweep_budget(handle, cache, settings)
        rctx = None
        for concept in concepts:
            for steps in ladder:
                label = f"{name} {steps / ladder[2]:g}×"
                if (label, concept.id) in seen:
                    continue
                if rctx is None:
                    rctx = rate_context(handle, lr, cache, settings, ladder=ladder)
                path, key = generate(rctx, handle.with_steps(steps), concept)
                files = image_files(path, generation_plan(rctx, concept))
                keep(
                    {
                        "label": label,
                        "method": name,
                        "lr": lr,
                        "steps": steps,
                        "rung": steps / ladder[2],
                        "tuned": steps == tuned,
                        "concept": concept.id,
                        "metrics": read(rctx, concept, files, key),
                        "oracle": oracle_readout(rctx, oracle, concept, files),
                    }
                )
    return runs


# ------------------------------------------------------------------------------------------- report


def analyse(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Both candidates scored and the rule's choice."""
    scored = {m: score(runs, m) for m in CANDIDATES}
    chosen = choose({m: s["score"] for m, s in scored.items()})
    return {
        "candidates": dict(zip(CANDIDATES, METRIC_IDS, strict=True)),
        "n_tuning_runs": sum(1 for r in runs if "method" in r),
        "scores": scored,
        "chosen": chosen,
    }


def _f(x: Any) -> str:
    return "—" if x is None or not _finite(x) else f"{float(x):.3f}"


def render(
    result: Mapping[str, Any],
    command: str = COMMAND,
    title: str = "Which measure heads the toy headline's concept-specific column",
    rule: str = "docs/DECISIONS.md, 2026-12-07",
) -> str:
    """The markdown report of :func:`analyse`'s output (or of a result shaped like it: ``candidates``
    maps each scored key to its label, the first keeping a tie)."""
    names = result["candidates"]
    first = next(iter(names))
    head = {
        "context_only": "context-only ≥ 0.7 × copy (both)",
        "ideal": "ideal ≤ 0.1 × copy (both)",
        "base": "base ≤ 0.1 × copy (both)",
        "rho_pooled": "ρ share, pooled ≥ 0.8",
        "rho_within": "ρ share, within ≥ 0.7",
        "partial_rho": "partial ρ given identity ≥ 0.7",
        "identity_at_zero_share": "\\|ρ identity\\| at share 0 ≤ 0.2",
        "ladder": "DreamBooth tuned rung → 4× non-decreasing",
    }
    lines = [
        f"# {title}",
        "",
        f"Generated by `{command}` (the rule: {rule}, committed before this was "
        "computed). Tuning concepts only; "
        f"{result['n_tuning_runs']} tuning runs plus the four controls of each concept.",
        "",
        "| target | " + " | ".join(f"`{names[m]}`" for m in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for t in TARGETS:
        cells = []
        for m in names:
            s = result["scores"][m]
            cells.append(f"{'met' if s['met'][t] else 'not met'} ({_cell(s['values'], t)})")
        lines.append(f"| {head[t]} | " + " | ".join(cells) + " |")
    lines.append(
        "| **score (of 8)** | " + " | ".join(f"**{result['scores'][m]['score']}**" for m in names) + " |"
    )
    lines += ["", f"Chosen: **`{names[result['chosen']]}`** (a tie keeps `{names[first]}`).", ""]
    ladders = [vals for m in names for vals in result["scores"][m]["values"]["ladder"].values()]
    if ladders and all(len(vals) == 1 for vals in ladders):
        lines += [
            f"Target 8 read one rung per concept: {LADDER_METHOD}'s tuned rung is the top of the tuning ladder "
            "(4×), so a single value is non-decreasing and the target cannot separate the candidates; the rule "
            "counts it as met for both, which changes neither the difference nor the choice.",
            "",
        ]
    lines += ["## Every rank agreement with the training-background share", ""]
    lines += ["| measure | part | pooled ρ | n | mean within ρ | concepts |", "|---|---|---|---|---|---|"]
    for m in names:
        agree = result["scores"][m]["values"]["agreement"]
        for part, what in (
            ("all", "with endpoints (controls)"),
            ("no_endpoints", "tuning runs (scored)"),
            ("no_endpoints_no_zeros", "tuning runs, exact zeros left out"),
        ):
            a = agree[part]
            lines.append(
                f"| `{names[m]}` | {what} | {_f(a['pooled'])} | {a['n']} | {_f(a['within'])} | {a['concepts']} |"
            )
        lines.append(f"| `{names[m]}` | exact zeros among the tuning runs | {agree['zeros']} | | | |")
    lines += ["", "## Controls (value per concept)", ""]
    lines += ["| measure | concept | ideal | copy | context-only | base |", "|---|---|---|---|---|---|"]
    for m in names:
        for concept, v in sorted(result["scores"][m]["values"]["controls"].items()):
            lines.append(
                f"| `{names[m]}` | {concept} | "
                + " | ".join(_f(v.get(k)) for k in ("ideal", "copy", "context-only", "base"))
                + " |"
            )
    lines += ["", "## DreamBooth's ladder (informational beside target 8)", ""]
    for m in names:
        full = result["scores"][m]["values"]["full_ladder_non_decreasing"]
        lines.append(
            f"- `{names[m]}`: non-decreasing over all five rungs (¼–4×) on "
            f"{sum(full.values())} of {len(full)} tuning concepts ({', '.join(k for k, v in full.items() if v) or 'none'})."
        )
    return "\n".join(lines) + "\n"


def _cell(values: Mapping[str, Any], target: str) -> str:
    if target in ("context_only", "ideal", "base"):
        ctrl = {"context_only": "context-only", "ideal": "ideal", "base": "base"}[target]
        parts = [
            f"{_f(v[ctrl] / v['copy']) if v.get('copy') else '—'}"
            for _, v in sorted(values["controls"].items())
            if ctrl in v
        ]
        return "× copy: " + ", ".join(parts)
    if target == "rho_pooled":
        return _f(values["agreement"]["no_endpoints"]["pooled"])
    if target == "rho_within":
        return _f(values["agreement"]["no_endpoints"]["within"])
    if target == "partial_rho":
        return _f(values["partial_rho"])
    if target == "identity_at_zero_share":
        z = values["identity_at_zero_share"]
        return f"{_f(z['rho'])}, n {z['n']}"
    rungs = values["ladder"]
    return "; ".join(f"{c}: " + " → ".join(_f(v) for v in vals) for c, vals in rungs.items()) or "—"


def rule_main(
    argv: Sequence[str] | None,
    *,
    name: str,
    description: str,
    analyse_runs: Callable[[Sequence[Mapping[str, Any]]], dict[str, Any]],
    render_result: Callable[[Mapping[str, Any]], str],
    values: Callable[[Any, Any, Sequence[Path], str], dict[str, float]] | None = None,
    runs_file: str = RUNS_FILE,
) -> int:
    """The command line of a rule scored on the tuning evidence (this one, or another that reads the same
    runs): ``python -m benchmark.toy.<name> --out DIR [--cache C] [--work W] [--render]`` writes
    ``DIR/<name>.{json,md}``; images and partial results go under ``--work`` (default ``runs/toy/<name>``)."""
    parser = argparse.ArgumentParser(prog=f"python -m benchmark.toy.{name}", description=description)
    parser.add_argument("--out", type=Path, required=True, help=f"folder for {name}.{{json,md}}")
    parser.add_argument(
        "--cache", type=Path, default=None, help="cache folder (default as `overfit-bench run`)"
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=Path("runs/toy") / name,
        help="folder for images and partial results",
    )
    parser.add_argument("--render", action="store_true", help=f"only re-render OUT/{name}.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from benchmark.paths import cache_dir

    args.out.mkdir(parents=True, exist_ok=True)
    if args.render:
        result = json.loads((args.out / f"{name}.json").read_text())
    else:
        args.work.mkdir(parents=True, exist_ok=True)
        runs = measure(cache_dir(args.cache), args.work, progress=True, values=values, runs_file=runs_file)
        result = {**analyse_runs(runs), "runs": runs}
        (args.out / f"{name}.json").write_text(json.dumps(result, indent=1))
    text = render_result(result)
    (args.out / f"{name}.md").write_text(text)
    print(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return rule_main(
        argv,
        name="column_choice",
        description=__doc__.split("\n")[0],
        analyse_runs=analyse,
        render_result=render,
    )


if __name__ == "__main__":
    sys.exit(main())
