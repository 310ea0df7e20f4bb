"""The optional Ray executor: each job is a Ray task over the shared cache.

Tasks ask for one GPU each when CUDA is present. Importing this module does not import Ray.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

JobFn = Callable[[dict[str, Any]], dict[str, Any]]


class RayExecutor:
    """Jobs as Ray tasks (uses the running Ray instance if there is one, else starts a local one)."""

    def __init__(self, progress: bool = True) -> None:
        self.progress = progress

    def map(self, fn: JobFn, specs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Run ``fn(spec)`` for each spec as a Ray task; yield results as they finish.

        Raises:
            RuntimeError: Ray is not installed (install the ``ray`` extra).
        """
        try:
            import ray
        except ImportError as err:
            raise RuntimeError("the Ray executor needs Ray: pip install 'overfit-bench[ray]'") from err
        import torch
        from tqdm.auto import tqdm

        if not ray.is_initialized():
            ray.init(include_dashboard=False, log_to_driver=False)
        gpus = 1 if torch.cuda.is_available() else 0
        task = ray.remote(num_gpus=gpus)(fn)
        pending = [
            task.remote({**s, "device": "cuda" if gpus else s.get("device", "cpu"), "progress": False})
            for s in specs
        ]
        with tqdm(total=len(pending), desc="jobs (ray)", disable=not self.progress) as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    bar.update(1)
                    yield ray.get(ref)
