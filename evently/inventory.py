"""Every seat change, each one statement you can point at, plus the Redis sold-out gate.

Postgres is the only authority: a seat is taken by the conditional update
``available = available - :q WHERE available >= :q`` and the CHECK
``available + held + sold = capacity`` refuses any lost or doubled seat. Each function is
idempotent by booking id: a status guard on the booking row makes a retry a no-op.

The gate is an accelerator in front of it (DESIGN §7): a Redis counter of seats that may still
be free, decremented before a workflow is started and given back (exactly once, by booking id)
when a hold is refused or released. A request that cannot fit is answered ``sold_out`` with no
workflow and no Postgres write. The counter may run high (the activity then refuses the extra
requests) but must never run low; it expires after GATE_TTL seconds and is rebuilt from
Postgres, which bounds any drift. With Redis down, every request goes to the activity.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

log = logging.getLogger("evently.inventory")

GATE_TTL = 30  # seconds; the gate is rebuilt from Postgres at least this often
GATE_MARK_TTL = 24 * 3600


@dataclass(frozen=True)
class Counters:
    event_id: uuid.UUID
    capacity: int
    available: int
    held: int
    sold: int
    status: str
    updated_at: datetime  # the cache version: bumped monotonically by every seat change

    @classmethod
    def from_row(cls, row: Any) -> Counters:
        return cls(
            row.event_id,
            row.capacity,
            row.available,
            row.held,
            row.sold,
            row.status,
            row.updated_at,
        )


@dataclass(frozen=True)
class Reservation:
    booking_id: uuid.UUID
    event_id: uuid.UUID
    quantity: int
    status: str  # held, rejected, or the booking's later status on a retry
    amount: Decimal
    currency: str
    hold_expires_at: datetime | None
    event_ends_at: datetime | None
    reason: str | None
    counters: Counters | None  # set when this call changed inventory


def _held(
    booking_id: uuid.UUID, event_id: uuid.UUID, quantity: int, row: Any, counters: Counters | None
) -> Reservation:
    return Reservation(
        booking_id,
        event_id,
        quantity,
        "held",
        row.amount,
        row.currency,
        row.hold_expires_at,
        row.ends_at,
        None,
        counters,
    )


def _rejected(
    booking_id: uuid.UUID,
    event_id: uuid.UUID,
    quantity: int,
    reason: str | None,
    amount: Decimal = Decimal(0),
    currency: str = "",
) -> Reservation:
    return Reservation(
        booking_id, event_id, quantity, "rejected", amount, currency, None, None, reason, None
    )


def _as_found(booking_id: uuid.UUID, row: Any) -> Reservation:
    """A retry finds the booking: report what the first attempt did, take nothing."""
    return Reservation(
        booking_id,
        row.event_id,
        row.quantity,
        row.status,
        row.amount,
        row.currency,
        row.hold_expires_at,
        row.ends_at,
        row.end_reason,
        None,
    )


_COUNTERS = "e.id AS event_id, e.capacity, e.available, e.held, e.sold, e.status, e.updated_at"
# the availability cache's version (evently.availability.VERSION_BUMP_SQL)
_BUMP = "updated_at = GREATEST(clock_timestamp(), e.updated_at + interval '1 microsecond')"

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
        held = e.held + CAST(:quantity AS integer), {_BUMP}
    WHERE e.id = :event_id AND e.status = 'published' AND e.available >= CAST(:quantity AS integer)
      AND EXISTS (SELECT 1 FROM ins)
    RETURNING {_COUNTERS}, e.ends_at
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


async def reserve(
    conn: AsyncConnection,
    *,
    booking_id: uuid.UUID,
    event_id: uuid.UUID,
    user_id: uuid.UUID,
    quantity: int,
    hold_seconds: int,
    workflow_id: str,
) -> Reservation:
    """Insert the booking and take the seats in one statement (autocommit connection)."""
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
        return _held(booking_id, event_id, quantity, row, Counters.from_row(row))
    if row is not None:  # inserted, but the seats were not there: reject the booking row
        reason = (await conn.execute(_REJECT, {"booking_id": booking_id})).scalar_one()
        return _rejected(booking_id, event_id, quantity, reason, row.amount, row.currency)
    existing = (await conn.execute(_BOOKING, {"booking_id": booking_id})).first()
    if existing is None:
        return _rejected(booking_id, event_id, quantity, "event_not_found")
    # a retry: report what the first attempt did, take nothing
    return _as_found(booking_id, existing)


# A waitlist offer accepted: the booking ADOPTS the offered seats (already counted in ``held``),
# so no counter changes; the entry → accepted and the booking row are one statement, guarded by
# the entry's status (an offer that lapsed or was declined meanwhile adopts nothing).
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
        return _held(booking_id, event_id, quantity, row, None)
    existing = (await conn.execute(_BOOKING, {"booking_id": booking_id})).first()
    if existing is None:
        return _rejected(booking_id, event_id, quantity, "offer_not_open")
    return _as_found(booking_id, existing)


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

_CONFIRM = text(
    f"""
