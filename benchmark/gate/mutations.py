"""Does the gate still catch what it exists for? Run a suite with one deliberate change and check it.

Three mutations, each small enough to hide in a review:

- ``lr``: one method's learning rate × 1.05;
- ``lfd-timesteps``: LFD's timestep count + 1 (a change of the metric's definition);
- ``prompt``: one evaluation prompt of the suite replaced.

Each run scores the base model and one method on every concept of the suite (from a cache of its own,
so nothing cached under the unmutated settings is reused), then compares the rows with the committed
rows of those methods under the committed tolerances. A mutation the gate does not fail on is a hole in
the gate.

    python -m benchmark.gate.mutations --suite smoke --method dreambooth
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmark.gate.variation import COMMITTED

MUTATIONS: dict[str, str] = {
    "lr": "the method's learning rate x 1.05",
    "lfd-timesteps": "LFD's timestep count + 1",
    "prompt": "one evaluation prompt replaced",
}


def mutated_manifest(suite: str, folder: Path) -> Path:
    """A copy of ``suite``'s manifest with one evaluation prompt changed, written into ``folder``.

    Raises:
        ValueError: the manifest lists its prompts in a way this function does not know.
    """
    from importlib import resources

    doc = json.loads((resources.files("data_manifests") / f"{suite}.json").read_text(encoding="utf-8"))
    if "prompt_indices" in doc:  # a suite derived from another: pick another prompt of the base list
        used = set(doc["prompt_indices"])
        doc["prompt_indices"][-1] = next(i for i in range(10_000) if i not in used)
    elif isinstance(doc.get("config"), dict) and doc["config"].get("prompts"):
        first = doc["config"]["prompts"][0]
        doc["config"]["prompts"][0] = (
            first.replace("snow", "sand") if "snow" in first else first + ", at dusk"
        )
    else:
        raise ValueError(f"suite {suite!r}: no prompt list found to mutate")
    path = folder / f"{suite}.json"
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return path


def run_mutation(
    mutation: str,
    *,
    suite: str,
    method: str,
    folder: Path,
    data_root: str | None = None,
    cache: Path | None = None,
    workers: int = 1,
) -> list[Any]:
    """Rows of ``base`` and ``method`` on every concept of ``suite`` under ``mutation`` (one process,
    one worker; run folder under ``folder``, cache there too unless ``cache`` names one — a finished
    run's cache saves the stages the mutation does not touch, since every stage is keyed by its inputs).

    Raises:
        KeyError: an unknown mutation.
    """
    from baselines import load_method
    from benchmark.runner import run_suite
    from benchmark.settings import settings_for
    from leaderboard.rows import read_jsonl

    if mutation not in MUTATIONS:
        raise KeyError(f"unknown mutation {mutation!r}; known: {', '.join(MUTATIONS)}")
    source: str | Path = suite
    settings = settings_for(suite).replace(rungs=(1.0,))  # the tuned budget: what the committed rows gate
    if mutation == "lr":
        import benchmark.stages as stages
        from benchmark.jobs import job_context
        from benchmark.jobspec import JobSpec

        ctx = job_context(
            JobSpec(
                suite=suite,
                settings=settings,
                cache=Path(cache or folder / "cache"),
                run_dir=folder / "run",
                data_root=data_root,
            )
        )
        lr = float(stages.method_config(ctx, load_method(method))["lr"])
        overrides = {k: dict(v) for k, v in settings.method_overrides.items()}
        overrides.setdefault(method, {})["lr"] = lr * 1.05
        settings = settings.replace(method_overrides=overrides)
    elif mutation == "lfd-timesteps":
        settings = settings.replace(lfd_timesteps=settings.lfd_timesteps + 1)
    else:
        source = mutated_manifest(suite, folder)
    result = run_suite(
        suite=source,
        methods=["base", method],
        concepts=None,
        settings=settings,
        run_dir=folder / "run",
        cache_root=cache or folder / "cache",
        data_root=data_root,
        progress=False,
        workers=workers,
    )
    return read_jsonl(result.results)


def check_mutation(
    mutation: str,
    *,
    suite: str,
    method: str,
    folder: Path,
    committed: Path = COMMITTED,
    data_root: str | None = None,
    cache: Path | None = None,
    workers: int = 1,
) -> Any:
    """The gate's report (:class:`leaderboard.check.CheckReport`) on a mutated run, against the committed
    rows of ``base``, ``real`` and ``method`` under the committed tolerances."""
    from leaderboard.check import compare_rows, make_tolerances
    from leaderboard.rows import read_jsonl

    fresh = run_mutation(
        mutation, suite=suite, method=method, folder=folder, data_root=data_root, cache=cache, workers=workers
    )
    keep = {"base", "real", method}
    baseline = [r for r in read_jsonl(committed / f"{suite}.jsonl") if r.method in keep]
    return compare_rows(fresh, baseline, make_tolerances(committed / "tolerances.json"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.gate.mutations", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--suite", default="smoke")
    parser.add_argument("--method", default="dreambooth")
    parser.add_argument("--mutations", default=",".join(MUTATIONS))
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--keep", type=Path, help="keep the runs in this folder (default: a temporary one)")
    parser.add_argument("--workers", type=int, default=1, help="local executor processes (default 1)")
    parser.add_argument(
        "--cache", type=Path, help="reuse a finished run's cache for the stages a mutation leaves alone"
    )
    args = parser.parse_args(argv)
    missed = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        for mutation in args.mutations.split(","):
            folder = root / mutation
            folder.mkdir(parents=True, exist_ok=True)
            report = check_mutation(
                mutation,
                suite=args.suite,
                method=args.method,
                folder=folder,
                data_root=args.data_root,
                cache=args.cache,
                workers=args.workers,
            )
            drifted = any(f.kind == "drift" for f in report.findings)
            caught = "CAUGHT" if drifted else "MISSED"  # a missing or new row is not the gate seeing a change
            tiers = sorted({f.tier or f.kind for f in report.findings})
            print(f"{caught} {mutation} ({MUTATIONS[mutation]}): {report.summary()}")
            print(f"        tiers that failed: {', '.join(tiers) or 'none'}; first finding:")
            if report.findings:
                print("        " + report.findings[0].message[:300])
            if not drifted:
                missed.append(mutation)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
