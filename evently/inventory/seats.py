"""Where a seat is taken, and given back: every statement that moves an event's seat counters.

Postgres is the only authority. A seat is taken by the conditional update
``available = available - :q WHERE available >= :q`` (:data:`_RESERVE`), and the CHECK
``available + held + sold = capacity`` refuses any lost or doubled seat. Each function is
idempotent by its key (the booking, the offer, the entry): a status guard on the row it changes
makes a retry a no-op. Every statement that changes the counters bumps ``events.updated_at``
(:data:`BUMP`), the version of the cached availability snapshot (evently/inventory/
availability.py), and returns the new counters (:data:`COUNTERS`) for it.

The counters of an event:
- ``available``: on sale;
- ``held``: in held bookings, in open waitlist offers, and kept for the waitlist
  (``waitlist_pool``: freed while somebody waits, never public meanwhile);
- ``sold``: in confirmed bookings;
- ``waitlist_waiting``: entries waiting (a release that sees one keeps its seats in the pool).

Lock order everywhere: the event row first, then bookings or waitlist entries.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from evently.enums import BookingStatus, LateSettlement, ReserveOutcome
from evently.inventory.types import Counters, Released, Reservation

#: the counters every seat statement returns (``e`` is the events row)
COUNTERS = "e.id AS event_id, e.capacity, e.available, e.held, e.sold, e.status, e.updated_at"
#: SET fragment of every UPDATE of ``events e``: the availability cache's version, strictly
#: increasing per row even if the wall clock steps back (the row lock serialises writers)
BUMP = "updated_at = GREATEST(clock_timestamp(), e.updated_at + interval '1 microsecond')"


def _counters(row: Any) -> Counters:
    return Counters(
        event_id=row.event_id,
        capacity=row.capacity,
        available=row.available,
        held=row.held,
        sold=row.sold,
        status=row.status,
        updated_at=row.updated_at,
    )


def _reservation(
    booking_id: uuid.UUID,
    event_id: uuid.UUID,
    quantity: int,
    status: BookingStatus,
    row: Any = None,
    reason: str | None = None,
) -> Reservation:
    return Reservation(
        booking_id=booking_id,
        event_id=event_id,
        quantity=quantity,
        status=status,
        amount=row.amount if row is not None else Decimal(0),
        currency=row.currency if row is not None else "",
        hold_expires_at=getattr(row, "hold_expires_at", None),
        event_ends_at=getattr(row, "ends_at", None),
        reason=reason,
    )


# ---- taking seats: a new hold ---------------------------------------------------------------

# One statement: insert the booking keyed by its id, and take the seats only if this insert
# happened (a retried activity finds the row and takes nothing).
_RESERVE = text(
    f"""
WITH ins AS (
    INSERT INTO bookings (id, event_id, user_id, quantity, amount, currency, status,
                          workflow_id, hold_expires_at, waitlist_entry_id)
    SELECT :booking_id, e.id, :user_id, CAST(:quantity AS integer),
           e.price * CAST(:quantity AS integer), e.currency, 'held',
           :workflow_id, now() + make_interval(secs => CAST(:hold_seconds AS integer)), NULL
    FROM events e WHERE e.id = :event_id
    ON CONFLICT (id) DO NOTHING
    RETURNING id, amount, currency, hold_expires_at
), taken AS (
    UPDATE events e SET available = e.available - CAST(:quantity AS integer),
        held = e.held + CAST(:quantity AS integer), {BUMP}
    WHERE e.id = :event_id AND e.status = 'published' AND e.available >= CAST(:quantity AS integer)
      AND EXISTS (SELECT 1 FROM ins)
    RETURNING {COUNTERS}, e.ends_at
)
SELECT ins.id AS inserted, ins.amount, ins.currency, ins.hold_expires_at,
       taken.event_id, taken.capacity, taken.available, taken.held, taken.sold, taken.status,
       taken.updated_at, taken.ends_at
FROM ins LEFT JOIN taken ON true
"""
)

_REJECT = text(
    """
UPDATE bookings b SET status = 'rejected', hold_expires_at = NULL, ended_at = now(),
       end_reason = CASE WHEN e.status <> 'published' THEN 'event_not_on_sale' ELSE 'sold_out' END
