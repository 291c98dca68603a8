"""The waitlist: its entries and offers, every statement about them. The seat counters they
move (pool, waiting) change only through evently/inventory/seats.py, in the same transaction.

Seats (docs/architecture.md, "Waitlist"):
- The booking release statement (seats.release) keeps freed seats in ``held`` as
  ``events.waitlist_pool`` whenever ``events.waitlist_waiting > 0`` on the row it locks, so they
  are never public while anyone waits.
- ``allocate`` (activity, event row locked) offers the pool to waiting entries in join order,
  first fit: an entry that wants more seats than are pooled keeps its place (position) and is
  considered first in every later round; smaller entries behind it may be served meanwhile, so
  seats never sit idle while someone they fit waits. With nobody waiting, the pool returns to the
  public (available += n).
- An offer moves seats pool → entry (``offered_quantity``, still ``held``); accepting adopts them
  into a held booking (seats.reserve_from_offer); declining or lapsing moves them back to the
  pool.
Invariant (evently.invariants): held = held bookings + open offers + pool; waitlist_waiting =
entries in status waiting.

Lock order everywhere: the event row first (seats.lock_event), then entries.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from evently.db.models import WaitlistEntry
from evently.enums import EventStatus, WaitlistStatus
from evently.errors import (
    AlreadyWaitlisted,
    Conflict,
    EventNotFound,
    EventNotOnSale,
    NoOpenOffer,
    OfferExpired,
    OfferNotOpen,
    QuantityAboveCapacity,
    QuantityTooLarge,
    SeatsAvailable,
    TicketTypeNotFound,
    TooManyOfType,
    Unprocessable,
    WaitlistEntryNotFound,
)
from evently.inventory import seats
from evently.inventory.types import Counters

WAITLIST_NAMESPACE = uuid.UUID("0d7f3c5e-8a51-4f0e-b7a4-3c9d2e6f1a88")
_BATCH = 100
ACTIVE = (WaitlistStatus.WAITING, WaitlistStatus.OFFERED)


class OpenOffer(BaseModel):
    entry_id: uuid.UUID
    user_id: uuid.UUID
    offer_id: str
    seats: int
    expires_at: datetime


class LeaveResult(BaseModel):
    entry_id: uuid.UUID
    # left: this call (or an earlier attempt) took the buyer off the waitlist;
    # otherwise the entry's current status (accepted, expired: nothing changed)
    status: WaitlistStatus | Literal["unknown"]
    declined_offer: str | None = None  # the offer id given back, when an open offer was declined
    seats_returned: int = 0


def offer_id_for(entry_id: uuid.UUID) -> str:
    """An entry gets at most one offer (declined → left, lapsed → expired, taken → accepted)."""
    return f"{entry_id}:offer"


def booking_id_for_offer(offer_id: str) -> uuid.UUID:
    """Accepting the same offer again names the same booking (and the same workflow)."""
    return uuid.uuid5(WAITLIST_NAMESPACE, offer_id)


# ---- join, read ---------------------------------------------------------------------------


@dataclass
class Joined:
    entry: WaitlistEntry
    position: int | None
    pooled: int  # seats already kept for the waitlist: poke the workflow after the commit


async def join(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    event_id: uuid.UUID,
    quantity: int,
    max_quantity: int,
    ticket_type_id: uuid.UUID | None = None,
) -> Joined:
    """Join a sold-out event's waitlist (flushes; the request's session commits). A seated
    event's entry may wait for one ticket type: the seats of its category, at its price."""
    if quantity > max_quantity:
        raise QuantityTooLarge(f"quantity: at most {max_quantity} tickets per booking.")
    ev = (
        await session.execute(
            text("SELECT status, capacity, available, seating_plan_id FROM events WHERE id = :id"),
            {"id": event_id},
        )
    ).first()
    if ev is None:
        raise EventNotFound()
    if ev.status != EventStatus.PUBLISHED:
        raise EventNotOnSale()
    if quantity > ev.capacity:
        raise QuantityAboveCapacity(f"quantity: this event has only {ev.capacity} seats.")
    if ticket_type_id is not None:
        await _check_type(session, event_id, ev.seating_plan_id, ticket_type_id, quantity)
    if await _active_entry(session, user_id, event_id) is not None:
        raise AlreadyWaitlisted()
    pooled = await seats.count_waiter(session, event_id)
    if pooled is None:
        raise SeatsAvailable()
    entry_id = uuid.uuid4()
    try:
        async with session.begin_nested():
            await session.execute(
                text(
                    "INSERT INTO waitlist_entries (id, event_id, user_id, quantity, status, "
                    "ticket_type_id, created_at, updated_at) VALUES (:id, :event_id, :user_id, "
                    ":quantity, 'waiting', :type, clock_timestamp(), clock_timestamp())"
                ),
                {
                    "id": entry_id,
                    "event_id": event_id,
                    "user_id": user_id,
                    "quantity": quantity,
                    "type": ticket_type_id,
                },
            )
    except IntegrityError as exc:  # a concurrent join by the same buyer won the unique index
        raise AlreadyWaitlisted() from exc
    entry = await session.get(WaitlistEntry, entry_id)
    assert entry is not None
    return Joined(entry, await position(session, entry), pooled)


