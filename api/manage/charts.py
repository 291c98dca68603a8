"""The dashboard's charts as SVG, drawn on the server (no chart library, no script): bars of
sold/held/free per ticket type, and columns over time. Each chart is an ``<svg role="img">``
with a title and every number also written as text, so it reads without colour and to a
screen reader. Presentation attributes only (``fill``): the page's CSP has no inline style."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

SOLD, HELD, FREE = "#1d4ed8", "#f59e0b", "#e5e7eb"
INK = "#111827"


@dataclass(frozen=True)
class TypeBar:
    name: str
    sold: int
    held: int
    free: int


def type_bars(bars: Sequence[TypeBar], *, title: str = "Seats per ticket type") -> Markup:
    """One horizontal bar per type: sold, then held, then free, with the numbers beside."""
    width, label_w, bar_w, row_h = 640, 170, 300, 34
    height = 30 + row_h * max(1, len(bars))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" aria-labelledby="types-title"><title id="types-title">{escape(title)}'
        "</title>",
        f'<text x="0" y="16" font-size="13" fill="{INK}">'
        f'<tspan fill="{SOLD}">■</tspan> sold  <tspan fill="{HELD}">■</tspan> held  '
        f'<tspan fill="#9ca3af">■</tspan> free</text>',
    ]
    for i, bar in enumerate(bars):
        y = 30 + i * row_h
        total = max(1, bar.sold + bar.held + bar.free)
        x = float(label_w)
        parts.append(
            f'<text x="0" y="{y + 17}" font-size="13" fill="{INK}">{escape(bar.name[:24])}</text>'
        )
        for value, colour in ((bar.sold, SOLD), (bar.held, HELD), (bar.free, FREE)):
            w = bar_w * value / total
            if w > 0:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="18" fill="{colour}"/>'
                )
            x += w
        parts.append(
            f'<text x="{label_w + bar_w + 10}" y="{y + 17}" font-size="13" fill="{INK}" '
            f'data-type-sold="{escape(bar.name)}">{bar.sold} sold · {bar.held} held · '
            f"{bar.free} free</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def columns(points: Sequence[tuple[str, float]], *, title: str, unit: str = "") -> Markup:
    """Columns over time (one per hour with activity), the value above each, the hour below."""
    width, height, top, bottom = 640, 200, 24, 36
    if not points:
        return Markup(
            f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} 60" '
            f'width="100%"><title>{escape(title)}</title><text x="0" y="30" font-size="13" '
            f'fill="{INK}">Nothing yet.</text></svg>'
        )
    shown = list(points)[-24:]
    peak = max(v for _, v in shown) or 1
    slot = width / len(shown)
    col_w = max(4.0, slot * 0.6)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%"><title>{escape(title)}</title>'
    ]
    plot = height - top - bottom
    for i, (label, value) in enumerate(shown):
        h = plot * value / peak
        x = i * slot + (slot - col_w) / 2
        y = top + plot - h
        shown_value = f"{value:g}{unit}"
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{col_w:.1f}" height="{h:.1f}" fill="{SOLD}"/>'
            f'<text x="{x + col_w / 2:.1f}" y="{y - 4:.1f}" font-size="11" text-anchor="middle" '
            f'fill="{INK}">{escape(shown_value)}</text>'
            f'<text x="{x + col_w / 2:.1f}" y="{height - 14}" font-size="11" '
            f'text-anchor="middle" fill="{INK}">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