FROM events e
WHERE b.id = :booking_id AND b.status = 'held' AND e.id = b.event_id
RETURNING b.end_reason
"""
)

_BOOKING = text(
    """
SELECT b.id, b.event_id, b.quantity, b.status, b.amount, b.currency, b.hold_expires_at,
       b.end_reason, e.ends_at
FROM bookings b JOIN events e ON e.id = b.event_id WHERE b.id = :booking_id
"""
)


async def _as_found(
    conn: AsyncConnection, booking_id: uuid.UUID, event_id: uuid.UUID, quantity: int, why: str
) -> Reservation:
    """A retry finds its booking: report what the first attempt did, take nothing. No booking
    at all: rejected for ``why``."""
    row = (await conn.execute(_BOOKING, {"booking_id": booking_id})).first()
    if row is None:
        return _reservation(booking_id, event_id, quantity, BookingStatus.REJECTED, reason=why)
    return _reservation(
        booking_id, row.event_id, row.quantity, BookingStatus(row.status), row, row.end_reason
    )


async def reserve(
    conn: AsyncConnection,
    *,
    booking_id: uuid.UUID,
    event_id: uuid.UUID,
    user_id: uuid.UUID,
    quantity: int,
    hold_seconds: int,
    workflow_id: str,
) -> tuple[Reservation, Counters | None]:
    """Insert the booking and take the seats in one statement (autocommit connection). The
    counters are returned when this call took seats."""
    row = (
        await conn.execute(
            _RESERVE,
            {
                "booking_id": booking_id,
                "event_id": event_id,
                "user_id": user_id,
                "quantity": quantity,
                "hold_seconds": hold_seconds,
                "workflow_id": workflow_id,
            },
        )
    ).first()
    if row is not None and row.event_id is not None:
        held = _reservation(booking_id, event_id, quantity, BookingStatus.HELD, row)
        return held, _counters(row)
    if row is not None:  # inserted, but the seats were not there: reject the booking row
        reason = (await conn.execute(_REJECT, {"booking_id": booking_id})).scalar_one()
        rejected = _reservation(booking_id, event_id, quantity, BookingStatus.REJECTED, row, reason)
        return rejected, None
    return await _as_found(
        conn, booking_id, event_id, quantity, ReserveOutcome.EVENT_NOT_FOUND
    ), None


# ---- taking seats: a waitlist offer accepted ------------------------------------------------

# The booking ADOPTS the offered seats (already counted in ``held``), so no counter changes;
# the entry → accepted and the booking row are one statement, guarded by the entry's status
# (an offer that lapsed or was declined meanwhile adopts nothing).
_RESERVE_FROM_OFFER = text(
    """
