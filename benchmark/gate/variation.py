"""Measure how far a suite's rows legitimately move on other machines of this kind, and set the gate's
tolerances from it.

Machines of one kind differ in CPU model and vector units, so float32 kernels round differently. This
emulates them on one machine: each *kernel set* limits torch's own kernels (``ATEN_CPU_CAPABILITY``),
oneDNN's convolutions (``ONEDNN_MAX_CPU_ISA``) and MKL's BLAS (``MKL_ENABLE_INSTRUCTIONS``) to one
instruction set; the environment's thread count (``OMP_NUM_THREADS``) and the local executor's workers
vary too. Every run starts from an empty cache of its own.

    python -m benchmark.gate.variation run --suite smoke --kernels native,avx512,avx2,default \\
        --threads 1,2 --workers 1,2 --out runs/variation
    python -m benchmark.gate.variation summarize runs/variation --out docs/gate/variation.json
    python -m benchmark.gate.variation tolerances docs/gate/variation.json \\
        --out leaderboard/results/tolerances.json --table docs/gate/tolerances.md

``summarize`` compares each run with the committed rows (``leaderboard/results/<suite>.jsonl``);
``tolerances`` applies the rule of :mod:`leaderboard.variation` (margin 3 by default) and records which
runs it used.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

KERNEL_SETS: dict[str, dict[str, str]] = {
    "native": {},
    "avx512": {
        "ATEN_CPU_CAPABILITY": "avx512",
        "ONEDNN_MAX_CPU_ISA": "AVX512_CORE",
        "MKL_ENABLE_INSTRUCTIONS": "AVX512",
    },
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "default": {
        "ATEN_CPU_CAPABILITY": "default",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
        "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
    },
}
"""Emulated machines: the environment that limits each kernel family to one instruction set ("native":
whatever this CPU picks)."""

COMMITTED = Path(__file__).resolve().parents[2] / "leaderboard" / "results"


def _cpu_model() -> str:
    """The CPU's model name, with its family and model numbers where /proc/cpuinfo gives them (virtual
    machines often report only a vendor name such as "AMD EPYC", which does not tell two generations apart)."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or "unknown"
    if "cpu family" in fields and "model" in fields:
        return f"{name} (family {fields['cpu family']}, model {fields['model']})"
    return name


def run_name(suite: str, kernels: str, threads: int, workers: int) -> str:
    """The folder name of one emulated run."""
    return f"{suite}-{kernels}-t{threads}-w{workers}"


def run_one(
    suite: str, kernels: str, threads: int, workers: int, out: Path, extra: list[str] | None = None
) -> dict[str, Any]:
    """One ``overfit-bench run`` of ``suite`` in a subprocess under a kernel set, a thread setting and a
    worker count, from an empty cache; returns its record (also written to ``out/<name>/run_record.json``).
    A run whose record exists is not repeated.

    Raises:
        KeyError: an unknown kernel set. RuntimeError: the run failed (its log is named).
    """
    if kernels not in KERNEL_SETS:
        raise KeyError(f"unknown kernel set {kernels!r}; known: {', '.join(KERNEL_SETS)}")
    name = run_name(suite, kernels, threads, workers)
    folder = out / name
    record_path = folder / "run_record.json"
    if record_path.is_file():
        return dict(json.loads(record_path.read_text()))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    cache = out / ".cache" / name
    shutil.rmtree(cache, ignore_errors=True)
    env = {**os.environ, **KERNEL_SETS[kernels], "OMP_NUM_THREADS": str(threads)}
    cmd = [
        sys.executable,
        "-c",
        "import sys; from benchmark.cli import main; sys.exit(main())",
        "run",
        "--suite",
        suite,
        "--out",
        str(folder),
        "--cache",
        str(cache),
        "--workers",
        str(workers),
        "--no-progress",
        "--no-leaderboard",
        *(extra or []),
    ]
    start = time.perf_counter()
    with open(folder / "log", "w", encoding="utf-8") as log:
        code = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
    wall = time.perf_counter() - start
    shutil.rmtree(cache, ignore_errors=True)
    if code != 0:
        raise RuntimeError(f"{name}: overfit-bench run exited {code}; see {folder / 'log'}")
    import torch

    revs = sorted({json.loads(line)["git_rev"] for line in open(folder / "results.jsonl") if line.strip()})
    record = {
        "name": name,
        "suite": suite,
        "kernels": kernels,
        "environment": KERNEL_SETS[kernels],
        "omp_num_threads": threads,
        "workers": workers,
        "wall_s": round(wall, 1),
        "cpu": _cpu_model(),
        "cpu_capability_native": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "git_rev": ",".join(revs),  # as the run's rows record it
    }
    record_path.write_text(json.dumps(record, indent=1) + "\n")
    return record