_TYPE_SEATS = text(
    """
SELECT t.seat_category, t.is_default, t.capacity, t.max_per_booking,
       (SELECT count(*) FROM event_seats s WHERE s.event_id = t.event_id AND NOT s.blocked
          AND (t.seat_category IS NULL OR s.category = t.seat_category)) AS seats
FROM ticket_types t WHERE t.id = :id AND t.event_id = :e AND NOT t.hidden
"""
)


async def _check_type(
    session: AsyncSession,
    event_id: uuid.UUID,
    plan_id: uuid.UUID | None,
    ticket_type_id: uuid.UUID,
    quantity: int,
) -> None:
    """A waitlist entry's ticket type (issue 34): a type of this seated event that can ever
    hold ``quantity`` seats."""
    if plan_id is None:
        raise Unprocessable(
            "ticket_type_id: only a seated event's waitlist waits for a ticket type; this "
            "event's waitlist offers its default tickets."
        )
    t = (await session.execute(_TYPE_SEATS, {"id": ticket_type_id, "e": event_id})).first()
    if t is None:
        raise TicketTypeNotFound("ticket_type_id: no such ticket type on sale for this event.")
    if t.seat_category is None and not t.is_default:
        raise Unprocessable("ticket_type_id: this ticket type sells no seat of the plan.")
    if t.max_per_booking is not None and quantity > t.max_per_booking:
        raise TooManyOfType(f"quantity: at most {t.max_per_booking} of this ticket type.")
    most = min(t.seats, t.capacity) if t.capacity is not None else t.seats
    if quantity > most:
        raise QuantityAboveCapacity(f"quantity: this ticket type has only {most} seats.")


async def _active_entry(
    session: AsyncSession, user_id: uuid.UUID, event_id: uuid.UUID
) -> WaitlistEntry | None:
    entry: WaitlistEntry | None = await session.scalar(
        select(WaitlistEntry).where(
            WaitlistEntry.user_id == user_id,
            WaitlistEntry.event_id == event_id,
            WaitlistEntry.status.in_(ACTIVE),
        )
    )
    return entry


async def position(session: AsyncSession, entry: WaitlistEntry) -> int | None:
    """1-based place among the event's waiting entries (join order); None unless waiting."""
    if entry.status != WaitlistStatus.WAITING:
        return None
    ahead = await session.scalar(
        text(
            "SELECT count(*) FROM waitlist_entries WHERE event_id = :e AND status = 'waiting' "
            "AND (created_at, id) < (:c, :i)"
        ),
        {"e": entry.event_id, "c": entry.created_at, "i": entry.id},
    )
    return int(ahead or 0) + 1


async def own_entry(
    session: AsyncSession, user_id: uuid.UUID, entry_id: uuid.UUID
) -> WaitlistEntry:
    """The caller's entry; anyone else's is reported as missing (404)."""
    entry = await session.get(WaitlistEntry, entry_id, populate_existing=True)
    if entry is None or entry.user_id != user_id:
        raise WaitlistEntryNotFound()
    return entry


# ---- accept -------------------------------------------------------------------------------


def offer_lapsed(entry: WaitlistEntry, now: datetime) -> bool:
    return entry.offer_expires_at is not None and entry.offer_expires_at <= now


def not_open(entry: WaitlistEntry, now: datetime | None = None) -> Conflict:
    """Why an entry's offer cannot be accepted."""
    now = now or datetime.now(UTC)
    if entry.status == WaitlistStatus.EXPIRED or (
        entry.status == WaitlistStatus.OFFERED and offer_lapsed(entry, now)
    ):
        return OfferExpired()
    if entry.status == WaitlistStatus.WAITING:
        return NoOpenOffer()
    return OfferNotOpen(f"This waitlist entry is {entry.status}.")


