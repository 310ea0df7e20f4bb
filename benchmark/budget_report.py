"""What each method trains with, and where its budget came from: the line ``score`` and ``run`` print
before training and the ``extra["budget"]`` result rows carry (tuned by ``overfit-bench tune``, the
profile's tuned overrides, the method's own budget, the profile's settings, or the default)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.tuned import (
    declares_budget,
    is_built_in,
    set_by_profile,
    stored_record,
    tuning_suite_of,
    untuned,
)

if TYPE_CHECKING:
    from baselines.contract import MethodHandle
    from benchmark.context import RunContext
    from benchmark.settings import EvalSettings


def budget_source(ctx: RunContext, method: MethodHandle) -> dict[str, Any]:
    """Where ``method``'s budget on this run comes from and what it is: ``{"source", "lr", "steps"}``
    (``source`` one of :data:`SOURCES`; ``tuned_on`` and ``path`` for a stored one)."""
    from benchmark.budgets import profile_budgets
    from benchmark.stages import method_config

    plain = untuned(method)
    cfg = method_config(ctx, plain)
    out: dict[str, Any] = {"lr": cfg.get("lr"), "steps": cfg.get("steps")}
    settings = ctx.settings
    found = stored_record(ctx, plain)
    if set_by_profile(settings, plain):
        out["source"] = "profile-tuned"
    elif found is not None:
        out.update(source="tuned", tuned_on=found[1].get("tuning_suite"), path=str(found[0]))
    elif declares_budget(settings, plain):
        out["source"] = "recipe"
    elif {"lr", "steps"} & (
        set(profile_budgets(settings).get(plain.budget_key, {}))
        | set(settings.method_overrides.get(plain.budget_key, {}))
        | set(settings.method_overrides.get("*", {}))
    ):
        out["source"] = "profile"
    else:
        out["source"] = "default"
    return out


def row_budget(ctx: RunContext, method: MethodHandle) -> dict[str, Any] | None:
    """What a result row records of its method's budget (``extra["budget"]``): source, lr and steps of
    the tuned rung (rung 1); ``None`` for a method that trains nothing or whose budget the harness
    cannot set."""
    if not (method.trains and method.has_recipe()):
        return None
    info = budget_source(ctx, method)
    return {k: info[k] for k in ("source", "lr", "steps")}


def budget_line(ctx: RunContext, method: MethodHandle, *, given_as: str | None = None) -> str | None:
    """One line for the terminal: which budget ``method`` trains with and where it comes from; an outside
    method on an untuned default budget gets a warning and the ``overfit-bench tune`` command to run.
    ``None`` for a method that trains nothing or whose budget the harness cannot set."""
    if not (method.trains and method.has_recipe()):
        return None
    info = budget_source(ctx, method)
    budget = ctx.settings.budget
    head = f"budget {method.name}: lr {info['lr']:g}, {info['steps']} steps"
    source = info["source"]
    if source == "profile-tuned":
        return f"{head} (the profile's tuned method_overrides)"
    if source == "tuned":
        return f"{head} (tuned on {info['tuned_on']} by `overfit-bench tune`: {info['path']})"
    if source == "recipe":
        return f"{head} (the method's own {budget!r} budget)"
    if source == "profile":
        return f"{head} (set by the profile's budgets or method_overrides)"
    if budget:
        where = f"the profile's default budgets['*'] of budget {budget!r}"
    else:
        where = "the recipe's defaults: the suite's profile names no budget"
    if is_built_in(method):
        return f"{head} ({where})"
    try:
        tuning_suite_of(ctx.suite.name)
    except ValueError:
        return f"{head} ({where}; this suite has no tuning concepts)"
    return (
        f"{head} ({where}) — WARNING: not tuned for this suite; run "
        f"`overfit-bench tune --suite {ctx.suite.name} --method {given_as or method.name}`"
    )


def budget_lines(suite: str, methods: list[str], settings: EvalSettings, cache_root: Path) -> list[str]:
    """:func:`budget_line` of each of ``methods`` (names or ``package.module:Class``) on ``suite`` (a name
    or a manifest file) with these settings and cache; nothing is loaded but the methods."""
    from types import SimpleNamespace

    from baselines import load_method
    from benchmark.cache import StageCache
    from benchmark.context import RunContext
    from benchmark.data.manifest import load_manifest

    manifest = load_manifest(suite)
    ctx = RunContext(
        suite=SimpleNamespace(name=manifest.name, version=manifest.version),
        settings=settings,
        cache=StageCache(cache_root),
        run_dir=Path("."),
    )
    lines = [budget_line(ctx, load_method(m), given_as=m) for m in methods]
    return [line for line in lines if line]