def read_runs(folders: list[Path]) -> dict[str, tuple[dict[str, Any], list[Any]]]:
    """Every finished run under ``folders`` (a run folder, or a folder of them): name -> (record, rows)."""
    from leaderboard.rows import read_jsonl

    found: dict[str, tuple[dict[str, Any], list[Any]]] = {}
    for folder in folders:
        for record_path in sorted(folder.glob("run_record.json")) + sorted(folder.glob("*/run_record.json")):
            record = json.loads(record_path.read_text())
            found[record["name"]] = (record, read_jsonl(record_path.parent / "results.jsonl"))
    return found


def summarize_runs(folders: list[Path], committed: Path = COMMITTED) -> dict[str, Any]:
    """Deviations of every run from the committed rows of its suite (:func:`leaderboard.variation.summarize`),
    with the runs' records."""
    from leaderboard.rows import read_jsonl
    from leaderboard.variation import summarize

    runs = read_runs(folders)
    if not runs:
        raise FileNotFoundError(f"no finished runs (run_record.json) under {', '.join(map(str, folders))}")
    by_suite: dict[str, dict[str, list[Any]]] = {}
    for name, (record, rows) in runs.items():
        by_suite.setdefault(record["suite"], {})[name] = rows
    measured: dict[str, Any] = {}
    for suite, suite_runs in sorted(by_suite.items()):
        baseline = read_jsonl(committed / f"{suite}.jsonl")
        measured.update(summarize(suite_runs, baseline))
    return {"runs": [runs[n][0] for n in sorted(runs)], "committed": str(committed), "variation": measured}


def holdout(folders: list[Path], margin: float, committed: Path = COMMITTED) -> list[dict[str, Any]]:
    """Leave one kernel set out: derive tolerances from the other kernel sets' runs and check the held-out
    runs against the committed rows with them — does the margin cover a machine the rule never saw?"""
    from leaderboard.check import compare_rows, make_tolerances
    from leaderboard.rows import read_jsonl
    from leaderboard.variation import derive_tolerances, summarize

    runs = read_runs(folders)
    out: list[dict[str, Any]] = []
    for kernels in sorted({rec["kernels"] for rec, _ in runs.values()}):
        train = {n: rows for n, (rec, rows) in runs.items() if rec["kernels"] != kernels}
        test = {n: (rec, rows) for n, (rec, rows) in runs.items() if rec["kernels"] == kernels}
        if not train:
            continue
        measured: dict[str, Any] = {}
        for suite in sorted({runs[n][0]["suite"] for n in train}):
            suite_runs = {n: rows for n, rows in train.items() if runs[n][0]["suite"] == suite}
            measured.update(summarize(suite_runs, read_jsonl(committed / f"{suite}.jsonl")))
        tol_doc = derive_tolerances(measured, margin=margin, runs=sorted(train))
        import tempfile

        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(tol_doc, f)
        tolerances = make_tolerances(f.name)
        Path(f.name).unlink()
        for name, (rec, rows) in sorted(test.items()):
            if rec["suite"] not in tol_doc["suites"]:
                continue  # no other kernel set of this suite to learn from
            report = compare_rows(rows, read_jsonl(committed / f"{rec['suite']}.jsonl"), tolerances)
            out.append(
                {
                    "held_out": name,
                    "derived_from": sorted(n for n in train if runs[n][0]["suite"] == rec["suite"]),
                    "ok": report.ok,
                    "worst": dict(report.worst),
                    "findings": [f.message for f in report.findings][:5],
                }
            )
    return out


def committed_rows(suite: str, committed: Path = COMMITTED) -> list[Any]:
    """Every committed row of ``suite``: ``<suite>.jsonl`` and its companions ``<suite>-*.jsonl`` (the
    rung rows), which the gate reads as one baseline folder."""
    from leaderboard.rows import read_jsonl

    files = [committed / f"{suite}.jsonl", *sorted(committed.glob(f"{suite}-*.jsonl"))]
    return [row for f in files if f.is_file() for row in read_jsonl(f)]


