"""The simulated provider's 3-D Secure card, for development: the same 202 as Stripe, and the
outcome through the generic signed webhook."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from evently.infra.resources import Resources
from tests.support.bookings import counters, payment_event, reserve_body, signed, wait_status
from tests.support.factories import make_account, make_event

pytestmark = pytest.mark.usefixtures("running_workers")


async def test_authentication_required_answers_202_and_the_webhook_confirms(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=3, price=Decimal("12.00"))
    r = await client.post(
        "/api/v1/bookings/reserve", json=reserve_body(event.id), headers=buyer.headers
    )
    booking_id = r.json()["booking_id"]
    pending = await client.post(
        "/api/v1/bookings/confirm",
        json={"booking_id": booking_id, "payment_method": "pm_card_authenticationRequired"},
        headers=buyer.headers,
    )
    assert pending.status_code == 202, pending.text
    body = pending.json()
    assert (body["status"], body["booking_id"]) == ("requires_action", booking_id)
    assert body["client_secret"].endswith("_secret_simulated")
    assert body["hold_expires_at"]
    assert await counters(resources, event.id) == (2, 1, 0)
    raw, headers = signed(resources, payment_event(booking_id, "12.00"))
    done = await client.post("/api/v1/payments/webhook", content=raw, headers=headers)
    assert done.status_code == 200, done.text
    await wait_status(resources, booking_id, "confirmed")
    assert await counters(resources, event.id) == (2, 0, 1)
