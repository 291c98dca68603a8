"""The waitlist: every SQL statement it runs, and the commands the API and activities call.

Seats (DESIGN §4):
- The booking release statement (evently.inventory.release) keeps freed seats in ``held`` as
  ``events.waitlist_pool`` whenever ``events.waitlist_waiting > 0`` on the row it locks, so they
  are never public while anyone waits.
- ``allocate`` (activity, event row locked) offers the pool to waiting entries in join order,
  first fit: an entry that wants more seats than are pooled keeps its place (position) and is
  considered first in every later round; smaller entries behind it may be served meanwhile, so
  seats never sit idle while someone they fit waits. With nobody waiting, the pool returns to the
  public (available += n).
- An offer moves seats pool → entry (``offered_quantity``, still ``held``); accepting adopts them
  into a held booking (evently.inventory.reserve_from_offer); declining or lapsing moves them
  back to the pool.
Invariant (evently.invariants): held = held bookings + open offers + pool; waitlist_waiting =
entries in status waiting.

Lock order everywhere: the event row first (FOR NO KEY UPDATE), then entries.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.service import RPCError

from activities.waitlist_models import LeaveInput, LeaveResult, OpenOffer
from evently import task_queues
from evently.bookings import start_booking
from evently.db.models import Booking, Notification, WaitlistEntry
from evently.errors import Conflict, NotFound, ServiceUnavailable, Unprocessable
from evently.inventory import Counters
from evently.resources import Resources
from evently.settings import Settings
from workflows.booking_models import (
    BookingInput,
    ReserveResult,
)
from workflows.waitlist import (
    SIGNAL_SEATS_FREED,
    UPDATE_LEAVE,
    WaitlistInput,
    WaitlistWorkflow,
    waitlist_workflow_id,
)

WAITLIST_NAMESPACE = uuid.UUID("0d7f3c5e-8a51-4f0e-b7a4-3c9d2e6f1a88")
EVENT_ID = SearchAttributeKey.for_keyword("EventId")
USER_ID = SearchAttributeKey.for_keyword("UserId")
BOOKING_STATUS = SearchAttributeKey.for_keyword("BookingStatus")
_BATCH = 100
_COUNTERS = "id AS event_id, capacity, available, held, sold, status, updated_at"
_BUMP = "updated_at = GREATEST(clock_timestamp(), updated_at + interval '1 microsecond')"


def offer_id_for(entry_id: uuid.UUID) -> str:
    """An entry gets at most one offer (declined → left, lapsed → expired, taken → accepted)."""
    return f"{entry_id}:offer"


def booking_id_for_offer(offer_id: str) -> uuid.UUID:
    """Accepting the same offer again names the same booking (and the same workflow)."""
    return uuid.uuid5(WAITLIST_NAMESPACE, offer_id)


# ---- Temporal: hand-over and leave --------------------------------------------------------


async def poke(
    client: Client,
    settings: Settings,
    event_id: uuid.UUID,
    task_queue: str = task_queues.BOOKING,
) -> None:
    """Signal-with-start the event's WaitlistWorkflow: something changed, allocate again."""
    await client.start_workflow(
        WaitlistWorkflow.run,
        WaitlistInput(event_id=event_id, offer_seconds=settings.waitlist_offer_seconds),
        id=waitlist_workflow_id(event_id),
        task_queue=task_queue,
        start_signal=SIGNAL_SEATS_FREED,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=TypedSearchAttributes([SearchAttributePair(EVENT_ID, str(event_id))]),
    )


async def request_leave(
    client: Client,
    settings: Settings,
    req: LeaveInput,
    task_queue: str = task_queues.BOOKING,
) -> LeaveResult:
    """Leave (or decline) through the event's WaitlistWorkflow, which runs the keyed activity and
    passes any declined seats on. Temporal down → 503 and nothing changed."""
    last: Exception | None = None
    for attempt in range(3):
        start: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
            WaitlistWorkflow.run,
            WaitlistInput(event_id=req.event_id, offer_seconds=settings.waitlist_offer_seconds),
            id=waitlist_workflow_id(req.event_id),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(EVENT_ID, str(req.event_id))]
            ),
        )
        try:
            result: LeaveResult = await asyncio.wait_for(
                client.execute_update_with_start_workflow(
                    UPDATE_LEAVE,
                    req,
                    start_workflow_operation=start,
                    id=f"leave-{req.entry_id}",
                    result_type=LeaveResult,
                ),
                timeout=30,
            )
            return result
        except (RPCError, WorkflowUpdateFailedError) as exc:
            # the run may have been finishing as the update arrived: the next attempt starts
            # (or finds) a live run; the activity is keyed by the entry, so a repeat is a no-op
            last = exc
            await asyncio.sleep(0.2 * (attempt + 1))
        except TimeoutError as exc:
            raise ServiceUnavailable("The waitlist did not answer in time; retry.") from exc
    raise ServiceUnavailable(f"The waitlist is unavailable right now; retry. ({last})")


# ---- join, read --------------------------------------------------------------------------


