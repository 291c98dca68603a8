"""Reserved seats straight against Postgres (evently/inventory/reserved.py): all or none under
a rush for the same seats, best-available pairs without orphans, and every way a booking ends
giving its seats back exactly once; the invariant checker (extended to seats) after each."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from evently.enums import BookingStatus, ReserveOutcome
from evently.infra.resources import Resources
from evently.invariants import check
from evently.inventory import reserved, seated, seats
from evently.inventory.types import Reservation
from tests.support.factories import make_account
from tests.support.seating import make_seated_event, plan_body


async def _reserve(
    res: Resources, engine: object, event_id: uuid.UUID, user_id: uuid.UUID, **kw: object
) -> Reservation:
    booking_id = uuid.uuid4()
    got, _ = await seated.reserve(
        engine,  # type: ignore[arg-type]
        booking_id=booking_id,
        event_id=event_id,
        user_id=user_id,
        quantity=int(kw.pop("quantity", 0)),  # type: ignore[call-overload]
        hold_seconds=300,
        workflow_id=f"booking-{booking_id}",
        **kw,  # type: ignore[arg-type]
    )
    return got


async def _free_runs(res: Resources, event_id: uuid.UUID) -> list[int]:
    """The lengths of the runs of adjacent free seats, per row."""
    async with res.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT section_rank, row_rank, pos, booking_id IS NULL AND NOT blocked AS f "
                    "FROM event_seats WHERE event_id = :e ORDER BY section_rank, row_rank, pos"
                ),
                {"e": event_id},
            )
        ).all()
    runs: list[int] = []
    n, prev = 0, None
    for r in rows:
        if prev is None or (r.section_rank, r.row_rank) != prev:
            if n:
                runs.append(n)
            n = 0
        if r.f:
            n += 1
        elif n:
            runs.append(n)
            n = 0
        prev = (r.section_rank, r.row_rank)
    if n:
        runs.append(n)
    return runs


async def test_a_thousand_buyers_for_the_same_ten_seats(resources: Resources) -> None:
    event = await make_seated_event(resources, plan_body(2, 10, 20))
    buyer = await make_account(resources)
    wanted = [f"A-1-{k}" for k in range(6, 16)]
    # a wide pool: the buyers really are at the database at once
    engine = create_async_engine(resources.settings.database_url, pool_size=60, max_overflow=0)
    try:
        # each buyer asks for the 10 seats in its own order (sorted locking: no deadlock)
        import random

        rng = random.Random(34)
        asks = [rng.sample(wanted, len(wanted)) for _ in range(1000)]
        got = await asyncio.gather(
            *(_reserve(resources, engine, event.id, buyer.id, seat_ids=a) for a in asks)
        )
    finally:
        await engine.dispose()
    held = [r for r in got if r.status == BookingStatus.HELD]
    refused = [r for r in got if r.status == BookingStatus.REJECTED]
    assert len(held) == 1
    assert len(refused) == 999
    assert sorted(s.id for s in held[0].seats) == sorted(wanted)
    assert all(r.reason == ReserveOutcome.SEATS_TAKEN for r in refused)
    assert all(sorted(r.seats_taken) == sorted(wanted) for r in refused)
    async with resources.engine.connect() as conn:
        owners = (
            await conn.execute(
                text(
                    "SELECT seat_id, booking_id FROM event_seats WHERE event_id = :e "
                    "AND booking_id IS NOT NULL"
                ),
                {"e": event.id},
            )
        ).all()
        assert {o.seat_id for o in owners} == set(wanted)
        assert {o.booking_id for o in owners} == {held[0].booking_id}
        assert await check(conn, event.id) == []


async def test_a_thousand_buyers_one_seat_each_of_ten(resources: Resources) -> None:
    """1,000 buyers, each for one of the same 10 seats: exactly 10 held, by exactly the 10
    bookings that got them, 0 double-sold."""
    event = await make_seated_event(resources, plan_body(1, 5, 20))
    buyer = await make_account(resources)
    wanted = [f"A-3-{k}" for k in range(1, 11)]
    engine = create_async_engine(resources.settings.database_url, pool_size=60, max_overflow=0)
    try:
        got = await asyncio.gather(
            *(
                _reserve(resources, engine, event.id, buyer.id, seat_ids=[wanted[i % 10]])
                for i in range(1000)
            )
        )
    finally:
        await engine.dispose()
    held = [r for r in got if r.status == BookingStatus.HELD]
    assert len(held) == 10
    assert sorted(r.seats[0].id for r in held) == sorted(wanted)
    assert all(r.reason == ReserveOutcome.SEATS_TAKEN for r in got if r not in held)
    async with resources.engine.connect() as conn:
        owners = dict(
            (
                await conn.execute(
                    text(
                        "SELECT seat_id, booking_id FROM event_seats WHERE event_id = :e "
                        "AND booking_id IS NOT NULL"
                    ),
                    {"e": event.id},
                )
            ).all()
        )
        assert owners == {r.seats[0].id: r.booking_id for r in held}
        assert await check(conn, event.id) == []


async def test_three_hundred_best_available_pairs_on_500_seats(resources: Resources) -> None:
    event = await make_seated_event(resources, plan_body(1, 25, 20))
    buyer = await make_account(resources)
    engine = create_async_engine(resources.settings.database_url, pool_size=40, max_overflow=0)
    try:
        got = await asyncio.gather(
            *(
                _reserve(resources, engine, event.id, buyer.id, lines=[(None, 2, True)])
                for _ in range(300)
            )
        )
    finally:
        await engine.dispose()
    held = [r for r in got if r.status == BookingStatus.HELD]
    refused = [r for r in got if r.status == BookingStatus.REJECTED]
    assert len(held) == 250
    assert len(refused) == 50
    assert all(r.reason == ReserveOutcome.SEATS_TAKEN for r in refused)
    seat_count = Counter(s.id for r in held for s in r.seats)
    assert len(seat_count) == 500
    assert max(seat_count.values()) == 1
    for r in held:  # adjacent, in one row
        a, b = r.seats
        assert (a.section, a.row) == (b.section, b.row)
        assert abs(int(a.label) - int(b.label)) == 1
    assert await _free_runs(resources, event.id) == []  # no orphan single left
    async with resources.engine.connect() as conn:
        assert await check(conn, event.id) == []


async def test_best_available_prefers_the_best_rows_and_never_orphans(resources: Resources) -> None:
    event = await make_seated_event(resources, plan_body(1, 3, 6))
    buyer = await make_account(resources)
    first = await _reserve(resources, resources.engine, event.id, buyer.id, lines=[(None, 3, True)])
    assert [s.row for s in first.seats] == ["1"] * 3
    # row 1 has 3 left; a pair there would orphan one: it goes to row 2 (against an edge)
    pair = await _reserve(resources, resources.engine, event.id, buyer.id, lines=[(None, 2, True)])
    assert [s.row for s in pair.seats] == ["2", "2"]
    assert 1 not in await _free_runs(resources, event.id)
    async with resources.engine.connect() as conn:
        assert await check(conn, event.id) == []


async def test_best_available_takes_the_block_nearest_the_row_centre(
    resources: Resources,
) -> None:
    """Seat 5 of a row of 10 taken: the free runs are 1-4 and 6-10; of the pairs against a run
    edge (no orphan), 6-7 is nearest the centre (between 5 and 6), not 3-4."""
    event = await make_seated_event(resources, plan_body(1, 1, 10))
    buyer = await make_account(resources)
    one = await _reserve(resources, resources.engine, event.id, buyer.id, seat_ids=["A-1-5"])
    assert one.status == BookingStatus.HELD
    pair = await _reserve(resources, resources.engine, event.id, buyer.id, lines=[(None, 2, True)])
    assert sorted(s.id for s in pair.seats) == ["A-1-6", "A-1-7"]


async def test_best_available_of_a_category_takes_only_that_category(
    resources: Resources,
) -> None:
    """A line of the type selling the back category gets back seats, though the front
    section is better and free."""
    event = await make_seated_event(
        resources,
        plan_body(2, 1, 4, categories=["front", "back"]),
        prices={"front": "50.00", "back": "30.00"},
    )
    buyer = await make_account(resources)
    async with resources.engine.connect() as conn:
        back = await conn.scalar(
            text("SELECT id FROM ticket_types WHERE event_id = :e AND seat_category = 'back'"),
            {"e": event.id},
        )
    got = await _reserve(resources, resources.engine, event.id, buyer.id, lines=[(back, 2, True)])
    assert got.status == BookingStatus.HELD
    assert {s.section for s in got.seats} == {"B"}


async def test_a_pick_that_finds_every_block_locked_waits_for_the_best_and_owns_it(
    resources: Resources,
) -> None:
    """The only block is locked by another buyer's transaction: the pick waits for it, and
    when that transaction rolls back, takes it for its own booking (the seats' owner is the
    booking; the invariant checker agrees)."""
    event = await make_seated_event(resources, plan_body(1, 1, 2))
    buyer = await make_account(resources)
    engine = resources.engine
    async with engine.connect() as other:
        await other.begin()
        await other.execute(
            text("SELECT seat_id FROM event_seats WHERE event_id = :e FOR UPDATE"),
            {"e": event.id},
        )
        task = asyncio.create_task(
            _reserve(resources, engine, event.id, buyer.id, lines=[(None, 2, True)])
        )
        await asyncio.sleep(0.5)
        assert not task.done()  # waiting for the locked block, not refused
        await other.rollback()
    got = await asyncio.wait_for(task, 30)
    assert got.status == BookingStatus.HELD
    assert sorted(s.id for s in got.seats) == ["A-1-1", "A-1-2"]
    async with engine.connect() as conn:
        owners = (
            await conn.execute(
                text("SELECT DISTINCT booking_id FROM event_seats WHERE event_id = :e"),
                {"e": event.id},
            )
        ).all()
        assert [r.booking_id for r in owners] == [got.booking_id]
        assert await check(conn, event.id) == []


async def test_a_pick_skips_a_partly_locked_block_and_leaves_no_lock_behind(
    resources: Resources,
) -> None:
    """``evently_take_first_block`` (migration 0020seattake) tries the blocks best first: a
    block one of whose seats another buyer has locked is skipped for the next, and the skipped
    block's free seat is not left locked (its try was rolled back: another buyer locks it at
    once); when every block is locked, nothing is taken."""
    event = await make_seated_event(resources, plan_body(1, 1, 4))
    lock = "SELECT seat_id FROM event_seats WHERE event_id = :e AND seat_id = :s FOR UPDATE"
    blocks = [["A-1-1", "A-1-2"], ["A-1-3", "A-1-4"]]
    engine = resources.engine
    async with engine.connect() as other, engine.connect() as me, engine.connect() as third:
        await other.begin()
        await other.execute(text(lock), {"e": event.id, "s": "A-1-2"})
        await me.begin()
        got = await reserved.take_first(me, event.id, uuid.uuid4(), blocks)
        assert got is not None
        assert sorted(s.seat_id for s in got) == ["A-1-3", "A-1-4"]
        await third.begin()
        nowait = text(lock + " NOWAIT")
        assert (await third.execute(nowait, {"e": event.id, "s": "A-1-1"})).scalar() == "A-1-1"
        await third.rollback()
        await third.begin()
        with pytest.raises(DBAPIError):  # the block taken is locked by its taker
            await third.execute(nowait, {"e": event.id, "s": "A-1-3"})
        await third.rollback()
        await me.rollback()
        await third.begin()  # the first block half locked, the second locked too: no take
        await third.execute(text(lock), {"e": event.id, "s": "A-1-4"})
        await me.begin()
        assert await reserved.take_first(me, event.id, uuid.uuid4(), blocks) is None
        await me.rollback()
        await third.rollback()
        await other.rollback()


async def test_every_end_of_a_booking_gives_its_seats_back_once(resources: Resources) -> None:
    event = await make_seated_event(resources, plan_body(1, 2, 10), prices={"std": "45.00"})
    buyer = await make_account(resources)
    engine = resources.engine
    ac = engine.execution_options(isolation_level="AUTOCOMMIT")

    async def owned() -> dict[str, uuid.UUID]:
        async with engine.connect() as conn:
            return dict(
                (
                    await conn.execute(
                        text(
                            "SELECT seat_id, booking_id FROM event_seats WHERE event_id = :e "
                            "AND booking_id IS NOT NULL"
                        ),
                        {"e": event.id},
                    )
                ).all()
            )

    a = await _reserve(resources, engine, event.id, buyer.id, seat_ids=["A-1-1", "A-1-2"])
    assert a.status == BookingStatus.HELD
    assert a.amount == 90
    # the same seats again: refused, naming them; a partly free ask takes nothing
    again = await _reserve(resources, engine, event.id, buyer.id, seat_ids=["A-1-2", "A-1-3"])
    assert again.reason == ReserveOutcome.SEATS_TAKEN
    assert again.seats_taken == ["A-1-2"]
    assert set(await owned()) == {"A-1-1", "A-1-2"}
    # a retry of the reserve reports the booking with its seats
    retry, _ = await seated.reserve(
        engine,
        booking_id=a.booking_id,
        event_id=event.id,
        user_id=buyer.id,
        quantity=2,
        hold_seconds=300,
        workflow_id="x",
        seat_ids=["A-1-1", "A-1-2"],
    )
    assert retry.status == BookingStatus.HELD
    assert len(retry.seats) == 2
    async with ac.connect() as conn:
        # expiry frees them
        await seats.release(
            conn,
            a.booking_id,
            from_status=BookingStatus.HELD,
            to_status=BookingStatus.EXPIRED,
            actor="system",
            reason="hold expired",
        )
        assert await check(conn, event.id) == []
    assert await owned() == {}
    # a late payment takes the very seats again while free
    async with ac.connect() as conn:
        await conn.execute(
            text(
                "INSERT INTO payments (id, booking_id, kind, status, provider, "
                "provider_payment_id, idempotency_key, amount, currency) VALUES "
                "(gen_random_uuid(), :b, 'charge', 'succeeded', 'test', :r, :r, 90, 'EUR')"
            ),
            {"b": a.booking_id, "r": f"pi_{uuid.uuid4().hex}"},
        )
    async with engine.begin() as conn:
        outcome, _ = await seats.settle_late_payment(conn, a.booking_id)
    assert outcome == "confirmed"
    assert set(await owned()) == {"A-1-1", "A-1-2"}
    async with ac.connect() as conn:
        assert await check(conn, event.id) == []
    # a booking whose seats were sold meanwhile is refunded on a late payment
    b = await _reserve(resources, engine, event.id, buyer.id, seat_ids=["A-2-1"])
    async with ac.connect() as conn:
        await seats.release(
            conn,
            b.booking_id,
            from_status=BookingStatus.HELD,
            to_status=BookingStatus.EXPIRED,
            actor="system",
            reason="hold expired",
        )
    c = await _reserve(resources, engine, event.id, buyer.id, seat_ids=["A-2-1"])
    assert c.status == BookingStatus.HELD
    async with engine.begin() as conn:
        outcome, _ = await seats.settle_late_payment(conn, b.booking_id)
    assert outcome == "refund"
    assert (await owned())["A-2-1"] == c.booking_id
    # a cancellation frees them; the checker agrees at every step
    async with ac.connect() as conn:
        await seats.release(
            conn,
            c.booking_id,
            from_status=BookingStatus.HELD,
            to_status=BookingStatus.CANCELLED,
            actor="buyer",
            reason="cancelled",
        )
        assert await check(conn, event.id) == []
    assert "A-2-1" not in await owned()
