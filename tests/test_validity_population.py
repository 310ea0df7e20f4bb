"""The validity study's two populations: every rung of the main run, and the tuned budget only."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from benchmark.toy.validity import folder_steps
from benchmark.toy.validity_design import rung_label
from benchmark.toy.validity_report import population_targets, tuned_only

CONCEPTS = ("c1", "c2", "c3")


def _runs() -> list[dict]:
    rng = np.random.default_rng(0)
    runs = []
    for concept in CONCEPTS:
        runs.append(
            {
                "label": "base",
                "rung": None,
                "concept": concept,
                "metrics": {m: 0.0 for m in ("heldout_gap", "leakage", "lfd")}
                | {"subject_dino": 0.5, "subject_clip_i": 0.5},
                "oracle": {"train_background": 0.0, "identity": 0.0, "nonconcept_acc": 0.9},
            }
        )
        for method in ("a", "b", "c", "d"):
            for rung in (0.5, 1.0, 2.0):
                share, ident = rng.uniform(size=2)
                runs.append(
                    {
                        "label": rung_label(method, rung),
                        "rung": rung,
                        "concept": concept,
                        "metrics": {
                            "heldout_gap": share + 0.1 * rng.normal(),
                            "leakage": share,
                            "lfd": rng.uniform(),
                            "subject_dino": ident + 0.1 * rng.normal(),
                            "subject_clip_i": ident,
                        },
                        "oracle": {
                            "train_background": share,
                            "identity": ident,
                            "nonconcept_acc": rng.uniform(),
                        },
                    }
                )
    return runs


def test_a_runs_label_names_its_rung_except_at_the_tuned_budget() -> None:
    assert rung_label("dora", 1.0) == "dora"
    assert rung_label("base", None) == "base"
    assert rung_label("dora", 0.25) == "dora ×0.25"
    assert folder_steps("dora@800") == 800


def test_the_tuned_population_keeps_rung_one_and_the_entries_without_a_rung() -> None:
    runs = _runs()
    kept = tuned_only(runs)
    assert {r["rung"] for r in kept} == {None, 1.0}
    assert len(kept) == len(CONCEPTS) * (1 + 4)


def test_the_targets_are_spearman_over_the_runs_without_endpoints() -> None:
    runs = _runs()
    every = {what: (value, n) for what, value, n in population_targets(runs)}
    tuned = {what: (value, n) for what, value, n in population_targets(tuned_only(runs))}
    key = "heldout_gap: ρ with training-background share, pooled (≥ 0.8)"
    kept = [r for r in runs if r["label"] != "base"]
    expected = spearmanr(
        [r["metrics"]["heldout_gap"] for r in kept], [r["oracle"]["train_background"] for r in kept]
    ).statistic
    assert every[key] == (float(expected), 36)
    assert tuned[key][1] == 12
    # leakage equals the share here, so its pooled ρ is exactly 1 on either population
    assert every["leakage: ρ with training-background share, pooled (≥ 0.8)"][0] == 1.0
    assert tuned["subject_clip_i: ρ with identity, pooled (≥ 0.8)"][0] == 1.0


def test_a_saved_readout_is_reused_only_for_the_same_images_label_and_oracle(tmp_path) -> None:
    import json

    from benchmark.toy.validity import _saved_readout, readout_key

    img = tmp_path / "0_0.png"
    img.write_bytes(b"first")
    key = readout_key("dora ×0.5", [img], "oracle-a")
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps({"key": key, "oracle": {"identity": 0.25}}), encoding="utf-8")
    assert _saved_readout(saved, key) == {"identity": 0.25}
    assert readout_key("dora ×0.5", [img], "oracle-b") != key
    assert readout_key("dora", [img], "oracle-a") != key
    img.write_bytes(b"second")
    assert _saved_readout(saved, readout_key("dora ×0.5", [img], "oracle-a")) is None
    assert _saved_readout(tmp_path / "absent.json", key) is None
