"""The failures a command turns into one line and an exit code (documented in README)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

EXIT_OK = 0
EXIT_FINDINGS = 1  # the check found drift, files failed verification, an image folder does not match
EXIT_USAGE = 2  # bad arguments or input: an unknown name, a malformed file, a bad value
EXIT_UNAVAILABLE = 3  # something the machine lacks: data, weights, CUDA, a writable folder, the network
EXIT_METHOD = 4  # a method's own code raised
EXIT_INTERRUPTED = 130


class MethodFailure(RuntimeError):
    """A method's code raised; the message names the method, the concept and the stage."""


class EnvironmentProblem(RuntimeError):
    """This machine cannot do what was asked (no CUDA, an unwritable folder, no network); the message
    says what to do."""


@contextlib.contextmanager
def method_stage(method: str, concept: str, stage: str) -> Iterator[None]:
    """Turn an exception raised by a method's own code into a :class:`MethodFailure` naming where."""
    try:
        yield
    except (MethodFailure, KeyboardInterrupt):
        raise
    except Exception as err:
        detail = f"{type(err).__name__}: {err}".strip()
        raise MethodFailure(
            f"method {method!r} failed on concept {concept!r} in stage {stage}: {detail}"
        ) from err