@dataclass
class Joined:
    entry: WaitlistEntry
    position: int | None
    pooled: int  # seats already kept for the waitlist: poke the workflow after the commit


async def join(
    session: AsyncSession,
    settings: Settings,
    *,
    user_id: uuid.UUID,
    event_id: uuid.UUID,
    quantity: int,
) -> Joined:
    """Join a sold-out event's waitlist (flushes; the request's session commits)."""
    if quantity > settings.max_tickets_per_booking:
        raise Unprocessable(
            f"quantity: at most {settings.max_tickets_per_booking} tickets per booking.",
            code="quantity_too_large",
        )
    ev = (
        await session.execute(
            text("SELECT status, capacity, available FROM events WHERE id = :id"), {"id": event_id}
        )
    ).first()
    if ev is None:
        raise NotFound("No such event.", code="event_not_found")
    if ev.status != "published":
        raise Conflict("This event is not on sale.", code="event_not_on_sale")
    if quantity > ev.capacity:
        raise Unprocessable(
            f"quantity: this event has only {ev.capacity} seats.", code="quantity_above_capacity"
        )
    if await _active_entry(session, user_id, event_id) is not None:
        raise Conflict("You are already on this event's waitlist.", code="already_waitlisted")
    # counted on the event row, under its lock: a release that commits after this sees the
    # waiter and keeps its seats for the waitlist; one that committed before made available > 0
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
    if row is None:
        raise Conflict(
            "Seats are on sale for this event: reserve them instead.", code="seats_available"
        )
    entry_id = uuid.uuid4()
    try:
        async with session.begin_nested():
            await session.execute(
                text(
                    "INSERT INTO waitlist_entries (id, event_id, user_id, quantity, status, "
                    "created_at, updated_at) VALUES (:id, :event_id, :user_id, :quantity, "
                    "'waiting', clock_timestamp(), clock_timestamp())"
                ),
                {"id": entry_id, "event_id": event_id, "user_id": user_id, "quantity": quantity},
            )
    except IntegrityError as exc:  # a concurrent join by the same buyer won the unique index
        raise Conflict(
            "You are already on this event's waitlist.", code="already_waitlisted"
        ) from exc
    entry = await session.get(WaitlistEntry, entry_id)
    assert entry is not None
    return Joined(entry, await position(session, entry), int(row.waitlist_pool))


async def _active_entry(
    session: AsyncSession, user_id: uuid.UUID, event_id: uuid.UUID
) -> WaitlistEntry | None:
    entry: WaitlistEntry | None = await session.scalar(
        select(WaitlistEntry).where(
            WaitlistEntry.user_id == user_id,
            WaitlistEntry.event_id == event_id,
            WaitlistEntry.status.in_(("waiting", "offered")),
        )
    )
    return entry


async def position(session: AsyncSession, entry: WaitlistEntry) -> int | None:
    """1-based place among the event's waiting entries (join order); None unless waiting."""
    if entry.status != "waiting":
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
        raise NotFound("No such waitlist entry.", code="waitlist_entry_not_found")
    return entry


async def list_notifications(
    session: AsyncSession, user_id: uuid.UUID, *, page: int, limit: int
) -> tuple[list[Notification], int]:
    total = await session.scalar(
        text("SELECT count(*) FROM notifications WHERE user_id = :u"), {"u": user_id}
    )
    rows = await session.scalars(
        select(Notification)
        .where(Notification.user_id == user_id)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .offset((page - 1) * limit)
        .limit(limit)
    )
    return list(rows), int(total or 0)


# ---- accept ------------------------------------------------------------------------------


def _closed(entry: WaitlistEntry, now: datetime) -> Conflict:
    if entry.status == "expired" or (
        entry.status == "offered" and entry.offer_expires_at and entry.offer_expires_at <= now
    ):
        return Conflict("This offer has lapsed.", code="offer_expired")
    if entry.status == "waiting":
        return Conflict("No seats have been offered to you yet.", code="no_open_offer")
    return Conflict(f"This waitlist entry is {entry.status}.", code="offer_not_open")


async def accept(
    res: Resources,
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    entry_id: uuid.UUID,
    task_queue: str = task_queues.BOOKING,
) -> ReserveResult:
    """Turn the caller's open offer into a HELD booking through the normal BookingWorkflow (not
    the sold-out gate: the booking adopts the offered seats). Accepting again answers the same
    booking."""
    entry = await own_entry(session, user_id, entry_id)
    now = datetime.now(UTC)
    if entry.status == "accepted" and entry.booking_id is not None:
        booking = await session.get(Booking, entry.booking_id)
        await session.commit()
        if booking is not None and booking.status != "held":
            raise Conflict(
                f"This offer was accepted; its booking is {booking.status}.",
                code="offer_not_open",
            )
        if booking is not None:
            return ReserveResult(
                booking_id=booking.id,
                event_id=booking.event_id,
                quantity=booking.quantity,
                status="held",
                hold_expires_at=booking.hold_expires_at,
                amount=booking.amount,
                currency=booking.currency,
            )
    if entry.status != "offered" or entry.offer_id is None or _expired(entry, now):
        raise _closed(entry, now)
    await session.commit()  # release the connection before talking to Temporal
    booking_id = booking_id_for_offer(entry.offer_id)
    data = BookingInput(
        booking_id=booking_id,
        event_id=entry.event_id,
        user_id=user_id,
        quantity=entry.offered_quantity,
        hold_seconds=res.settings.hold_seconds,
        waitlist_entry_id=entry.id,
    )
    result = await start_booking(res, data, task_queue=task_queue)
    if result.status == "held":
        return result
    if result.reason == "offer_not_open":
        await session.refresh(entry)
        raise _closed(entry, datetime.now(UTC))
    raise ServiceUnavailable("Bookings are unavailable right now; retry shortly.")


