"""The optional Ray executor: each job is a Ray task over the shared cache.

``RayExecutor(address=...)`` joins an existing cluster (``ray start --head`` on one machine, ``ray start
--address HEAD:6379`` on the others; the cache folder on a filesystem every node mounts at the same
path), else starts a local one. A job's resources come from what the method needs and what the cluster
has, not from the driver's machine: with GPUs in the cluster each job asks for one GPU and runs on
``cuda``; without, one CPU and ``cpu`` (:func:`job_resources`). Importing this module does not import Ray.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmark.jobspec import JobSpec

JobFn = Callable[["JobSpec"], dict[str, Any]]


def job_resources(cluster: dict[str, float], device: str) -> tuple[dict[str, float], str]:
    """Ray resources for one job and the device it runs on, from the cluster's total resources.

    A job trains and samples one model at a time: one GPU when the cluster has GPUs (and the run did not
    ask for the CPU), else one CPU.
    """
    if device != "cpu" and cluster.get("GPU", 0) >= 1:
        return {"num_gpus": 1, "num_cpus": 1}, "cuda"
    return {"num_gpus": 0, "num_cpus": 1}, "cpu"


class RayExecutor:
    """Jobs as Ray tasks on a cluster (``address``: join it; None: the running instance, else a new local one)."""

    def __init__(self, progress: bool = True, address: str | None = None) -> None:
        self.progress = progress
        self.address = address

    def map(self, fn: JobFn, specs: list[JobSpec]) -> Iterator[dict[str, Any]]:
        """Run ``fn(spec)`` for each spec as a Ray task (the frozen spec is shipped as it is, settings
        object included); yield results as they finish.

        Raises:
            RuntimeError: Ray is not installed (install the ``ray`` extra).
        """
        try:
            import ray
        except ImportError as err:
            raise RuntimeError("the Ray executor needs Ray: pip install 'overfit-bench[ray]'") from err
        from tqdm.auto import tqdm

        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(include_dashboard=False, log_to_driver=False)
        wanted = specs[0].device if specs else "cpu"
        resources, device = job_resources(
            dict(ray.cluster_resources()), "auto" if wanted == "cuda" else wanted
        )
        if wanted == "cuda" and device != "cuda":
            from benchmark.errors import EnvironmentProblem

            raise EnvironmentProblem("--device cuda: the Ray cluster has no GPU; use --device cpu")
        task = ray.remote(num_gpus=resources["num_gpus"], num_cpus=resources["num_cpus"])(fn)
        pending = [task.remote(s.replace(device=device, progress=False)) for s in specs]
        with tqdm(total=len(pending), desc="jobs (ray)", disable=not self.progress) as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    bar.update(1)
                    yield ray.get(ref)
