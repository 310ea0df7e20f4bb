"""The harness on the smoke suite: rows, exact-zero LFD controls, caching, resume after SIGKILL, Ray.

These tests run real (tiny) training and generation, so they share one module-scoped run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmark.results import ROW_FIELDS
from benchmark.runner import run_suite
from benchmark.settings import settings_for
from tests.rows_support import read_rows

DATA = os.environ.get("OVERFIT_BENCH_DATA")
pytestmark = pytest.mark.skipif(
    not DATA or not (Path(DATA) / "dreambench").is_dir(),
    reason="OVERFIT_BENCH_DATA is not set to a folder with dreambench/ (CI sets it to ../shared/datasets)",
)
METHODS = ["base", "infusion", "textual-inversion", "dreambooth"]
# the metrics an image source gives on the smoke suite (every metric but those that need the model)
IMAGE_METRICS = (
    "clip_t",
    "clip_i",
    "dino",
    "w2",
    "mmd_base",
    "collapse",
    "subject_dino",
    "subject_clip_i",
    "leakage",
    "layout",
)


def _values(rows: list[dict]) -> dict[tuple[str, str, str], float]:
    return {(r["method"], r["concept"], r["metric"]): r["value"] for r in rows}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    import torch

    # Other test modules pin torch to one thread; float32 reductions depend on the thread count, and the
    # resume test compares against a fresh `overfit-bench run` process, so use a fresh process's count.
    code = "import torch; print(torch.get_num_threads())"
    fresh = int(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    )
    previous = torch.get_num_threads()
    torch.set_num_threads(fresh)
    root = tmp_path_factory.mktemp("smoke")
    result = run_suite(
        suite="smoke",
        methods=METHODS,
        concepts=None,
        settings=settings_for("smoke"),
        run_dir=root / "run",
        cache_root=root / "cache",
        progress=False,
    )
    yield root, result
    torch.set_num_threads(previous)


def test_rows_have_pinned_fields_and_no_duplicates(smoke) -> None:
    _, result = smoke
    rows = read_rows(result.results)
    assert all(set(ROW_FIELDS) <= set(r) for r in rows)
    keys = [(r["method"], r["concept"], r["metric"], r["config_hash"]) for r in rows]
    assert len(keys) == len(set(keys))
    # 4 methods x 2 concepts x 12 metrics + the W2 floor (base, 2 concepts) + real (2 concepts x clip_i, dino,
    # subject_dino, subject_clip_i)
    assert len(rows) == 4 * 2 * 12 + 2 + 2 * 4
    lfd = next(r for r in rows if r["method"] == "dreambooth" and r["metric"] == "lfd")
    assert set(lfd["extra"]["per_timestep"]) == {"200", "400", "599", "799"}


def test_smoke_rows_match_the_committed_rows(smoke) -> None:
    """The smoke grid is no longer run by `.ci/run`; this keeps `leaderboard/results/smoke.jsonl` honest."""
    from leaderboard.check import compare_rows, make_tolerances
    from leaderboard.rows import read_jsonl

    _, result = smoke
    committed = Path(__file__).resolve().parents[1] / "leaderboard" / "results"
    baseline = [r for r in read_jsonl(committed / "smoke.jsonl") if r.method in METHODS or r.method == "real"]
    report = compare_rows(
        read_jsonl(result.results), baseline, make_tolerances(committed / "tolerances.json")
    )
    assert len(baseline) == 4 * 2 * 12 + 2 + 2 * 4
    assert report.ok, "\n".join([report.summary(), *(f.message for f in report.findings)])


def test_lfd_controls(smoke) -> None:
    _, result = smoke
    values = _values(read_rows(result.results))
    for concept in ("dog", "backpack"):
        for metric in ("lfd", "lfd_class"):
            # Methods that cannot touch prompts without their concept: exactly zero, not just small.
            assert values[("base", concept, metric)] == 0.0
            assert values[("infusion", concept, metric)] == 0.0
            assert values[("textual-inversion", concept, metric)] == 0.0
            assert values[("dreambooth", concept, metric)] > 0.0  # full fine-tuning moves every prompt
        assert values[("base", concept, "w2")] == pytest.approx(0.0, abs=1e-6)


def test_images_are_saved_as_png(smoke) -> None:
    root, _ = smoke
    pngs = sorted((root / "run" / "images" / "infusion" / "dog").glob("*.png"))
    assert [p.name for p in pngs] == ["0_0.png", "1_0.png"]


def test_rerun_recomputes_nothing(smoke) -> None:
    root, _ = smoke
    again = run_suite(
        suite="smoke",
        methods=METHODS,
        concepts=None,
        settings=settings_for("smoke"),
        run_dir=root / "run",
        cache_root=root / "cache",
        progress=False,
    )
    assert again.rows_added == 0
    assert all(c["computed"] == 0 for c in again.stages.values()), again.stages
    assert again.counters.get("lfd_base_rows", 0) == 0


def test_second_method_costs_only_customized_lfd_calls(smoke) -> None:
    root, _ = smoke
    res = run_suite(
        suite="smoke",
        methods=["infusion-single"],
        concepts=None,
        settings=settings_for("smoke"),
        run_dir=root / "run2",
        cache_root=root / "cache",
        progress=False,
    )
    n_rows = 2 * 1  # 2 prompts x 1 seed in each LFD prompt set of the smoke suite
    n_t = settings_for("smoke").lfd_timesteps
    assert res.counters.get("lfd_base_rows", 0) == 0
    assert res.counters["lfd_custom_rows"] == 2 * 2 * n_rows * n_t  # 2 concepts x {lfd, lfd_class}
    assert res.stages["lfd_base_eps"]["computed"] == 0


def _stage_dirs(cache: Path) -> dict[str, float]:
    out = {}
    for stage in cache.iterdir():
        if stage.is_dir() and stage.name != "fit_work":
            for d in stage.iterdir():
                if d.is_dir() and not d.name.startswith("."):
                    out[f"{stage.name}/{d.name}"] = (d / "inputs.json").stat().st_mtime
    return out


def test_sigkill_during_generation_then_resume(smoke, tmp_path: Path) -> None:
    root, _ = smoke
    cache, out = tmp_path / "cache", tmp_path / "run"
    cmd = [sys.executable, "-m", "benchmark.cli", "run", "--suite", "smoke", "--methods", "infusion",
           "--out", str(out), "--cache", str(cache), "--no-progress", "--no-leaderboard"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    killed = False
    while time.time() < deadline and proc.poll() is None:
        gen = cache / "generate"
        if gen.is_dir() and any(p.name.startswith(".") and ".tmp-" in p.name for p in gen.iterdir()):
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.05)
    proc.wait()
    assert killed, "the run finished before generation could be interrupted"
    before = _stage_dirs(cache)
    assert not any(".tmp-" in k for k in before)  # a partial output never has its final name
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    after = _stage_dirs(cache)
    assert all(after[k] == v for k, v in before.items())  # nothing that had finished ran again
    stages = json.loads((out / "stages.json").read_text())["stages"]
    assert sum(s["computed"] for s in stages.values()) == len(set(after) - set(before))
    rows = read_rows(out / "results.jsonl")
    keys = [(r["method"], r["concept"], r["metric"]) for r in rows]
    assert len(keys) == len(set(keys))
    reference = _values(read_rows(root / "run" / "results.jsonl"))
    for key, value in _values(rows).items():
        assert value == reference[key], key  # same seeds => same numbers on CPU


def test_ray_cluster_of_two_workers_matches_local(smoke, tmp_path: Path) -> None:
    """A local Ray cluster started with `ray start` (two CPUs: two worker processes), joined by address."""
    import shutil
    import socket

    pytest.importorskip("ray", reason="the ray extra is not installed")
    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent))
    if ray_cli is None:
        pytest.skip("the ray command is not installed beside this Python")
    root, _ = smoke
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    head = [ray_cli, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false"]
    subprocess.run(head, check=True, capture_output=True, env=env, timeout=180)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    try:
        res = run_suite(
            suite="smoke",
            methods=["textual-inversion", "infusion"],
            concepts=["dog"],  # one concept: every stage still runs on the cluster, in half the time
            settings=settings_for("smoke"),
            run_dir=tmp_path / "run",
            cache_root=tmp_path / "cache",
            executor="ray",
            address=f"127.0.0.1:{port}",
            progress=False,
        )
    finally:
        import ray

        ray.shutdown()
        subprocess.run([ray_cli, "stop", "--force"], capture_output=True, env=env, timeout=120)
    reference = _values(read_rows(root / "run" / "results.jsonl"))
    got = {k: v for k, v in _values(read_rows(res.results)).items() if k[0] != "real"}
    assert len(got) == 2 * 1 * 12 and {k[1] for k in got} == {"dog"}
    for key, value in got.items():
        assert value == reference[key], key  # bit-identical to the local executor's rows


def test_ray_jobs_ask_the_cluster_not_the_driver() -> None:
    from benchmark.ray_executor import job_resources

    assert job_resources({"CPU": 16.0, "GPU": 4.0}, "auto") == ({"num_gpus": 1, "num_cpus": 1}, "cuda")
    assert job_resources({"CPU": 16.0}, "auto") == ({"num_gpus": 0, "num_cpus": 1}, "cpu")
    assert job_resources({"CPU": 16.0, "GPU": 4.0}, "cpu") == ({"num_gpus": 0, "num_cpus": 1}, "cpu")


def test_score_image_folder_equals_harness_rows(smoke, tmp_path: Path, capsys) -> None:
    from benchmark.cli import main

    root, _ = smoke
    images = root / "run" / "images" / "infusion"
    args = ["score", "--suite", "smoke", "--images", str(images), "--cache", str(root / "cache")]
    assert main([*args, "--out", str(tmp_path / "s"), "--no-progress"]) == 0
    got = {(r["concept"], r["metric"]): r["value"] for r in read_rows(tmp_path / "s" / "results.jsonl")}
    rows = _values(read_rows(root / "run" / "results.jsonl"))
    ref = {(c, m): v for (meth, c, m), v in rows.items() if meth == "infusion"}
    assert set(got) == {(c, m) for c in ("dog", "backpack") for m in IMAGE_METRICS}
    for key, value in got.items():
        assert value == ref[key], key


def test_score_image_folder_names_missing_and_extra(smoke, tmp_path: Path, capsys) -> None:
    import shutil

    from benchmark.cli import main

    root, _ = smoke
    bad = tmp_path / "bad"
    shutil.copytree(root / "run" / "images" / "infusion", bad)
    (bad / "dog" / "1_0.png").unlink()
    (bad / "dog" / "notes.png").write_bytes(b"")
    (bad / "cat").mkdir()
    code = main(["score", "--suite", "smoke", "--images", str(bad), "--cache", str(root / "cache")])
    err = capsys.readouterr().err
    assert code == 1
    assert f"missing: {bad / 'dog' / '1_0.png'}" in err
    assert f"extra: {bad / 'dog' / 'notes.png'}" in err
    assert f"extra: {bad / 'cat'}" in err


def test_score_image_folder_names_an_image_of_the_wrong_size(smoke, tmp_path: Path, capsys) -> None:
    import shutil

    from PIL import Image

    from benchmark.cli import main

    root, _ = smoke
    bad = tmp_path / "bad"
    shutil.copytree(root / "run" / "images" / "infusion", bad)
    Image.new("RGB", (48, 40), "white").save(bad / "dog" / "1_0.png")
    code = main(["score", "--suite", "smoke", "--images", str(bad), "--cache", str(root / "cache")])
    err = capsys.readouterr().err
    assert code == 1
    assert f"wrong size: {bad / 'dog' / '1_0.png'} is 48x40, the folder's other images are 64x64" in err


def test_external_method_by_import_path(smoke, tmp_path: Path) -> None:
    root, _ = smoke
    res = run_suite(
        suite="smoke",
        methods=["tests.external_method:PrefixMethod"],
        concepts=["dog"],
        settings=settings_for("smoke"),
        run_dir=tmp_path / "run",
        cache_root=root / "cache",
        progress=False,
    )
    rows = [r for r in read_rows(res.results) if r["method"] != "real"]
    assert {r["metric"] for r in rows} == {*IMAGE_METRICS, "lfd", "lfd_class"}
    values = {r["metric"]: r["value"] for r in rows}
    assert values["lfd"] == 0.0  # it leaves the base model untouched
    assert rows[0]["method"] == "tests.external_method:PrefixMethod"


def test_readme_multi_run_workflow(smoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """README: two runs into runs/<name>, then one leaderboard over runs/*/results.jsonl."""
    import glob

    from benchmark.cli import main

    root, _ = smoke
    monkeypatch.chdir(tmp_path)
    common = ["--suite", "smoke", "--cache", str(root / "cache"), "--no-progress"]
    assert main(["run", "--methods", "infusion,dreambooth", "--out", "runs/mine", *common]) == 0
    assert main(["run", "--methods", "base,textual-inversion", *common]) == 0  # default out: runs/smoke
    files = sorted(glob.glob("runs/*/results.jsonl"))
    assert files == ["runs/mine/results.jsonl", "runs/smoke/results.jsonl"]
    assert main(["leaderboard", *files, "--out", "site"]) == 0
    page = (tmp_path / "site" / "LEADERBOARD.md").read_text()
    for method in ("infusion", "dreambooth", "textual-inversion", "base (reference)", "real (reference)"):
        assert f"| {method} |" in page  # both runs' rows, the shared `real` rows once


