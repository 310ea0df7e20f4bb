"""Tuned budgets: the learning rate and steps that ``overfit-bench tune`` chose for a method on a suite's
tuning concepts, stored in the cache, and where each method's budget comes from.

A suite ``S`` has tuning concepts when the shipped suite ``S-tuning`` exists (``toy`` → ``toy-tuning``);
the tuning protocol (:mod:`benchmark.toy.tuning`) runs on those only. Its choice for a method is stored at::

    <cache>/tuned/<suite>@<version>/<key>.json

where ``key`` hashes the method's identity (name, version, the sha256 of the source files of its class
and every class it derives from, and the hash of its config under the suite's budget before any tuning)
and the suite's evaluation settings. Editing the method's code or its recipe therefore makes its tuned
budget stale (not found) rather than wrong. :func:`tuned_budget` reads it;
:func:`benchmark.budgets.budget_config` applies it after the profile's budgets; the profile's
``method_overrides`` still apply last, so a method whose ``lr`` and ``steps`` the profile sets (the
built-in methods on the toy suite, tuned by the committed protocol) never uses a stored one.

Where a method's budget comes from (:func:`budget_source`), in the order a lookup tries them:

- ``profile-tuned``: the profile's ``method_overrides`` set its ``lr`` and ``steps`` (the built-ins);
- ``tuned``: a stored ``overfit-bench tune`` choice;
- ``recipe``: the method's recipe has a budget of the suite's budget name (an outside method declaring
  its own budget keeps it: ``tune`` does not sweep it);
- ``profile``: the profile's ``budgets[<method>]`` or ``method_overrides`` (its own or ``"*"``) set its
  ``lr`` or ``steps`` (the smoke suite's 4 steps for every method);
- ``default``: the profile's ``budgets["*"]`` (or the recipe's defaults when the profile names no
  budget): nobody tuned it.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import inspect
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.cache import hash_inputs

if TYPE_CHECKING:
    from baselines.contract import MethodHandle
    from benchmark.context import RunContext
    from benchmark.settings import EvalSettings

PROTOCOL = 1
"""Version of the stored record; a change of the protocol's rule bumps it (old records are not found)."""
TUNED_KEYS = ("lr", "steps", "checkpoint_every")
"""The keys of a tuned budget (each applied only where the method's config has it)."""
SOURCES = ("profile-tuned", "tuned", "recipe", "profile", "default")


def tuning_suite_of(suite: str) -> str:
    """The name of the suite holding ``suite``'s tuning concepts.

    Raises:
        ValueError: ``suite`` has no tuning concepts (no shipped suite ``<suite>-tuning``).
    """
    from benchmark.data.manifest import available_suites

    name = f"{suite}-tuning"
    if name not in available_suites():
        raise ValueError(
            f"suite {suite!r} has no tuning concepts (no suite {name!r}); tuning is offered for: "
            + ", ".join(s[: -len("-tuning")] for s in available_suites() if s.endswith("-tuning"))
        )
    return name


@functools.lru_cache(maxsize=64)
def _class_code_hash(cls: type) -> str:
    files: set[str] = set()
    for klass in cls.__mro__:
        if klass.__module__ in ("builtins", "typing", "abc"):
            continue
        try:
            files.add(str(Path(inspect.getfile(klass)).resolve()))
        except (TypeError, OSError):  # a class defined where no file is (an interactive session)
            continue
    digest = hashlib.sha256()
    for path in sorted(files):
        try:
            digest.update(Path(path).read_bytes())
        except OSError:
            digest.update(path.encode("utf-8"))
    return digest.hexdigest()[:16]


def code_hash(method: MethodHandle) -> str:
    """sha256 (16 hex) of the source files of the method's class and every class it derives from."""
    cls: Any = type(method.impl)
    return _class_code_hash(cls)


