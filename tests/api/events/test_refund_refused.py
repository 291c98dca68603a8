"""A refund the payment provider refuses, end to end (issue 35): a booking paid with
``pm_card_refundFail`` whose event is cancelled. The booking shows the refusal
(``GET /bookings/{id}``), support finds it (``GET /support/bookings?refund_failing=true``), the
event's cancellation retries it pass after pass and then reports it in ``stuck_booking_ids``;
the refund keeps being retried (the booking's change workflow's retry policy), so once the
provider accepts again the booking is refunded, cancelled, and no longer shown as failing.

localstripe cannot refuse a refund (its refunds always succeed), so this runs on the simulated
provider, whose ``pm_card_refundFail`` charges are refused every refund as Stripe's test card
of that name; "the provider accepts again" is that provider told to stop refusing (the only
thing the subclass below adds). The workers run in a namespace of their own, with a short
per-pass wait (``EVENTLY_EVENT_CANCEL_WAIT_SECONDS``) and two passes."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from temporalio.client import Client

from activities.payments import PaymentActivities
from evently.infra.resources import Resources
from evently.invariants import check
from evently.payments.provider import ProviderResult, SimulatedProvider
from tests.support.factories import Account, make_account, make_event
from tests.support.temporal import AppFactory
from workers.main import build_workers
from workflows import common
from workflows.booking.contract import REFUND, REFUND_CHANGE
from workflows.event_cancellation.contract import (
    EventCancellationInput,
    event_cancellation_workflow_id,
)
from workflows.event_cancellation.workflow import EventCancellationWorkflow

WAIT = 90.0  # seconds: generous for a loaded 2-core machine


class RecoveringProvider(SimulatedProvider):
    """The simulated provider, which refuses every refund of a ``pm_card_refundFail`` charge,
    until ``accepting`` is set (the provider fixed, the card's issuer back)."""

    def __init__(self) -> None:
        self.accepting = False
        self.refused = 0

    async def refund(
        self, *, idempotency_key: str, charge_id: str, amount: Decimal, currency: str
    ) -> ProviderResult:
        if self.accepting:
            charge_id = charge_id.replace("sim_chrf_", "sim_ch_", 1)
        result = await super().refund(
            idempotency_key=idempotency_key, charge_id=charge_id, amount=amount, currency=currency
        )
        self.refused += not result.succeeded
        return result


@dataclasses.dataclass
class Stack:
    res: Resources
    temporal: Client
    api: httpx.AsyncClient
    provider: RecoveringProvider


@pytest.fixture
async def stack(
    resources: Resources, ns_client: Client, app_factory: AppFactory
) -> AsyncIterator[Stack]:
    settings = resources.settings.model_copy(update={"event_cancel_wait_seconds": 3.0})
    res = dataclasses.replace(resources, settings=settings)
    provider = RecoveringProvider()
    payments = PaymentActivities(res, ns_client, provider=provider)
    workers = build_workers(
        ns_client,
        res,
        list(common.QUEUES.values()),
        settings,
        replace={REFUND: payments.refund_payment, REFUND_CHANGE: payments.refund_change},
    )
    tasks = [asyncio.create_task(w.run()) for w in workers]
    transport = httpx.ASGITransport(app=app_factory(res, settings, ns_client))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
            yield Stack(res, ns_client, api, provider)
    finally:
        await asyncio.wait_for(
            asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True), 30
        )
        await asyncio.gather(*tasks, return_exceptions=True)


async def _confirmed(s: Stack, buyer: Account, event_id: uuid.UUID, card: str) -> str:
    r = await s.api.post(
        "/api/v1/bookings/reserve",
        json={"event_id": str(event_id), "quantity": 1},
        headers=buyer.headers,
    )
    assert r.status_code == 201, r.text
    booking_id: str = r.json()["booking_id"]
    r = await s.api.post(
        "/api/v1/bookings/confirm",
        json={"booking_id": booking_id, "payment_method": card},
        headers=buyer.headers,
    )
    assert r.status_code == 200, r.text
    return booking_id


async def _booking(s: Stack, buyer: Account, booking_id: str) -> dict[str, Any]:
    r = await s.api.get(f"/api/v1/bookings/{booking_id}", headers=buyer.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _refund_failing(s: Stack, staff: Account, event_id: uuid.UUID) -> list[dict[str, Any]]:
    r = await s.api.get(
        "/api/v1/support/bookings",
        params={"event_id": str(event_id), "refund_failing": "true"},
        headers=staff.headers,
    )
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def _payments(res: Resources, booking_id: str) -> list[tuple[str, str]]:
    async with res.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT kind, status FROM payments WHERE booking_id = :b ORDER BY kind"),
            {"b": booking_id},
        )
        return [(r.kind, r.status) for r in rows]


async def test_a_refused_refund_is_shown_reported_stuck_and_retried_until_it_goes_through(
    stack: Stack, resources: Resources
) -> None:
    s = stack
    buyer = await make_account(resources)
    staff = await make_account(resources, "support")
    event = await make_event(resources, capacity=5, price=Decimal("40.00"))
    refused = await _confirmed(s, buyer, event.id, "pm_card_refundFail")
    fine = await _confirmed(s, buyer, event.id, "pm_card_visa")
    before = await _booking(s, buyer, refused)
    assert (before["refund_failure"], before["refund_failing_since"]) == (None, None)

    handle = await s.temporal.start_workflow(
        EventCancellationWorkflow.run,
        EventCancellationInput(event_id=event.id, requested_by="test", max_passes=2),
        id=event_cancellation_workflow_id(event.id),
        task_queue=common.BOOKING,
    )
    result = await asyncio.wait_for(handle.result(), WAIT)
    # retried on the second pass, then reported; the other booking was cancelled and refunded
    assert result.passes == 2
    assert result.stuck_booking_ids == [uuid.UUID(refused)]
    assert (await _booking(s, buyer, fine))["status"] == "cancelled"
    assert await _payments(resources, fine) == [("charge", "succeeded"), ("refund", "succeeded")]

    # the booking shows it: still confirmed, its refund refused, nothing recorded as returned
    shown = await _booking(s, buyer, refused)
    assert shown["status"] == "confirmed"
    assert shown["refund_failure"] == "refund_failed"
    assert shown["refund_failing_since"] is not None
    assert await _payments(resources, refused) == [("charge", "succeeded")]
    # support sees it, and only it
    (listed,) = await _refund_failing(s, staff, event.id)
    assert listed["id"] == refused
    assert listed["refund_failure"] == "refund_failed"
    assert listed["refund_refusals"] >= 2  # one per pass at least: it was retried
    assert s.provider.refused >= 2
    async with resources.engine.connect() as conn:
        assert await check(conn, event.id) == []

    # the provider accepts again: the refund still being retried goes through
    s.provider.accepting = True
    deadline = time.monotonic() + WAIT
    while (now := await _booking(s, buyer, refused))["status"] != "cancelled":
        assert time.monotonic() < deadline, now
        await asyncio.sleep(0.5)
    assert (now["refund_failure"], now["refund_failing_since"]) == (None, None)
    assert await _payments(resources, refused) == [
        ("charge", "succeeded"),
        ("refund", "succeeded"),
    ]
    assert await _refund_failing(s, staff, event.id) == []  # no longer stuck
    async with resources.engine.connect() as conn:
        assert await check(conn, event.id) == []