def _expired(entry: WaitlistEntry, now: datetime) -> bool:
    return entry.offer_expires_at is not None and entry.offer_expires_at <= now


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


_LOCK_EVENT = text(
    "SELECT id, status, available, held, waitlist_pool, waitlist_waiting FROM events "
    "WHERE id = :id FOR NO KEY UPDATE"
)

_OPEN_OFFERS = text(
    "SELECT id, user_id, offer_id, offered_quantity, offer_expires_at FROM waitlist_entries "
    "WHERE event_id = :e AND status = 'offered' ORDER BY offer_expires_at, id"
)

_CANDIDATES = text(
    """
SELECT id, user_id, quantity, created_at FROM waitlist_entries
WHERE event_id = :e AND status = 'waiting' AND quantity <= :pool
  AND (created_at, id) > (CAST(:after_c AS timestamptz), CAST(:after_i AS uuid))
ORDER BY created_at, id LIMIT :limit
FOR UPDATE
"""
)

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
    ev = (await conn.execute(_LOCK_EVENT, {"id": event_id})).first()
    if ev is None:
        return out
    out.before_available = ev.available
    pool, waiting, returned, offered_now = ev.waitlist_pool, ev.waitlist_waiting, 0, 0
    if ev.status != "published":
        # sales are over: close the waitlist, every kept or offered seat goes back
        closed = (await conn.execute(_CLOSE, {"e": event_id})).one()
        out.closed = closed.waiting > 0 or closed.offered > 0 or pool > 0
        returned, pool, waiting = pool + int(closed.offered), 0, waiting - int(closed.waiting)
    else:
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
        row = (
            await conn.execute(
                text(
                    f"""UPDATE events SET waitlist_pool = :pool, waitlist_waiting = :waiting,
                    held = held - :returned, available = available + :returned, {_BUMP}
                    WHERE id = :id RETURNING {_COUNTERS}"""
                ),
                {"pool": pool, "waiting": waiting, "returned": returned, "id": event_id},
            )
        ).one()
        out.counters = Counters.from_row(row)
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
UPDATE events e SET waitlist_pool = e.waitlist_pool + x.offered_quantity
FROM x WHERE e.id = x.event_id
RETURNING x.offered_quantity
"""
)


async def expire_offer(
    conn: AsyncConnection, event_id: uuid.UUID, entry_id: uuid.UUID, offer_id: str
) -> int:
    """An offer's window ended: offered seats → pool (still held). Returns the seats moved
    (0 when the offer was already accepted, declined or expired: a retry or a race lost)."""
    await conn.execute(_LOCK_EVENT, {"id": event_id})
    row = (await conn.execute(_EXPIRE, {"entry_id": entry_id, "offer_id": offer_id})).first()
    return int(row.offered_quantity) if row else 0


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


async def leave(conn: AsyncConnection, req: LeaveInput) -> LeaveResult:
    """waiting → left, or offered → left (declined: the seats go back to the pool). Keyed by
    the entry: a retry finds it left and changes nothing."""
    await conn.execute(_LOCK_EVENT, {"id": req.event_id})
    entry = (
        await conn.execute(
            text(
                "SELECT status, offered_quantity, offer_id FROM waitlist_entries "
                "WHERE id = :id AND user_id = :u AND event_id = :e FOR UPDATE"
            ),
            {"id": req.entry_id, "u": req.user_id, "e": req.event_id},
        )
    ).first()
    if entry is None:
        return LeaveResult(entry_id=req.entry_id, status="unknown")
    if entry.status not in ("waiting", "offered"):
        return LeaveResult(entry_id=req.entry_id, status=entry.status)
    await conn.execute(
        text("UPDATE waitlist_entries SET status = 'left', updated_at = now() WHERE id = :id"),
        {"id": req.entry_id},
    )
    declined = entry.status == "offered"
    await conn.execute(
        text(
            "UPDATE events SET waitlist_waiting = waitlist_waiting - :w, "
            "waitlist_pool = waitlist_pool + :p WHERE id = :e"
        ),
        {
            "w": 0 if declined else 1,
            "p": entry.offered_quantity if declined else 0,
            "e": req.event_id,
        },
    )
    return LeaveResult(
        entry_id=req.entry_id,
        status="left",
        declined_offer=entry.offer_id if declined else None,
        seats_returned=entry.offered_quantity if declined else 0,
    )
