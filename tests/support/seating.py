"""Seated events for tests (issue 34): a plan of sections of rows, attached to a draft that is
then published, straight through the core (evently/seating.py)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import text

from evently import seating
from evently.db.models import DEFAULT_ORGANIZATION_ID, Event
from evently.infra.resources import Resources
from tests.support.factories import make_event


def plan_body(
    sections: int, rows: int, per_row: int, *, categories: list[str] | None = None
) -> dict[str, Any]:
    """A plan: sections A, B, ... of ``rows`` rows of ``per_row`` seats; the section's category
    is ``categories[i]`` (default: all "std")."""
    cats = categories or ["std"] * sections
    return {
        "name": "Hall",
        "sections": [
            {
                "name": chr(ord("A") + s),
                "rows": [
                    {
                        "label": str(r + 1),
                        "seats": [
                            {
                                "label": str(k + 1),
                                "x": float(k + s * (per_row + 5)),
                                "y": float(r),
                                "category": cats[s],
                            }
                            for k in range(per_row)
                        ],
                    }
                    for r in range(rows)
                ],
            }
            for s in range(sections)
        ],
    }


async def make_seated_event(
    res: Resources,
    body: dict[str, Any],
    *,
    prices: dict[str, str] | None = None,
    publish: bool = True,
) -> Event:
    """A seated event of the default organization selling ``body``'s plan; ``prices``: one
    ticket type per category (else the default type sells every seat)."""
    parsed = seating.parse_json(body)
    event = await make_event(res, capacity=len(parsed.seats), status="draft", price=Decimal("10"))
    async with res.sessionmaker() as session, session.begin():
        plan_id, _ = await seating.create_plan(
            session, DEFAULT_ORGANIZATION_ID, event.venue_id, parsed
        )
        await seating.attach_plan(session, event.id, plan_id)
        for i, (category, price) in enumerate((prices or {}).items()):
            await session.execute(
                text(
                    "INSERT INTO ticket_types (id, event_id, name, price, currency, position, "
                    "seat_category) VALUES (gen_random_uuid(), :e, :n, :p, 'EUR', :i, :c)"
                ),
                {
                    "e": event.id,
                    "n": category.title(),
                    "p": Decimal(price),
                    "i": i + 1,
                    "c": category,
                },
            )
        if publish:
            await session.execute(
                text("UPDATE events SET status = 'published', published_at = now() WHERE id = :e"),
                {"e": event.id},
            )
    return event