WITH adopt AS (
    UPDATE waitlist_entries w SET status = 'accepted', booking_id = :booking_id, updated_at = now()
    WHERE w.id = :entry_id AND w.user_id = :user_id AND w.event_id = :event_id
      AND w.status = 'offered' AND w.offered_quantity = CAST(:quantity AS integer)
      AND w.offer_expires_at > now()
      AND EXISTS (SELECT 1 FROM events e WHERE e.id = w.event_id AND e.status = 'published')
      AND NOT EXISTS (SELECT 1 FROM bookings x WHERE x.id = :booking_id)
    RETURNING w.id, w.offered_quantity
), ins AS (
    INSERT INTO bookings (id, event_id, user_id, quantity, amount, currency, status,
                          workflow_id, hold_expires_at, waitlist_entry_id)
    SELECT :booking_id, e.id, :user_id, adopt.offered_quantity,
           e.price * adopt.offered_quantity, e.currency, 'held', :workflow_id,
           now() + make_interval(secs => CAST(:hold_seconds AS integer)), adopt.id
    FROM adopt JOIN events e ON e.id = :event_id
    RETURNING id, amount, currency, hold_expires_at
)
SELECT ins.amount, ins.currency, ins.hold_expires_at, e.ends_at
FROM ins JOIN events e ON e.id = :event_id
"""
)


async def reserve_from_offer(
    conn: AsyncConnection,
    *,
    booking_id: uuid.UUID,
    entry_id: uuid.UUID,
    event_id: uuid.UUID,
    user_id: uuid.UUID,
    quantity: int,
    hold_seconds: int,
    workflow_id: str,
) -> Reservation:
    """Turn an open waitlist offer into a held booking (autocommit connection). Idempotent:
    a retry finds the booking and reports it; a closed offer gives ``offer_not_open``."""
    row = (
        await conn.execute(
            _RESERVE_FROM_OFFER,
            {
                "booking_id": booking_id,
                "entry_id": entry_id,
                "event_id": event_id,
                "user_id": user_id,
                "quantity": quantity,
                "hold_seconds": hold_seconds,
                "workflow_id": workflow_id,
            },
        )
    ).first()
    if row is not None:
        return _reservation(booking_id, event_id, quantity, BookingStatus.HELD, row)
    return await _as_found(conn, booking_id, event_id, quantity, ReserveOutcome.OFFER_NOT_OPEN)


# ---- a hold paid: held → sold -----------------------------------------------------------------

# a notification in the same statement as the booking change (no extra round trip); the
# dedupe key makes a retried statement insert nothing
_NOTICE = """
    INSERT INTO notifications (id, user_id, kind, dedupe_key, booking_id, payload)
    SELECT gen_random_uuid(), b.user_id, {kind}, 'booking:' || b.id || ':' || {kind}, b.id,
           jsonb_build_object('event_id', b.event_id, 'quantity', b.quantity)
    FROM b ON CONFLICT (dedupe_key) DO NOTHING"""
_CONFIRM_NOTICE = _NOTICE.format(kind="'booking_confirmed'")
_RELEASE_NOTICE = _NOTICE.format(
    kind="CASE WHEN CAST(:to_status AS text) = 'expired' THEN 'hold_expired' "
    "ELSE 'booking_cancelled' END"
)

# The tickets of a confirmed booking, one per seat, in the statement that confirms it: serials
# ``seat`` = the event's ``tickets_issued`` before + 1..n (the event row is locked by the same
# UPDATE, so serials never collide). ``ev`` is the events UPDATE that took them. The secret in
# the QR is derived from the row on demand (evently/tickets/store.py), never stored.
_ISSUE_TICKETS = """
    INSERT INTO tickets (id, booking_id, event_id, seat, status, issued_at)
    SELECT gen_random_uuid(), ev.booking_id, ev.event_id, ev.tickets_issued - ev.quantity + n,
           'valid', date_trunc('second', now())
    FROM ev CROSS JOIN LATERAL generate_series(1, ev.quantity) AS n"""

_CONFIRM = text(
    f"""
WITH b AS (
    UPDATE bookings SET status = 'confirmed', confirmed_at = now(), updated_at = now()
    WHERE id = :booking_id AND status = 'held'
      AND EXISTS (SELECT 1 FROM payments p WHERE p.booking_id = bookings.id
                  AND p.kind = 'charge' AND p.status = 'succeeded' AND p.amount = bookings.amount)
    RETURNING id, user_id, event_id, quantity
), notice AS ({_CONFIRM_NOTICE}
), ev AS (
    UPDATE events e SET held = e.held - b.quantity, sold = e.sold + b.quantity,
        tickets_issued = e.tickets_issued + b.quantity, {BUMP}
    FROM b WHERE e.id = b.event_id
    RETURNING {COUNTERS}, e.tickets_issued, b.id AS booking_id, b.quantity
), issued AS ({_ISSUE_TICKETS}
)
SELECT event_id, capacity, available, held, sold, status, updated_at FROM ev
"""
)


async def confirm(conn: AsyncConnection, booking_id: uuid.UUID) -> Counters | None:
    """held → confirmed, only with a recorded successful charge of its amount, and its tickets
    issued (one per seat). Idempotent: None when the booking was not held (a retry, or nothing
    to confirm)."""
    row = (await conn.execute(_CONFIRM, {"booking_id": booking_id})).first()
    return _counters(row) if row else None


# ---- a hold or a sale ended: seats back to the public, or kept for the waitlist -------------

_RELEASE = text(
    f"""
