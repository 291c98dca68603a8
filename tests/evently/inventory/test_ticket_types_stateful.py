"""Random reserve / pay / cancel-lines / expire / cancel sequences over ticket types and a
promo code (hypothesis, stateful), straight at the seat statements on the real Postgres, with
the invariant checker after every step: per event, per type, per line and per code."""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from evently.enums import BookingStatus
from evently.infra.resources import Resources
from evently.invariants import check
from evently.inventory import seats
from tests.support.factories import make_account, make_event


async def _pay(conn: AsyncConnection, booking_id: uuid.UUID, kind: str, amount: Decimal) -> None:
    await conn.execute(
        text(
            "INSERT INTO payments (id, booking_id, kind, status, provider, provider_payment_id, "
            "idempotency_key, amount, currency) VALUES (gen_random_uuid(), :b, :k, 'succeeded', "
            "'test', :pid, :key, :amount, 'EUR')"
        ),
        {
            "b": booking_id,
            "k": kind,
            "pid": uuid.uuid4().hex,
            "key": uuid.uuid4().hex,
            "amount": amount,
        },
    )


async def test_random_sequences_keep_every_invariant(resources: Resources) -> None:
    buyer = (await make_account(resources)).id
    template = (await make_event(resources, capacity=8, price=Decimal("10"))).id
    # the machine runs in a thread with its own event loop and its own engine (hypothesis
    # drives it synchronously; the session's engine belongs to the test's loop)
    await asyncio.to_thread(_machine, resources.settings.database_url, buyer, template)


_CLONE = text(
    """
INSERT INTO events (id, organization_id, venue_id, name, description, event_type, starts_at,
                    ends_at, capacity, available, held, sold, price, currency, status)
SELECT :id, organization_id, venue_id, name, description, event_type, starts_at, ends_at,
       capacity, capacity, 0, 0, price, currency, 'published'
FROM events WHERE id = :template
"""
)


