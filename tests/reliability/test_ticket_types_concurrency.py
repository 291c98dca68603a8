"""Ticket types and promo codes under contention, straight at the authority: the reserve
statement (evently/inventory/seats.py) on the real Postgres, as many at once as the pool
allows. No type and no event oversold, no spurious refusal, a code's uses exact, and seats and
uses given back exactly once by expiries and cancellations, however often they are retried.

(The API path of the same statement is tested in tests/api/bookings/test_ticket_types.py; a
thousand buyers through Temporal would take minutes of CI, and every one of them ends in this
statement.)"""

from __future__ import annotations

import asyncio
import random
import uuid
from decimal import Decimal

from sqlalchemy import text

from evently.enums import BookingStatus, ReserveOutcome
from evently.infra.resources import Resources
from evently.invariants import check
from evently.inventory import seats
from evently.inventory.types import Reservation
from tests.support.factories import make_accounts, make_event


async def _type(res: Resources, event_id: uuid.UUID, name: str, cap: int | None) -> uuid.UUID:
    type_id = uuid.uuid4()
    async with res.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ticket_types (id, event_id, name, price, currency, capacity, "
                "position) VALUES (:id, :e, :n, 10, 'EUR', :cap, 1)"
            ),
            {"id": type_id, "e": event_id, "n": name, "cap": cap},
        )
    return type_id


async def _reserve(
    res: Resources,
    event_id: uuid.UUID,
    user_id: uuid.UUID,
    lines: list[tuple[uuid.UUID | None, int]],
    promo: str | None = None,
) -> Reservation:
    booking_id = uuid.uuid4()
    engine = res.engine.execution_options(isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        got, _ = await seats.reserve(
            conn,
            booking_id=booking_id,
            event_id=event_id,
            user_id=user_id,
            quantity=0,
            hold_seconds=300,
            workflow_id=f"booking-{booking_id}",
            lines=lines,
            promo_code=promo,
        )
    return got


async def test_a_thousand_buyers_over_three_capped_types_and_a_shared_quota(
    resources: Resources,
) -> None:
    event = await make_event(resources, capacity=120, price=Decimal("10.00"))
    a = await _type(resources, event.id, "A", 30)
    b = await _type(resources, event.id, "B", 50)
    caps: dict[uuid.UUID | None, int | None] = {a: 30, b: 50, None: None}
    buyers = await make_accounts(resources, 50)
    rng = random.Random(15)
    # one, two or three lines each (a line of each type at most), one or two seats a line
    plans = [
        [(t, rng.choice((1, 2))) for t in rng.sample(list(caps), rng.choice((1, 1, 2, 3)))]
        for _ in range(1000)
    ]
    answers = await asyncio.gather(
        *(_reserve(resources, event.id, buyers[i % 50].id, p) for i, p in enumerate(plans))
    )
    held = [(p, r) for p, r in zip(plans, answers, strict=True) if r.status == BookingStatus.HELD]
    per_type = {t: sum(q for p, _ in held for tt, q in p if tt == t) for t in caps}
    assert sum(per_type.values()) <= 120
    assert per_type[a] <= 30
    assert per_type[b] <= 50
    async with resources.engine.connect() as conn:
        left = await conn.scalar(
            text("SELECT available FROM events WHERE id = :e"), {"e": event.id}
        )
        counts = dict(
            (
                await conn.execute(
                    text(
                        "SELECT id, held FROM ticket_types WHERE event_id = :e AND NOT is_default"
                    ),
                    {"e": event.id},
                )
            ).all()
        )
        assert counts == {a: per_type[a], b: per_type[b]}
        assert left == 120 - sum(per_type.values())
        # no spurious refusal: with every seat still held at the end (nothing was released),
        # each refusal's reason is still true now
        for plan, r in zip(plans, answers, strict=True):
            if r.status == BookingStatus.HELD:
                continue
            wanted = sum(q for _, q in plan)
            if r.reason == ReserveOutcome.SOLD_OUT:
                assert wanted > left, (plan, left)
            else:
                assert r.reason == ReserveOutcome.TICKET_TYPE_SOLD_OUT, r.reason
                assert any(
                    caps[t] is not None and per_type[t] + q > (caps[t] or 0) for t, q in plan
                ), plan
        assert await check(conn, event.id) == []


async def test_two_hundred_reserves_with_a_fifty_use_code_and_uses_given_back_once(
    resources: Resources,
) -> None:
    event = await make_event(resources, capacity=1000, price=Decimal("10.00"))
    async with resources.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO promo_codes (id, event_id, code, amount_off, max_uses) "
                "VALUES (gen_random_uuid(), :e, 'FIFTY', 2.50, 50)"
            ),
            {"e": event.id},
        )
    buyers = await make_accounts(resources, 20)

    async def uses() -> int:
        async with resources.engine.connect() as conn:
            found = await conn.scalar(
                text("SELECT uses FROM promo_codes WHERE event_id = :e"), {"e": event.id}
            )
        return int(found)

    answers = await asyncio.gather(
        *(
            _reserve(resources, event.id, buyers[i % 20].id, [(None, 1)], "fifty")
            for i in range(200)
        )
    )
    ok = [r for r in answers if r.status == BookingStatus.HELD]
    assert len(ok) == 50
    assert {r.amount for r in ok} == {Decimal("7.50")}
    assert {r.reason for r in answers if r.status != BookingStatus.HELD} == {
        ReserveOutcome.PROMO_CODE_USED_UP
    }
    assert await uses() == 50

    # 10 expire and 10 are paid then cancelled, each release retried 3 times at once
    engine = resources.engine.execution_options(isolation_level="AUTOCOMMIT")

    async def release(booking: Reservation, from_status: BookingStatus) -> None:
        async with engine.connect() as conn:
            await seats.release(
                conn,
                booking.booking_id,
                from_status=from_status,
                to_status=BookingStatus.EXPIRED
                if from_status == BookingStatus.HELD
                else BookingStatus.CANCELLED,
                actor="test",
                reason="test",
            )

    async with engine.connect() as conn:
        for r in ok[10:20]:
            for kind in ("charge", "refund"):
                await conn.execute(
                    text(
                        "INSERT INTO payments (id, booking_id, kind, status, provider, "
                        "provider_payment_id, idempotency_key, amount, currency) VALUES "
                        "(gen_random_uuid(), :b, :k, 'succeeded', 'test', :pid, :key, 7.50, 'EUR')"
                    ),
                    {
                        "b": r.booking_id,
                        "k": kind,
                        "pid": f"{kind}-{r.booking_id}",
                        "key": f"{kind}:{r.booking_id}",
                    },
                )
                if kind == "charge":
                    assert await seats.confirm(conn, r.booking_id) is not None
    await asyncio.gather(
        *(release(r, BookingStatus.HELD) for r in ok[:10] for _ in range(3)),
        *(release(r, BookingStatus.CONFIRMED) for r in ok[10:20] for _ in range(3)),
    )
    assert await uses() == 30
    again = await asyncio.gather(
        *(_reserve(resources, event.id, buyers[i % 20].id, [(None, 1)], "FIFTY") for i in range(40))
    )
    assert sum(r.status == BookingStatus.HELD for r in again) == 20
    assert await uses() == 50
    async with resources.engine.connect() as conn:
        assert (
            await conn.scalar(text("SELECT available FROM events WHERE id = :e"), {"e": event.id})
            == 950
        )
        assert await check(conn, event.id) == []
