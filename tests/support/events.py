"""Venues and events made through the admin API (each answer checked as a deprecated alias of
its organization route), and reads of their rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text

from evently.infra.resources import Resources
from tests.support.factories import Account

ADMIN = "/api/v1/admin"
EVENTS = "/api/v1/events"
ORGS = "/api/v1/organizations"


def assert_deprecated_alias(r: httpx.Response, successor: str | None) -> None:
    """An answer of a deprecated ``/admin`` alias (RFC 9745, RFC 8288): ``Deprecation: true``,
    and ``Link: <successor>; rel="successor-version"`` when the successor is known (None: no
    ``Link``)."""
    assert r.headers.get("deprecation") == "true", r.headers
    if successor is None:
        assert "link" not in r.headers, r.headers
    else:
        assert r.headers.get("link") == f'<{successor}>; rel="successor-version"', r.headers


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def future(days: float = 30, hours: float = 0) -> datetime:
    base = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days, hours=hours)
    return base


def event_body(venue_id: uuid.UUID | str, **over: Any) -> dict[str, Any]:
    starts = future()
    body: dict[str, Any] = {
        "name": unique("Gig"),
        "description": "A night out",
        "venue_id": str(venue_id),
        "event_type": "concert",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=3)).isoformat(),
        "capacity": 100,
        "price": "25.00",
        "currency": "EUR",
    }
    body.update(over)
    return body


async def create_venue(
    client: httpx.AsyncClient, admin: Account, *, capacity: int = 500, city: str | None = None
) -> dict[str, Any]:
    r = await client.post(
        f"{ADMIN}/venues",
        json={
            "name": unique("Hall"),
            "address": "Main st 1",
            "city": city or unique("City"),
            "capacity": capacity,
        },
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    venue = dict(r.json())
    assert_deprecated_alias(r, f"{ORGS}/{venue['organization_id']}/venues")
    return venue


async def create_event(
    client: httpx.AsyncClient,
    admin: Account,
    venue: dict[str, Any] | None = None,
    *,
    publish: bool = False,
    **over: Any,
) -> dict[str, Any]:
    venue = venue or await create_venue(client, admin)
    r = await client.post(
        f"{ADMIN}/events", json=event_body(venue["id"], **over), headers=admin.headers
    )
    assert r.status_code == 201, r.text
    event = dict(r.json())
    assert_deprecated_alias(r, f"{ORGS}/{event['organization_id']}/events")
    if publish:
        r = await client.post(f"{ADMIN}/events/{event['id']}/publish", headers=admin.headers)
        assert r.status_code == 200, r.text
        event = dict(r.json())
        assert_deprecated_alias(
            r, f"{ORGS}/{event['organization_id']}/events/{event['id']}/publish"
        )
    return event


async def event_row(res: Resources, event_id: uuid.UUID | str) -> dict[str, Any] | None:
    async with res.engine.connect() as conn:
        row = (
            await conn.execute(text("SELECT * FROM events WHERE id = :id"), {"id": event_id})
        ).first()
    return None if row is None else dict(row._mapping)


async def count_events_named(res: Resources, name: str) -> int:
    async with res.engine.connect() as conn:
        return int(
            await conn.scalar(text("SELECT count(*) FROM events WHERE name = :n"), {"n": name}) or 0
        )


async def take_seats(
    res: Resources, event_id: uuid.UUID | str, *, held: int = 0, sold: int = 0
) -> None:
    """Move seats out of `available` like an inventory activity would (one conditional
    UPDATE); for tests of capacity rules that need held/sold seats without bookings."""
    async with res.engine.begin() as conn:
        row = await conn.execute(
            text(
                "UPDATE events SET available = available - :n, held = held + :h, sold = sold + :s"
                " WHERE id = :id AND available >= :n RETURNING id"
            ),
            {"id": event_id, "n": held + sold, "h": held, "s": sold},
        )
        assert row.first() is not None


async def count_events_described(res: Resources, description: str) -> int:
    async with res.engine.connect() as conn:
        return int(
            await conn.scalar(
                text("SELECT count(*) FROM events WHERE description = :d"), {"d": description}
            )
            or 0
        )
