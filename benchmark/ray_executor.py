"""The optional Ray executor: each (method, concept) job is a Ray task over the shared cache.

Tasks ask for one GPU each when CUDA is present. Importing this module does not import Ray.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def run_ray(specs: list[dict[str, Any]], *, progress: bool = True) -> Iterator[dict[str, Any]]:
    """Run ``benchmark.runner.run_job`` for each spec as a Ray task; yields results as they finish.

    Uses the running Ray instance if there is one, else starts a local one.

    Raises:
        RuntimeError: Ray is not installed (install the ``ray`` extra).
    """
    try:
        import ray
    except ImportError as err:
        raise RuntimeError("the Ray executor needs Ray: pip install 'overfit-bench[ray]'") from err
    import torch
    from tqdm.auto import tqdm

    from benchmark.runner import run_job

    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    gpus = 1 if torch.cuda.is_available() else 0
    task = ray.remote(num_gpus=gpus)(run_job)
    pending = [
        task.remote({**s, "device": "cuda" if gpus else s.get("device", "cpu"), "progress": False})
        for s in specs
    ]
    with tqdm(total=len(pending), desc="jobs (ray)", disable=not progress) as bar:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                bar.update(1)
                yield ray.get(ref)