WITH b AS (
    UPDATE bookings SET status = :to_status, ended_at = now(), updated_at = now(),
           ended_by = :actor, end_reason = :reason
    WHERE id = :booking_id AND status = CAST(:from_status AS text)
      AND (CAST(:from_status AS text) = 'held' OR EXISTS (
            SELECT 1 FROM payments p WHERE p.booking_id = bookings.id
            AND p.kind = 'refund' AND p.status = 'succeeded'))
    RETURNING id, user_id, event_id, quantity
), notice AS ({_RELEASE_NOTICE}
), revoked AS (
    UPDATE tickets t SET status = 'revoked', revoked_at = now()
    FROM b WHERE CAST(:from_status AS text) = 'confirmed'
      AND t.booking_id = b.id AND t.status = 'valid'
)
UPDATE events e SET
    held = e.held - CASE WHEN CAST(:from_status AS text) = 'held' THEN b.quantity ELSE 0 END
                  + CASE WHEN e.waitlist_waiting > 0 THEN b.quantity ELSE 0 END,
    sold = e.sold - CASE WHEN CAST(:from_status AS text) = 'confirmed' THEN b.quantity ELSE 0 END,
    available = e.available + CASE WHEN e.waitlist_waiting > 0 THEN 0 ELSE b.quantity END,
    waitlist_pool = e.waitlist_pool + CASE WHEN e.waitlist_waiting > 0 THEN b.quantity ELSE 0 END,
    {BUMP}
FROM b WHERE e.id = b.event_id
RETURNING {COUNTERS}, CASE WHEN e.waitlist_waiting > 0 THEN b.quantity ELSE 0 END AS to_waitlist
"""
)


async def release(
    conn: AsyncConnection,
    booking_id: uuid.UUID,
    *,
    from_status: BookingStatus,
    to_status: BookingStatus,
    actor: str,
    reason: str,
) -> Released | None:
    """held → expired/cancelled, or confirmed (refunded) → cancelled, its tickets revoked; the
    seats go back to the public pool, or, while anyone waits (``events.waitlist_waiting`` on
    the locked row), stay held in ``waitlist_pool`` for the waitlist (``to_waitlist``).
    Returns None when the booking was not in ``from_status`` (a retry)."""
    row = (
        await conn.execute(
            _RELEASE,
            {
                "booking_id": booking_id,
                "from_status": from_status,
                "to_status": to_status,
                "actor": actor[:200],
                "reason": reason[:200],
            },
        )
    ).first()
    if row is None:
        return None
    return Released(**_counters(row).model_dump(), to_waitlist=row.to_waitlist)


# ---- a payment after the hold ended -----------------------------------------------------------

_TAKE_AGAIN = text(
    f"""UPDATE events e SET available = e.available - :q, sold = e.sold + :q,
        tickets_issued = e.tickets_issued + :q, {BUMP}
    WHERE e.id = :event_id AND e.status = 'published' AND e.available >= :q
    RETURNING {COUNTERS}, e.tickets_issued"""
)

# the late confirmation: booking → confirmed, its tickets (serials taken by _TAKE_AGAIN on the
# locked event row) and the buyer's confirmation notice, in the same transaction
_CONFIRM_LATE = text(
    f"""
