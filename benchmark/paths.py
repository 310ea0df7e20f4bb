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
