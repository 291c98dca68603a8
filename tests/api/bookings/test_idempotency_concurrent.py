"""One Idempotency-Key sent many times at once (issue 35): the README's "never holds twice"
under concurrency, not only one request after another."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import text

from evently.infra.resources import Resources
from evently.invariants import check
from tests.factories import make_account, make_event

pytestmark = pytest.mark.usefixtures("running_workers")


async def test_twenty_requests_with_one_key_at_once_hold_once_and_get_one_answer(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=10)
    headers = {**buyer.headers, "Idempotency-Key": f"k-{uuid.uuid4()}"}
    body = {"event_id": str(event.id), "quantity": 3}
    answers = await asyncio.gather(
        *(client.post("/api/v1/bookings/reserve", json=body, headers=headers) for _ in range(20))
    )
    assert {r.status_code for r in answers} == {201}, [r.text for r in answers]
    seen = {
        (a["booking_id"], a["status"], a["amount"], a["hold_expires_at"])
        for a in (r.json() for r in answers)
    }
    assert len(seen) == 1, seen
    async with resources.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT id, quantity, status FROM bookings WHERE event_id = :e"),
                {"e": event.id},
            )
        ).all()
        counters = (
            await conn.execute(
                text("SELECT available, held, sold FROM events WHERE id = :e"), {"e": event.id}
            )
        ).one()
        assert await check(conn, event.id) == []
    [(booking_id, *_)] = seen
    assert [(str(r.id), r.quantity, r.status) for r in rows] == [(booking_id, 3, "held")]
    assert tuple(counters) == (7, 3, 0)
