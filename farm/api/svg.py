# SPDX-License-Identifier: Apache-2.0
"""Inline SVG plots for the web view: a counter over time (the run against its
baseline) and a posterior's bars. No script, no image request: the page draws itself,
and every text in it (labels come from the store) is escaped here."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 70, 10, 10, 40


def _number(value: float) -> str:
    """A tick label: 1.2M rather than 1234567."""
    for suffix, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def line_plot(
    title: str, lines: Sequence[tuple[str, Sequence[tuple[float, float]], str]]
) -> Markup:
    """``lines``: (label, points, css class); x is hours, y the counter."""
    points = [p for _, pts, _ in lines for p in pts]
    if not points:
        return Markup("")
    x0, x1 = min(x for x, _ in points), max(x for x, _ in points)
    y0, y1 = min(y for _, y in points), max(y for _, y in points)
    x1, y1 = (x1 if x1 > x0 else x0 + 1e-9), (y1 if y1 > y0 else y0 + 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def at(x: float, y: float) -> str:
        px = LEFT + (x - x0) / (x1 - x0) * plot_w
        py = TOP + plot_h - (y - y0) / (y1 - y0) * plot_h
        return f"{px:.1f},{py:.1f}"

    parts = [
        f'<svg class="plot" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<rect class="frame" x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}"/>',
        f'<text class="tick" x="{LEFT - 4}" y="{TOP + 10}" text-anchor="end">{_number(y1)}</text>',
        f'<text class="tick" x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end">'
        f"{_number(y0)}</text>",
        f'<text class="tick" x="{LEFT}" y="{HEIGHT - 22}">{x0 * 60:.1f} min</text>',
        f'<text class="tick" x="{WIDTH - RIGHT}" y="{HEIGHT - 22}" text-anchor="end">'
        f"{x1 * 60:.1f} min</text>",
    ]
    legend_x = LEFT
    for label, pts, css in lines:
        if len(pts) == 1:  # one sample: a dot, as a line of one point is invisible
            cx, cy = at(*pts[0]).split(",")
            parts.append(f'<circle class="{escape(css)}" cx="{cx}" cy="{cy}" r="3"/>')
        elif pts:
            path = " ".join(at(x, y) for x, y in pts)
            parts.append(f'<polyline class="{escape(css)}" points="{path}"/>')
        parts.append(
            f'<text class="legend {escape(css)}" x="{legend_x}" y="{HEIGHT - 4}">'
            f"{escape(label)}</text>"
        )
        legend_x += 12 + 7 * len(label)
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above is escaped


def bars(title: str, values: Sequence[tuple[str, float]], highlight: int | None) -> Markup:
    """Horizontal bars in [0, 1], one per (label, value); ``highlight`` marks one."""
    row = 18
    height = row * len(values) + 4
    parts = [
        f'<svg class="bars" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for i, (label, value) in enumerate(values):
        y = 2 + i * row
        css = "bar lead" if i == highlight else "bar"
        width = max(value, 0.0) * (WIDTH - 260)
        parts.append(
            f'<text class="tick" x="150" y="{y + 12}" text-anchor="end">{escape(label)}</text>'
            f'<rect class="{css}" x="156" y="{y}" width="{width:.1f}" height="{row - 4}"/>'
            f'<text class="tick" x="{160 + width:.1f}" y="{y + 12}">{value:.1%}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above is escaped