def _machine(database_url: str, buyer: uuid.UUID, template: uuid.UUID) -> None:
    loop = asyncio.new_event_loop()
    engine = create_async_engine(database_url, isolation_level="AUTOCOMMIT", pool_size=2)

    def run(coro: Any) -> Any:
        return loop.run_until_complete(coro)

    async def execute(fn: Any) -> Any:
        async with engine.connect() as conn:
            return await fn(conn)

    class Sales(RuleBasedStateMachine):
        @initialize()
        def setup(self) -> None:
            async def make() -> None:
                self.buyer = buyer
                self.event = uuid.uuid4()
                self.vip = uuid.uuid4()
                async with engine.connect() as conn:
                    await conn.execute(_CLONE, {"id": self.event, "template": template})
                    await conn.execute(
                        text(
                            "INSERT INTO ticket_types (id, event_id, name, price, currency, "
                            "capacity, position) VALUES (:id, :e, 'VIP', 25, 'EUR', 3, 1)"
                        ),
                        {"id": self.vip, "e": self.event},
                    )
                    await conn.execute(
                        text(
                            "INSERT INTO promo_codes (id, event_id, code, percent_off, max_uses) "
                            "VALUES (gen_random_uuid(), :e, 'P', 20, 2)"
                        ),
                        {"e": self.event},
                    )

            run(make())
            self.held: list[uuid.UUID] = []
            self.confirmed: list[uuid.UUID] = []
            self.changes = 0

        @rule(
            default=st.integers(0, 3),
            vip=st.integers(0, 2),
            promo=st.booleans(),
        )
        def reserve(self, default: int, vip: int, promo: bool) -> None:
            lines = [(t, q) for t, q in ((None, default), (self.vip, vip)) if q]
            if not lines:
                return
            booking_id = uuid.uuid4()

            async def go(conn: AsyncConnection) -> Any:
                got, _ = await seats.reserve(
                    conn,
                    booking_id=booking_id,
                    event_id=self.event,
                    user_id=self.buyer,
                    quantity=0,
                    hold_seconds=300,
                    workflow_id=f"booking-{booking_id}",
                    lines=lines,
                    promo_code="p" if promo else None,
                )
                return got

            if run(execute(go)).status == BookingStatus.HELD:
                self.held.append(booking_id)

        @precondition(lambda self: self.held)
        @rule(i=st.integers(0, 100))
        def pay(self, i: int) -> None:
            booking_id = self.held.pop(i % len(self.held))

            async def go(conn: AsyncConnection) -> None:
                amount = await conn.scalar(
                    text("SELECT amount FROM bookings WHERE id = :b"), {"b": booking_id}
                )
                await _pay(conn, booking_id, "charge", amount)
                assert await seats.confirm(conn, booking_id) is not None

            run(execute(go))
            self.confirmed.append(booking_id)

        @precondition(lambda self: self.held)
        @rule(i=st.integers(0, 100), twice=st.booleans())
        def expire(self, i: int, twice: bool) -> None:
            booking_id = self.held.pop(i % len(self.held))

            async def go(conn: AsyncConnection) -> None:
                for _ in range(2 if twice else 1):  # a retried release changes nothing
                    await seats.release(
                        conn,
                        booking_id,
                        from_status=BookingStatus.HELD,
                        to_status=BookingStatus.EXPIRED,
                        actor="timer",
                        reason="hold expired",
                    )

            run(execute(go))

        @precondition(lambda self: self.confirmed)
        @rule(i=st.integers(0, 100), n=st.integers(1, 2), twice=st.booleans())
        def cancel_lines(self, i: int, n: int, twice: bool) -> None:
            booking_id = self.confirmed[i % len(self.confirmed)]

            async def go(conn: AsyncConnection) -> None:
                line = (
                    await conn.execute(
                        text(
                            "SELECT ticket_type_id, quantity - cancelled AS active FROM "
                            "booking_lines WHERE booking_id = :b ORDER BY ticket_type_id LIMIT 1"
                        ),
                        {"b": booking_id},
                    )
                ).one()
                total = await conn.scalar(
                    text("SELECT quantity FROM bookings WHERE id = :b"), {"b": booking_id}
                )
                q = min(n, line.active)
                if q == 0 or q >= total:  # a whole cancellation is the other rule
                    return
                self.changes += 1
                await conn.execute(
                    text(
                        "INSERT INTO booking_changes (booking_id, change_no, lines, quantity, "
                        "refund_amount, status, actor, reason) VALUES (:b, :n, "
                        "CAST(:lines AS jsonb), :q, 0, 'refunded', 'test', 'test')"
                    ),
                    {
                        "b": booking_id,
                        "n": self.changes,
                        "q": q,
                        "lines": json.dumps(
                            [{"ticket_type_id": str(line.ticket_type_id), "quantity": q}]
                        ),
                    },
                )
                for _ in range(2 if twice else 1):
                    await seats.cancel_lines(conn, booking_id, self.changes)

            run(execute(go))

        @precondition(lambda self: self.confirmed)
        @rule(i=st.integers(0, 100))
        def cancel(self, i: int) -> None:
            booking_id = self.confirmed.pop(i % len(self.confirmed))

            async def go(conn: AsyncConnection) -> None:
                # the whole refund gives back the charge less every partial refund (like
                # api/bookings: what reconciles with the invoice less its credit notes)
                left = await conn.scalar(
                    text(
                        "SELECT COALESCE(sum(CASE WHEN kind = 'charge' THEN amount "
                        "ELSE -amount END), 0) FROM payments WHERE booking_id = :b"
                    ),
                    {"b": booking_id},
                )
                await _pay(conn, booking_id, "refund", left)
                released = await seats.release(
                    conn,
                    booking_id,
                    from_status=BookingStatus.CONFIRMED,
                    to_status=BookingStatus.CANCELLED,
                    actor="buyer",
                    reason="test",
                )
                assert released is not None

            run(execute(go))

        @invariant()
        def invariants_hold(self) -> None:
            if not hasattr(self, "event"):
                return

            async def go(conn: AsyncConnection) -> Any:
                return await check(conn, self.event)

            assert run(execute(go)) == []

    try:
        Sales.TestCase.settings = settings(
            max_examples=10,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        Sales.TestCase().runTest()
    finally:
        loop.run_until_complete(engine.dispose())
        loop.close()