WITH b AS (
    UPDATE bookings SET status = 'confirmed', confirmed_at = now(), ended_at = NULL,
           end_reason = 'late payment accepted', updated_at = now()
    WHERE id = :id AND status = 'expired'
    RETURNING id, user_id, event_id, quantity
), notice AS ({_CONFIRM_NOTICE}
), ev AS (
    SELECT b.id AS booking_id, b.event_id, b.quantity,
           CAST(:tickets_issued AS integer) AS tickets_issued
    FROM b
)
{_ISSUE_TICKETS}
"""
)


async def settle_late_payment(
    conn: AsyncConnection, booking_id: uuid.UUID
) -> tuple[LateSettlement, Counters | None]:
    """A payment arrived after the hold ended: take the seats again if they are still free
    (booking → confirmed, its tickets issued, the buyer notified), else report ``refund``.
    Runs in one transaction with the booking row locked so two deliveries cannot both take
    seats."""
    b = (
        await conn.execute(
            text("SELECT status, event_id, quantity FROM bookings WHERE id = :id FOR UPDATE"),
            {"id": booking_id},
        )
    ).first()
    if b is None:
        return LateSettlement.UNKNOWN, None
    if b.status == BookingStatus.CONFIRMED:
        return LateSettlement.CONFIRMED, None
    if b.status == BookingStatus.HELD:
        return LateSettlement.HELD, None
    if b.status != BookingStatus.EXPIRED:
        return LateSettlement.REFUND, None
    ev = (await conn.execute(_TAKE_AGAIN, {"q": b.quantity, "event_id": b.event_id})).first()
    if ev is None:
        return LateSettlement.REFUND, None
    await conn.execute(_CONFIRM_LATE, {"id": booking_id, "tickets_issued": ev.tickets_issued})
    return LateSettlement.CONFIRMED, _counters(ev)


# ---- the waitlist's counters (evently/waitlist.py runs these in its transactions) -----------


class EventLock:
    """The event row, locked (``FOR NO KEY UPDATE``) for the rest of the transaction."""

    def __init__(self, row: Any) -> None:
        self.status: str = row.status
        self.available: int = row.available
        self.held: int = row.held
        self.waitlist_pool: int = row.waitlist_pool
        self.waitlist_waiting: int = row.waitlist_waiting


_LOCK_EVENT = text(
    "SELECT id, status, available, held, waitlist_pool, waitlist_waiting FROM events "
    "WHERE id = :id FOR NO KEY UPDATE"
)


async def lock_event(conn: AsyncConnection, event_id: uuid.UUID) -> EventLock | None:
    row = (await conn.execute(_LOCK_EVENT, {"id": event_id})).first()
    return EventLock(row) if row is not None else None


async def count_waiter(session: AsyncSession, event_id: uuid.UUID) -> int | None:
    """A buyer joins a sold-out event's waitlist: ``waitlist_waiting + 1`` under the event's
    lock, so a release that commits after this keeps its seats for the waitlist (one that
    committed before made ``available > 0``, and this refuses). Returns the seats already in
    the pool, or None when seats are on sale or the event is not published."""
    row = (
        await session.execute(
            text(
                "UPDATE events SET waitlist_waiting = waitlist_waiting + 1 "
                "WHERE id = :id AND status = 'published' AND available = 0 "
                "RETURNING waitlist_pool"
            ),
            {"id": event_id},
        )
    ).first()
    return None if row is None else int(row.waitlist_pool)


_SETTLE_POOL = text(
    f"""UPDATE events e SET waitlist_pool = :pool, waitlist_waiting = :waiting,
    held = e.held - :returned, available = e.available + :returned, {BUMP}
    WHERE e.id = :id RETURNING {COUNTERS}"""
)


async def settle_waitlist_pool(
    conn: AsyncConnection, event_id: uuid.UUID, *, pool: int, waiting: int, returned: int
) -> Counters:
    """After an allocation round (event locked): the seats still pooled, the entries still
    waiting, and ``returned`` pooled seats back on sale (nobody left that they fit)."""
    row = (
        await conn.execute(
            _SETTLE_POOL, {"pool": pool, "waiting": waiting, "returned": returned, "id": event_id}
        )
    ).one()
    return _counters(row)


async def offer_back_to_pool(conn: AsyncConnection, event_id: uuid.UUID, seats: int) -> None:
    """An offer lapsed (event locked): its seats go back to the pool (still held)."""
    await conn.execute(
        text("UPDATE events SET waitlist_pool = waitlist_pool + :n WHERE id = :id"),
        {"n": seats, "id": event_id},
    )


async def leave_waitlist(
    conn: AsyncConnection, event_id: uuid.UUID, *, was_waiting: bool, seats_back: int
) -> None:
    """An entry left (event locked): one fewer waiting, or a declined offer's seats back to
    the pool."""
    await conn.execute(
        text(
            "UPDATE events SET waitlist_waiting = waitlist_waiting - :w, "
            "waitlist_pool = waitlist_pool + :p WHERE id = :e"
        ),
        {"w": 1 if was_waiting else 0, "p": seats_back, "e": event_id},
    )


# ---- capacity: part of an organizer's event change (evently/events.py) ---------------------


def capacity_change(
    events_table: Any, capacity: int
) -> tuple[dict[str, ColumnElement[Any]], ColumnElement[bool]]:
    """The SET values and the guard of a capacity change, for the event UPDATE that carries
    it: the new seats become available (or disappear from ``available``), never below the
    seats already held or sold."""
    from sqlalchemy import literal

    values: dict[str, ColumnElement[Any]] = {
        "capacity": literal(capacity),
        "available": events_table.available + (literal(capacity) - events_table.capacity),
    }
    guard: ColumnElement[bool] = events_table.held + events_table.sold <= capacity
    return values, guard
