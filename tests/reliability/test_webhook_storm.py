"""A payment webhook storm: the same 200 payment.succeeded events delivered 3 times each,
concurrently and shuffled, confirm each booking exactly once (one recorded charge, seats
sold once, invariants hold). Runs on the session servers and workers (nothing is killed)."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text

from evently.infra.resources import Resources
from evently.invariants import check
from evently.payments.webhooks import SIGNATURE_HEADER, sign
from tests.support.factories import make_account, make_event

pytestmark = [pytest.mark.reliability, pytest.mark.usefixtures("running_workers")]

N = 200


async def test_webhook_storm_confirms_each_booking_once(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=N, price=Decimal("25.00"))
    sem = asyncio.Semaphore(20)

    async def hold(i: int) -> str:
        for _ in range(20):  # retry a 503 with the same key, as a client would
            async with sem:
                r = await client.post(
                    "/api/v1/bookings/reserve",
                    json={"event_id": str(event.id), "quantity": 1},
                    headers={**buyer.headers, "Idempotency-Key": f"storm-{event.id}-{i}"},
                )
            if r.status_code != 503:
                break
            await asyncio.sleep(0.5)
        assert r.status_code == 201, r.text
        return str(r.json()["booking_id"])

    booking_ids = await asyncio.gather(*(hold(i) for i in range(N)))
    assert len(set(booking_ids)) == N

    secret = resources.settings.payment_webhook_secret
    deliveries = []
    for bid in booking_ids:
        body = json.dumps(
            {
                "id": f"evt_{bid}",
                "type": "payment.succeeded",
                "data": {
                    "booking_id": bid,
                    "amount": "25.00",
                    "currency": "EUR",
                    "payment_id": f"pi_{uuid.UUID(bid).hex}",
                },
            }
        ).encode()
        deliveries += [body] * 3
    random.Random(7).shuffle(deliveries)
    wsem = asyncio.Semaphore(50)

    async def deliver(body: bytes) -> int:
        async with wsem:
            r = await client.post(
                "/api/v1/payments/webhook",
                content=body,
                headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body)},
            )
        assert r.status_code < 500, r.text
        if r.status_code >= 400:
            assert r.headers["content-type"].startswith("application/problem+json")
        return r.status_code

    codes = await asyncio.gather(*(deliver(b) for b in deliveries))
    assert set(codes) == {200}, sorted(set(codes))

    async def confirmed() -> int:
        async with resources.engine.connect() as conn:
            return int(
                await conn.scalar(
                    text(
                        "SELECT count(*) FROM bookings WHERE event_id = :e AND status = 'confirmed'"
                    ),
                    {"e": event.id},
                )
                or 0
            )

    deadline = time.monotonic() + 120
    while await confirmed() < N and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    assert await confirmed() == N
    await asyncio.sleep(1)  # any late duplicate would show up now

    async with resources.engine.connect() as conn:
        charges = (
            await conn.execute(
                text(
                    """SELECT b.id, count(p.id) FILTER (WHERE p.kind = 'charge'
                              AND p.status = 'succeeded') AS charges,
                              count(p.id) FILTER (WHERE p.kind = 'refund') AS refunds
                       FROM bookings b LEFT JOIN payments p ON p.booking_id = b.id
                       WHERE b.event_id = :e GROUP BY b.id"""
                ),
                {"e": event.id},
            )
        ).all()
        assert len(charges) == N
        assert all(c.charges == 1 and c.refunds == 0 for c in charges), charges
        row = (
            await conn.execute(
                text("SELECT available, held, sold FROM events WHERE id = :e"), {"e": event.id}
            )
        ).one()
        assert (row.available, row.held, row.sold) == (0, 0, N)
        processed = await conn.scalar(
            text("SELECT count(*) FROM processed_webhook_events WHERE booking_id = ANY(:ids)"),
            {"ids": [uuid.UUID(b) for b in booking_ids]},
        )
        assert processed == N
        violations = await check(conn, event.id)
    assert not violations, [str(v) for v in violations]
