"""Render ``index.html`` in headless Chromium: the script runs, the table sorts, the plots are drawn."""

from __future__ import annotations

import re
import struct
import subprocess
from pathlib import Path

import pytest

from leaderboard import build_leaderboard, write_leaderboard
from leaderboard.demo import demo_rows
from leaderboard.rows import parse_row
from leaderboard.screenshot import chromium_flags, find_chromium, screenshot

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium not installed (Debian: apt-get install -y chromium)"
)


def _flags(profile: Path) -> list[str]:
    return chromium_flags(profile)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("board")
    rows = [parse_row(r, f"demo:{i}") for i, r in enumerate(demo_rows(), 1)]
    write_leaderboard(build_leaderboard(rows), out)
    return out / "index.html"


def _dump_dom(page: Path, tmp_path: Path, fragment: str = "") -> str:
    assert CHROMIUM is not None
    cmd = [CHROMIUM, *_flags(tmp_path / "profile"), "--virtual-time-budget=3000", "--dump-dom"]
    done = subprocess.run([*cmd, page.as_uri() + fragment], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _board_methods(dom: str) -> list[str]:
    board = dom[dom.index('<table class="board sortable">') :]
    board = board[: board.index("</table>")]
    return re.findall(r'<tr(?: class="reference")? data-method="([^"]+)"', board)


def test_page_renders_with_table_and_plots(page: Path, tmp_path: Path) -> None:
    dom = _dump_dom(page, tmp_path)
    assert 'data-sort-ready="1"' in dom  # the inline script ran without error
    assert _board_methods(dom) == [
        "custom-diffusion@1",
        "dreambooth@1",
        "dreambooth-lora@1",
        "infusion@1",
        "textual-inversion@1",
        "base@1",
        "real@1",
    ]
    assert len(re.findall(r'<svg class="plot" data-plot="agnostic-vs-fidelity"', dom)) == 1
    assert len(re.findall(r'<svg class="plot" data-plot="fidelity"', dom)) == 1
    assert len(re.findall(r'<g class="point"', dom)) == 6 + 6  # real has neither lfd nor clip_t


def test_sorting_follows_metric_orientation(page: Path, tmp_path: Path) -> None:
    # w2 is lower-is-better: the first click puts the lowest W2 of a ranked method first; the reference
    # rows are never ranked (the base model's W2 is 0 by construction) and sort last, in their order
    by_w2 = _board_methods(_dump_dom(page, tmp_path, "#sort=w2@1"))
    assert by_w2[-2:] == ["base@1", "real@1"] and by_w2[0] not in ("base@1", "real@1")
    assert by_w2[-3] == "dreambooth@1"  # the highest W2 of the ranked methods
    # dino is higher-is-better: the highest ranked method first, the references (real photos too) last
    by_dino = _board_methods(_dump_dom(page, tmp_path, "#sort=dino@1"))
    assert by_dino[-2:] == ["base@1", "real@1"] and by_dino[0] not in ("base@1", "real@1")
    assert 'aria-sort="descending"' in _dump_dom(page, tmp_path, "#sort=dino@1")


def test_screenshot_is_not_blank(page: Path, tmp_path: Path) -> None:
    from benchmark.io import open_rgb

    assert CHROMIUM is not None
    shot = screenshot(page, tmp_path / "shot.png", width=1280, height=1300, browser=CHROMIUM)
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (1280, 1300)
    colors = open_rgb(shot).getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 50  # text, table shading and coloured plot markers
    white = sum(count for count, rgb in colors if rgb == (255, 255, 255))
    assert white < 0.97 * 1280 * 1300


def test_a_method_that_did_not_learn_sorts_last_on_overfitting(tmp_path: Path) -> None:
    from leaderboard.demo import demo_rows as rows_of_demo

    rows = list(rows_of_demo())
    base = {r["concept"]: r for r in rows if r["method"] == "base" and r["metric"] == "subject_dino"}
    copies = []  # "noop": the base model's subject_dino on every concept, the lowest W2 of any method
    for r in rows:
        if r["method"] == "base" and r["metric"] in ("subject_dino", "w2"):
            copies.append(
                {
                    **r,
                    "method": "noop",
                    "value": base[r["concept"]]["value"] if r["metric"] == "subject_dino" else 0.0,
                }
            )
    write_leaderboard(build_leaderboard([parse_row(r, "t") for r in rows + copies]), tmp_path / "b")
    by_w2 = _board_methods(_dump_dom(tmp_path / "b" / "index.html", tmp_path, "#sort=w2@1"))
    # not ranked (the method that did not learn, then the reference rows): last, like a missing value
    assert by_w2[-3:] == ["noop@1", "base@1", "real@1"]
