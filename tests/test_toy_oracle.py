"""The toy world's attribute oracle: training lowers the loss, resume is exact, reading and scoring work."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from benchmark.toy.oracle import (
    CHECKPOINT,
    EVAL_FILE,
    HEADS,
    RECORD,
    Oracle,
    OracleConfig,
    accuracy,
    evaluate,
    labels_of,
    load_oracle,
    main,
    predict,
    train_oracle,
)
from benchmark.toy.render import render, render_batch
from benchmark.toy.world import Scene, sample_scenes

# A few-second budget: a small trunk, a 96-image bank.
TINY = OracleConfig(
    width=8, hidden=32, batch_size=16, bank_size=96, warmup_steps=2, checkpoint_every=4, log_every=2
)


@pytest.fixture(autouse=True)
def _threads() -> Iterator[None]:
    """One thread inside these tests (results are compared bit for bit); the caller's count after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _states_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_few_steps_lower_the_loss(tmp_path) -> None:
    rec = train_oracle(tmp_path, 30, seed=0, config=TINY)
    assert rec.steps_done == 30 and rec.total_steps == 30 and rec.wall_s > 0
    losses = [loss for _, loss in rec.loss_curve]
    assert [int(s) for s, _ in rec.loss_curve] == list(range(2, 31, 2))
    assert np.mean(losses[-3:]) < 0.85 * np.mean(losses[:2])
    written = json.loads((tmp_path / RECORD).read_text())
    assert written["steps_done"] == 30 and written["seed"] == 0 and written["loss_curve"] == rec.loss_curve


def test_resumed_training_equals_an_uninterrupted_run(tmp_path) -> None:
    straight = train_oracle(tmp_path / "a", 10, seed=3, config=TINY)
    first = train_oracle(tmp_path / "b", 10, seed=3, config=TINY, steps_this_call=3)
    assert first.steps_done == 3
    second = train_oracle(tmp_path / "b", 10, seed=3, config=TINY, steps_this_call=5)
    assert second.steps_done == 8
    resumed = train_oracle(tmp_path / "b", 10, seed=3, config=TINY)
    assert resumed.steps_done == 10
    a = torch.load(tmp_path / "a" / CHECKPOINT, weights_only=True)
    b = torch.load(tmp_path / "b" / CHECKPOINT, weights_only=True)
    assert _states_equal(a["model"], b["model"])
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    for k in a["optimizer"]["state"]:
        assert _states_equal(a["optimizer"]["state"][k], b["optimizer"]["state"][k])
    assert resumed.loss_curve == straight.loss_curve
    # resume=False starts over (a different seed would otherwise be refused).
    with pytest.raises(ValueError, match="seed 3"):
        train_oracle(tmp_path / "b", 12, seed=4, config=TINY)
    fresh = train_oracle(tmp_path / "b", 2, seed=4, config=TINY, resume=False)
    assert fresh.steps_done == 2


def test_load_predict_and_accuracy_agree(tmp_path) -> None:
    train_oracle(tmp_path, 4, seed=0, config=TINY)
    oracle = load_oracle(tmp_path)
    assert not oracle.training
    scenes = sample_scenes(np.random.default_rng(9), 12, pattern_prob=0.5)
    pixels = render_batch(scenes, 32)
    read = predict(oracle, pixels)
    assert len(read) == 12 and set(read[0]) == set(HEADS)
    assert all(r[k] in HEADS[k] for r in read for k in HEADS)
    # PIL images (any size) and uint8 arrays give the same answers.
    assert predict(oracle, [render(s, 32) for s in scenes]) == read
    acc = accuracy(oracle, pixels, scenes)
    for k in HEADS:
        expected = np.mean([r[k] == (getattr(s, k) or "none") for r, s in zip(read, scenes, strict=True)])
        assert acc[k] == pytest.approx(expected)
    with pytest.raises(ValueError, match="need equal"):
        accuracy(oracle, pixels[:3], scenes)


def test_evaluate_reports_held_out_and_held_in_accuracy_per_attribute() -> None:
    torch.manual_seed(0)
    oracle = Oracle(32, width=8, hidden=32).eval()
    result = evaluate(oracle, n=20, seed=1)
    assert set(result) == {"held_out", "held_in"}
    for split in result.values():
        assert set(split) == set(HEADS)
        assert all(0.0 <= v <= 1.0 for v in split.values())


def test_labels_follow_the_head_vocabularies() -> None:
    s = Scene("heart", "cyan", "water", "center", pattern="rings")
    labels = labels_of([s, Scene("circle", "red", "grass", "top left")])
    assert HEADS["shape"][int(labels["shape"][0])] == "heart"
    assert HEADS["colour"][int(labels["colour"][0])] == "cyan"
    assert HEADS["background"][int(labels["background"][0])] == "water"
    assert HEADS["position"][int(labels["position"][0])] == "center"
    assert HEADS["pattern"][int(labels["pattern"][0])] == "rings"
    assert HEADS["pattern"][int(labels["pattern"][1])] == "none"


def test_command_line_trains_then_writes_the_evaluation(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "--out",
        str(tmp_path),
        "--steps",
        "2",
        "--bank-size",
        "32",
        "--batch-size",
        "8",
        "--threads",
        "1",
    ]
    assert main([*args, "--eval-n", "10"]) == 0
    written = json.loads((tmp_path / EVAL_FILE).read_text())
    assert written["n"] == 10 and written["steps"] == 2
    assert set(written["held_out"]) == set(HEADS) and set(written["held_in"]) == set(HEADS)
    assert "held_out: shape" in capsys.readouterr().out
    assert main([*args[:2], "--steps=-1"]) == 2


def test_bad_settings_raise() -> None:
    with pytest.raises(ValueError, match="image_size"):
        OracleConfig(image_size=30)
    with pytest.raises(ValueError, match="held_out"):
        OracleConfig(held_out="only")
    with pytest.raises(ValueError, match="steps"):
        train_oracle("/nonexistent-never-created", -1)
