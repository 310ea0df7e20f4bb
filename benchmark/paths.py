"""Where things live: the cache directory (pinned resolution order)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "OVERFIT_BENCH_CACHE"


def cache_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder: ``explicit`` (``--cache DIR``), else ``$OVERFIT_BENCH_CACHE``, else the user cache dir."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser().resolve()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("overfit-bench")).resolve()


def checked_cache_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """:func:`cache_dir`, created and checked writable.

    Raises:
        EnvironmentProblem: it is a file, or it cannot be created or written (the message says which
            setting chose it and how to choose another).
    """
    from benchmark.errors import EnvironmentProblem

    path = cache_dir(explicit)
    origin = "--cache" if explicit else (f"${CACHE_ENV}" if os.environ.get(CACHE_ENV) else "the default")
    if path.exists() and not path.is_dir():
        raise EnvironmentProblem(
            f"the cache folder {path} ({origin}) is a file; point --cache or ${CACHE_ENV} at a folder"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise EnvironmentProblem(
            f"the cache folder {path} ({origin}) is not writable ({err.strerror or err}); "
            f"point --cache or ${CACHE_ENV} at a writable folder"
        ) from None
    return path


def checked_out_dir(path: str | os.PathLike[str]) -> Path:
    """A run folder that is a folder (or can become one); nothing is created here.

    Raises:
        EnvironmentProblem: it is a file.
    """
    from benchmark.errors import EnvironmentProblem

    out = Path(path)
    if out.exists() and not out.is_dir():
        raise EnvironmentProblem(f"--out {out} is a file; give a folder for the run's results and images")
    return out


def check_device(device: str) -> None:
    """Raise :class:`~benchmark.errors.EnvironmentProblem` when ``device`` is CUDA on a machine without it."""
    if device != "cuda":
        return
    import torch

    from benchmark.errors import EnvironmentProblem

    if not torch.cuda.is_available():
        raise EnvironmentProblem(
            "--device cuda: this machine has no CUDA device torch can use; use --device cpu"
        )
