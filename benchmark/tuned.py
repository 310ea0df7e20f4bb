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
    own = settings.method_overrides.get(method.budget_key, {})
    return "lr" in own and "steps" in own


def untuned(method: MethodHandle) -> MethodHandle:
    plain = copy.copy(method)
    plain.steps, plain.rung = None, None
    return plain


def tuned_key(settings: EvalSettings, suite: str, version: Any, method: MethodHandle) -> str:
    """The store key of ``method`` on ``suite@version`` (see the module docstring)."""
    from benchmark.budgets import budget_config

    config = budget_config(settings, untuned(method))
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
