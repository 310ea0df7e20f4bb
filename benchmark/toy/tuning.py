"""The toy suite's tuning protocol: every trainable method's learning rate and steps, chosen on the tuning
concepts only (suite ``toy-tuning``; the evaluated concepts never enter it), by one stated rule.

For each trainable method, with ``S`` the steps of its ``toy`` budget (the toy evaluation profile's
``budgets``, looked up by :func:`benchmark.budgets.budget_config`):

1. train on each tuning concept at each learning rate of the method's grid (:func:`lr_grid`: its
   :data:`LR_GRIDS` entry, that of the built-in an outside class derives from, else its budget's rate ×
   (1/4, 1, 4)) and read
   the oracle's *identity* (share of images showing the concept's shape and pattern, over the suite's
   32 evaluation prompts × seeds) at every rung of the ladder ``S × (1/4, 1/2, 1, 2, 4)``, all rungs
   taken from one training run (each longer fit resumes from the previous rung's checkpoint);
2. the learning rate is the one whose best identity over the ladder is highest (mean over the tuning
   concepts; ties go to the smaller rate);
3. the steps are the smallest rung at which that rate reaches :data:`PLATEAU` (90%) of its best
   identity — the smallest budget on the identity plateau. A method whose identity stays 0 everywhere
   keeps its budget's rate and ``S``;
4. a chosen rate on an edge of the rates tried is not trusted: the grid grows by one grid ratio beyond
   that edge and 1–3 are applied again, at most :data:`MAX_EXTENSIONS` times.

Command line (re-runs the whole sweep from the cache; ``--apply`` writes the choices into the
``method_overrides`` of the tuning suite's evaluation profile, ``data_manifests/profiles/toy.json``, where
they take precedence over its ``budgets``)::

    python -m benchmark.toy.tuning [--methods a,b] [--cache DIR] [--apply]

``overfit-bench tune --method pkg.mod:Class`` (:mod:`benchmark.commands.tune`) runs the same sweep for one
method and stores its choice in the cache (:mod:`benchmark.tuned`) instead of the profile.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmark.jobspec import JobSpec
    from benchmark.settings import EvalSettings

log = logging.getLogger(__name__)

TUNING_SUITE = "toy-tuning"
RUNGS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
PLATEAU = 0.9
MAX_EXTENSIONS = 2  # rates added beyond an edge of the grid when the choice lies on it
# Learning rates tried per method (the toy budget's own rate is in each grid's middle or the grid
# brackets the rate that fits a 4M-parameter UNet trained at 1e-3, which SD-1.5's rates do not).
LR_GRIDS: Mapping[str, tuple[float, ...]] = {
    "dreambooth": (5e-5, 2e-4, 8e-4),
    "dreambooth-lora": (5e-4, 2e-3, 8e-3),
    "dora": (5e-4, 2e-3, 8e-3),
    "lokr": (5e-4, 2e-3, 8e-3),
    "oft": (5e-4, 2e-3, 8e-3),
    "textual-inversion": (5e-4, 2e-3, 8e-3),
    "custom-diffusion": (1e-5, 1e-4, 1e-3),
    "infusion": (3e-3, 1e-2, 3e-2),
    "infusion-single": (3e-3, 1e-2, 3e-2),
    "infusion-kv": (3e-3, 1e-2, 3e-2),
    "infusion-released": (
        3e-3,
        1e-2,
        3e-2,
    ),  # trains exactly as infusion-kv; only inference routes differently
}
BEGIN = "<!-- tuning:begin -->"
END = "<!-- tuning:end -->"


def lr_grid(method: Any, budget_lr: float) -> tuple[float, ...]:
    """The learning rates the protocol tries for ``method`` (a :class:`~baselines.contract.MethodHandle`):
    a built-in's :data:`LR_GRIDS` entry; for an outside class, the entry of the nearest built-in it derives
    from (a LoRA variant starts where the built-in LoRA's grid is); else its budget's rate × (1/4, 1, 4),
    the ratio of the built-in grids. Rule 4 (extension) applies to every grid."""
    from baselines import METHODS

    by_class = {path: name for name, path in METHODS.items() if name in LR_GRIDS}
    for cls in type(method.impl).__mro__:
        name = by_class.get(f"{cls.__module__}:{cls.__qualname__}")
        if name is not None:
            return LR_GRIDS[name]
    return tuple(float(f"{budget_lr * r:.3g}") for r in (0.25, 1.0, 4.0))


def rung_steps(base_steps: int, rungs: Sequence[float] = RUNGS) -> list[int]:
    """Optimizer steps of each rung (at least 1, rounded)."""
    return [max(1, round(base_steps * r)) for r in rungs]


def extension(table: Mapping[float, Mapping[int, float]], recipe_lr: float, base_steps: int) -> float | None:
    """The next learning rate to try when the rule's choice lies on an edge of the rates tried so far:
    one grid ratio beyond that edge (rounded to 3 significant digits); ``None`` when the choice is
    inside, or nothing showed the concept, or fewer than two rates were tried."""
    rates = sorted(table)
    if len(rates) < 2:
        return None
    choice = choose(table, recipe_lr, base_steps)
    if choice["plateau"] <= 0.0:
        return None
    if choice["lr"] == rates[-1]:
        return float(f"{rates[-1] * rates[-1] / rates[-2]:.3g}")
    if choice["lr"] == rates[0]:
        return float(f"{rates[0] * rates[0] / rates[1]:.3g}")
    return None


def choose(table: Mapping[float, Mapping[int, float]], recipe_lr: float, base_steps: int) -> dict[str, Any]:
    """Apply the rule to ``table[lr][steps] = identity``.

    Returns:
        ``{"lr", "steps", "identity", "plateau"}``: the chosen rate and steps, the identity there, and
        the best identity of the chosen rate.
    """
    best = {lr: max(row.values()) for lr, row in table.items()}
    top = max(best.values(), default=0.0)
    if top <= 0.0:
        return {"lr": recipe_lr, "steps": base_steps, "identity": 0.0, "plateau": 0.0}
    lr = min(r for r, b in best.items() if b == top)
    row = table[lr]
    steps = min(s for s, v in row.items() if v >= PLATEAU * top)
    return {"lr": lr, "steps": steps, "identity": row[steps], "plateau": top}


def sweep(
    method: str,
    cache: Path,
    oracle: Any,
    *,
    lrs: Sequence[float] | None = None,
    rungs: Sequence[float] = RUNGS,
    settings: Any = None,
    progress: bool = False,
    suite: str = TUNING_SUITE,
    data_root: str | None = None,
) -> dict[str, Any]:
    """Identity (and the other oracle readouts) of ``method`` on the tuning concepts at every learning
    rate × rung, and the rule's choice.

    Args:
        lrs: the learning rates to try (default: :func:`lr_grid`).
        settings: the tuning suite's evaluation settings (default: its profile).
        suite: the suite of tuning concepts.
        data_root: where its data is (default: ``$OVERFIT_BENCH_DATA`` or the user cache dir).
    """
    from baselines import load_method
    from benchmark.stages import fit_work_dir, generate, generation_plan, image_files
    from benchmark.toy.suite import concept_config
    from benchmark.toy.validity import concept_readout, read_images
    from metrics.similarity import render_slot

    handle = load_method(method)
    base_steps, recipe_lr, ladder = sweep_budget(handle, cache, settings, suite, data_root, rungs)
    grid = tuple(lrs) if lrs is not None else lr_grid(handle, recipe_lr)
    cells: list[dict[str, Any]] = []
    table: dict[float, dict[int, float]] = {}

    def run_rate(lr: float) -> None:
        ctx = rate_context(handle, lr, cache, settings, suite, data_root, rungs, progress, ladder)
        ctx.keep_fit_work = True  # each rung resumes from the previous rung's last checkpoint
        readouts: dict[int, list[dict[str, float]]] = {s: [] for s in ladder}
        for concept in ctx.suite.concepts:
            plan = generation_plan(ctx, concept)
            prompts = [render_slot(tpl, concept.class_noun) for _, tpl, _ in plan]
            for steps in ladder:
                rung = handle.with_steps(steps)
                path, _ = generate(ctx, rung, concept)
                readout = concept_readout(
                    read_images(oracle, image_files(path, plan)),
                    prompts,
                    concept_config(ctx.suite, concept.id),
                )
                readouts[steps].append(readout)
                cells.append({"lr": lr, "steps": steps, "concept": concept.id, **readout})
            shutil.rmtree(fit_work_dir(ctx, handle.with_steps(ladder[-1]), concept), ignore_errors=True)
        table[lr] = {s: _mean([r["identity"] for r in readouts[s]]) for s in ladder}
        log.info("%s lr %g: identity %s", method, lr, [round(table[lr][s], 3) for s in ladder])

    for lr in grid:
        run_rate(lr)
    for _ in range(MAX_EXTENSIONS):
        step = extension(table, recipe_lr, base_steps)
        if step is None:
            break
        run_rate(step)
    choice = choose(table, recipe_lr, base_steps)
    return {
        "method": method,
        "recipe": {"lr": recipe_lr, "steps": base_steps},
        "ladder": ladder,
        "lrs": sorted(table),
        "identity": {f"{lr:g}": {str(s): v for s, v in row.items()} for lr, row in table.items()},
        "cells": cells,
        "choice": choice,
    }


def sweep_budget(
    handle: Any,
    cache: Path,
    settings: Any = None,
    suite: str = TUNING_SUITE,
    data_root: str | None = None,
    rungs: Sequence[float] = RUNGS,
) -> tuple[int, float, list[int]]:
    """The budget a sweep starts from (the method's toy budget without a previous choice): its steps, its
    rate, and the ladder of steps the sweep reads."""
    from benchmark.jobs import job_context
    from benchmark.settings import settings_for
    from benchmark.stages import method_config

    base_settings = _without_choice(settings if settings is not None else settings_for(suite), handle.name)
    probe = job_context(_spec(base_settings, cache, suite=suite, data_root=data_root))
    budget = method_config(probe, handle)  # the toy budget (benchmark.budgets), without a previous choice
    base_steps = int(budget["steps"])
    return base_steps, float(budget["lr"]), rung_steps(base_steps, rungs)


def rate_context(
    handle: Any,
    lr: float,
    cache: Path,
    settings: Any = None,
    suite: str = TUNING_SUITE,
    data_root: str | None = None,
    rungs: Sequence[float] = RUNGS,
    progress: bool = False,
    ladder: Sequence[int] | None = None,
) -> Any:
    """The run context of one learning rate of the sweep: the fits of ``handle.with_steps(n)`` for ``n``
    on the ladder are the sweep's own (cached) fits, whoever asks for them."""
    from benchmark.jobs import job_context
    from benchmark.settings import settings_for

    base_settings = _without_choice(settings if settings is not None else settings_for(suite), handle.name)
    if ladder is None:  # callers that already read the sweep's budget pass its ladder
        _, _, ladder = sweep_budget(handle, cache, settings, suite, data_root, rungs)
    overrides = dict(base_settings.method_overrides)
    overrides[handle.name] = {
        **overrides.get(handle.name, {}),
        "lr": lr,
        "checkpoint_every": math.gcd(*ladder),
    }
    return job_context(
        _spec(base_settings.replace(method_overrides=overrides), cache, progress, suite, data_root)
    )


def _without_choice(settings: Any, method: str) -> Any:
    """``settings`` less a previous ``--apply``'s ``lr`` and ``steps`` for ``method``, so the ladder and the
    grid always start from the method's toy budget and a re-run reproduces the same sweep."""
    overrides = {k: dict(v) for k, v in settings.method_overrides.items()}
    own = overrides.get(method, {})
    for key in ("lr", "steps"):
        own.pop(key, None)
    if method in overrides and not own:
        del overrides[method]
    return settings.replace(method_overrides=overrides)


def _spec(
    settings: EvalSettings,
    cache: Path,
    progress: bool = False,
    suite: str = TUNING_SUITE,
    data_root: str | None = None,
) -> JobSpec:
    from benchmark.jobspec import JobSpec

    return JobSpec(
        suite=suite,
        settings=settings,
        cache=cache,
        run_dir=cache / "tuning-runs",
        data_root=data_root,
        progress=progress,
    )


def _mean(xs: Sequence[float]) -> float:
    return float(sum(xs) / len(xs)) if xs else float("nan")


def render_report(results: Sequence[Mapping[str, Any]], command: str) -> str:
    """The tuning tables of docs/VALIDITY.md: identity per learning rate × rung, and the choices."""
    from leaderboard.markdown import table_lines

    lines = [
        f"_Generated by `{command}` on the tuning suite `{TUNING_SUITE}`; do not edit between the markers._",
        "",
    ]
    lines += table_lines(
        ["method", "recipe lr, steps", "chosen lr", "chosen steps", "identity there", "best identity"],
        [
            [
                r["method"],
                f"{r['recipe']['lr']:g}, {r['recipe']['steps']}",
                f"{r['choice']['lr']:g}",
                str(r["choice"]["steps"]),
                f"{r['choice']['identity']:.3f}",
                f"{r['choice']['plateau']:.3f}",
            ]
            for r in results
        ],
    )
    for r in results:
        ladder = r["ladder"]
        lines += [
            "",
            f"**{r['method']}**: mean oracle identity on the tuning concepts (rows: learning rate; columns: steps)",
            "",
        ]
        lines += table_lines(
            ["lr", *(str(s) for s in ladder)],
            [
                [lr, *(f"{row[str(s)]:.3f}" for s in ladder)]
                for lr, row in sorted(r["identity"].items(), key=lambda kv: float(kv[0]))
            ],
        )
    lines.append("")
    return "\n".join(lines)


def checkpoint_every(steps: int, rungs: Sequence[float] = RUNGS[1:]) -> int:
    """A checkpoint interval at which the ``rungs`` × ``steps`` resume exactly, so a trajectory of the
    tuned budget trains once. The default, ½, 1, 2 and 4 (1, 2 and 4 only when half of ``steps`` is odd),
    is what ``--apply`` wrote for the built-ins (it is part of their config hash); ``overfit-bench tune``
    passes every rung of :data:`RUNGS`, so ¼ resumes too. An interval below ``steps`` // 4 is not kept
    (``steps`` instead). Since 2026-12-07 a rung's fit also leaves its last step, so rungs off this grid
    resume as well; the interval stays because it is part of the built-ins' config hash."""
    every = math.gcd(*rung_steps(steps, rungs))
    return every if every >= max(1, steps // 4) else steps


def profile_of_tuning_suite() -> Path:
    """The file of the evaluation profile the tuning suite names (the one ``--apply`` writes).

    Raises:
        ValueError: the tuning suite's profile is inline, not a shipped profile file.
    """
    from benchmark.budgets import profile_file
    from benchmark.data.manifest import load_manifest

    name = load_manifest(TUNING_SUITE).evaluation
    if not isinstance(name, str):
        raise ValueError(
            f"suite {TUNING_SUITE!r}: its evaluation profile must be a profile name to apply choices"
        )
    return profile_file(name)


def apply_choices(results: Sequence[Mapping[str, Any]], profile: Path) -> None:
    """Write each method's chosen ``lr`` and ``steps`` into the profile's ``method_overrides`` (which take
    precedence over its ``budgets``), with a ``checkpoint_every`` that divides every rung from ½ to 4 ×
    the steps."""
    data = json.loads(profile.read_text(encoding="utf-8"))
    overrides = data.setdefault("method_overrides", {})
    for r in results:
        own = overrides.setdefault(r["method"], {})
        steps = int(r["choice"]["steps"])
        own.update(lr=float(r["choice"]["lr"]), steps=steps, checkpoint_every=checkpoint_every(steps))
    profile.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def write_report(results: Sequence[Mapping[str, Any]], doc: Path, command: str) -> None:
    """Refresh the tuning block of ``doc`` (between the markers) and ``validity/tuning.json`` beside it.

    Raises:
        ValueError: ``doc`` lacks the markers.
    """
    folder = doc.parent / "validity"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tuning.json").write_text(json.dumps(list(results), indent=1) + "\n", encoding="utf-8")
    text = doc.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise ValueError(f"{doc}: missing the markers {BEGIN} / {END}")
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    doc.write_text(f"{head}{BEGIN}\n{render_report(results, command)}{END}{tail}", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    from baselines import list_methods, load_method
    from benchmark.paths import cache_dir
    from benchmark.toy.assets import oracle_checkpoint
    from benchmark.toy.oracle import load_oracle

    parser = argparse.ArgumentParser(
        prog="python -m benchmark.toy.tuning", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--methods", default=None, help="comma-separated (default: every trainable built-in)")
    parser.add_argument(
        "--cache", type=Path, default=None, help="cache folder (default as `overfit-bench run`)"
    )
    parser.add_argument("--doc", type=Path, default=Path("docs/VALIDITY.md"), help="document to refresh")
    parser.add_argument(
        "--apply", action="store_true", help="write the choices into data_manifests/profiles/toy.json"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: the profile's torch_threads)"
    )
    args = parser.parse_args(argv)
    import torch

    from benchmark.settings import settings_for

    threads = args.threads or settings_for(TUNING_SUITE).torch_threads
    if threads:  # float32 reductions depend on the thread count: the profile fixes it for every row
        torch.set_num_threads(int(threads))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    names = args.methods.split(",") if args.methods else [m for m in list_methods() if load_method(m).trains]
    oracle = load_oracle(oracle_checkpoint())
    results = [sweep(m, cache_dir(args.cache), oracle) for m in names]
    command = "python -m benchmark.toy.tuning" + (" --apply" if args.apply else "")
    write_report(results, args.doc, command)
    if args.apply:
        apply_choices(results, profile_of_tuning_suite())
    print(render_report(results, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
