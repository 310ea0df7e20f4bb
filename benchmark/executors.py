"""Executors run jobs: ``map(fn, specs)`` yields ``fn(spec)`` for every job spec (a frozen
:class:`~benchmark.jobspec.JobSpec`, pickled to a worker as it is), in completion order.

:class:`LocalExecutor` runs them in this process, one after another; :class:`benchmark.ray_executor.RayExecutor`
runs them as Ray tasks over the shared cache. A job's result (:func:`benchmark.jobs.run_job`) holds its
rows and the stage counts and counters it added; :func:`merge_counts` adds them up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from benchmark.jobspec import JobSpec

JobFn = Callable[["JobSpec"], dict[str, Any]]


class Executor(Protocol):
    """Runs ``fn`` on each job spec and yields the results as they finish."""

    def map(self, fn: JobFn, specs: list[JobSpec]) -> Iterator[dict[str, Any]]: ...


class LocalExecutor:
    """Jobs on this machine: in this process, in order (``workers=1``: the run context, hence the loaded
    models, is shared), or in ``workers`` processes (each loads the models once and takes jobs as they
    come). A job's rows do not depend on which worker ran it: every worker uses the run's torch thread
    count."""

    def __init__(self, progress: bool = True, workers: int = 1) -> None:
        self.progress = progress
        self.workers = max(1, int(workers))

    def map(self, fn: JobFn, specs: list[JobSpec]) -> Iterator[dict[str, Any]]:
        from tqdm.auto import tqdm

        if self.workers == 1 or len(specs) <= 1:
            for spec in tqdm(specs, desc="jobs", disable=not self.progress):
                yield fn(spec)
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        context = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=context) as pool:
            futures = [pool.submit(fn, spec.replace(progress=False)) for spec in specs]
            with tqdm(
                total=len(futures), desc=f"jobs ({self.workers} workers)", disable=not self.progress
            ) as bar:
                for future in as_completed(futures):
                    bar.update(1)
                    yield future.result()


def make_executor(
    name: str, *, progress: bool = True, address: str | None = None, workers: int = 1
) -> Executor:
    """The executor called ``name``: ``local`` (``workers`` processes) or ``ray`` (``address``: a Ray
    cluster to join).

    Raises:
        ValueError: an unknown name.
    """
    if name == "local":
        return LocalExecutor(progress, workers)
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
