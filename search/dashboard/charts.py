"""Small server-side SVG charts for the dashboard: no JavaScript, no build step."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe


def bar_chart(
    points: Sequence[tuple[datetime, float]],
    *,
    title: str,
    unit: str,
    width: int = 720,
    height: int = 160,
    time_format: str = "%H:%M",
) -> SafeString:
    """Bars over time with a labelled maximum, first and last time, and a tooltip per bar."""
    left, bottom, top = 44, 22, 10
    plot_w, plot_h = width - left - 6, height - bottom - top
    peak = max((value for _, value in points), default=0) or 1
    bar_w = plot_w / max(len(points), 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="none">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 6}" y2="{top + plot_h}" '
        'class="axis"/>',
        f'<text x="{left - 6}" y="{top + 8}" class="tick" text-anchor="end">{_number(peak)}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" class="tick" text-anchor="end">0</text>',
    ]
    for i, (start, value) in enumerate(points):
        h = plot_h * value / peak
        x = left + i * bar_w
        parts.append(
            f'<rect x="{x + 0.5:.1f}" y="{top + plot_h - h:.1f}" width="{max(bar_w - 1, 1):.1f}" '
            f'height="{h:.1f}" class="bar"><title>{start.strftime(time_format)}: '
            f"{_number(value)} {escape(unit)}</title></rect>"
        )
    if points:
        for anchor, x, label in (
            ("start", left, points[0][0].strftime(time_format)),
            ("end", width - 6, "now"),
        ):
            parts.append(
                f'<text x="{x}" y="{height - 6}" class="tick" text-anchor="{anchor}">{label}</text>'
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every interpolated text above is escaped or a number


def _number(value: float) -> str:
    if value >= 10 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.2g}"
