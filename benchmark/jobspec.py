"""The job spec: what a run ships to every job, frozen and typed.

:class:`JobSpec` carries the run's real :class:`~benchmark.settings.EvalSettings` object (validated once,
when the profile was read) to :func:`benchmark.jobs.run_job`, in this process or in a worker: a
process pool and Ray pickle it, settings and all, so a worker never rebuilds the settings from plain
data. ``run.json`` keeps the plain form (:meth:`JobSpec.record`; :meth:`JobSpec.from_record` reads it
back for ``overfit-bench export``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.settings import EvalSettings


@dataclass(frozen=True)
class JobSpec:
    """One (method, concept) job of a run; with ``method`` and ``concept`` None, the run's shared part
    (what :func:`benchmark.jobs.job_context` builds a run context from)."""

    suite: str  # a shipped suite's name or a manifest file
    settings: EvalSettings
    cache: Path
    run_dir: Path
    data_root: str | None = None
    device: str = "cpu"
    progress: bool = True
    torch_threads: int | None = None  # torch CPU threads of every job (None: leave the process's own)
    method: str | None = None
    concept: str | None = None

    def replace(self, **changes: Any) -> JobSpec:
        return dataclasses.replace(self, **changes)

    def job(self, method: str, concept: str) -> JobSpec:
        """The job that scores ``method`` on ``concept`` under this run."""
        return dataclasses.replace(self, method=method, concept=concept)

    def shared(self) -> JobSpec:
        """The run's part of this spec (method and concept left out)."""
        return dataclasses.replace(self, method=None, concept=None)

    def record(self) -> dict[str, Any]:
        """The run's part as plain data, in ``run.json``'s order (settings as :meth:`EvalSettings.to_dict`)."""
        return {
            "suite": self.suite,
            "data_root": self.data_root,
            "settings": self.settings.to_dict(),
            "cache": str(self.cache),
            "run_dir": str(self.run_dir),
            "device": self.device,
            "progress": self.progress,
            "torch_threads": self.torch_threads,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any], data_root: str | None = None) -> JobSpec:
        """The run's spec from a ``run.json`` record (:meth:`record`), with ``data_root`` as resolved now."""
        return cls(
            suite=record["suite"],
            settings=EvalSettings.from_dict(record["settings"]),
            cache=Path(record["cache"]),
            run_dir=Path(record["run_dir"]),
            data_root=data_root,
            device=record.get("device", "cpu"),
            progress=record.get("progress", True),
            torch_threads=record.get("torch_threads"),
        )