WITH b AS (
    UPDATE bookings SET status = 'confirmed', confirmed_at = now(), updated_at = now()
    WHERE id = :booking_id AND status = 'held'
      AND EXISTS (SELECT 1 FROM payments p WHERE p.booking_id = bookings.id
                  AND p.kind = 'charge' AND p.status = 'succeeded' AND p.amount = bookings.amount)
    RETURNING id, user_id, event_id, quantity
), notice AS ({_CONFIRM_NOTICE}
)
UPDATE events e SET held = e.held - b.quantity, sold = e.sold + b.quantity, {_BUMP}
FROM b WHERE e.id = b.event_id
RETURNING {_COUNTERS}
"""
)


async def confirm(conn: AsyncConnection, booking_id: uuid.UUID) -> Counters | None:
    """held → confirmed, only with a recorded successful charge of its amount. Idempotent."""
    row = (await conn.execute(_CONFIRM, {"booking_id": booking_id})).first()
    return Counters.from_row(row) if row else None


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
)
UPDATE events e SET
    held = e.held - CASE WHEN CAST(:from_status AS text) = 'held' THEN b.quantity ELSE 0 END
                  + CASE WHEN e.waitlist_waiting > 0 THEN b.quantity ELSE 0 END,
    sold = e.sold - CASE WHEN CAST(:from_status AS text) = 'confirmed' THEN b.quantity ELSE 0 END,
    available = e.available + CASE WHEN e.waitlist_waiting > 0 THEN 0 ELSE b.quantity END,
    waitlist_pool = e.waitlist_pool + CASE WHEN e.waitlist_waiting > 0 THEN b.quantity ELSE 0 END,
    {_BUMP}
FROM b WHERE e.id = b.event_id
RETURNING {_COUNTERS}, CASE WHEN e.waitlist_waiting > 0 THEN b.quantity ELSE 0 END AS to_waitlist
"""
)


@dataclass(frozen=True)
class Released(Counters):
    to_waitlist: int = 0  # seats kept for the waitlist (not returned to the public pool)


async def release(
    conn: AsyncConnection,
    booking_id: uuid.UUID,
    *,
    from_status: str,
    to_status: str,
    actor: str,
    reason: str,
) -> Released | None:
    """held → expired/cancelled, or confirmed (refunded) → cancelled; the seats go back to the
    public pool, or, while anyone waits (``events.waitlist_waiting`` on the locked row), stay
    held in ``waitlist_pool`` for the waitlist (``to_waitlist``). Returns None when the booking
    was not in ``from_status`` (a retry)."""
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
    c = Counters.from_row(row)
    return Released(**vars(c), to_waitlist=row.to_waitlist)


async def settle_late_payment(
    conn: AsyncConnection, booking_id: uuid.UUID
) -> tuple[str, Counters | None]:
    """A payment arrived after the hold ended: take the seats again if they are still free
    (booking → confirmed), else report ``refund``. Runs in one transaction with the booking
    row locked so two deliveries cannot both take seats."""
    b = (
        await conn.execute(
            text("SELECT status, event_id, quantity FROM bookings WHERE id = :id FOR UPDATE"),
            {"id": booking_id},
        )
    ).first()
    if b is None:
        return "unknown", None
    if b.status == "confirmed":
        return "confirmed", None
    if b.status == "held":
        return "held", None
    if b.status != "expired":
        return "refund", None
    ev = (
        await conn.execute(
            text(
                f"""UPDATE events e SET available = e.available - :q, sold = e.sold + :q, {_BUMP}
                WHERE e.id = :event_id AND e.status = 'published' AND e.available >= :q
                RETURNING {_COUNTERS}"""
            ),
            {"q": b.quantity, "event_id": b.event_id},
        )
    ).first()
    if ev is None:
        return "refund", None
    await conn.execute(
        text(
            """UPDATE bookings SET status = 'confirmed', confirmed_at = now(), ended_at = NULL,
               end_reason = 'late payment accepted', updated_at = now() WHERE id = :id"""
        ),
        {"id": booking_id},
    )
    return "confirmed", Counters.from_row(ev)