def test_export_round_trip_scores_like_the_run(smoke, tmp_path: Path) -> None:
    """run (smoke) → export → load_from_disk → score --images on it: the run's image-metric rows."""
    import datasets

    from benchmark.cli import main

    root, _ = smoke
    out = tmp_path / "export"
    assert main(["export", str(root / "run"), "--out", str(out)]) == 0
    ds = datasets.load_from_disk(str(out))
    assert set(ds.column_names) >= {"method", "rung", "concept", "prompt", "seed", "image", "clip_t", "dino"}
    assert sorted(set(ds["method"])) == sorted(METHODS) and len(ds) == len(METHODS) * 2 * 2
    assert (out / "README.md").read_text().startswith("---") and list((out / "parquet").glob("*.parquet"))
    again = datasets.load_from_disk(str(out))
    assert again[0]["image"].tobytes() == ds[0]["image"].tobytes() and again["clip_t"] == ds["clip_t"]
    run_rows = _values(read_rows(root / "run" / "results.jsonl"))
    # a metric row is the mean of the per-image scores over the concept's images
    for method in METHODS:
        for concept in ("dog", "backpack"):
            per_image = [r["clip_t"] for r in ds if r["method"] == method and r["concept"] == concept]
            assert sum(per_image) / len(per_image) == pytest.approx(
                run_rows[(method, concept, "clip_t")], abs=1e-6
            )
    args = ["score", "--suite", "smoke", "--images", str(out), "--cache", str(root / "cache")]
    assert main([*args, "--out", str(tmp_path / "scored"), "--no-progress"]) == 0
    scored = read_rows(tmp_path / "scored" / "results.jsonl")
    assert {r["method"] for r in scored} == set(METHODS)
    compared = 0
    for r in scored:
        assert r["value"] == run_rows[(r["method"], r["concept"], r["metric"])], (r["method"], r["metric"])
        compared += 1
    # clip_t, clip_i, dino, w2, mmd_base, collapse, subject_dino, subject_clip_i, leakage, layout per
    # method and concept
    assert compared == len(METHODS) * 2 * 10
