"""Training budgets: the config a suite's budget gives each method, found by one lookup, :func:`budget_config`.

A suite's evaluation profile names its budget (``"budget": "toy"``) and holds that budget's overrides in
``budgets``: ``"*"`` is the default for every method with a recipe (its keys that the recipe lacks are
skipped), ``"<method name>"`` adds to or replaces the default for that method. Recipes keep the upstream
budgets only (``prior``: DreamBooth with prior preservation). For a method with a recipe, the budget's
config is, each step replacing the keys it sets:

1. the recipe's defaults;
2. the recipe's own budget of that name if it has one (an outside method may ship one), else the
   profile's default ``budgets["*"]``;
3. the profile's ``budgets[<method name>]``;
4. a tuned budget (``lr``, ``steps``, ``checkpoint_every``) that ``overfit-bench tune`` chose on the suite's
   tuning concepts and stored in the cache (:mod:`benchmark.tuned`), given as ``tuned``; never for a method
   whose recipe holds the budget itself.

The profile's ``method_overrides`` (the toy suite's tuned learning rates and steps) then apply on top, in
:func:`benchmark.stages.method_config`. A profile without ``budgets`` of its own uses those of the profile
named like its budget (the smoke suite's inline profile says ``"budget": "toy"`` and gets the toy
profile's). A method without a recipe gets no budget: its config is its ``method_overrides``.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from baselines.config import merge_config
from benchmark.settings import PROFILE_PACKAGE, EvalSettings, load_profile, settings_from_profile

if TYPE_CHECKING:
    from baselines.contract import MethodHandle

DEFAULT = "*"


def profile_file(name: str) -> Path:
    """The file of the shipped profile ``name``, ``data_manifests/profiles/<name>.json`` (may not exist)."""
    return Path(str(resources.files(PROFILE_PACKAGE).joinpath(f"{name}.json")))


@functools.lru_cache(maxsize=8)
def _named_budgets(name: str) -> dict[str, dict[str, Any]]:
    if not profile_file(name).is_file():
        return {}
    return settings_from_profile(load_profile(name), f"data_manifests/profiles/{name}.json").budgets


def profile_budgets(settings: EvalSettings) -> dict[str, dict[str, Any]]:
    """The ``budgets`` behind ``settings.budget``: the profile's own, else those of the shipped profile
    named like the budget, else none (a budget that only recipes hold).

    Raises:
        ProfileError: the profile named like the budget is malformed.
    """
    if settings.budgets or not settings.budget:
        return settings.budgets
    return copy.deepcopy(_named_budgets(settings.budget))


def recipe_has_budget(method: MethodHandle, budget: str) -> bool:
    """Whether the method's recipe (or its own ``resolve_config``) holds a budget named ``budget``."""
    try:
        method.resolve_config({"budget": budget})
    except ValueError:
        return False
    return True


def budget_config(
    settings: EvalSettings, method: MethodHandle, tuned: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``method``'s complete config under the suite's budget, before the profile's ``method_overrides``
    (the precedence is in the module docstring), with the budget's name recorded as ``budget``.

    This is the one place a budget is looked up. ``tuned`` is a stored tuned budget
    (:func:`benchmark.tuned.tuned_budget`): it takes precedence over the profile's budgets.

    Raises:
        ValueError: a budget override names a key the recipe lacks or has the wrong type, or the budget
            is neither in the profile nor in the method's recipe (the message names the fix).
    """
    name = settings.budget
    if not name:
        return method.resolve_config({})
    table = profile_budgets(settings)
    where = f"evaluation profile budgets[{{!r}}] for method {method.name!r}"
    own = recipe_has_budget(method, name)
    if own:
        cfg = method.resolve_config({"budget": name})
    elif not table:
        raise ValueError(
            f"method {method.name!r}: budget {name!r} is neither in the evaluation profile nor in the "
            'method\'s recipe; give the profile \'budgets\' ({"*": default overrides, "<method>": ...})'
        )
    else:
        cfg = method.resolve_config({})
        default = {k: v for k, v in table.get(DEFAULT, {}).items() if k in cfg}
        cfg = merge_config(cfg, default, where=where.format(DEFAULT))
    key = method.budget_key
    if key in table:
        cfg = merge_config(cfg, table[key], where=where.format(key))
    if tuned and not own:
        cfg = merge_config(cfg, {k: v for k, v in tuned.items() if k in cfg}, where="tuned budget")
    cfg["budget"] = name
    return method.resolve_config(cfg)
