"""Bank transfer (issue 29) on the time-skipping server, with the real BookingWorkflow and
WaitlistWorkflow and the real activities against the real Postgres and Redis: a 3-day window
passes in milliseconds.

- marked paid within the window: confirmed, tickets issued, the confirmation mail queued;
- nobody pays: one reminder a day before the end, then the seats go to the waitlist;
- money marked after the window: confirmed when the seats are still free, else ``refund_due``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from temporalio.client import WorkflowExecutionStatus

from evently import bank_transfer, waitlist
from evently.enums import BookingStatus
from evently.infra.resources import Resources
from tests.support.factories import make_account, make_event
from tests.support.histories import record
from tests.support.temporal import TimeSkipping
from tests.support.waitlist import (
    advance,
    counters,
    eventually,
    invariants_hold,
    kinds,
    row,
    waitlist_settings,
    workers,
)
from workflows.booking import client as booking_client
from workflows.booking.contract import BookingInput, TransferNotice, booking_workflow_id
from workflows.waitlist import client as waitlist_client

DAY = 86_400
WINDOW_DAYS = 3


@pytest.fixture
async def ts(time_skipping: TimeSkipping) -> AsyncIterator[TimeSkipping]:
    ts = waitlist_settings(time_skipping)
    async with workers(ts):
        yield ts


async def _transfer_event(res: Resources, capacity: int) -> uuid.UUID:
    """A published event that takes bank transfers (3 days), its organization's account set."""
    event = await make_event(res, capacity=capacity, price=Decimal("20.00"))
    async with res.engine.begin() as conn:
        await conn.execute(
            text("UPDATE events SET bank_transfer_days = :d WHERE id = :e"),
            {"d": WINDOW_DAYS, "e": event.id},
        )
        await conn.execute(
            text(
                "UPDATE organizations SET bank_account_holder = 'Evently Test Hall', "
                "bank_iban = 'DE89370400440532013000', bank_bic = 'COBADEFFXXX' "
                "WHERE id = (SELECT organization_id FROM events WHERE id = :e)"
            ),
            {"e": event.id},
        )
    return event.id


async def _awaiting(ts: TimeSkipping, event_id: uuid.UUID, qty: int) -> BookingInput:
    """A bank-transfer booking through its workflow (update-with-start, as the API does)."""
    buyer = await make_account(ts.res)
    offer = await bank_transfer.offer(ts.res.engine, event_id)
    assert offer is not None
    data = BookingInput(
        booking_id=uuid.uuid4(),
        event_id=event_id,
        user_id=buyer.id,
        quantity=qty,
        hold_seconds=offer.window_days * DAY,
        bank_transfer=True,
    )
    result = await booking_client.start_booking(ts.client, data, wait_seconds=30)
    assert result.status == BookingStatus.HELD, result
    return data


async def _booking(res: Resources, booking_id: uuid.UUID) -> Any:
    return await row(
        res,
        "SELECT b.*, (SELECT count(*) FROM tickets t WHERE t.booking_id = b.id "
        "AND t.status = 'valid') AS tickets, "
        f"{bank_transfer.SHOWN_STATUS_SQL} AS shown FROM bookings b WHERE b.id = :id",
        id=booking_id,
    )


async def _mark_paid(ts: TimeSkipping, data: BookingInput) -> None:
    await booking_client.mark_transfer_received(
        ts.client, data, TransferNotice(actor="organization:test:user:finance")
    )


async def _finished(ts: TimeSkipping, booking_id: uuid.UUID) -> None:
    handle = ts.client.get_workflow_handle(booking_workflow_id(booking_id))

    async def done() -> bool:
        return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING

    await eventually(done)


async def _reminders(res: Resources, booking_id: uuid.UUID) -> int:
    r = await row(
        res,
        "SELECT count(*) AS n FROM notifications WHERE booking_id = :b "
        "AND kind = 'transfer_reminder'",
        b=booking_id,
    )
    return int(r.n)


