"""Hand-written inline SVG scatter plots (no plotting library, no external resources).

Each point is one method's mean over concepts, with its cluster-t interval as whiskers on both axes (none where
there were too few concepts for one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Any

from .aggregate import Group, MethodKey, Section
from .format import (
    STRUCTURAL_NOTE,
    decimals_for,
    displayed,
    fmt,
    interval_text,
    structural,
    unranked_note,
)
from .svg import Axes, AxesStyle, draw_axes


@dataclass(frozen=True)
class PlotSpec:
    """A scatter plot of one metric against another, per method; its axes are the metrics whose specs
    name this plot (``MetricSpec.plots``)."""

    slug: str
    title: str
    caption: str

    @property
    def x(self) -> str:
        return self._axes().get("x", "")

    @property
    def y(self) -> str:
        return self._axes().get("y", "")

    def _axes(self) -> dict[str, str]:
        from metrics.spec import plot_axes

        return plot_axes(self.slug)


PLOTS: tuple[PlotSpec, ...] = (
    PlotSpec(
        slug="specific-vs-fidelity",
        title="Concept-specific overfitting vs subject fidelity",
        caption="Concept-specific overfitting ({y}, y) against subject fidelity ({x}, x) at the tuned budget; "
        "the base model learned nothing and sits at the low-fidelity end, not in a corner that reads as best.",
    ),
    PlotSpec(
        slug="agnostic-vs-fidelity",
        title="Concept-agnostic overfitting vs subject fidelity",
        caption="Damage to other concepts ({y}, y) against subject fidelity ({x}, x) at the tuned budget.",
    ),
    PlotSpec(
        slug="fidelity",
        title="Subject vs prompt fidelity",
        caption="Subject fidelity ({x}, x) against prompt fidelity ({y}, y).",
    ),
)
"""The plots on the page. Axes and orientation come from the metric specs."""

PALETTE: tuple[str, ...] = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#c9a227",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)

WIDTH, HEIGHT = 480, 380
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 34, 56
# the trajectory figures are standalone files (no page stylesheet): their axes carry inline styles
FIGURE_AXES = AxesStyle(
    frame='fill="none" stroke="#999"',
    grid='stroke="#eee"',
    tick='font-size="11" fill="#555"',
    title='font-size="12"',
)


def nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Round tick positions (1, 2 or 5 × 10^k apart) covering ``[low, high]``.

    Returns:
        Ticks in increasing order, all inside ``[low, high]`` (at least one when low < high).
    """
    span = high - low
    if span <= 0:
        return [low]
    raw = span / target
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = magnitude
    for mult in (1.0, 2.0, 5.0, 10.0):
        step = mult * magnitude
        if span / step <= target:
            break
    first = math.ceil(low / step - 1e-9)
    ticks = []
    k = first
    while k * step <= high + step * 1e-9:
        ticks.append(k * step)
        k += 1
    return ticks


