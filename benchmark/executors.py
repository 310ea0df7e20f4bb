"""Executors run jobs: ``map(fn, specs)`` yields ``fn(spec)`` for every job spec, in completion order.

:class:`LocalExecutor` runs them in this process, one after another; :class:`benchmark.ray_executor.RayExecutor`
runs them as Ray tasks over the shared cache. A job's result (:func:`benchmark.jobs.run_job`) holds its
rows and the stage counts and counters it added; :func:`merge_counts` adds them up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

JobFn = Callable[[dict[str, Any]], dict[str, Any]]


class Executor(Protocol):
    """Runs ``fn`` on each job spec and yields the results as they finish."""

    def map(self, fn: JobFn, specs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]: ...


class LocalExecutor:
    """Jobs in this process, in order (the run context, hence the loaded models, is shared)."""

    def __init__(self, progress: bool = True) -> None:
        self.progress = progress

    def map(self, fn: JobFn, specs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        from tqdm.auto import tqdm

        for spec in tqdm(specs, desc="jobs", disable=not self.progress):
            yield fn(spec)


def make_executor(name: str, *, progress: bool = True, address: str | None = None) -> Executor:
    """The executor called ``name``: ``local`` or ``ray`` (``address``: a Ray cluster to join).

    Raises:
        ValueError: an unknown name.
    """
    if name == "local":
        return LocalExecutor(progress)
    if name == "ray":
        from benchmark.ray_executor import RayExecutor

        return RayExecutor(progress=progress, address=address)
    raise ValueError(f"unknown executor {name!r}; expected 'local' or 'ray'")


def merge_counts(results: Iterable[dict[str, Any]], field: str) -> Counter[str]:
    """The sum over job results of one count field (``computed``, ``cached`` or ``counters``)."""
    total: Counter[str] = Counter()
    for result in results:
        total.update(result.get(field, {}))
    return total
