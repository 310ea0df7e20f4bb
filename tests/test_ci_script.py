"""`.ci/run` installs as README's first command does and gates the main job's rung-1 part (docs/GATE.md)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _ci_install_split() -> tuple[str, str]:
    """What `.ci/run` reads from README (the ci:install block) and what it runs of it, by its own shell code."""
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    # from reading README to the split, nothing else (not the chromium install before it)
    part = "readme_block() {" + script.split("readme_block() {", 1)[1].split("rm -rf .venv", 1)[0]
    shell = f"set -eu\ncd {str(ROOT)!r}\n{part}\n" + 'printf "%s\\n%s" "$INSTALL_CMD" "$INSTALL_ONLY"\n'
    out = subprocess.run(
        ["bash", "-c", shell],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT)},
    ).stdout
    full, install = out.split("\n", 1)
    return full, install


def test_ci_runs_readmes_install_verbatim_and_leaves_out_only_the_four_rung_main_job() -> None:
    full, install = _ci_install_split()
    assert full.endswith(" && overfit-bench run") and full.startswith("python3 -m venv .venv")
    assert full == install + " && overfit-bench run"
    assert "pip install" in install and "overfit-bench" not in install
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    # the main job at the tuned budget, then the gate of its rows and the rung rerun against the rung rows
    assert "\noverfit-bench run --rungs 1\n" in script
    assert "overfit-bench check runs/toy/results.jsonl --baseline leaderboard/results/toy.jsonl" in script
    assert "--rungs 0.5,2" in script and "--partial" in script