def is_built_in(method: MethodHandle) -> bool:
    """Whether ``method`` is the registered built-in of its name (not an outside class, even one that
    derives from a built-in and keeps its name)."""
    from baselines import METHODS

    cls = type(method.impl)
    return METHODS.get(method.name) == f"{cls.__module__}:{cls.__qualname__}"


def declares_budget(settings: EvalSettings, method: MethodHandle) -> bool:
    """Whether the method's recipe (or class) holds a budget of the suite's budget name."""
    from benchmark.budgets import recipe_has_budget

    return bool(settings.budget) and recipe_has_budget(method, str(settings.budget))


def set_by_profile(settings: EvalSettings, method: MethodHandle) -> bool:
    """Whether the profile's ``method_overrides`` set the method's ``lr`` and ``steps`` (the committed
    protocol's choices for the built-ins)."""
    own = settings.method_overrides.get(method.name, {})
    return "lr" in own and "steps" in own


def _untuned(method: MethodHandle) -> MethodHandle:
    plain = copy.copy(method)
    plain.steps, plain.rung = None, None
    return plain


def tuned_key(settings: EvalSettings, suite: str, version: Any, method: MethodHandle) -> str:
    """The store key of ``method`` on ``suite@version`` (see the module docstring)."""
    from benchmark.budgets import budget_config

    config = budget_config(settings, _untuned(method))
    overrides = {k: v for k, v in settings.method_overrides.items() if k in ("*", method.name)}
    identity = {**settings.identity(), "method_overrides": overrides}
    return hash_inputs(
        {
            "protocol": PROTOCOL,
            "suite": suite,
            "suite_version": version,
            "method": method.name,
            "method_version": method.version,
            "code": code_hash(method),
            "config_hash": method.config_hash(config),
            "settings": identity,
        }
    )[:24]


def tuned_file(cache_root: Path, suite: str, version: Any, key: str) -> Path:
    """Where the tuned budget of key ``key`` on ``suite@version`` is stored."""
    return Path(cache_root) / "tuned" / f"{suite}@{version}" / f"{key}.json"


def can_be_tuned(settings: EvalSettings, method: MethodHandle) -> bool:
    """Whether a stored tuned budget may apply: a method with a recipe that trains, whose budget is
    neither set by the profile's ``method_overrides`` nor declared by its recipe."""
    return (
        method.trains
        and method.has_recipe()
        and bool(settings.budget)
        and not set_by_profile(settings, method)
        and not declares_budget(settings, method)
    )


def stored_record(ctx: RunContext, method: MethodHandle) -> tuple[Path, dict[str, Any]] | None:
    """The stored ``tune`` record of ``method`` in this run's suite and cache, and its path (``None``
    when there is none, or when it may not apply: :func:`can_be_tuned`)."""
    cache = getattr(ctx, "cache", None)
    if cache is None or not can_be_tuned(ctx.settings, method):
        return None
    path = tuned_file(
        cache.root,
        ctx.suite.name,
        ctx.suite.version,
        tuned_key(ctx.settings, ctx.suite.name, ctx.suite.version, method),
    )
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # a damaged record is as good as none: `tune` rewrites it
    return path, record


def tuned_budget(ctx: RunContext, method: MethodHandle) -> dict[str, Any] | None:
    """The stored tuned budget (``lr``, ``steps``, ``checkpoint_every``) of ``method``, or ``None``."""
    found = stored_record(ctx, method)
    if found is None:
        return None
    return {k: found[1]["budget"][k] for k in TUNED_KEYS if k in found[1]["budget"]}


def budget_source(ctx: RunContext, method: MethodHandle) -> dict[str, Any]:
    """Where ``method``'s budget on this run comes from and what it is: ``{"source", "lr", "steps"}``
    (``source`` one of :data:`SOURCES`; ``tuned_on`` and ``path`` for a stored one)."""
    from benchmark.budgets import profile_budgets
    from benchmark.stages import method_config

    plain = _untuned(method)
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
        set(profile_budgets(settings).get(plain.name, {}))
        | set(settings.method_overrides.get(plain.name, {}))
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
