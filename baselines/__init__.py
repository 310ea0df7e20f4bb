"""Customization methods behind one interface (SPEC §4).

``get_method(name_or_import_path)`` returns a method with ``fit(concept, pipeline, config, *, seed,
progress=True) -> Artifact``, ``load(artifact, pipeline) -> CustomizedPipeline`` and
``render(template, concept)`` (the contract: :mod:`baselines.contract`); ``load_method`` wraps it in a
:class:`baselines.contract.MethodHandle` with the contract's defaults filled in. Built-in methods are registered by name as ``"module:Class"`` strings and
imported on first use, so importing this package imports neither torch nor diffusers. Outside methods
are given as ``package.module:Class``.
"""

from __future__ import annotations

import difflib
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from baselines.contract import MethodHandle

METHODS: MappingProxyType[str, str] = MappingProxyType(
    {
        "base": "baselines.base:BaseMethod",
        "infusion": "baselines.infusion:Infusion",
        "infusion-single": "baselines.infusion:InfusionSingle",
        "infusion-kv": "baselines.infusion:InfusionKV",
        "infusion-released": "baselines.infusion:InfusionReleased",
        "dreambooth": "baselines.dreambooth:DreamBooth",
        "dreambooth-lora": "baselines.lora:DreamBoothLoRA",
        "dora": "baselines.lora:DoRA",
        "lokr": "baselines.lora:LoKr",
        "oft": "baselines.lora:OFT",
        "textual-inversion": "baselines.textual_inversion:TextualInversion",
        "custom-diffusion": "baselines.custom_diffusion:CustomDiffusion",
    }
)


class UnknownMethodError(ValueError):
    """A method name that is neither registered nor a ``module:Class`` import path."""


def list_methods() -> list[str]:
    """Registered method names, in registry order."""
    return list(METHODS)


def _import(path: str) -> Any:
    from benchmark.io import resolve

    try:
        return resolve(path, "method")
    except ValueError as exc:
        raise UnknownMethodError(str(exc)) from exc


def get_method(name_or_path: str) -> Any:
    """A method instance by registered name (``infusion``) or import path (``pkg.module:Class``).

    Returns:
        An object with ``fit``, ``load`` and ``render``; a class is instantiated without arguments.

    Raises:
        UnknownMethodError: an unknown name (the closest registered names are suggested), an import
            path that does not import, or an object without the method interface.
    """
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise UnknownMethodError(f"a method name must be a non-empty string, got {name_or_path!r}")
    name = name_or_path.strip()
    if name in METHODS:
        obj = _import(METHODS[name])
    elif ":" in name:
        obj = _import(name)
    else:
        close = difflib.get_close_matches(name, list(METHODS), n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UnknownMethodError(
            f"unknown method {name!r}{hint}; registered: {', '.join(METHODS)}; outside methods are given as "
            "'package.module:Class'"
        )
    if isinstance(obj, type):
        try:
            method = obj()
        except TypeError as exc:
            raise UnknownMethodError(f"{name!r} cannot be created without arguments: {exc}") from exc
    else:
        method = obj
    from baselines.contract import missing_method_parts

    missing = missing_method_parts(method)
    if missing:
        raise UnknownMethodError(
            f"{name!r} is not a method: it lacks {', '.join(missing)} (a method needs fit(concept, pipeline, "
            "config, *, seed, progress), load(artifact, pipeline) and render(template, concept))"
        )
    own = getattr(method, "name", None)
    if not own or (name not in METHODS and _borrowed(method, str(own))):
        # an outside class with no name of its own (``class MyLoRA(DreamBoothLoRA)``) would otherwise
        # write its rows under the built-in's name, beside and against the built-in's own rows
        try:
            method.name = name
        except AttributeError:
            pass
    return method


def _borrowed(method: Any, own: str) -> bool:
    """Whether ``method`` carries a registered built-in's name without being that built-in."""
    if own not in METHODS:
        return False
    builtin = _import(METHODS[own])
    return type(method) is not builtin and method is not builtin


def load_method(name_or_path: str) -> MethodHandle:
    """:func:`get_method`, wrapped once in a :class:`~baselines.contract.MethodHandle` (the harness's view).

    Raises:
        UnknownMethodError: as :func:`get_method`.
    """
    from baselines.contract import MethodHandle

    return MethodHandle(get_method(name_or_path), name_or_path.strip())


__all__ = ["METHODS", "UnknownMethodError", "get_method", "list_methods", "load_method"]
