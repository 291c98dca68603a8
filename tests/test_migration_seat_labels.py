"""Migration 0019seatlabels on a database of its own: the valid tickets of a seated booking
confirmed before it get their seats (per type, the k-th ticket by serial ↔ the k-th held seat
in plan order), general-admission tickets none; downgrade and upgrade again."""

from __future__ import annotations

import asyncio
import uuid

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from evently.db.models import DEFAULT_ORGANIZATION_ID
from evently.infra.migrate import alembic_config, upgrade
from evently.settings import Settings
from tests.support.migrations import scratch_database

_SEAT_ID = (
    "SELECT count(*) FROM information_schema.columns "
    "WHERE table_name = 'tickets' AND column_name = 'seat_id'"
)


async def _seated_booking(conn: AsyncConnection) -> tuple[uuid.UUID, uuid.UUID]:
    """A confirmed booking of three seats (B-1-10, B-1-9, A-2-1 held; A-1-1 released) and its
    three tickets, plus a GA ticket of another booking, as 0018 left them: (seated, GA)."""
    ids = {k: uuid.uuid4() for k in ("user", "venue", "event", "plan", "type", "b1", "b2")}
    p = {**ids, "org": DEFAULT_ORGANIZATION_ID}
    await conn.execute(
        text(
            "INSERT INTO users (id, email, password_hash, role) "
            "VALUES (:user, 'seat@example.com', 'x', 'buyer')"
        ),
        p,
    )
    await conn.execute(
        text(
            "INSERT INTO venues (id, name, address, city, capacity, organization_id) "
            "VALUES (:venue, 'v', 'a', 'c', 100, :org)"
        ),
        p,
    )
    await conn.execute(
        text(
            "INSERT INTO events (id, name, description, venue_id, organization_id, event_type, "
            "starts_at, ends_at, capacity, available, sold, price, currency, status) "
            "VALUES (:event, 'e', '', :venue, :org, 'concert', now() + interval '1 day', "
            "now() + interval '2 days', 4, 0, 4, 10, 'EUR', 'published')"
        ),
        p,
    )
    await conn.execute(
        text(
            "INSERT INTO seating_plans (id, organization_id, venue_id, name, seats) "
            "VALUES (:plan, :org, :venue, 'p', 4)"
        ),
        p,
    )
    seats = [("A-1-1", "A", "1", "1", 0, 0, 0), ("A-2-1", "A", "2", "1", 0, 1, 0)]
    seats += [("B-1-9", "B", "1", "9", 1, 0, 0), ("B-1-10", "B", "1", "10", 1, 0, 1)]
    for seat_id, section, row, label, s_rank, r_rank, pos in seats:
        await conn.execute(
            text(
                "INSERT INTO event_seats (event_id, seat_id, section, row, label, x, y, "
                "category, section_rank, row_rank, pos) VALUES (:event, :s, :sec, :row, :l, "
                "0, 0, 'std', :sr, :rr, :pos)"
            ),
            {**p, "s": seat_id, "sec": section, "row": row, "l": label, "sr": s_rank}
            | {"rr": r_rank, "pos": pos},
        )
    await conn.execute(
        text(
            "INSERT INTO ticket_types (id, event_id, name, price, currency) "
            "VALUES (:type, :event, 'Std', 10, 'EUR')"
        ),
        p,
    )
    for booking, quantity in (("b1", 3), ("b2", 1)):
        await conn.execute(
            text(
                "INSERT INTO bookings (id, event_id, user_id, quantity, amount, currency, status, "
                "workflow_id) VALUES (:b, :event, :user, :q, 10, 'EUR', 'confirmed', :w)"
            ),
            {**p, "b": ids[booking], "q": quantity, "w": f"booking-{ids[booking]}"},
        )
        await conn.execute(
            text(
                "INSERT INTO booking_lines (booking_id, ticket_type_id, quantity, unit_price) "
                "VALUES (:b, :type, :q, 10)"
            ),
            {**p, "b": ids[booking], "q": quantity},
        )
    for seat_id, released in (("A-1-1", True), ("A-2-1", False), ("B-1-9", False)):
        await conn.execute(
            text(
                "INSERT INTO booking_seats (booking_id, event_id, seat_id, ticket_type_id, "
                "released_at) VALUES (:b1, :event, :s, :type, "
                "CASE WHEN :r THEN now() END)"
            ),
            {**p, "s": seat_id, "r": released},
        )
    await conn.execute(
        text(
            "INSERT INTO booking_seats (booking_id, event_id, seat_id, ticket_type_id) "
            "VALUES (:b1, :event, 'B-1-10', :type)"
        ),
        p,
    )
    await conn.execute(
        text(
            "UPDATE event_seats SET booking_id = :b1 WHERE event_id = :event "
            "AND seat_id IN ('A-2-1', 'B-1-9', 'B-1-10')"
        ),
        p,
    )
    # serials 1 (revoked: the released seat's), 2, 3, 4 for b1; 5 for the GA-like b2
    for serial, booking, status in ((1, "b1", "revoked"), (2, "b1", "valid"), (3, "b1", "valid")):
        await conn.execute(
            text(
                "INSERT INTO tickets (id, booking_id, event_id, seat, status, issued_at, "
                "ticket_type_id) VALUES (gen_random_uuid(), :b, :event, :n, :st, now(), :type)"
            ),
            {**p, "b": ids[booking], "n": serial, "st": status},
        )
    for serial, booking in ((4, "b1"), (5, "b2")):
        await conn.execute(
            text(
                "INSERT INTO tickets (id, booking_id, event_id, seat, status, issued_at, "
                "ticket_type_id) VALUES (gen_random_uuid(), :b, :event, :n, 'valid', now(), "
                ":type)"
            ),
            {**p, "b": ids[booking], "n": serial},
        )
    return ids["b1"], ids["b2"]


async def test_seat_labels_backfill_downgrade_and_upgrade_again(settings: Settings) -> None:
    async with scratch_database(settings) as (url, engine):
        await asyncio.to_thread(upgrade, url, "0018seating")
        async with engine.begin() as conn:
            seated, ga = await _seated_booking(conn)
        await engine.dispose()

        await asyncio.to_thread(upgrade, url, "0019seatlabels")
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT booking_id, seat, status, seat_id FROM tickets ORDER BY seat")
            )
            assert [(r.booking_id, r.seat, r.status, r.seat_id) for r in rows] == [
                (seated, 1, "revoked", None),
                (seated, 2, "valid", "A-2-1"),  # plan order: section, row, place in row
                (seated, 3, "valid", "B-1-9"),
                (seated, 4, "valid", "B-1-10"),
                (ga, 5, "valid", None),
            ]
        await engine.dispose()

        await asyncio.to_thread(command.downgrade, alembic_config(url), "0018seating")
        async with engine.connect() as conn:
            assert await conn.scalar(text(_SEAT_ID)) == 0
        await engine.dispose()
        await asyncio.to_thread(upgrade, url, "head")
        async with engine.connect() as conn:
            assert await conn.scalar(text(_SEAT_ID)) == 1
            assert (
                await conn.scalar(text("SELECT count(seat_id) FROM tickets WHERE status = 'valid'"))
                == 3
            )
