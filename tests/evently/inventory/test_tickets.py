"""The seat statements issue and revoke tickets (evently/inventory/seats.py), straight against
Postgres: confirm issues one per seat exactly once, the late-payment confirm too, the release of
a confirmed booking revokes them; a release while somebody waits keeps its seats for the
waitlist and says how many."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from evently import waitlist
from evently.enums import BookingStatus, LateSettlement
from evently.infra.resources import Resources
from evently.invariants import check
from evently.inventory import seats
from tests.support.factories import make_account, make_event


async def _pay(conn: AsyncConnection, booking_id: uuid.UUID, kind: str, amount: Decimal) -> None:
    await conn.execute(
        text(
            """INSERT INTO payments (id, booking_id, kind, status, provider, provider_payment_id,
               idempotency_key, amount, currency)
               VALUES (:id, :b, :kind, 'succeeded', 'test', :pid, :key, :amount, 'EUR')"""
        ),
        {
            "id": uuid.uuid4(),
            "b": booking_id,
            "kind": kind,
            "pid": f"test_{uuid.uuid4().hex}",
            "key": f"test:{uuid.uuid4()}",
            "amount": amount,
        },
    )


async def _tickets(conn: AsyncConnection, booking_id: uuid.UUID) -> list[Any]:
    rows = await conn.execute(
        text("SELECT seat, status FROM tickets WHERE booking_id = :b ORDER BY seat"),
        {"b": booking_id},
    )
    return [tuple(r) for r in rows]


async def _hold(
    conn: AsyncConnection, event_id: uuid.UUID, user_id: uuid.UUID, n: int
) -> uuid.UUID:
    booking_id = uuid.uuid4()
    held, _ = await seats.reserve(
        conn,
        booking_id=booking_id,
        event_id=event_id,
        user_id=user_id,
        quantity=n,
        hold_seconds=300,
        workflow_id=f"booking-{booking_id}",
    )
    assert held.status == BookingStatus.HELD
    return booking_id


async def test_confirm_issues_tickets_once_and_release_revokes_them(resources: Resources) -> None:
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=10, price=Decimal("5.00"))
    engine = resources.engine.execution_options(isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        a = await _hold(conn, event.id, buyer.id, 2)
        b = await _hold(conn, event.id, buyer.id, 3)
        await _pay(conn, a, "charge", Decimal("10.00"))
        await _pay(conn, b, "charge", Decimal("15.00"))
        assert await seats.confirm(conn, b) is not None
        assert await seats.confirm(conn, a) is not None
        assert await seats.confirm(conn, a) is None  # a retried activity issues nothing more
        assert await _tickets(conn, b) == [(1, "valid"), (2, "valid"), (3, "valid")]
        assert await _tickets(conn, a) == [(4, "valid"), (5, "valid")]
        issued = await conn.scalar(
            text("SELECT tickets_issued FROM events WHERE id = :e"), {"e": event.id}
        )
        assert issued == 5
        assert await check(conn, event.id) == []

        await _pay(conn, a, "refund", Decimal("10.00"))
        released = await seats.release(
            conn,
            a,
            from_status=BookingStatus.CONFIRMED,
            to_status=BookingStatus.CANCELLED,
            actor="test",
            reason="test",
        )
        assert released is not None
        assert await _tickets(conn, a) == [(4, "revoked"), (5, "revoked")]
        assert await _tickets(conn, b) == [(1, "valid"), (2, "valid"), (3, "valid")]
        assert await check(conn, event.id) == []


async def test_a_late_payment_that_confirms_issues_tickets_and_a_notice(
    resources: Resources,
) -> None:
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=10, price=Decimal("5.00"))
    engine = resources.engine.execution_options(isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        booking = await _hold(conn, event.id, buyer.id, 2)
        await seats.release(
            conn,
            booking,
            from_status=BookingStatus.HELD,
            to_status=BookingStatus.EXPIRED,
            actor="timer",
            reason="hold expired",
        )
        await _pay(conn, booking, "charge", Decimal("10.00"))
    async with resources.engine.begin() as conn:
        outcome, counters = await seats.settle_late_payment(conn, booking)
    assert outcome == LateSettlement.CONFIRMED
    assert counters is not None
    async with resources.engine.begin() as conn:
        again, _ = await seats.settle_late_payment(conn, booking)  # a redelivered webhook
    assert again == LateSettlement.CONFIRMED
    async with resources.engine.connect() as conn:
        assert await _tickets(conn, booking) == [(1, "valid"), (2, "valid")]
        kinds = (
            await conn.execute(
                text("SELECT kind FROM notifications WHERE booking_id = :b ORDER BY kind"),
                {"b": booking},
            )
        ).scalars()
        assert list(kinds) == ["booking_confirmed", "hold_expired"]
        assert await check(conn, event.id) == []


async def test_a_release_while_somebody_waits_keeps_the_seats_for_the_waitlist(
    resources: Resources,
) -> None:
    buyer, waiting = await make_account(resources), await make_account(resources)
    event = await make_event(resources, capacity=3, price=Decimal("5.00"))
    engine = resources.engine.execution_options(isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        first = await _hold(conn, event.id, buyer.id, 1)
        second = await _hold(conn, event.id, buyer.id, 2)
        released = await seats.release(
            conn,
            first,
            from_status=BookingStatus.HELD,
            to_status=BookingStatus.EXPIRED,
            actor="timer",
            reason="hold expired",
        )
        assert released is not None
        assert (released.to_waitlist, released.available, released.held) == (0, 1, 2)
        third = await _hold(conn, event.id, buyer.id, 1)  # sold out again
    async with resources.sessionmaker() as session, session.begin():
        await waitlist.join(
            session, user_id=waiting.id, event_id=event.id, quantity=1, max_quantity=10
        )
    async with engine.connect() as conn:
        released = await seats.release(
            conn,
            second,
            from_status=BookingStatus.HELD,
            to_status=BookingStatus.CANCELLED,
            actor="buyer",
            reason="changed plans",
        )
        # the 2 seats stay held, in the waitlist's pool, never public meanwhile
        assert released is not None
        assert (released.to_waitlist, released.available, released.held) == (2, 0, 3)
        pool = await conn.scalar(
            text("SELECT waitlist_pool FROM events WHERE id = :e"), {"e": event.id}
        )
        assert pool == 2
        assert await check(conn, event.id) == []
        assert third