# ---- the activities' statements (one transaction each, event row locked first) ----------


@dataclass
class Allocation:
    offered: list[OpenOffer] = field(default_factory=list)
    open_offers: list[OpenOffer] = field(default_factory=list)
    returned_to_public: int = 0
    pooled: int = 0
    closed: bool = False
    counters: Counters | None = None  # set when the event's counters changed
    before_available: int = 0


_OPEN_OFFERS = text(
    "SELECT id, user_id, offer_id, offered_quantity, offer_expires_at FROM waitlist_entries "
    "WHERE event_id = :e AND status = 'offered' ORDER BY offer_expires_at, id"
)

_CANDIDATES = text(
    """
SELECT w.id, w.user_id, w.quantity, w.created_at, w.ticket_type_id,
       CASE WHEN t.is_default THEN NULL ELSE t.seat_category END AS category
FROM waitlist_entries w LEFT JOIN ticket_types t ON t.id = w.ticket_type_id
WHERE w.event_id = :e AND w.status = 'waiting' AND w.quantity <= :pool
  AND (w.created_at, w.id) > (CAST(:after_c AS timestamptz), CAST(:after_i AS uuid))
ORDER BY w.created_at, w.id LIMIT :limit
FOR UPDATE OF w
"""
)

# a seated event's free seats per category, its open offers per ticket type and its capped
# types' room (the budget of per-type offers, below)
_FREE_BY_CATEGORY = text(
    "SELECT category, count(*) AS n FROM event_seats "
    "WHERE event_id = :e AND booking_id IS NULL AND NOT blocked GROUP BY category"
)
_OFFERED_BY_TYPE = text(
    """
SELECT w.ticket_type_id, CASE WHEN t.is_default THEN NULL ELSE t.seat_category END AS category,
       sum(w.offered_quantity) AS n
FROM waitlist_entries w LEFT JOIN ticket_types t ON t.id = w.ticket_type_id
WHERE w.event_id = :e AND w.status = 'offered'
GROUP BY w.ticket_type_id, category
"""
)
_TYPE_ROOM = text(
    "SELECT id, capacity - held - sold AS room FROM ticket_types "
    "WHERE event_id = :e AND capacity IS NOT NULL"
)


@dataclass
class _SeatBudget:
    """Per-type offers of a seated event (issue 34), counted so that every open offer finds
    its seats when it is accepted. An offer is a count (its seats are picked at acceptance);
    the free seats of a category C must cover C's typed offers against everything else that
    may take C seats meanwhile: the public (``available``) and the untyped offers (any seat).
    ``spare[C]`` = free C seats - C's typed offers - available - untyped offers: a typed offer
    of C needs ``spare[C] >= q``; an untyped one must leave ``spare`` non-negative for every
    category that has typed offers. Capped types also need room under their cap.

    While anyone waits, freed seats stay kept for the waitlist (``available`` stays 0 unless
    the organizer adds seats), so the budget is exact: a seat of a category nobody waiting
    wants stays kept until someone who can use it joins (the event is sold out to the
    public meanwhile, so they can), or returns to sale once nobody waits."""

    spare: dict[str, int]
    typed: dict[str, int]
    room: dict[uuid.UUID, int]

    @classmethod
    async def read(cls, conn: AsyncConnection, event_id: uuid.UUID, available: int) -> _SeatBudget:
        free = {
            r.category: int(r.n) for r in await conn.execute(_FREE_BY_CATEGORY, {"e": event_id})
        }
        typed: dict[str, int] = {}
        untyped = 0
        by_type: dict[uuid.UUID, int] = {}
        for r in await conn.execute(_OFFERED_BY_TYPE, {"e": event_id}):
            if r.category is None:
                untyped += int(r.n)
            else:
                typed[r.category] = typed.get(r.category, 0) + int(r.n)
            if r.ticket_type_id is not None:
                by_type[r.ticket_type_id] = by_type.get(r.ticket_type_id, 0) + int(r.n)
        spare = {c: n - typed.get(c, 0) - available - untyped for c, n in free.items()}
        room = {
            r.id: int(r.room) - by_type.get(r.id, 0)
            for r in await conn.execute(_TYPE_ROOM, {"e": event_id})
        }
        return cls(spare=spare, typed=typed, room=room)

    def fits(self, category: str | None, type_id: uuid.UUID | None, q: int) -> bool:
        if type_id is not None and self.room.get(type_id, q) < q:
            return False
        if category is not None:
            return self.spare.get(category, 0) >= q
        return all(self.spare.get(c, 0) >= q for c, n in self.typed.items() if n > 0)

    def take(self, category: str | None, type_id: uuid.UUID | None, q: int) -> None:
        if type_id is not None and type_id in self.room:
            self.room[type_id] -= q
        if category is not None:
            self.spare[category] = self.spare.get(category, 0) - q
            self.typed[category] = self.typed.get(category, 0) + q
        else:
            self.spare = {c: n - q for c, n in self.spare.items()}


