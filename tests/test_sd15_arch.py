"""The full SD-1.5 architecture end to end on the CPU (slow: minutes and ~10 GB; `pytest -m slow`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.rows_support import read_rows

DATA = os.environ.get("OVERFIT_BENCH_DATA")
METHODS = ["infusion", "textual-inversion", "dreambooth-lora", "custom-diffusion"]


@pytest.mark.slow
@pytest.mark.skipif(not DATA, reason="OVERFIT_BENCH_DATA is not set (the DreamBench dog photos are needed)")
def test_every_metric_row_on_the_sd15_architecture(tmp_path: Path) -> None:
    from benchmark.cli import main

    args = ["run", "--suite", "sd15-check", "--methods", ",".join(["base", *METHODS]), "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "run"), "--cache", str(tmp_path / "cache")]) == 0
    rows = read_rows(tmp_path / "run" / "results.jsonl")
    got = {(r["method"], r["metric"]) for r in rows}
    for method in METHODS:
        for metric in (
            "clip_t",
            "clip_i",
            "dino",
            "subject_dino",
            "subject_clip_i",
            "lfd",
            "lfd_class",
            "w2",
            "mmd_base",
            "leakage",
            "layout",
            "collapse",
        ):
            assert (method, metric) in got, (method, metric)
    assert ("base", "w2_floor") in got and ("real", "dino") in got
    lfd = {r["method"]: r["value"] for r in rows if r["metric"] == "lfd"}
    assert lfd["infusion"] == lfd["textual-inversion"] == 0.0 and lfd["dreambooth-lora"] > 0.0
