"""The booking API end to end: real API, real workers, real Postgres/Redis/Temporal."""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text

from evently.resources import Resources
from tests.factories import make_account, make_event

pytestmark = pytest.mark.usefixtures("running_workers")


async def counters(res: Resources, event_id: uuid.UUID) -> tuple[int, int, int]:
    async with res.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT available, held, sold FROM events WHERE id = :id"), {"id": event_id}
            )
        ).one()
    return row.available, row.held, row.sold


async def test_reserve_then_pay_confirms(client: httpx.AsyncClient, resources: Resources) -> None:
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=10, price=Decimal("40.00"))
    r = await client.post(
        "/api/v1/bookings/reserve",
        json={"event_id": str(event.id), "quantity": 2},
        headers=buyer.headers,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "held"
    assert body["amount"] == "80.00"
    assert body["currency"] == "EUR"
    assert body["hold_expires_at"]
    assert body["workflow_id"] == f"booking-{body['booking_id']}"
    assert await counters(resources, event.id) == (8, 2, 0)

    r = await client.post(
        "/api/v1/bookings/confirm",
        json={"booking_id": body["booking_id"], "payment_method": "pm_card_visa"},
        headers=buyer.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "confirmed"
    assert await counters(resources, event.id) == (8, 0, 2)
    got = await client.get(f"/api/v1/bookings/{body['booking_id']}", headers=buyer.headers)
    assert got.json()["status"] == "confirmed"