# ---------------------------------------------------------------------------------------------
# The sold-out gate (Redis)

_GATE_TAKE = """
-- KEYS[1] gate counter, KEYS[2] idempotency mark ('' when none); ARGV[1] quantity
if KEYS[2] ~= '' and redis.call('EXISTS', KEYS[2]) == 1 then return -4 end
local v = redis.call('GET', KEYS[1])
if not v then return -2 end
if v == 'closed' then return -3 end
local free = tonumber(v)
local q = tonumber(ARGV[1])
if free < q then return -1 end
redis.call('DECRBY', KEYS[1], q)
if KEYS[2] ~= '' then redis.call('SET', KEYS[2], '1', 'EX', ARGV[2]) end
return free - q
"""

_GATE_GIVE = """
-- KEYS[1] gate counter, KEYS[2] once-mark; ARGV[1] quantity, ARGV[2] mark ttl
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then
  local v = redis.call('GET', KEYS[1])
  if v and v ~= 'closed' then redis.call('INCRBY', KEYS[1], ARGV[1]) end
  return 1
end
return 0
"""

GATE_OK, GATE_SOLD_OUT, GATE_MISSING, GATE_CLOSED, GATE_RETRY = (
    "ok",
    "sold_out",
    "missing",
    "closed",
    "retry",
)


def gate_key(event_id: uuid.UUID | str) -> str:
    return f"evently:gate:{{{event_id}}}"


def _idem_key(event_id: uuid.UUID | str, booking_id: uuid.UUID | str) -> str:
    return f"evently:gate:{{{event_id}}}:idem:{booking_id}"


class Gate:
    """The sold-out gate. Every method fails open (returns None) when Redis errs."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._take = redis.register_script(_GATE_TAKE)
        self._give = redis.register_script(_GATE_GIVE)

    async def take(
        self, event_id: uuid.UUID, quantity: int, booking_id: uuid.UUID, idempotent: bool
    ) -> str | None:
        idem = _idem_key(event_id, booking_id) if idempotent else ""
        try:
            res = int(
                await self._take(keys=[gate_key(event_id), idem], args=[quantity, GATE_MARK_TTL])
            )
        except RedisError as exc:
            log.warning("sold-out gate unavailable, going straight to Postgres: %s", exc)
            return None
        return {-1: GATE_SOLD_OUT, -2: GATE_MISSING, -3: GATE_CLOSED, -4: GATE_RETRY}.get(
            res, GATE_OK
        )

    async def load(self, event_id: uuid.UUID, available: int | None) -> None:
        """Seed a missing gate from Postgres (NX: never overwrite a live counter)."""
        try:
            value = "closed" if available is None else str(available)
            await self.redis.set(
                gate_key(event_id), value, nx=True, ex=GATE_TTL if available is not None else 5
            )
        except RedisError as exc:
            log.warning("could not seed the sold-out gate: %s", exc)

    async def give_back(self, event_id: uuid.UUID, quantity: int, once_key: str) -> None:
        """Return seats to the gate exactly once per ``once_key`` (a booking or offer id)."""
        try:
            await self._give(
                keys=[gate_key(event_id), f"evently:gate:{{{event_id}}}:gave:{once_key}"],
                args=[quantity, GATE_MARK_TTL],
            )
        except RedisError as exc:
            # the counter stays low until it expires (GATE_TTL) and is rebuilt from Postgres
            log.warning("could not give seats back to the gate: %s", exc)

    async def reset(self, event_id: uuid.UUID) -> None:
        """Forget the counter (after publish, capacity change, cancel): rebuilt on next use."""
        try:
            await self.redis.delete(gate_key(event_id))
        except RedisError as exc:
            log.warning("could not reset the sold-out gate: %s", exc)
