"""The storefront's seat map (issue 34, docs/storefront.md "Seat map"): a seated event's plan
drawn on the server as ONE SVG of ``<circle>``s grouped by section and row, coloured by category,
with a legend of each category's price. ``static/seatmap.js`` makes it live (taken seats from
``GET /events/{id}/seats``), pickable (one delegated listener, a roving tabindex: only the seat
in focus is in the tab order) and zoomable (the viewBox).

The markup is compact for a stadium: a circle carries its position and its seat label only; its
section, row and category come from the enclosing ``<g>`` (a circle names its category only
when it differs from its row's). The seat id the API knows is ``"<section>-<row>-<label>"``
(evently/seating.py). An event's plan never changes once it is past its draft, so the drawn
circles are kept per event in this process; the prices (the legend) are read on every page.
"""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass, field
from html import escape
from typing import Any

from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from evently import seating
from evently.errors import EventNotFound, EventNotSeated

SPACING = 10.0  # SVG units between two seats of a row (the plan's own units are scaled to it)
RADIUS = 4
PAD = 12.0
_CACHE: dict[uuid.UUID, Drawn] = {}
_CACHE_MAX = 32


@dataclass(frozen=True)
class Drawn:
    """An event's circles (static once on sale)."""

    body: str  # the <g> sections with their rows' circles
    view_box: str
    categories: list[str]  # the plan's categories, in order of first appearance: class kN
    seats: int


@dataclass(frozen=True)
class LegendItem:
    k: int
    category: str
    price: str | None  # "45.00"; None: no ticket type sells it


@dataclass(frozen=True)
class WaitFor:
    """A choice of the sold-out event's waitlist form: wait for a category's ticket type."""

    ticket_type_id: uuid.UUID
    label: str  # "vip: 80.00 EUR"


@dataclass(frozen=True)
class SeatMap:
    svg: Markup
    legend: list[LegendItem]
    currency: str
    seats: int
    wait_for: list[WaitFor] = field(default_factory=list)


def _num(v: float) -> str:
    return f"{v:.1f}".removesuffix(".0")


def _scale(seats: list[dict[str, Any]]) -> float:
    """SVG units per plan unit: the median gap between neighbours in a row becomes SPACING."""
    gaps: list[float] = []
    prev: dict[str, Any] | None = None
    for s in seats:
        if prev is not None and prev["section"] == s["section"] and prev["row"] == s["row"]:
            gap = ((s["x"] - prev["x"]) ** 2 + (s["y"] - prev["y"]) ** 2) ** 0.5
            if gap > 0:
                gaps.append(gap)
        prev = s
    return SPACING / statistics.median(gaps) if gaps else SPACING


def draw(plan: dict[str, Any]) -> Drawn:
    """The SVG body of ``evently.seating.seating``'s answer (seats ordered by section, row,
    position)."""
    seats: list[dict[str, Any]] = plan["seats"]
    scale = _scale(seats)
    min_x = min((s["x"] for s in seats), default=0.0)
    min_y = min((s["y"] for s in seats), default=0.0)
    # room above each section for its name
    top = PAD + 2 * SPACING
    categories: dict[str, int] = {}
    out: list[str] = []
    width = height = 0.0
    i = 0
    while i < len(seats):
        section = seats[i]["section"]
        j = i
        while j < len(seats) and seats[j]["section"] == section:
            j += 1
        xs = [(s["x"] - min_x) * scale + PAD for s in seats[i:j]]
        ys = [(s["y"] - min_y) * scale + top for s in seats[i:j]]
        out.append(f'<g data-s="{escape(section)}">')
        label_x = (min(xs) + max(xs)) / 2
        out.append(
            f'<text x="{_num(label_x)}" y="{_num(min(ys) - SPACING)}" '
            f'text-anchor="middle" aria-hidden="true">Section {escape(section)}</text>'
        )
        r = i
        while r < j:
            row = seats[r]["row"]
            e = r
            while e < j and seats[e]["row"] == row:
                e += 1
            row_k = categories.setdefault(seats[r]["category"], len(categories))
            out.append(f'<g data-r="{escape(row)}" class="k{row_k}">')
            for n in range(r, e):
                s = seats[n]
                k = categories.setdefault(s["category"], len(categories))
                cx, cy = xs[n - i], ys[n - i]
                width, height = max(width, cx), max(height, cy)
                extra = f' class="k{k}"' if k != row_k else ""
                if s["flags"]:
                    extra += f' data-f="{escape(" ".join(s["flags"]))}"'
                out.append(
                    f'<circle cx="{_num(cx)}" cy="{_num(cy)}" r="{RADIUS}" '
                    f'data-l="{escape(s["label"])}"{extra}/>'
                )
            out.append("</g>")
            r = e
        out.append("</g>")
        i = j
    return Drawn(
        body="".join(out),
        view_box=f"0 0 {_num(width + PAD)} {_num(height + PAD)}",
        categories=list(categories),
        seats=len(seats),
    )


async def seat_map(session: AsyncSession, event_id: uuid.UUID, max_seats: int) -> SeatMap | None:
    """The map of a seated event that is past its draft; None when there is none to show."""
    drawn = _CACHE.get(event_id)
    if drawn is None:
        try:
            plan = await seating.seating(session, event_id)
        except (EventNotFound, EventNotSeated):
            return None
        drawn = draw(plan)
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[event_id] = drawn
    types = await seating.seat_types(session, event_id)
    by_category = {t.category: t for t in types if t.category is not None}
    default = next((t for t in types if t.category is None), None)
    currency = types[0].currency if types else ""
    legend: list[LegendItem] = []
    for k, category in enumerate(drawn.categories):
        t = by_category.get(category, default)
        legend.append(LegendItem(k, category, t.price if t else None))
    svg = (
        f'<svg id="seat-map" class="seat-map" viewBox="{drawn.view_box}" role="group" '
        'aria-labelledby="seat-map-title" aria-describedby="seat-map-help" '
        f'data-currency="{escape(currency)}" data-max="{max_seats}" data-seats="{drawn.seats}">'
        f"{drawn.body}</svg>"
    )
    wait_for = [
        WaitFor(t.ticket_type_id, f"{t.category}: {t.price} {t.currency}")
        for t in types
        if t.category is not None and not t.hidden
    ]
    # every text in it escaped above
    return SeatMap(Markup(svg), legend, currency, drawn.seats, wait_for)
