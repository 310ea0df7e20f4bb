"""SVG axes: one helper draws the plot area, grid, tick labels and axis titles of every hand-written figure
(the leaderboard's scatter plots and trajectory figures, the validity study's W2 figure).

Pure text in, text out; each figure keeps its own marks (points, curves, legends) and styling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape


def num(value: float) -> str:
    """A coordinate as written into SVG (two decimals)."""
    return f"{value:.2f}"


@dataclass(frozen=True)
class Axes:
    """A plot area (``left``, ``top``, ``width``, ``height`` in pixels) and the data ranges it shows:
    ``x0..x1`` left to right, ``y0..y1`` bottom to top."""

    left: float
    top: float
    width: float
    height: float
    x0: float
    x1: float
    y0: float
    y1: float

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def bottom(self) -> float:
        return self.top + self.height

    def px(self, value: float) -> float:
        """The pixel column of data value ``value`` on x."""
        return self.left + (value - self.x0) / (self.x1 - self.x0) * self.width

    def py(self, value: float) -> float:
        """The pixel row of data value ``value`` on y."""
        return self.top + self.height - (value - self.y0) / (self.y1 - self.y0) * self.height


@dataclass(frozen=True)
class AxesStyle:
    """Attributes (SVG attribute text, e.g. ``'class="grid"'``) of each part of the axes; ``None`` or
    ``""`` leaves a part out (``frame``, ``spines``, ``grid``) or unstyled (``tick``, ``title``)."""

    frame: str | None = 'class="frame"'  # a rectangle around the plot area
    spines: str | None = None  # a line along the bottom and one along the left edge
    grid: str | None = 'class="grid"'  # a line across the plot area at each tick
    tick: str = 'class="tick"'
    title: str = 'class="axis"'


def _with(attrs: str | None) -> str:
    return f" {attrs}" if attrs else ""


def draw_axes(
    ax: Axes,
    xticks: Sequence[tuple[float, str]],
    yticks: Sequence[tuple[float, str]],
    xtitle: str,
    ytitle: str,
    *,
    title_y: float,
    style: AxesStyle = AxesStyle(),
) -> list[str]:
    """The SVG elements of the axes: frame or spines, then per x tick its grid line and label, then per y
    tick, then the x title (baseline at ``title_y``) and the y title (rotated, beside the left edge).

    Args:
        xticks, yticks: ``(data value, label)`` per tick; labels and titles are escaped here.

    Returns:
        One element per line, in drawing order.
    """
    out = []
    if style.frame:
        out.append(
            f'<rect x="{ax.left}" y="{ax.top}" width="{ax.width}" height="{ax.height}"{_with(style.frame)}/>'
        )
    if style.spines:
        out.append(
            f'<line x1="{ax.left}" y1="{ax.bottom}" x2="{ax.right}" y2="{ax.bottom}"{_with(style.spines)}/>'
        )
        out.append(
            f'<line x1="{ax.left}" y1="{ax.bottom}" x2="{ax.left}" y2="{ax.top}"{_with(style.spines)}/>'
        )
    tick = _with(style.tick)
    for value, label in xticks:
        x = num(ax.px(value))
        if style.grid:
            out.append(f'<line x1="{x}" y1="{ax.top}" x2="{x}" y2="{ax.bottom}"{_with(style.grid)}/>')
        out.append(f'<text x="{x}" y="{ax.bottom + 16}"{tick} text-anchor="middle">{escape(label)}</text>')
    for value, label in yticks:
        y = num(ax.py(value))
        if style.grid:
            out.append(f'<line x1="{ax.left}" y1="{y}" x2="{ax.right}" y2="{y}"{_with(style.grid)}/>')
        out.append(f'<text x="{ax.left - 6}" y="{y}" dy="4"{tick} text-anchor="end">{escape(label)}</text>')
    title = _with(style.title)
    out.append(
        f'<text x="{ax.left + ax.width / 2}" y="{title_y}"{title} text-anchor="middle">{escape(xtitle)}</text>'
    )
    out.append(
        f'<text transform="translate(16,{ax.top + ax.height / 2}) rotate(-90)"{title} text-anchor="middle">'
        f"{escape(ytitle)}</text>"
    )
    return out