def record_run(
    folder: Path, suite: str, name: str, threads: int, workers: int, wall_s: float | None = None
) -> dict[str, Any]:
    """``run_record.json`` for a run made outside :func:`run_one` (CI's own ``overfit-bench run`` on a new
    machine): this machine's CPU and native kernels, no emulation, the rows' commits.

    Raises:
        FileNotFoundError: the folder has no results.jsonl.
    """
    import torch

    rows = folder / "results.jsonl"
    if not rows.is_file():
        raise FileNotFoundError(f"{rows} not found: point `record` at the folder of a finished run")
    revs = sorted({json.loads(line)["git_rev"] for line in rows.open() if line.strip()})
    record = {
        "name": name,
        "suite": suite,
        "kernels": "native",
        "environment": {},
        "omp_num_threads": threads,
        "workers": workers,
        "wall_s": wall_s,
        "cpu": _cpu_model(),
        "cpu_capability_native": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "git_rev": ",".join(str(r) for r in revs),
    }
    (folder / "run_record.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def add_runs(summary: dict[str, Any], folders: list[Path], committed: Path = COMMITTED) -> dict[str, Any]:
    """``summary`` (``summarize``'s output) with the finished runs under ``folders`` measured against every
    committed row of their suite (:func:`committed_rows`, rung rows included) and merged in
    (:func:`leaderboard.variation.merge`); their records are appended.

    Raises:
        FileNotFoundError: no finished run under ``folders``. ValueError: a run already in the summary.
    """
    from leaderboard.variation import merge, summarize

    runs = read_runs(folders)
    if not runs:
        raise FileNotFoundError(f"no finished runs (run_record.json) under {', '.join(map(str, folders))}")
    known = {r["name"] for r in summary["runs"]}
    again = sorted(set(runs) & known)
    if again:
        raise ValueError(f"run(s) {', '.join(again)} already in the summary; give the new run another name")
    for suite in sorted({rec["suite"] for rec, _ in runs.values()}):
        suite_runs = {n: rows for n, (rec, rows) in runs.items() if rec["suite"] == suite}
        measured = summarize(suite_runs, committed_rows(suite, committed)).get(suite, {})
        summary["variation"][suite] = merge(summary["variation"].get(suite, {}), measured)
    summary["runs"] = summary["runs"] + [runs[n][0] for n in sorted(runs)]
    return summary


def _csv(text: str) -> list[str]:
    return [t for t in text.split(",") if t]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.gate.variation", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run a suite under each kernel set x thread setting x worker count")
    p.add_argument("--suite", required=True)
    p.add_argument("--kernels", default="native,avx2,default", help=f"of {', '.join(KERNEL_SETS)}")
    p.add_argument("--threads", default="1,2", help="OMP_NUM_THREADS values")
    p.add_argument("--workers", default="1,2", help="local executor worker counts")
    p.add_argument("--out", type=Path, required=True)
    s = sub.add_parser("summarize", help="deviations of finished runs from the committed rows")
    s.add_argument("folders", nargs="+", type=Path)
    s.add_argument("--out", type=Path, required=True)
    h = sub.add_parser("holdout", help="leave one kernel set out: does the rule's margin cover it?")
    h.add_argument("folders", nargs="+", type=Path)
    h.add_argument("--margin", type=float, default=3.0)
    rb = sub.add_parser(
        "rebase", help="carry a summary to regenerated committed rows; the old rows count as a run"
    )
    rb.add_argument("summary", type=Path)
    rb.add_argument("--suite", required=True)
    rb.add_argument("--old", type=Path, required=True, help="the committed rows before they were regenerated")
    rb.add_argument("--run-name", required=True, help="names the machine that wrote the old rows")
    rb.add_argument("--cpu", default="", help="that machine's CPU, for the run record")
    rb.add_argument("--out", type=Path, required=True)
    rc = sub.add_parser(
        "record", help="write run_record.json for a run made outside `variation run` (e.g. CI's own run)"
    )
    rc.add_argument("folder", type=Path, help="holds the run's results.jsonl")
    rc.add_argument("--suite", required=True)
    rc.add_argument(
        "--name", required=True, help="names the machine and setting, e.g. toy-epyc2-native-t1-w2"
    )
    rc.add_argument("--threads", type=int, required=True, help="torch threads per worker the run used")
    rc.add_argument("--workers", type=int, required=True)
    rc.add_argument("--wall-s", type=float, default=None)
    ad = sub.add_parser(
        "add", help="add finished runs to a summary: each unit keeps its largest deviation over all runs"
    )
    ad.add_argument("summary", type=Path)
    ad.add_argument("folders", nargs="+", type=Path)
    ad.add_argument("--out", type=Path, required=True)
    t = sub.add_parser("tolerances", help="the tolerance file (and its table) from a summary")
    t.add_argument("summary", type=Path)
    t.add_argument("--margin", type=float, default=3.0)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--table", type=Path, help="also write the Markdown tolerance table here")
    args = parser.parse_args(argv)

    if args.command == "run":
        for kernels in _csv(args.kernels):
            for threads in map(int, _csv(args.threads)):
                for workers in map(int, _csv(args.workers)):
                    record = run_one(args.suite, kernels, threads, workers, args.out)
                    print(f"{record['name']}: {record['wall_s']} s")
        return 0
    if args.command == "summarize":
        summary = summarize_runs(args.folders)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=1) + "\n")
        for suite, tiers in summary["variation"].items():
            for tier, metrics in tiers.items():
                for metric, entry in metrics.items():
                    print(
                        f"{suite:6} {tier:8} {metric:10} max |dev| {entry['max_abs']:.3g}  max rel {entry['max_rel']:.3g}"
                    )
        return 0
    if args.command == "record":
        record = record_run(args.folder, args.suite, args.name, args.threads, args.workers, args.wall_s)
        print(
            f"{record['name']}: {record['cpu']}, {record['cpu_capability_native']}, rows of {record['git_rev']}"
        )
        return 0
    if args.command == "add":
        summary = add_runs(json.loads(args.summary.read_text()), args.folders)
        args.out.write_text(json.dumps(summary, indent=1) + "\n")
        print(f"{len(summary['runs'])} runs in {args.out}")
        return 0
    if args.command == "rebase":
        from leaderboard.rows import read_jsonl
        from leaderboard.variation import rebase

        summary = json.loads(args.summary.read_text())
        new = read_jsonl(COMMITTED / f"{args.suite}.jsonl")
        summary["variation"][args.suite] = rebase(
            summary["variation"][args.suite], read_jsonl(args.old), new, args.run_name
        )
        old_rows = read_jsonl(args.old)
        summary["runs"].append(
            {
                "name": args.run_name,
                "suite": args.suite,
                "kernels": "native",
                "environment": {},
                "omp_num_threads": 1,
                "workers": 2,
                "wall_s": None,
                "cpu": args.cpu,
                "cpu_capability_native": "",
                "git_rev": ",".join(sorted({row.git_rev for row in old_rows if row.git_rev})),
                "rebase": f"the committed rows before they were regenerated ({args.old})",
            }
        )
        args.out.write_text(json.dumps(summary, indent=1) + "\n")
        print(
            f"{args.suite}: measurement carried to {COMMITTED / f'{args.suite}.jsonl'}; {args.run_name} added"
        )
        return 0
    if args.command == "holdout":
        results = holdout(args.folders, args.margin)
        for r in results:
            worst = ", ".join(f"{k} {v:.3g}" for k, v in sorted(r["worst"].items()))
            print(f"{'PASS' if r['ok'] else 'FAIL'} {r['held_out']}: largest |diff|/tolerance {worst}")
            for message in r["findings"]:
                print("     " + message[:240])
        return 0 if all(r["ok"] for r in results) else 1
    from leaderboard.variation import derive_tolerances

    summary = json.loads(args.summary.read_text())
    command = "python -m benchmark.gate.variation tolerances " + " ".join(
        str(a) for a in (argv if argv is not None else sys.argv[1:])[1:]
    )
    tolerances = derive_tolerances(
        summary["variation"],
        margin=args.margin,
        runs=[r["name"] for r in summary["runs"]],
        command=command,
    )
    args.out.write_text(json.dumps(tolerances, indent=1) + "\n")
    text = report(summary, tolerances)
    if args.table:
        args.table.write_text(text)
    print(text)
    return 0


