"""Bookings through the API: request bodies, signed payment webhooks, and polls of the rows."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

from sqlalchemy import text

from evently.infra.resources import Resources
from evently.payments import webhooks


async def counters(res: Resources, event_id: uuid.UUID) -> tuple[int, int, int]:
    async with res.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT available, held, sold FROM events WHERE id = :id"), {"id": event_id}
            )
        ).one()
    return row.available, row.held, row.sold


def reserve_body(event_id: uuid.UUID, quantity: int = 1) -> dict[str, object]:
    return {"event_id": str(event_id), "quantity": quantity}


async def wait_status(res: Resources, booking_id: str, status: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while True:
        async with res.engine.connect() as conn:
            got = await conn.scalar(
                text("SELECT status FROM bookings WHERE id = :id"), {"id": booking_id}
            )
        if got == status:
            return
        assert time.monotonic() < deadline, f"booking is {got}, not {status}"
        await asyncio.sleep(0.05)


def signed(
    res: Resources, payload: object, *, t: int | None = None, secret: str | None = None
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    header = webhooks.sign(secret or res.settings.payment_webhook_secret, body, t)
    return body, {"Evently-Signature": header, "content-type": "application/json"}


def payment_event(booking_id: str, amount: str, event_id: str | None = None) -> dict[str, object]:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex}",
        "type": "payment.succeeded",
        "data": {
            "booking_id": booking_id,
            "amount": amount,
            "currency": "EUR",
            "payment_id": f"pi_{uuid.uuid4().hex[:20]}",
        },
    }