def _extent(values: list[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if high == low:
        pad = abs(low) * 0.1 or 1.0
        return low - pad, high + pad
    pad = (high - low) * 0.08
    return low - pad, high + pad


def _n(value: float) -> str:
    return f"{value:.2f}"


def _ticks(low: float, high: float) -> list[tuple[float, str]]:
    """:func:`nice_ticks` over ``[low, high]``, each with its label (as many decimals as the spacing needs)."""
    ticks = nice_ticks(low, high)
    digits = decimals_for([ticks[1] - ticks[0]] if len(ticks) > 1 else ticks, 1)
    return [(t, fmt(t, digits)) for t in ticks]


def _axis_label(section: Section, group: Group) -> str:
    title = group.metric_id
    if sum(1 for g in section.groups if g.metric_id == group.metric_id) > 1:
        title += f" [{group.backbone or 'no backbone'}]"
    return f"{title} {group.arrow} ({group.scale.label})"


def render_scatter(
    section: Section,
    plot: PlotSpec,
    xg: Group,
    yg: Group,
    colors: dict[MethodKey, str],
) -> tuple[str, list[str]]:
    """One SVG scatter plot of ``yg`` against ``xg`` for the methods that have both.

    Returns:
        ``(svg, left_out)``: the ``<svg>`` element text and the labels of methods left out because they
        lack one of the two metrics.
    """
    points = []
    left_out = []
    for key in section.methods:
        xs, ys = xg.stat_for(key), yg.stat_for(key)
        if xs is None or ys is None:
            if xs is not None or ys is not None:
                left_out.append(key.label)
            continue
        points.append((key, displayed(xg, xs), displayed(yg, ys), xs.interval.too_few, ys.interval.too_few))

    x0, x1 = _extent([v for _, x, _, _, _ in points for v in x] or [0.0])
    y0, y1 = _extent([v for _, _, y, _, _ in points for v in y] or [0.0])
    ax = Axes(LEFT, TOP, WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM, x0, x1, y0, y1)
    pw, ph, px, py = ax.width, ax.height, ax.px, ax.py

    name = f"{plot.slug}: {xg.metric_id} vs {yg.metric_id}"
    out = [
        f'<svg class="plot" data-plot="{escape(plot.slug)}" data-x="{escape(xg.metric_id)}" '
        f'data-y="{escape(yg.metric_id)}" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(name)}">',
        f"<title>{escape(plot.title)} — {escape(section.label)}</title>",
        f'<text x="{WIDTH / 2}" y="20" class="ptitle" text-anchor="middle">{escape(plot.title)}</text>',
    ]
    xtitle, ytitle = _axis_label(section, xg), _axis_label(section, yg)
    out += draw_axes(ax, _ticks(x0, x1), _ticks(y0, y1), xtitle, ytitle, title_y=HEIGHT - 12)

    right = xg.spec.higher_is_better
    up = yg.spec.higher_is_better
    arrow = {(False, False): "↙", (True, False): "↘", (False, True): "↖", (True, True): "↗"}[(right, up)]
    bx = LEFT + pw - 6 if right else LEFT + 6
    by = TOP + 14 if up else TOP + ph - 6
    anchor = "end" if right else "start"
    out.append(f'<text x="{bx}" y="{by}" text-anchor="{anchor}" class="better">better {arrow}</text>')

    xdec = decimals_for([p[1][0] for p in points])
    ydec = decimals_for([p[2][0] for p in points])
    anchors = [(px(p[1][0]), py(p[2][0])) for p in points]
    labels = _place_labels([p[0].method for p in points], anchors, (LEFT, TOP, LEFT + pw, TOP + ph))
    for (key, (xm, xl, xh), (ym, yl, yh), xfew, yfew), (lx, ly, lanchor) in zip(points, labels, strict=True):
        color = colors[key]
        cx, cy = _n(px(xm)), _n(py(ym))
        tip = (
            f"{key.label}: {xg.metric_id} {interval_text(xm, xl, xh, xfew, xdec)}, "
            f"{yg.metric_id} {interval_text(ym, yl, yh, yfew, ydec)}"
        )
        note = _point_note(section, xg, yg, key)
        if note:
            tip += f" ({note})"
        fill = "#fff" if note else color  # hollow: a reference, or a point that is not ranked
        ranked = "" if note else ' data-ranked="1"'
        out.append(f'<g class="point" data-method="{escape(key.label)}"{ranked}><title>{escape(tip)}</title>')
        if not xfew:  # no whisker where there is no interval
            out.append(
                f'<line x1="{_n(px(xl))}" y1="{cy}" x2="{_n(px(xh))}" y2="{cy}" stroke="{color}" class="ci"/>'
            )
        if not yfew:
            out.append(
                f'<line x1="{cx}" y1="{_n(py(yl))}" x2="{cx}" y2="{_n(py(yh))}" stroke="{color}" class="ci"/>'
            )
        out.append(f'<circle cx="{cx}" cy="{cy}" r="5" fill="{fill}" stroke="{color}" stroke-width="2"/>')
        out.append(
            f'<text x="{_n(lx)}" y="{_n(ly)}" text-anchor="{lanchor}" fill="{color}" class="plabel">{escape(key.method)}</text></g>'
        )
    out.append("</svg>")
    return "\n".join(out), left_out


def _point_note(section: Section, xg: Group, yg: Group, key: MethodKey) -> str:
    """Why a scatter point is drawn hollow and not ranked, or "": a reference row, a method that did not
    learn, or a structural 0 on either axis (LFD of a method that cannot change other prompts)."""
    for group in (xg, yg):
        stat = group.stat_for(key)
        if stat is not None and structural(group, stat):
            return STRUCTURAL_NOTE
    return unranked_note(section, key)


_CHAR_W, _TEXT_H = 6.5, 11.0


def _place_labels(
    texts: list[str], anchors: list[tuple[float, float]], area: tuple[float, float, float, float]
) -> list[tuple[float, float, str]]:
    """Greedy, deterministic label placement: for each point in turn, the first of eight positions around
    it whose box stays inside ``area`` and overlaps no point and no label placed before.

    Returns:
        ``(x, y, text_anchor)`` per label (baseline position for SVG ``<text>``).
    """
    obstacles = [(x - 5.0, y - 5.0, x + 5.0, y + 5.0) for x, y in anchors]
    placed: list[tuple[float, float, float, float]] = []
    result = []
    left, top, right, bottom = area
    for text, (x, y) in zip(texts, anchors, strict=True):
        width = _CHAR_W * len(text)
        candidates = [
            (x + 7, y - 7, "start"),
            (x + 7, y + 15, "start"),
            (x - 7, y - 7, "end"),
            (x - 7, y + 15, "end"),
            (x + 9, y + 4, "start"),
            (x - 9, y + 4, "end"),
            (x, y - 10, "middle"),
            (x, y + 19, "middle"),
        ]
        for step in (1, 2, 3):
            dy = step * (_TEXT_H + 1)
            candidates += [
                (x + 7, y - 7 - dy, "start"),
                (x - 7, y - 7 - dy, "end"),
                (x + 7, y + 15 + dy, "start"),
                (x - 7, y + 15 + dy, "end"),
            ]
        chosen = None
        fallback = None
        for cx, cy, anchor in candidates:
            x0 = cx if anchor == "start" else cx - width if anchor == "end" else cx - width / 2
            box = (x0, cy - _TEXT_H + 2, x0 + width, cy + 2)
            inside = box[0] >= left and box[2] <= right and box[1] >= top and box[3] <= bottom
            if not inside:
                continue
            if fallback is None:
                fallback = (cx, cy, anchor, box)
            clear = all(
                box[2] <= o[0] or box[0] >= o[2] or box[3] <= o[1] or box[1] >= o[3]
                for o in obstacles + placed
            )
            if clear:
                chosen = (cx, cy, anchor, box)
                break
        pick = chosen or fallback or (x + 7, y - 7, "start", (x + 7, y - 16, x + 7 + width, y - 5))
        placed.append(pick[3])
        result.append((pick[0], pick[1], pick[2]))
    return result


def method_colors(section: Section) -> dict[MethodKey, str]:
    """A fixed colour per method, by its position in the section's method order."""
    return {key: PALETTE[i % len(PALETTE)] for i, key in enumerate(section.methods)}


def render_trajectories(headline: Any, metric: str, colors: dict[str, str]) -> str:
    """One SVG: every method's measured trajectory (mean over concepts per measured rung, a dot each) with the
    suite's fidelity on x and ``metric`` on y, the headline levels as dashed lines, the base model as a
    hollow square joined to no curve, the curves of methods that are not ranked (did not learn, or a
    structural 0) dashed with hollow dots, and the Pareto front over the ranked methods' rungs (higher
    fidelity, lower overfitting) as a grey band."""
    from .trajectory import pareto_front, ranked

    curves = []
    for t in headline.trajectories:
        if metric not in t.metrics:
            continue
        fid, val = t.mean_curve(metric)
        pts = [
            (float(f), float(v), r)
            for f, v, r in zip(fid[1:], val[1:], t.rungs[1:], strict=True)
            if f == f and v == v  # measured rungs only: row 0 is the base model
        ]
        curves.append((t.method, pts))
    base = next(
        ((float(f[0]), float(v[0])) for t in headline.trajectories if metric in t.metrics
         for f, v in [t.mean_curve(metric)] if f[0] == f[0] and v[0] == v[0]),
        None,
    )  # fmt: skip
    xs = [p[0] for _, pts in curves for p in pts] + list(headline.levels) + ([base[0]] if base else [])
    ys = [p[1] for _, pts in curves for p in pts] + ([base[1]] if base else []) or [0.0]
    x0, x1 = _extent(xs)
    y0, y1 = _extent(ys)
    ax = Axes(LEFT, TOP, WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM, x0, x1, y0, y1)
    ph, px, py = ax.height, ax.px, ax.py

    title = f"{metric} along training vs {headline.fidelity}"
    out = [
        f'<svg class="plot trajectory" data-plot="trajectory" data-metric="{escape(metric)}" '
        f'width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif">',
        f"<title>{escape(title)} — {escape(headline.suite)}@{escape(headline.suite_version)}</title>",
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>',
        f'<text x="{WIDTH / 2}" y="20" font-size="14" font-weight="600" text-anchor="middle">{escape(title)}</text>',
    ]
    out += draw_axes(
        ax,
        _ticks(x0, x1),
        _ticks(y0, y1),
        f"{headline.fidelity} ↑ (subject fidelity)",
        f"{metric} ↓",
        title_y=HEIGHT - 12,
        style=FIGURE_AXES,
    )
    counted = {t.method for t in ranked(headline.trajectories, metric, headline.unranked)}
    # the front over the rungs the Pareto counts use: no structural zeros, no method that did not learn
    allpts = [(p[0], p[1]) for method, pts in curves if method in counted for p in pts]
    front = sorted((allpts[i] for i in pareto_front(allpts)), key=lambda p: p[0])
    if len(front) > 1:
        path = " ".join(f"{_n(px(x))},{_n(py(y))}" for x, y in front)
        out.append(
            f'<polyline class="pareto" points="{path}" fill="none" stroke="#bbb" stroke-width="9" '
            'stroke-linejoin="round" stroke-linecap="round" opacity="0.6"/>'
        )
    for k, level in enumerate(headline.levels):
        lx = _n(px(level))
        out.append(
            f'<line class="level" x1="{lx}" y1="{TOP}" x2="{lx}" y2="{TOP + ph}" stroke="#333" stroke-dasharray="4 3"/>'
        )
        out.append(
            f'<text x="{lx}" y="{TOP + 12 + 12 * k}" dx="4" font-size="11" fill="#333">level {fmt(level, 3)}</text>'
        )
    if base is not None:
        bx, by = _n(px(base[0])), _n(py(base[1]))
        out.append(
            f'<rect class="base" x="{_n(px(base[0]) - 4)}" y="{_n(py(base[1]) - 4)}" width="8" height="8" '
            f'fill="none" stroke="#333" stroke-width="1.5"><title>base model (not a rung): {headline.fidelity} '
            f"{base[0]:.3g}, {escape(metric)} {base[1]:.3g}</title></rect>"
        )
        out.append(f'<text x="{bx}" y="{by}" dx="7" dy="12" font-size="11" fill="#333">base</text>')
    for method, pts in curves:
        color = colors.get(method, "#333")
        # dashed with hollow dots: not ranked (did not learn, or a structural 0), and not in the band
        note = "" if method in counted else " (not ranked)"
        dash = "" if method in counted else ' stroke-dasharray="5 3"'
        path = " ".join(f"{_n(px(x))},{_n(py(y))}" for x, y, _ in pts)
        out.append(f'<g class="curve" data-method="{escape(method)}">')
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        for x, y, r in pts:
            tip = f"{method} ×{r:g}: {headline.fidelity} {x:.3g}, {metric} {y:.3g}{note}"
            fill = "#fff" if note else color
            out.append(
                f'<circle cx="{_n(px(x))}" cy="{_n(py(y))}" r="3.5" fill="{fill}" stroke="{color}">'
                f"<title>{escape(tip)}</title></circle>"
            )
        if pts:
            x, y, _ = pts[-1]
            out.append(
                f'<text x="{_n(px(x) + 6)}" y="{_n(py(y))}" font-size="11" font-weight="600" fill="{color}">'
                f"{escape(method + note)}</text>"
            )
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)