async def test_a_transfer_marked_paid_in_the_window_confirms_with_tickets(
    ts: TimeSkipping,
) -> None:
    event_id = await _transfer_event(ts.res, capacity=4)
    data = await _awaiting(ts, event_id, 2)
    b = await _booking(ts.res, data.booking_id)
    assert b.shown == "awaiting_transfer"
    assert bank_transfer.normalize_reference(b.payment_reference.lower()) == b.payment_reference
    assert b.hold_expires_at - b.created_at == timedelta(days=WINDOW_DAYS)
    await advance(ts.env, DAY)  # a day later: still held, no reminder yet
    assert (await _booking(ts.res, data.booking_id)).shown == "awaiting_transfer"
    assert await _reminders(ts.res, data.booking_id) == 0

    await _mark_paid(ts, data)
    await _finished(ts, data.booking_id)
    first_run = (
        await ts.client.get_workflow_handle(booking_workflow_id(data.booking_id)).describe()
    ).run_id
    b = await _booking(ts.res, data.booking_id)
    assert (b.status, b.tickets, b.refund_due) == ("confirmed", 2, False)
    assert "booking_confirmed" in await kinds(ts.res, data.user_id)  # the tickets' mail
    async with ts.res.engine.connect() as conn:
        pays = list(
            await conn.execute(
                text("SELECT kind, provider, amount FROM payments WHERE booking_id = :b"),
                {"b": data.booking_id},
            )
        )
    assert [(p.kind, p.provider, p.amount) for p in pays] == [
        ("charge", "bank_transfer", Decimal("40.00"))
    ]
    assert (await counters(ts.res, event_id))[:3] == (2, 0, 2)
    # finance marking it again changes nothing (a new run finds it confirmed)
    await _mark_paid(ts, data)
    await _finished(ts, data.booking_id)
    assert (await _booking(ts.res, data.booking_id)).tickets == 2
    await invariants_hold(ts.res, event_id)
    await record(
        ts.client,
        booking_workflow_id(data.booking_id),
        "booking-bank-transfer-confirmed",
        run_id=first_run,
    )


async def test_the_window_ends_unpaid_reminded_once_seats_to_the_waitlist_late_money(
    ts: TimeSkipping,
) -> None:
    res = ts.res
    event_id = await _transfer_event(res, capacity=2)
    data = await _awaiting(ts, event_id, 2)  # sold out now
    first_run = (
        await ts.client.get_workflow_handle(booking_workflow_id(data.booking_id)).describe()
    ).run_id
    waiter = await make_account(res)
    async with res.sessionmaker() as s, s.begin():
        joined = await waitlist.join(
            s, user_id=waiter.id, event_id=event_id, quantity=2, max_quantity=10
        )
    if joined.pooled:
        await waitlist_client.poke(ts.client, event_id, offer_seconds=600)

    # two days on: the reminder, once
    await advance(ts.env, 2 * DAY + 60, booking_workflow_id(data.booking_id))
    await eventually(lambda: _reminders(res, data.booking_id))
    assert (await _booking(res, data.booking_id)).shown == "awaiting_transfer"
    # the window's end: released, the seats offered to the waitlist
    await advance(ts.env, DAY, booking_workflow_id(data.booking_id))
    await _finished(ts, data.booking_id)
    b = await _booking(res, data.booking_id)
    assert (b.status, b.ended_by, b.tickets) == ("expired", "transfer-window", 0)
    assert await _reminders(res, data.booking_id) == 1  # sent once, never again

    async def offered() -> bool:
        return "waitlist_offer" in await kinds(res, waiter.id)

    await eventually(offered)
    await record(
        ts.client,
        booking_workflow_id(data.booking_id),
        "booking-bank-transfer-expired",
        run_id=first_run,
    )

    # the money arrives now, the seats are with the waitlist: refund_due for finance
    await _mark_paid(ts, data)

    async def settled() -> Any:
        b = await _booking(res, data.booking_id)
        return b if b.shown == "refund_due" else None

    b = await eventually(settled)
    assert (b.status, b.tickets) == ("expired", 0)
    await _finished(ts, data.booking_id)
    await invariants_hold(res, event_id)
    await record(
        ts.client, booking_workflow_id(data.booking_id), "booking-bank-transfer-late-refund-due"
    )


async def test_money_after_the_window_with_seats_still_free_confirms(ts: TimeSkipping) -> None:
    res = ts.res
    event_id = await _transfer_event(res, capacity=5)
    data = await _awaiting(ts, event_id, 2)
    await advance(ts.env, WINDOW_DAYS * DAY + 60, booking_workflow_id(data.booking_id))
    await _finished(ts, data.booking_id)
    assert (await _booking(res, data.booking_id)).status == "expired"
    assert (await counters(res, event_id))[:3] == (5, 0, 0)

    await _mark_paid(ts, data)

    async def confirmed() -> Any:
        b = await _booking(res, data.booking_id)
        return b if b.status == "confirmed" else None

    b = await eventually(confirmed)
    assert (b.tickets, b.refund_due) == (2, False)
    assert (await counters(res, event_id))[:3] == (3, 0, 2)
    await _finished(ts, data.booking_id)
    await invariants_hold(res, event_id)
    await record(
        ts.client, booking_workflow_id(data.booking_id), "booking-bank-transfer-late-confirmed"
    )