_OFFER = text(
    """
WITH o AS (
    UPDATE waitlist_entries SET status = 'offered', offered_quantity = quantity,
           offer_id = :offer_id, offer_expires_at = :expires_at, updated_at = now()
    WHERE id = :id AND status = 'waiting'
    RETURNING id, user_id, event_id, quantity, offer_id, offer_expires_at
)
INSERT INTO notifications (id, user_id, kind, dedupe_key, waitlist_entry_id, payload)
SELECT gen_random_uuid(), o.user_id, 'waitlist_offer', 'waitlist-offer:' || o.offer_id,
       o.id, jsonb_build_object('event_id', o.event_id, 'seats', o.quantity,
                                'expires_at', o.offer_expires_at)
FROM o ON CONFLICT (dedupe_key) DO NOTHING
"""
)

_CLOSE = text(
    """
WITH o AS (
    SELECT id, status AS old_status, offered_quantity FROM waitlist_entries
    WHERE event_id = :e AND status IN ('waiting', 'offered') FOR UPDATE
), c AS (
    UPDATE waitlist_entries w SET status = 'expired', updated_at = now()
    FROM o WHERE w.id = o.id
    RETURNING o.old_status, o.offered_quantity
)
SELECT count(*) FILTER (WHERE old_status = 'waiting') AS waiting,
       COALESCE(sum(offered_quantity) FILTER (WHERE old_status = 'offered'), 0) AS offered
FROM c
"""
)


def _offer_of(row: Any) -> OpenOffer:
    return OpenOffer(
        entry_id=row.id,
        user_id=row.user_id,
        offer_id=row.offer_id,
        seats=row.offered_quantity,
        expires_at=row.offer_expires_at,
    )


async def allocate(conn: AsyncConnection, event_id: uuid.UUID, expires_at: datetime) -> Allocation:
    """Offer the event's pooled seats (run in a transaction). Idempotent: it works from the
    current Postgres state, and reports every open offer so the caller re-arms what exists."""
    out = Allocation()
    ev = await seats.lock_event(conn, event_id)
    if ev is None:
        return out
    out.before_available = ev.available
    pool, waiting, returned, offered_now = ev.waitlist_pool, ev.waitlist_waiting, 0, 0
    if ev.status != EventStatus.PUBLISHED:
        # sales are over: close the waitlist, every kept or offered seat goes back
        closed = (await conn.execute(_CLOSE, {"e": event_id})).one()
        out.closed = closed.waiting > 0 or closed.offered > 0 or pool > 0
        returned, pool, waiting = pool + int(closed.offered), 0, waiting - int(closed.waiting)
    else:
        budget = await _SeatBudget.read(conn, event_id, ev.available) if ev.seated else None
        after: tuple[datetime, uuid.UUID] = (datetime(1970, 1, 1, tzinfo=UTC), uuid.UUID(int=0))
        while pool > 0 and waiting > 0:
            rows = (
                await conn.execute(
                    _CANDIDATES,
                    {
                        "e": event_id,
                        "pool": pool,
                        "after_c": after[0],
                        "after_i": after[1],
                        "limit": _BATCH,
                    },
                )
            ).all()
            for r in rows:
                if r.quantity > pool:
                    continue  # keeps its place; a later round with more seats serves it first
                if budget is not None:  # a seated event: only seats its offer will find
                    if not budget.fits(r.category, r.ticket_type_id, r.quantity):
                        continue  # keeps its place, like an entry wanting more seats
                    budget.take(r.category, r.ticket_type_id, r.quantity)
                oid = offer_id_for(r.id)
                await conn.execute(_OFFER, {"id": r.id, "offer_id": oid, "expires_at": expires_at})
                pool -= r.quantity
                waiting -= 1
                offered_now += 1
                out.offered.append(
                    OpenOffer(
                        entry_id=r.id,
                        user_id=r.user_id,
                        offer_id=oid,
                        seats=r.quantity,
                        expires_at=expires_at,
                    )
                )
                if pool == 0:
                    break
            if len(rows) < _BATCH:
                break
            after = (rows[-1].created_at, rows[-1].id)
        if waiting == 0 and pool > 0:
            returned, pool = pool, 0  # nobody waits: the seats go back on sale
    if returned or offered_now or pool != ev.waitlist_pool or waiting != ev.waitlist_waiting:
        out.counters = await seats.settle_waitlist_pool(
            conn, event_id, pool=pool, waiting=waiting, returned=returned
        )
    out.returned_to_public = returned
    out.pooled = pool
    out.open_offers = [_offer_of(r) for r in await conn.execute(_OPEN_OFFERS, {"e": event_id})]
    return out


