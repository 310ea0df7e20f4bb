"""The shared writers: Markdown tables, SVG axes, and the sampler keywords every generation call uses."""

from __future__ import annotations

import inspect
import xml.etree.ElementTree as ET

import pytest

from leaderboard.markdown import cell, markdown_table, table_lines
from leaderboard.svg import Axes, AxesStyle, draw_axes


def test_markdown_table_escapes_cells_and_aligns_columns() -> None:
    assert cell("a|b\\c\nd") == "a\\|b\\\\c d"
    text = markdown_table(["name", "n"], [["x|y", "3"], ["z", "10"]], align=["left", "right"])
    assert text == "| name | n |\n|---|---:|\n| x\\|y | 3 |\n| z | 10 |"
    assert table_lines(["a"], []) == ["| a |", "|---|"]
    with pytest.raises(ValueError, match="row 1 has 1 cells for 2 columns"):
        table_lines(["a", "b"], [["1", "2"], ["3"]])
    with pytest.raises(ValueError, match=r"unknown alignment\(s\) \['middle'\]; use left, right, center"):
        table_lines(["a"], [], align=["middle"])


def test_axes_map_data_corners_to_the_plot_area() -> None:
    ax = Axes(10, 20, 200, 100, -1.0, 3.0, 0.0, 5.0)
    assert (ax.px(-1.0), ax.px(3.0), ax.px(1.0)) == (10, 210, 110)
    assert (ax.py(0.0), ax.py(5.0), ax.py(2.5)) == (120, 20, 70)
    assert (ax.right, ax.bottom) == (210, 120)


def test_draw_axes_gives_well_formed_elements_in_drawing_order() -> None:
    ax = Axes(10, 20, 200, 100, 0.0, 1.0, 0.0, 1.0)
    ticks = [(0.0, "0"), (1.0, "1")]
    lines = draw_axes(ax, ticks, ticks, "x <a&b>", "y", title_y=140)
    root = ET.fromstring("<svg>" + "".join(lines) + "</svg>")
    tags = [e.tag for e in root]
    assert tags == ["rect", "line", "text", "line", "text", "line", "text", "line", "text", "text", "text"]
    assert root[-2].text == "x <a&b>" and root[-2].get("y") == "140"  # escaped in, read back as written
    assert [e.get("x1") for e in root if e.tag == "line"][:2] == ["10.00", "210.00"]  # x grid at the ends
    bare = draw_axes(
        ax, ticks, ticks, "x", "y", title_y=140, style=AxesStyle(frame=None, spines='stroke="k"', grid=None)
    )
    bare_root = ET.fromstring("<svg>" + "".join(bare) + "</svg>")
    assert [e.tag for e in bare_root] == ["line", "line", "text", "text", "text", "text", "text", "text"]


def test_one_sampler_keyword_block_fits_both_sampling_calls() -> None:
    from baselines.pipeline import CustomizedPipeline
    from benchmark.settings import settings_for

    toy = settings_for("toy")
    kwargs = toy.sampler_kwargs()
    assert kwargs == {"steps": 12, "guidance": 5.0, "height": 32, "width": 32, "batch_size": 32}
    keyword_only = {
        n
        for n, p in inspect.signature(CustomizedPipeline.generate).parameters.items()
        if p.kind == p.KEYWORD_ONLY
    }
    assert set(kwargs) <= keyword_only  # sample_latents passes its keywords on to generate
