"""The method contract (SPEC §4), written down as typed protocols and checked once, when a method loads.

A *method* customizes a base model for one concept::

    fit(concept, pipeline, config, *, seed, progress=True[, work_dir]) -> artifact   (with .save(path))
    load(artifact, pipeline) -> customized model
    render(template, concept) -> str

A *customized model* is what the harness generates images with and what LFD differentiates against the
base model: :class:`CustomizedModel`. Built-in methods return :class:`baselines.pipeline.CustomizedPipeline`,
which satisfies it; an outside method may return anything that does.

:class:`MethodHandle` wraps any method once (built-in or ``package.module:Class``) and fills in, in one
place, what an outside method may leave out: ``version`` (``"0"``), ``resolve_config`` (the config as
given), ``config_hash`` (sha256 of name, version and config) and whether ``fit`` takes a ``work_dir``.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from baselines.config import config_hash


class MethodContractError(ValueError):
    """A method (or the model its ``load`` returns) lacks part of the contract; the message names it."""


@runtime_checkable
class Method(Protocol):
    """What every method provides (``name``, ``version``, ``resolve_config`` and ``config_hash`` are
    optional: :class:`MethodHandle` supplies defaults)."""

    def fit(self, concept: Any, pipeline: Any, config: Any, *, seed: int, progress: bool = True) -> Any: ...

    def load(self, artifact: Any, pipeline: Any) -> Any: ...

    def render(self, template: str, concept: Any) -> str: ...


@runtime_checkable
class CustomizedModel(Protocol):
    """What the harness needs from a customized model.

    ``generate`` makes the evaluation images; ``eps`` (the conditional noise predictor
    ``(z_t, t, prompts) -> eps``), ``alphas_cumprod`` (the noise schedule, indexed by training timestep)
    and the ``eps_rows`` counter with ``reset_counters`` are what LFD needs.
    """

    eps_rows: int

    @property
    def alphas_cumprod(self) -> Any: ...

    def render(self, template: str) -> str: ...

    def generate(self, prompts: Sequence[str], seeds: Sequence[int], **kwargs: Any) -> Any: ...

    def eps(self, z_t: Any, t: Any, prompts: list[str]) -> Any: ...

    def reset_counters(self) -> None: ...


_METHOD_CALLS = ("fit", "load", "render")
_MODEL_CALLS = ("render", "generate", "eps", "reset_counters")
_MODEL_VALUES = ("alphas_cumprod", "eps_rows")


def missing_method_parts(method: Any) -> list[str]:
    """The calls of :class:`Method` that ``method`` lacks (empty when it satisfies the contract)."""
    return [m for m in _METHOD_CALLS if not callable(getattr(method, m, None))]


def check_customized_model(model: Any, method: str) -> Any:
    """Return ``model`` if it satisfies :class:`CustomizedModel`.

    Raises:
        MethodContractError: naming the method and every missing call or attribute.
    """
    missing = [m for m in _MODEL_CALLS if not callable(getattr(model, m, None))]
    missing += [a for a in _MODEL_VALUES if not hasattr(model, a)]
    if missing:
        raise MethodContractError(
            f"method {method!r}: load() returned a {type(model).__name__} without {', '.join(missing)}; "
            "a customized model needs render, generate, eps, reset_counters, alphas_cumprod and eps_rows "
            "(return a baselines.pipeline.CustomizedPipeline to get them all)"
        )
    return model


class MethodHandle:
    """One loaded method with the contract's defaults filled in; the harness talks only to this.

    Attributes:
        name: the name rows and folders use (``method.name``, else the name it was loaded by).
        version: ``method.version`` as a string, else ``"0"``.
        budget_key: the name its profile budgets and tuned overrides are read under (``method.tuned_as``,
            else ``name``).
        impl: the wrapped method object.
    """

    def __init__(self, impl: Any, name: str) -> None:
        missing = missing_method_parts(impl)
        if missing:
            raise MethodContractError(
                f"{name!r} is not a method: it lacks {', '.join(missing)} "
                "(a method needs fit(concept, pipeline, config, *, seed, progress), load(artifact, pipeline) "
                "and render(template, concept))"
            )
        self.impl = impl
        self.steps: int | None = None  # a training-budget override (trajectory rungs, tuning)
        self.rung: float | None = None  # the trajectory rung those steps are, when they are one
        self.name = str(getattr(impl, "name", "") or name)
        self.version = str(getattr(impl, "version", "0"))
        # the name a suite profile's budgets and tuned overrides are looked up under: a method that trains
        # exactly as another one (``tuned_as``) takes that one's entries, so adding it changes no profile
        self.budget_key = str(getattr(impl, "tuned_as", None) or self.name)
        try:
            params = inspect.signature(impl.fit).parameters
        except (TypeError, ValueError):
            params = {}  # type: ignore[assignment]
        self.takes_work_dir = "work_dir" in params

    def __repr__(self) -> str:
        steps = f", steps {self.steps}" if self.steps is not None else ""
        return f"MethodHandle({self.name!r}, version {self.version!r}{steps})"

    def with_steps(self, steps: int, rung: float | None = None) -> MethodHandle:
        """The same method trained for ``steps`` optimizer steps (a method with a recipe only), which are
        trajectory ``rung`` when given.

        Raises:
            MethodContractError: the method has no recipe to set steps in, or ``steps`` < 1.
        """
        if not self.has_recipe():
            raise MethodContractError(f"method {self.name!r} has no recipe: its training steps cannot be set")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise MethodContractError(
                f"method {self.name!r}: steps must be a positive integer, got {steps!r}"
            )
        other = copy.copy(self)
        other.steps, other.rung = steps, rung
        return other

    @property
    def trains(self) -> bool:
        """Whether ``fit`` trains anything (``False`` only for methods that say so)."""
        return bool(getattr(self.impl, "trains", True))

    def resolve_config(self, config: dict[str, Any] | None = None) -> dict[str, Any]:
        """The method's resolved config for ``config`` (an outside method without
        ``resolve_config`` gets ``config`` itself)."""
        resolve = getattr(self.impl, "resolve_config", None)
        return dict(resolve(config or {})) if callable(resolve) else dict(config or {})

    def has_recipe(self) -> bool:
        """Whether the method resolves budgets itself (built-in methods do)."""
        return callable(getattr(self.impl, "resolve_config", None))

    def config_hash(self, config: dict[str, Any]) -> str:
        """The method's own ``config_hash``, else sha256 of (name, version, config)."""
        own = getattr(self.impl, "config_hash", None)
        if callable(own):
            return str(own(config))
        return config_hash(self.name, self.version, config)

    def fit(
        self,
        concept: Any,
        pipeline: Any,
        config: dict[str, Any],
        *,
        seed: int,
        progress: bool = True,
        work_dir: str | Path | None = None,
    ) -> Any:
        """Call the method's ``fit`` (``work_dir`` passed only to methods that take it)."""
        extra = {"work_dir": work_dir} if self.takes_work_dir and work_dir is not None else {}
        return self.impl.fit(concept, pipeline, config, seed=seed, progress=progress, **extra)

    def load(self, artifact: Any, pipeline: Any) -> Any:
        """The customized model, checked against :class:`CustomizedModel`."""
        return check_customized_model(self.impl.load(artifact, pipeline), self.name)

    def render(self, template: str, concept: Any) -> str:
        return str(self.impl.render(template, concept))