_EXPIRE = text(
    """
WITH x AS (
    UPDATE waitlist_entries SET status = 'expired', updated_at = now()
    WHERE id = :entry_id AND offer_id = :offer_id AND status = 'offered'
    RETURNING id, user_id, event_id, offered_quantity, offer_id
), n AS (
    INSERT INTO notifications (id, user_id, kind, dedupe_key, waitlist_entry_id, payload)
    SELECT gen_random_uuid(), x.user_id, 'waitlist_offer_expired',
           'waitlist-expired:' || x.offer_id, x.id,
           jsonb_build_object('event_id', x.event_id, 'seats', x.offered_quantity)
    FROM x ON CONFLICT (dedupe_key) DO NOTHING
)
SELECT x.offered_quantity FROM x
"""
)


async def expire_offer(
    conn: AsyncConnection, event_id: uuid.UUID, entry_id: uuid.UUID, offer_id: str
) -> int:
    """An offer's window ended: offered seats → pool (still held). Returns the seats moved
    (0 when the offer was already accepted, declined or expired: a retry or a race lost)."""
    await seats.lock_event(conn, event_id)
    row = (await conn.execute(_EXPIRE, {"entry_id": entry_id, "offer_id": offer_id})).first()
    if row is None:
        return 0
    await seats.offer_back_to_pool(conn, event_id, row.offered_quantity)
    return int(row.offered_quantity)


_REMIND = text(
    """
INSERT INTO notifications (id, user_id, kind, dedupe_key, waitlist_entry_id, payload)
SELECT gen_random_uuid(), w.user_id, 'waitlist_offer_expiring',
       'waitlist-expiring:' || w.offer_id, w.id,
       jsonb_build_object('event_id', w.event_id, 'seats', w.offered_quantity,
                          'expires_at', w.offer_expires_at)
FROM waitlist_entries w
WHERE w.id = :entry_id AND w.offer_id = :offer_id AND w.status = 'offered'
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING id
"""
)


async def remind(conn: AsyncConnection, entry_id: uuid.UUID, offer_id: str) -> bool:
    """ "Your offer lapses soon", once per offer, only while it is still open."""
    return (
        await conn.execute(_REMIND, {"entry_id": entry_id, "offer_id": offer_id})
    ).first() is not None


async def leave(
    conn: AsyncConnection, *, event_id: uuid.UUID, entry_id: uuid.UUID, user_id: uuid.UUID
) -> LeaveResult:
    """waiting → left, or offered → left (declined: the seats go back to the pool). Keyed by
    the entry: a retry finds it left and changes nothing."""
    await seats.lock_event(conn, event_id)
    entry = (
        await conn.execute(
            text(
                "SELECT status, offered_quantity, offer_id FROM waitlist_entries "
                "WHERE id = :id AND user_id = :u AND event_id = :e FOR UPDATE"
            ),
            {"id": entry_id, "u": user_id, "e": event_id},
        )
    ).first()
    if entry is None:
        return LeaveResult(entry_id=entry_id, status="unknown")
    if entry.status not in ACTIVE:
        return LeaveResult(entry_id=entry_id, status=WaitlistStatus(entry.status))
    await conn.execute(
        text("UPDATE waitlist_entries SET status = 'left', updated_at = now() WHERE id = :id"),
        {"id": entry_id},
    )
    declined = entry.status == WaitlistStatus.OFFERED
    seats_back = entry.offered_quantity if declined else 0
    await seats.leave_waitlist(conn, event_id, was_waiting=not declined, seats_back=seats_back)
    return LeaveResult(
        entry_id=entry_id,
        status=WaitlistStatus.LEFT,
        declined_offer=entry.offer_id if declined else None,
        seats_returned=seats_back,
    )
