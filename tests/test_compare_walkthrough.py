"""README's "Compare your method" walk-through (issue 26, item 4), command by command, on the toy suite.

The README's commands are read from the README itself and run through ``overfit-bench``'s entry point in
a temporary folder, in their order, with a small outside method defined here in place of the README's
``my_lora:MyLoRA`` and with flags that make them test-sized (appended, never replacing the README's own):
a private cache, a tuning sweep of one learning rate over two rungs, and one concept for the trajectory
run. The README's own numbers (full sweep, eight concepts) are measured by hand and quoted there.
"""

from __future__ import annotations

import csv
import json
import re
import shlex
from pathlib import Path
from typing import Any, ClassVar

import pytest

from baselines.lora import DreamBoothLoRA
from benchmark.cli import main
from tests.rows_support import read_rows

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Compare your method with Infusion"
README_METHOD, README_NAME = "my_lora:MyLoRA", "my-lora"
SMALL_METHOD, SMALL_NAME = "tests.test_compare_walkthrough:SmallLoRA", "small-lora"
CONCEPT = "striped-heart"


class SmallLoRA(DreamBoothLoRA):
    """The test's outside method: the built-in LoRA's code at rank and alpha 8, under its own name."""

    name: ClassVar[str] = SMALL_NAME

    def resolve_config(self, config: Any = None) -> dict[str, Any]:
        cfg = super().resolve_config(config)
        cfg.update(rank=8, lora_alpha=8)
        return cfg


def _section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert SECTION in text, f"README.md has no {SECTION!r} section"
    return text.split(SECTION, 1)[1].split("\n## ", 1)[0]


def _block(section: str, marker: str, language: str) -> str:
    after = section.split(f"<!-- {marker} -->", 1)
    assert len(after) == 2, f"README's walk-through has no <!-- {marker} --> block"
    found = re.match(rf"\s*```{language}\n(.*?)```", after[1], re.S)
    assert found, f"the <!-- {marker} --> marker is not followed by a ```{language} block"
    return found.group(1)


def readme_commands() -> list[list[str]]:
    """The walk-through's commands, as argument lists (comments and blank lines dropped)."""
    lines = [
        ln.split(" #", 1)[0].strip() for ln in _block(_section(), "compare:commands", "bash").splitlines()
    ]
    return [shlex.split(ln) for ln in lines if ln and not ln.startswith("#")]


def test_the_readme_method_is_an_outside_lora_of_rank_eight(tmp_path: Path, monkeypatch: Any) -> None:
    source = _block(_section(), "compare:method", "python")
    (tmp_path / "my_lora.py").write_text(source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    from baselines import load_method

    handle = load_method(README_METHOD)
    assert handle.name == README_NAME and handle.trains
    config = handle.resolve_config({})
    assert (config["rank"], config["lora_alpha"]) == (8, 8)


def _test_sized(args: list[str], cache: Path) -> list[str]:
    """A README command with the test's method and test-sized flags appended."""
    args = [SMALL_NAME if a == README_NAME else a.replace(README_METHOD, SMALL_METHOD) for a in args]
    command = args[1]
    extra = {
        "tune": ["--lrs", "0.008", "--rungs", "0.5,1", "--cache", str(cache), "--no-progress"],
        "run": ["--concepts", CONCEPT, "--cache", str(cache), "--no-progress"],
        "leaderboard": [],
    }
    assert command in extra, f"the walk-through runs an unexpected command: {shlex.join(args)}"
    return args[1:] + extra[command]


def test_every_walkthrough_command_runs_and_shows_the_paired_difference_against_infusion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    commands = readme_commands()
    assert [c[:2] for c in commands] == [
        ["overfit-bench", "tune"],
        ["overfit-bench", "run"],
        ["overfit-bench", "leaderboard"],
    ]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "leaderboard").symlink_to(ROOT / "leaderboard")  # the committed rows, at their README paths
    cache = tmp_path / "cache"
    outputs = []
    for args in commands:
        assert main(_test_sized(args, cache)) == 0, shlex.join(args)
        outputs.append(capsys.readouterr().out)
    tune_out, run_out, board_out = outputs

    # tune: the sweep table, and the choice stored where run finds it
    assert f"tuning protocol of {SMALL_NAME} on toy-tuning" in tune_out
    stored = list((cache / "tuned").rglob("*.json"))
    assert len(stored) == 1
    budget = json.loads(stored[0].read_text())["budget"]
    assert budget["lr"] == 0.008 and budget["steps"] in (50, 100)

    # run: the tuned budget, said on the terminal and recorded in every row; four measured rungs
    assert f"budget {SMALL_NAME}: lr 0.008, {budget['steps']} steps (tuned on toy-tuning" in run_out
    out_dir = Path(commands[1][commands[1].index("--out") + 1])
    rows = [r for r in read_rows(out_dir / "results.jsonl") if r["method"] == SMALL_NAME]
    assert {r["rung"] for r in rows} == {0.25, 0.5, 1.0, 2.0}
    assert {r["concept"] for r in rows} == {CONCEPT}
    assert {r["extra"]["budget"]["source"] for r in rows} == {"tuned"}

    # leaderboard: with the committed rows, and the method's paired difference against infusion
    board_args = commands[2]
    site = tmp_path / board_args[board_args.index("--out") + 1]
    assert f"{SMALL_NAME} minus infusion on toy@2" in board_out
    shown = [ln for ln in board_out.splitlines() if ln.startswith("  Δ subject_dino")]
    # one shared concept: the difference and how many concepts favour it, no interval (fewer than 5)
    assert len(shown) == 1 and re.search(
        r": [+-]\S+ \(n 1 too small: fewer than 5 concepts\) \([01]/1\)$", shown[0]
    )
    with (site / "paired.csv").open(encoding="utf-8") as handle:
        paired = [
            r for r in csv.DictReader(handle) if r["method"] == SMALL_NAME and r["reference"] == "infusion"
        ]
    assert {r["metric"] for r in paired} >= {"subject_dino", "leakage", "lfd"}
    assert all(int(r["n_concepts"]) == 1 for r in paired)  # the one concept it shares with the committed rows
    page = (site / "LEADERBOARD.md").read_text(encoding="utf-8")
    assert f"| {SMALL_NAME} |" in page and "### Paired differences against infusion" in page
