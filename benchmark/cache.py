"""Content-addressed stage cache with atomic completion and cross-process locks.

A stage output is a directory ``<root>/<stage>/<key>/`` where ``key`` hashes every input that can
change it (canonical JSON of the inputs). The directory is built under a temporary name and renamed
into place only when complete, so a killed run never leaves a finished-looking partial output, and a
per-key file lock lets two runs share one cache: the second waits and then reuses the first's result.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from benchmark.io import canonical_json

log = logging.getLogger(__name__)


def hash_inputs(inputs: Mapping[str, Any]) -> str:
    """sha256 hex digest of the canonical JSON of ``inputs``."""
    return hashlib.sha256(canonical_json(dict(inputs)).encode("utf-8")).hexdigest()


class StageCache:
    """Stage outputs keyed by their inputs. ``computed``/``hits`` count per stage in this process."""

    def __init__(self, root: str | os.PathLike[str], *, create: bool = True) -> None:
        self.root = Path(root)
        if create:  # (a plan only reads: it neither creates nor writes anything)
            self.root.mkdir(parents=True, exist_ok=True)
        self.computed: Counter[str] = Counter()
        self.hits: Counter[str] = Counter()

    def key(self, stage: str, inputs: Mapping[str, Any]) -> str:
        """The cache key of a stage output: a 24-hex prefix of the inputs' hash."""
        return hash_inputs({"stage": stage, **inputs})[:24]

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def done(self, stage: str, key: str) -> bool:
        return self.path(stage, key).is_dir()

    def get_or_compute(
        self, stage: str, inputs: Mapping[str, Any], compute: Callable[[Path], None]
    ) -> tuple[Path, str]:
        """Return (output directory, key), running ``compute(tmp_dir)`` only if it is not cached.

        ``compute`` writes its files into the temporary directory it is given; the directory is
        renamed to its final name after ``compute`` returns. An exception leaves nothing behind.
        """
        from filelock import FileLock

        key = self.key(stage, inputs)
        final = self.path(stage, key)
        if final.is_dir():
            self.hits[stage] += 1
            return final, key
        final.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(final.parent / f".{key}.lock")):
            if final.is_dir():  # another process finished it while we waited
                self.hits[stage] += 1
                return final, key
            for stale in final.parent.glob(f".{key}.tmp-*"):  # left by a killed run; we hold the lock
                shutil.rmtree(stale, ignore_errors=True)
            tmp = final.parent / f".{key}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            tmp.mkdir()
            try:
                compute(tmp)
                (tmp / "inputs.json").write_text(
                    canonical_json({"stage": stage, **inputs}) + "\n", encoding="utf-8"
                )
                os.replace(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        self.computed[stage] += 1
        log.debug("computed %s/%s", stage, key)
        return final, key

    def summary(self) -> dict[str, dict[str, int]]:
        """Per stage: how many outputs were computed and how many came from the cache."""
        stages = sorted(set(self.computed) | set(self.hits))
        return {s: {"computed": self.computed[s], "cached": self.hits[s]} for s in stages}
