"""Metric self-descriptions."""

from __future__ import annotations

import pytest

from metrics.spec import METRICS, get_metric


def test_every_metric_describes_itself() -> None:
    assert set(METRICS) == {
        "clip_t",
        "clip_i",
        "dino",
        "lfd",
        "lfd_class",
        "w2",
        "w2_floor",
        "mmd_base",
        "collapse",
        "identity",
        "subject_dino",
        "subject_clip_i",
        "leakage",
        "layout",
        "heldout_gap",
    }
    for spec in METRICS.values():
        assert spec.id == f"{spec.key}@{spec.version}"
        assert spec.inputs and spec.definition
    assert [k for k, s in METRICS.items() if s.higher_is_better] == [
        "clip_t",
        "clip_i",
        "dino",
        "subject_dino",
        "subject_clip_i",
        "identity",
    ]
    assert get_metric("lfd@2").arrow == "↓"


def test_unknown_metric_suggests() -> None:
    with pytest.raises(KeyError, match="did you mean lfd"):
        get_metric("lfdd")
    with pytest.raises(KeyError, match="version 1"):
        get_metric("w2@2")


def test_import_is_light() -> None:
    import subprocess
    import sys

    code = "import sys, metrics; print('torch' in sys.modules, 'open_clip' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
