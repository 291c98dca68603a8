"""Bookings: reading them, and naming them. A booking is created and changed only by the seat
statements (evently/inventory/seats.py) its workflow runs."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import exists, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from evently.db.models import Booking, BookingAccessKey

IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c3a52-3f7e-4a55-9d8e-0b6f1d2c9e11")


def booking_id_for(user_id: uuid.UUID, idempotency_key: str | None) -> uuid.UUID:
    """The same Idempotency-Key from the same buyer always names the same booking."""
    if idempotency_key is None:
        return uuid.uuid4()
    return uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{user_id}:{idempotency_key}")


async def get_booking(session: AsyncSession, booking_id: uuid.UUID) -> Booking | None:
    booking: Booking | None = await session.get(Booking, booking_id)
    return booking


async def list_user_bookings(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    page: int,
    limit: int,
    with_guest_bookings: bool = True,
) -> tuple[list[Booking], int]:
    """The account's bookings, newest first; ``with_guest_bookings=False`` leaves out those
    made by guest checkout with its email (an unverified account: issue 32)."""
    where = [Booking.user_id == user_id]
    if not with_guest_bookings:
        where.append(~exists().where(BookingAccessKey.booking_id == Booking.id).correlate(Booking))
    total = await session.scalar(select(func.count()).select_from(Booking).where(*where))
    rows = await session.scalars(
        select(Booking)
        .where(*where)
        .order_by(Booking.created_at.desc(), Booking.id.desc())
        .offset((page - 1) * limit)
        .limit(limit)
    )
    return list(rows), int(total or 0)


_FACTS = text(
    """
SELECT b.id AS booking_id, b.event_id, b.user_id, b.quantity, b.status, b.amount, b.currency,
       e.ends_at AS event_ends_at
FROM bookings b JOIN events e ON e.id = b.event_id WHERE b.id = :id
"""
)


async def facts(conn: AsyncConnection, booking_id: uuid.UUID) -> dict[str, Any] | None:
    """A booking's status, seats, amount and its event's end (what a change needs)."""
    row = (await conn.execute(_FACTS, {"id": booking_id})).first()
    return dict(row._mapping) if row is not None else None
