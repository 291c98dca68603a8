"""Multi-line reserve straight against Postgres (evently/inventory/seats.py): all lines or
none, each type's cap and the event's quota, sales windows, promo code uses counted once and
given back once; the invariant checker after every step."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from evently.enums import BookingStatus, ReserveOutcome
from evently.infra.resources import Resources
from evently.invariants import check
from evently.inventory import seats
from evently.inventory.types import Reservation
from tests.support.factories import make_account, make_event


async def _type(
    conn: AsyncConnection, event_id: uuid.UUID, name: str, price: str, **kw: object
) -> uuid.UUID:
    type_id = uuid.uuid4()
    await conn.execute(
        text(
            """INSERT INTO ticket_types (id, event_id, name, price, currency, capacity,
               sales_start, sales_end, hidden, max_per_booking, position)
               VALUES (:id, :e, :name, :price, 'EUR', :capacity, :start, :end, :hidden, :max, 1)"""
        ),
        {
            "id": type_id,
            "e": event_id,
            "name": name,
            "price": Decimal(price),
            "capacity": kw.get("capacity"),
            "start": kw.get("start"),
            "end": kw.get("end"),
            "hidden": kw.get("hidden", False),
            "max": kw.get("max_per_booking"),
        },
    )
    return type_id


async def _code(conn: AsyncConnection, event_id: uuid.UUID, code: str, **kw: object) -> uuid.UUID:
    code_id = uuid.uuid4()
    await conn.execute(
        text(
            """INSERT INTO promo_codes (id, event_id, code, percent_off, amount_off, max_uses,
               ticket_type_ids, unlocks_hidden, valid_until)
               VALUES (:id, :e, :code, :pct, :amt, :max, :types, :unlocks, :until)"""
        ),
        {
            "id": code_id,
            "e": event_id,
            "code": code.upper(),
            "pct": kw.get("percent_off"),
            "amt": kw.get("amount_off"),
            "max": kw.get("max_uses", 10),
            "types": kw.get("ticket_type_ids"),
            "unlocks": kw.get("unlocks_hidden", False),
            "until": kw.get("valid_until"),
        },
    )
    return code_id


async def _reserve(
    conn: AsyncConnection,
    event_id: uuid.UUID,
    user_id: uuid.UUID,
    lines: list[tuple[uuid.UUID | None, int]],
    promo: str | None = None,
) -> Reservation:
    booking_id = uuid.uuid4()
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


async def _counts(conn: AsyncConnection, type_id: uuid.UUID) -> tuple[int, int]:
    row = (
        await conn.execute(
            text("SELECT held, sold FROM ticket_types WHERE id = :t"), {"t": type_id}
        )
    ).one()
    return int(row.held), int(row.sold)


async def test_lines_are_taken_all_or_none_with_caps_windows_and_codes(
    resources: Resources,
) -> None:
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=10, price=Decimal("20.00"))
    now = datetime.now(UTC)
    engine = resources.engine.execution_options(isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        vip = await _type(conn, event.id, "VIP", "100.00", capacity=2)
        early = await _type(conn, event.id, "Early", "10.00", end=now - timedelta(hours=1))
        hidden = await _type(conn, event.id, "Sponsor", "0.00", hidden=True)
        await _code(conn, event.id, "half", percent_off=Decimal("50"), max_uses=1)
        await _code(conn, event.id, "sponsor", amount_off=Decimal("5"), unlocks_hidden=True)

        # a VIP line over its cap refuses the whole booking: the default line is not taken
        refused = await _reserve(conn, event.id, buyer.id, [(None, 2), (vip, 3)])
        assert refused.status == BookingStatus.REJECTED
        assert refused.reason == ReserveOutcome.TICKET_TYPE_SOLD_OUT
        assert await _counts(conn, vip) == (0, 0)
        assert (
            await conn.scalar(text("SELECT available FROM events WHERE id = :e"), {"e": event.id})
            == 10
        )
        closed = await _reserve(conn, event.id, buyer.id, [(early, 1)])
        assert closed.reason == ReserveOutcome.SALES_CLOSED
        secret = await _reserve(conn, event.id, buyer.id, [(hidden, 1)])
        assert secret.reason == ReserveOutcome.TICKET_TYPE_NOT_FOUND
        unknown = await _reserve(conn, event.id, buyer.id, [(None, 1)], promo="nope")
        assert unknown.reason == ReserveOutcome.PROMO_CODE_UNKNOWN
        assert await check(conn, event.id) == []

        held = await _reserve(conn, event.id, buyer.id, [(None, 2), (vip, 2)], promo="HALF")
        assert held.status == BookingStatus.HELD
        assert held.amount == Decimal("120.00")  # (2 x 20 + 2 x 100) / 2
        assert held.discount == Decimal("120.00")  # read back from the booking row
        assert await _counts(conn, vip) == (2, 0)
        used_up = await _reserve(conn, event.id, buyer.id, [(None, 1)], promo="half")
        assert used_up.reason == ReserveOutcome.PROMO_CODE_USED_UP
        sponsor = await _reserve(conn, event.id, buyer.id, [(hidden, 1)], promo="Sponsor")
        assert sponsor.status == BookingStatus.HELD
        assert sponsor.amount == Decimal("0.00")
        assert await check(conn, event.id) == []

        # the hold ends: seats, the VIP cap and the code's use come back, once
        for _ in range(2):
            await seats.release(
                conn,
                held.booking_id,
                from_status=BookingStatus.HELD,
                to_status=BookingStatus.EXPIRED,
                actor="timer",
                reason="hold expired",
            )
        assert await _counts(conn, vip) == (0, 0)
        uses = await conn.scalar(
            text("SELECT uses FROM promo_codes WHERE event_id = :e AND code = 'HALF'"),
            {"e": event.id},
        )
        assert uses == 0
        assert await check(conn, event.id) == []


async def test_concurrent_buyers_never_oversell_a_type_or_the_event(resources: Resources) -> None:
    """60 buyers of 3 types (caps 5 and 8, quota 20), plus 40 on a 7-use code: no type and no
    event oversold, every refusal true, exactly 7 uses."""
    buyers = [await make_account(resources) for _ in range(2)]
    event = await make_event(resources, capacity=20, price=Decimal("10.00"))
    engine = resources.engine.execution_options(isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        a = await _type(conn, event.id, "A", "30.00", capacity=5)
        b = await _type(conn, event.id, "B", "20.00", capacity=8)
        await _code(conn, event.id, "SEVEN", percent_off=Decimal("10"), max_uses=7)
    plan: list[tuple[uuid.UUID | None, str | None]] = [
        (t, None) for t in (a, b, None) for _ in range(20)
    ] + [(None, "seven")] * 40

    async def one(i: int, t: uuid.UUID | None, promo: str | None) -> Reservation:
        async with engine.connect() as conn:
            return await _reserve(conn, event.id, buyers[i % 2].id, [(t, 1)], promo)

    results = await asyncio.gather(*(one(i, t, p) for i, (t, p) in enumerate(plan)))
    held = [r for r in results if r.status == BookingStatus.HELD]
    async with engine.connect() as conn:
        assert len(held) == 20  # demand (100) > quota: the event sells out exactly
        assert (await _counts(conn, a))[0] <= 5
        assert (await _counts(conn, b))[0] <= 8
        assert await conn.scalar(
            text("SELECT uses FROM promo_codes WHERE event_id = :e"), {"e": event.id}
        ) == sum(1 for r in held if r.amount == Decimal("9.00"))
        for r in results:
            if r.status == BookingStatus.REJECTED:
                assert r.reason in (
                    ReserveOutcome.SOLD_OUT,
                    ReserveOutcome.TICKET_TYPE_SOLD_OUT,
                    ReserveOutcome.PROMO_CODE_USED_UP,
                )
        assert await check(conn, event.id) == []


async def test_the_search_document_shows_the_lowest_price_a_buyer_can_still_pay(
    resources: Resources,
) -> None:
    from evently.search.documents import load_document

    event = await make_event(resources, capacity=10, price=Decimal("20.00"))
    engine = resources.engine.execution_options(isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        cheap = await _type(conn, event.id, "Cheap", "5.00", capacity=1)
        await _type(conn, event.id, "Secret", "1.00", hidden=True)
        await _type(conn, event.id, "Gone", "2.00", end=datetime.now(UTC) - timedelta(days=1))
    async with resources.sessionmaker() as session:
        doc = await load_document(session, event.id)
    assert doc is not None
    assert doc.price == Decimal("5.00")
    assert doc.has_seats
    async with engine.connect() as conn:
        buyer = await make_account(resources)
        assert (await _reserve(conn, event.id, buyer.id, [(cheap, 1)])).status == "held"
    async with resources.sessionmaker() as session:
        doc = await load_document(session, event.id)
    assert doc is not None
    assert doc.price == Decimal("20.00")  # the cheap type's cap is full


async def test_a_refusal_names_the_rule_that_refused_it(resources: Resources) -> None:
    """The diagnosis of a refused reserve at its edges: exactly the event's seats left (the
    type's cap refused, not the event), a code limited to another type, a hidden type unlocked
    by a code but asked over its per-booking limit, and one a code for another type does not
    unlock."""
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=3, price=Decimal("20.00"))
    engine = resources.engine.execution_options(isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        vip = await _type(conn, event.id, "VIP", "100.00", capacity=2)
        backstage = await _type(
            conn, event.id, "Backstage", "50.00", hidden=True, max_per_booking=2
        )
        await _code(conn, event.id, "viponly", percent_off=Decimal("10"), ticket_type_ids=[vip])
        await _code(
            conn,
            event.id,
            "crew",
            percent_off=Decimal("10"),
            ticket_type_ids=[backstage],
            unlocks_hidden=True,
        )
        await _code(
            conn,
            event.id,
            "vipdoor",
            percent_off=Decimal("10"),
            ticket_type_ids=[vip],
            unlocks_hidden=True,
        )

        # 3 asked, 3 left on the event: the event has them, the VIP cap (2) does not
        at_the_edge = await _reserve(conn, event.id, buyer.id, [(vip, 3)])
        assert at_the_edge.reason == ReserveOutcome.TICKET_TYPE_SOLD_OUT
        elsewhere = await _reserve(conn, event.id, buyer.id, [(None, 1)], promo="viponly")
        assert elsewhere.reason == ReserveOutcome.PROMO_CODE_NOT_APPLICABLE
        too_many = await _reserve(conn, event.id, buyer.id, [(backstage, 3)], promo="crew")
        assert too_many.reason == ReserveOutcome.TOO_MANY_OF_TYPE
        not_unlocked = await _reserve(conn, event.id, buyer.id, [(backstage, 1)], promo="vipdoor")
        assert not_unlocked.reason == ReserveOutcome.TICKET_TYPE_NOT_FOUND
        for r in (at_the_edge, elsewhere, too_many, not_unlocked):
            assert r.status == BookingStatus.REJECTED
        # and the code does unlock its own hidden type
        crew = await _reserve(conn, event.id, buyer.id, [(backstage, 2)], promo="crew")
        assert crew.status == BookingStatus.HELD
        assert await check(conn, event.id) == []


async def test_a_retried_refused_reserve_reports_the_first_answer_and_takes_nothing(
    resources: Resources,
) -> None:
    """A reserve activity retried with its booking id (the workflow's retry, or a new run):
    the refusal it got the first time, read back from the rejected row, the same answer."""
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=3, price=Decimal("20.00"))
    engine = resources.engine.execution_options(isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        vip = await _type(conn, event.id, "VIP", "100.00", capacity=1)

        async def reserve(
            booking_id: uuid.UUID, event_id: uuid.UUID, lines: list[tuple[uuid.UUID | None, int]]
        ) -> Reservation:
            got, counters = await seats.reserve(
                conn,
                booking_id=booking_id,
                event_id=event_id,
                user_id=buyer.id,
                quantity=0,
                hold_seconds=300,
                workflow_id=f"booking-{booking_id}",
                lines=lines,
            )
            assert counters is None  # nothing taken
            return got

        # refused by its line (the statement rolled back, the rejected row written after)
        line_refused = uuid.uuid4()
        first = await reserve(line_refused, event.id, [(vip, 2)])
        assert (first.booking_id, first.event_id, first.quantity) == (line_refused, event.id, 2)
        assert (first.status, first.reason) == (
            BookingStatus.REJECTED,
            ReserveOutcome.TICKET_TYPE_SOLD_OUT,
        )
        assert (first.amount, first.currency) == (Decimal(0), "EUR")
        assert await reserve(line_refused, event.id, [(vip, 2)]) == first
        # refused by the event's seats (the booking row rejected in place); the first answer
        # was built from the inserted row (its would-be hold's end and amount), a retry reads
        # the rejected row: the same booking, seats, status and reason
        sold_out = uuid.uuid4()
        first = await reserve(sold_out, event.id, [(None, 4)])
        again = await reserve(sold_out, event.id, [(None, 4)])
        for got in (first, again):
            assert (got.booking_id, got.event_id, got.quantity, got.status, got.reason) == (
                sold_out,
                event.id,
                4,
                BookingStatus.REJECTED,
                ReserveOutcome.SOLD_OUT,
            )
        assert again.hold_expires_at is None
        # no such event: nothing to write, the answer still names the booking and its seats
        nowhere, missing = uuid.uuid4(), uuid.uuid4()
        unknown = await reserve(nowhere, missing, [(None, 2)])
        assert (unknown.booking_id, unknown.event_id, unknown.quantity) == (nowhere, missing, 2)
        assert (unknown.status, unknown.reason) == (
            BookingStatus.REJECTED,
            ReserveOutcome.EVENT_NOT_FOUND,
        )
        assert (
            await conn.scalar(text("SELECT count(*) FROM bookings WHERE id = :b"), {"b": nowhere})
            == 0
        )
        counts = (
            await conn.execute(
                text("SELECT available, held FROM events WHERE id = :e"), {"e": event.id}
            )
        ).one()
        assert tuple(counts) == (3, 0)
        assert await _counts(conn, vip) == (0, 0)
        assert await check(conn, event.id) == []


async def test_a_retried_held_reserve_reports_its_hold_and_frozen_price_and_takes_once(
    resources: Resources,
) -> None:
    """A reserve retried after its first attempt took the seats (the activity's answer lost):
    the same hold with its frozen price breakdown, nothing taken again; and after a crash
    between the reserve and its freeze, the retry prices the hold then."""
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=5, price=Decimal("20.00"))
    engine = resources.engine.execution_options(isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(
            text("UPDATE events SET fees = CAST(:f AS jsonb) WHERE id = :e"),
            {
                "e": event.id,
                "f": '[{"name": "Service fee", "amount": "1.50", "per": "ticket", '
                '"passed_on": true}]',
            },
        )
        booking_id = uuid.uuid4()

        async def reserve() -> tuple[Reservation, object]:
            return await seats.reserve(
                conn,
                booking_id=booking_id,
                event_id=event.id,
                user_id=buyer.id,
                quantity=2,
                hold_seconds=300,
                workflow_id=f"booking-{booking_id}",
            )

        first, took = await reserve()
        assert (first.status, first.amount) == (BookingStatus.HELD, Decimal("43.00"))
        assert first.price is not None
        assert took is not None
        again, took = await reserve()
        assert took is None
        assert again == first
        # the crash: the seats taken, the breakdown never frozen
        await conn.execute(
            text("UPDATE bookings SET price = NULL, amount = 40.00 WHERE id = :b"),
            {"b": booking_id},
        )
        priced, took = await reserve()
        assert took is None
        # the same hold and breakdown (its amounts as numbers: a line's discount read back
        # from booking_lines is "0.00" where the reserve's own was "0")
        assert priced.model_copy(update={"price": None}) == first.model_copy(update={"price": None})
        assert priced.price is not None
        money = ("subtotal", "discount", "fees", "total")
        assert {k: Decimal(priced.price[k]) for k in money} == {
            k: Decimal(first.price[k]) for k in money
        }
        row = (
            await conn.execute(
                text("SELECT amount, price IS NOT NULL AS frozen FROM bookings WHERE id = :b"),
                {"b": booking_id},
            )
        ).one()
        assert (row.amount, row.frozen) == (Decimal("43.00"), True)
        counts = (
            await conn.execute(
                text("SELECT available, held FROM events WHERE id = :e"), {"e": event.id}
            )
        ).one()
        assert tuple(counts) == (3, 2)
        assert await check(conn, event.id) == []
