"""``package.module:attribute`` references, the way suites name their generators and loaders."""

from __future__ import annotations

import importlib
import re
from typing import Any

_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def is_reference(text: str) -> bool:
    """Whether ``text`` looks like ``package.module:attribute``."""
    return bool(_REF.match(text))


def load_object(ref: str, what: str = "object") -> Any:
    """The object a ``package.module:attribute`` reference names (the module is imported now).

    Raises:
        ValueError: a malformed reference, a module that does not import, or a missing attribute
            (the message names ``what`` and the reference).
    """
    if not isinstance(ref, str) or not is_reference(ref):
        raise ValueError(f"{what} {ref!r} is not a reference of the form 'package.module:attribute'")
    module_name, _, attr = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"{what} {ref!r} cannot be imported: {err}") from err
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(
                f"{what} {ref!r} cannot be imported: module {module_name!r} has no attribute {attr!r}"
            )
        obj = getattr(obj, part)
    return obj
