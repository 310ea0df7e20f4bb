"""Every failure a new user can cause gets one clear line and a documented exit code, and loses nothing."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import pytest

from benchmark.cli import build_parser, main
from tests.rows_support import read_rows
from tests.test_extending import _write_suite

DATA = os.environ.get("OVERFIT_BENCH_DATA")


def _run(tmp_path: Path, *extra: str) -> list[str]:
    manifest = _write_suite(tmp_path)
    return [
        "run",
        "--manifest",
        str(manifest),
        "--data-root",
        str(tmp_path / "data"),
        "--no-progress",
        *extra,
    ]


def _one_line(capsys: pytest.CaptureFixture[str], command: str) -> str:
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1, err
    assert err[0].startswith(f"overfit-bench {command}: error: ")
    return err[0]


class FailingFit:
    """An outside method whose fit raises."""

    name = "tests.test_cli_errors:FailingFit"

    def fit(self, concept: Any, pipeline: Any, config: Any, *, seed: int, progress: bool = True) -> Any:
        raise ValueError("learning_rate")

    def load(self, artifact: Any, pipeline: Any) -> Any:  # pragma: no cover - never reached
        raise AssertionError

    def render(self, template: str, concept: Any) -> str:
        return template


def test_a_method_that_raises_is_named_with_concept_and_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = _run(
        tmp_path, "--methods", "base,tests.test_cli_errors:FailingFit", "--cache", str(tmp_path / "c")
    )
    assert main([*args, "--out", str(out)]) == 4
    line = _one_line(capsys, "run")
    assert (
        "method 'tests.test_cli_errors:FailingFit' failed on concept 'vase' in stage fit: ValueError: learning_rate"
        in line
    )
    assert f"traceback in {out / 'errors.log'}" in line
    assert (
        "Traceback" in (out / "errors.log").read_text()
        and "learning_rate" in (out / "errors.log").read_text()
    )
    kept = read_rows(out / "results.jsonl")  # the base model's finished rows are kept
    assert {r["method"] for r in kept} == {"real", "base"}
    # -v prints the traceback as well
    assert main(["-v", *args, "--out", str(out)]) == 4
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_an_outside_method_resolves_from_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mymod_here.py").write_text(
        "from tests.external_method import PrefixMethod\n\nclass Mine(PrefixMethod):\n    name = 'mine'\n"
    )
    monkeypatch.chdir(tmp_path)
    args = _run(tmp_path, "--methods", "mymod_here:Mine", "--cache", str(tmp_path / "c"), "--out", "out")
    assert main(args) == 0
    assert {r["method"] for r in read_rows(tmp_path / "out" / "results.jsonl")} == {"real", "mine"}


def test_environment_problems_are_one_line_and_write_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    out = tmp_path / "run"
    base = _run(tmp_path, "--methods", "base")
    if not torch.cuda.is_available():
        assert main([*base, "--device", "cuda", "--out", str(out), "--cache", str(tmp_path / "c")]) == 3
        assert "no CUDA device" in _one_line(capsys, "run")
        assert not out.exists()  # no run.json left behind
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert main([*base, "--out", str(out), "--cache", str(a_file)]) == 3
    assert "is a file" in _one_line(capsys, "run") and not out.exists()
    assert main([*base, "--out", str(out), "--cache", str(a_file / "below")]) == 3
    assert "is not writable" in _one_line(capsys, "run")
    monkeypatch.setenv("OVERFIT_BENCH_CACHE", str(a_file))
    assert main([*base, "--out", str(out)]) == 3
    assert "$OVERFIT_BENCH_CACHE" in _one_line(capsys, "run")
    monkeypatch.delenv("OVERFIT_BENCH_CACHE")
    assert main([*base, "--out", str(a_file), "--cache", str(tmp_path / "c")]) == 3
    assert f"--out {a_file} is a file" in _one_line(capsys, "run")
    assert a_file.read_text() == "x"  # nothing lost
    missing = tmp_path / "no-such-model"
    assert main([*base, "--model", str(missing), "--out", str(out), "--cache", str(tmp_path / "c")]) == 3
    line = _one_line(capsys, "run")
    assert f"no model at {missing}" in line and "models fetch" not in line


@pytest.mark.skipif(not DATA, reason="OVERFIT_BENCH_DATA is not set (CI sets it to ../shared/datasets)")
def test_missing_photos_say_how_to_fetch_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["run", "--suite", "smoke", "--data-root", str(empty), "--out", str(tmp_path / "run")]
    assert main([*args, "--cache", str(tmp_path / "c"), "--no-progress"]) == 3
    line = _one_line(capsys, "run")
    assert "missing" in line and "overfit-bench data fetch smoke" in line  # what to run, on one line


def test_prompts_lists_the_image_layout(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["prompts", "--manifest", str(_write_suite(tmp_path)), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["file"] for r in rows] == ["vase/0_0.png", "vase/1_0.png"]
    assert rows[1]["template"] == "a {concept} in the snow"
    assert main(["prompts", "--manifest", str(_write_suite(tmp_path)), "--concepts", "vasee"]) == 2
    assert "no concept(s) vasee" in _one_line(capsys, "prompts")


def _walk(parser: argparse.ArgumentParser, path: str) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if not (sub.description or "").strip() and not any(
                    c.dest == name and (c.help or "").strip() for c in action._choices_actions
                ):
                    missing.append(f"{path} {name}: no description")
                missing += _walk(sub, f"{path} {name}")
        elif action.dest != "help" and not (action.help or "").strip():
            missing.append(f"{path}: {'/'.join(action.option_strings) or action.dest} has no help")
    return missing


def test_every_command_and_option_has_help() -> None:
    parser = build_parser()
    assert _walk(parser, "overfit-bench") == []
    for command in ("run", "score", "bench", "metrics", "models", "prompts", "leaderboard", "check"):
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
        assert (sub.description or "").strip(), command
        assert "%%" not in sub.format_help(), command


def test_hub_weights_are_pinned_and_their_commit_is_in_the_backbone_tag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows computed with other weights never share an identity: the tag names the commit loaded."""
    import timm
    from safetensors.torch import save_file

    from benchmark.model_registry import find_model
    from benchmark.settings import settings_for
    from metrics.backbones import BackboneUnavailable, load_dino

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--timm--vit_small_patch16_224.dino"
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    model = timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0)
    save_file(model.state_dict(), str(repo / "snapshots" / commit / "model.safetensors"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert load_dino(weights="dino").weights == f"dino@{commit[:12]}"
    assert load_dino(weights="dino", revision=commit).weights == f"dino@{commit[:12]}"
    other = "f" * 40
    with pytest.raises(BackboneUnavailable, match=f"@{other}"):
        load_dino(weights="dino", revision=other)
    sd15 = settings_for("dreambench")
    assert sd15.model_revision == find_model("sd15").revision == "451f4fe16113bff5a5d2269ed5ad43b0592e9a14"
    assert sd15.extractors["clip"].revision == find_model("clip-vit-b-32").revision


def test_workers_must_be_a_positive_number(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "--workers", "0"])
    assert exc.value.code == 2
    assert "argument --workers: expected a whole number >= 1, got 0" in capsys.readouterr().err


def test_output_into_a_closed_pipe_is_not_a_traceback() -> None:
    import subprocess
    import sys

    code = "import sys; from benchmark.cli import main; sys.exit(main(['prompts', '--suite', 'toy']))"
    # `true` exits without reading: every write of the command meets a closed pipe
    script = f'"{sys.executable}" -c "{code}" | true; exit ${{PIPESTATUS[0]}}'
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr


def test_level_for_a_suite_not_in_the_rows_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from leaderboard.demo import demo_rows

    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in demo_rows()), encoding="utf-8")
    code = main(["leaderboard", str(path), "--out", str(tmp_path / "site"), "--level", "toy=0.5"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--level names suite(s) toy that no row belongs to (suites in the rows: dreambench)" in err