def report(summary: dict[str, Any], tolerances: dict[str, Any]) -> str:
    """Markdown: the runs the measurement used, and the tolerance table (generated; do not edit)."""
    from leaderboard.markdown import markdown_table
    from leaderboard.variation import tolerance_table

    runs = markdown_table(
        ["run", "suite", "kernel set", "environment", "OMP threads", "workers", "wall s", "CPU", "commit"],
        [
            [
                r["name"],
                r["suite"],
                r["kernels"],
                " ".join(f"{k}={v}" for k, v in r["environment"].items()) or "(this CPU's own choice)",
                str(r["omp_num_threads"]),
                str(r["workers"]),
                "—" if r.get("wall_s") is None else f"{r['wall_s']:g}",
                f"{r['cpu']} ({r['cpu_capability_native']})" if r.get("cpu_capability_native") else r["cpu"],
                r["git_rev"],
            ]
            for r in summary["runs"]
        ],
    )
    return (
        "# Regression-gate tolerances (generated)\n\n"
        f"Written by `{tolerances['generated_by']}` from the measurement in `docs/gate/variation.json`; "
        "the rule and the tiers are explained in docs/GATE.md. Do not edit by hand.\n\n"
        f"## Runs measured\n\n{runs}\n\n"
        "## Tolerances\n\n"
        "Fixed tier: each row. Trained tier: the mean over concepts of each (method, rung, metric). "
        "*largest |dev|* is the largest deviation from the committed value over all runs; the tolerance "
        f"covers it × the margin ({tolerances['margin']:g}).\n\n"
        f"{tolerance_table(tolerances)}\n"
    )


if __name__ == "__main__":
    sys.exit(main())
