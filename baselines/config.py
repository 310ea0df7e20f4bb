"""Method recipes (``baselines/recipes/*.yaml``) and config resolution/hashing.

A recipe file holds ``defaults`` (the SD-1.5 recipe, with its ``source`` and ``deviations``) and the
upstream variants as named ``budgets`` that override some keys (``prior`` is DreamBooth's
prior-preservation recipe). A config passed to ``fit`` is a dict (or dataclass) of overrides, with an
optional ``budget`` key; every key must exist in the recipe and keep its type.

A suite's own budgets (the embedded suite's small CPU budget) live in its evaluation profile, not
here: the harness resolves them (:func:`benchmark.budgets.budget_config`) and passes ``fit`` the
*complete* config, whose ``budget`` is then only its label.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from baselines.recipe_schema import validate_recipe
from benchmark.io import canonical_json

DEFAULT_BUDGET = "sd15"


@dataclass(frozen=True)
class Recipe:
    """A parsed recipe file."""

    name: str
    description: str
    source: str
    deviations: tuple[str, ...]
    defaults: dict[str, Any]
    budgets: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def budget_names(self) -> list[str]:
        return [DEFAULT_BUDGET, *self.budgets]


def load_recipe(filename: str) -> Recipe:
    """Read ``baselines/recipes/<filename>``.

    Raises:
        FileNotFoundError: no such recipe.
        RecipeError: a malformed recipe file (:mod:`baselines.recipe_schema`; names the file and field).
        ValueError: a budget with a key the defaults lack or a value of another type.
    """
    import yaml

    ref = resources.files("baselines").joinpath("recipes", filename)
    if not ref.is_file():
        raise FileNotFoundError(f"recipe {filename!r} not found in baselines/recipes")
    doc = validate_recipe(yaml.safe_load(ref.read_text(encoding="utf-8")), f"baselines/recipes/{filename}")
    recipe = Recipe(**doc.model_dump())
    for bname, overrides in recipe.budgets.items():
        merge_config(recipe.defaults, overrides, where=f"baselines/recipes/{filename}: budgets.{bname}")
    return recipe


def _suggest(key: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(key, choices, n=3)
    return f"; did you mean {', '.join(close)}?" if close else f"; known keys: {', '.join(sorted(choices))}"


def _coerce(value: Any, like: Any, where: str) -> Any:
    """``value`` checked against the type of the recipe value ``like``."""
    if like is None or value is None:
        return value
    if isinstance(like, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true/false, got {value!r}")
        return value
    if isinstance(like, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where}: expected a number, got {value!r}")
        if isinstance(like, float):
            return float(value)
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    if isinstance(like, str):
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected a string, got {value!r}")
        return value
    if isinstance(like, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        return [copy.deepcopy(v) for v in value]
    if isinstance(like, dict):
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a mapping, got {value!r}")
        return merge_config(like, value, where=where)
    return value


def merge_config(base: dict[str, Any], overrides: dict[str, Any], *, where: str = "config") -> dict[str, Any]:
    """``base`` updated with ``overrides`` (recursively for nested mappings), type-checked.

    Raises:
        ValueError: an unknown key (with the closest known keys) or a value of the wrong type.
    """
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if key not in base:
            raise ValueError(f"{where}: unknown key {key!r}{_suggest(str(key), list(base))}")
        out[key] = _coerce(value, base[key], f"{where}.{key}")
    return out


def as_dict(config: Any) -> dict[str, Any]:
    """A config given as ``None``, a mapping or a dataclass, as a plain dict.

    Raises:
        TypeError: anything else.
    """
    if config is None:
        return {}
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    if isinstance(config, dict):
        return dict(config)
    if hasattr(config, "items"):
        return dict(config.items())
    raise TypeError(f"a method config must be a dict or a dataclass, got {type(config).__name__}")


def resolve_config(recipe: Recipe, config: Any = None) -> dict[str, Any]:
    """The full config: recipe defaults ← budget overrides ← ``config`` (with ``budget`` recorded).

    A ``budget`` the recipe does not hold is accepted only in a complete config (one that sets every
    recipe key, as the harness passes after applying a suite profile's budget); it is then a label, so
    resolving a resolved config gives it back unchanged.

    Raises:
        ValueError: unknown budget or key, wrong type.
    """
    overrides = as_dict(config)
    budget = overrides.pop("budget", DEFAULT_BUDGET)
    complete = set(recipe.defaults) <= set(overrides)
    if budget != DEFAULT_BUDGET and budget not in recipe.budgets and not complete:
        raise ValueError(
            f"method {recipe.name}: unknown budget {budget!r}{_suggest(str(budget), recipe.budget_names)} "
            "(a suite's budget lives in its evaluation profile: pass the complete config "
            "from benchmark.budgets.budget_config)"
        )
    cfg = merge_config(
        recipe.defaults, recipe.budgets.get(budget, {}), where=f"{recipe.name} budget {budget}"
    )
    cfg = merge_config(cfg, overrides, where=f"{recipe.name} config")
    cfg["budget"] = budget
    return cfg


def config_hash(method: str, version: str, config: dict[str, Any]) -> str:
    """sha256 hex of the UTF-8 canonical JSON (:func:`benchmark.io.canonical_json`) of (method, version,
    resolved config)."""
    payload = canonical_json({"method": method, "version": version, "config": config})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
