"""Where a seat is taken, and given back: every statement that moves an event's seat counters.

Postgres is the only authority. A seat is taken by the conditional update
``available = available - :q WHERE available >= :q`` (:data:`RESERVE`), and the CHECK
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

import json
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from evently import pricing
from evently.enums import BookingChangeStatus, BookingStatus, LateSettlement, ReserveOutcome
from evently.inventory.types import Counters, Released, Reservation
from evently.invoices import CREDIT_CANCEL, CREDIT_CHANGE, ISSUE_INVOICE

#: the counters every seat statement returns (``e`` is the events row)
COUNTERS = "e.id AS event_id, e.capacity, e.available, e.held, e.sold, e.status, e.updated_at"
#: SET fragment of every UPDATE of ``events e``: the availability cache's version, strictly
#: increasing per row even if the wall clock steps back (the row lock serialises writers)
BUMP = "updated_at = GREATEST(clock_timestamp(), e.updated_at + interval '1 microsecond')"


def counters_of(row: Any) -> Counters:
    return Counters(
        event_id=row.event_id,
        capacity=row.capacity,
        available=row.available,
        held=row.held,
        sold=row.sold,
        status=row.status,
        updated_at=row.updated_at,
    )


def make_reservation(
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
        discount=getattr(row, "discount", None) or Decimal(0),
    )


# ---- taking seats: a new hold ---------------------------------------------------------------

# One statement: insert the booking keyed by its id with its lines (each at its type's price
# now, the promo code's discount applied), take the event's seats only if this insert happened
# (a retried activity finds the row and takes nothing), then each line from its type (cap,
# sales window, max per booking, hidden unless the code unlocks it) and one use of the code.
# The event is locked first (lock order: event, then its types, then the code). When the event's
# seats were taken but a line or the code could not be, evently_refuse() aborts the whole
# statement: all lines or none, nothing partly taken. A NULL type id is the default type.
# Issue 31: when the event has fees or a line's type a tax rule, the statement also returns what
# the breakdown needs (the priced lines, the fees, the organization's rates) and Python prices the
# booking once (evently/pricing.py) and freezes it on the row; otherwise these columns are NULL
# and the reserve costs what it did (no extra round trip).
_PRICING_COLUMNS = """
       CASE WHEN taken.fees IS NOT NULL
                 OR EXISTS (SELECT 1 FROM req WHERE req.tax_rule_id IS NOT NULL)
            THEN (SELECT jsonb_agg(jsonb_build_array(p.tt, p.q, CAST(p.price AS text),
                                   CAST(p.discount AS text), p.tax_rule_id, p.name) ORDER BY p.ord)
                  FROM priced p) END AS priced_lines,
       taken.fees,
       CASE WHEN taken.fees IS NOT NULL
                 OR EXISTS (SELECT 1 FROM req WHERE req.tax_rule_id IS NOT NULL)
            THEN (SELECT jsonb_object_agg(tr.id, jsonb_build_array(tr.name, CAST(tr.rate AS text),
                                          tr.price_includes_tax))
                  FROM tax_rules tr WHERE tr.organization_id = taken.organization_id)
       END AS rates"""

RESERVE = text(
    f"""
WITH req AS (
    SELECT r.ord, r.q, t.id AS tt, t.price, t.tax_rule_id, t.name
    FROM unnest(CAST(:type_ids AS uuid[]), CAST(:qtys AS integer[])) WITH ORDINALITY
         AS r(tt, q, ord)
    JOIN ticket_types t ON t.event_id = :event_id
         AND (t.id = r.tt OR (r.tt IS NULL AND t.is_default))
), pc AS (
    SELECT p.id, p.percent_off, p.amount_off, p.ticket_type_ids, p.unlocks_hidden
    FROM promo_codes p
    WHERE CAST(:promo AS text) IS NOT NULL AND p.event_id = :event_id
      AND p.code = upper(CAST(:promo AS text))
), priced AS (
    SELECT req.ord, req.tt, req.q, req.price, req.tax_rule_id, req.name,
           (pc.id IS NOT NULL AND (pc.ticket_type_ids IS NULL OR req.tt = ANY (pc.ticket_type_ids)))
               AS eligible,
           CASE WHEN CAST(:comp AS boolean) THEN req.price * req.q
                WHEN pc.id IS NULL
                  OR NOT (pc.ticket_type_ids IS NULL OR req.tt = ANY (pc.ticket_type_ids)) THEN 0
                WHEN pc.percent_off IS NOT NULL
                    THEN round(req.price * req.q * pc.percent_off / 100, 2)
                ELSE least(pc.amount_off, req.price) * req.q END AS discount
    FROM req LEFT JOIN pc ON true
), ins AS (
    INSERT INTO bookings (id, event_id, user_id, quantity, amount, currency, status,
                          workflow_id, hold_expires_at, waitlist_entry_id, promo_code_id,
                          discount)
    SELECT :booking_id, e.id, :user_id, CAST(:quantity AS integer),
           (SELECT sum(price * q) - sum(discount) FROM priced), e.currency, 'held',
           :workflow_id, now() + make_interval(secs => CAST(:hold_seconds AS integer)), NULL,
           (SELECT id FROM pc), (SELECT sum(discount) FROM priced)
    FROM events e WHERE e.id = :event_id
      AND (SELECT count(*) FROM req) = CAST(:n_lines AS integer)
    ON CONFLICT (id) DO NOTHING
    RETURNING id, amount, currency, hold_expires_at, discount
), lines AS (
    INSERT INTO booking_lines (booking_id, ticket_type_id, quantity, unit_price, discount)
    SELECT ins.id, priced.tt, priced.q, priced.price, priced.discount FROM ins, priced
), taken AS (
    UPDATE events e SET available = e.available - CAST(:quantity AS integer),
        held = e.held + CAST(:quantity AS integer), {BUMP}
    WHERE e.id = :event_id AND e.status = 'published' AND e.available >= CAST(:quantity AS integer)
      AND EXISTS (SELECT 1 FROM ins)
    RETURNING {COUNTERS}, e.ends_at, e.fees, e.organization_id
), types AS (
    UPDATE ticket_types t SET held = t.held + priced.q
    FROM priced
    WHERE t.id = priced.tt AND EXISTS (SELECT 1 FROM taken)
      AND (t.capacity IS NULL OR t.capacity - t.held - t.sold >= priced.q)
      AND (t.sales_start IS NULL OR t.sales_start <= now())
      AND (t.sales_end IS NULL OR now() < t.sales_end)
      AND (t.max_per_booking IS NULL OR priced.q <= t.max_per_booking)
      AND (NOT t.hidden OR EXISTS (SELECT 1 FROM pc WHERE pc.unlocks_hidden
           AND (pc.ticket_type_ids IS NULL OR t.id = ANY (pc.ticket_type_ids))))
    RETURNING t.id
), used AS (
    UPDATE promo_codes p SET uses = p.uses + 1
    WHERE p.id = (SELECT id FROM pc) AND EXISTS (SELECT 1 FROM taken)
      AND p.uses < p.max_uses
      AND (p.valid_from IS NULL OR p.valid_from <= now())
      AND (p.valid_until IS NULL OR now() < p.valid_until)
      AND EXISTS (SELECT 1 FROM priced WHERE priced.eligible)
    RETURNING p.id
)
SELECT ins.id AS inserted, ins.amount, ins.currency, ins.hold_expires_at, ins.discount,
       taken.event_id, taken.capacity, taken.available, taken.held, taken.sold, taken.status,
       taken.updated_at, taken.ends_at,
       CASE WHEN taken.event_id IS NOT NULL
             AND ((SELECT count(*) FROM types) <> CAST(:n_lines AS integer)
                  OR (CAST(:promo AS text) IS NOT NULL AND NOT EXISTS (SELECT 1 FROM used)))
            THEN evently_refuse('a line or the promo code could not be taken') END AS refused,
       {_PRICING_COLUMNS}
FROM ins LEFT JOIN taken ON true
"""
)

# A refused reserve leaves this row (no lines, nothing taken): a retry reports the refusal
INSERT_REJECTED = text(
    """
INSERT INTO bookings (id, event_id, user_id, quantity, amount, currency, status, workflow_id,
                      hold_expires_at, ended_at, end_reason)
SELECT :booking_id, e.id, :user_id, CAST(:quantity AS integer), 0, e.currency, 'rejected',
       :workflow_id, NULL, now(), :reason
FROM events e WHERE e.id = :event_id
ON CONFLICT (id) DO NOTHING
"""
)

# Why a reserve was refused (read after the fact: it only names the reason, the statement above
# decided). One row per requested line, in order, with the event and the code.
_DIAGNOSE = text(
    """
SELECT r.ord, r.q, t.id AS tt, t.capacity, t.held AS t_held, t.sold AS t_sold,
       (t.sales_start IS NOT NULL AND now() < t.sales_start)
         OR (t.sales_end IS NOT NULL AND now() >= t.sales_end) AS closed,
       t.hidden, t.max_per_booking,
       e.status AS event_status, e.available,
       p.id AS promo_id, p.uses, p.max_uses, p.unlocks_hidden, p.ticket_type_ids,
       (p.valid_from IS NOT NULL AND now() < p.valid_from)
         OR (p.valid_until IS NOT NULL AND now() >= p.valid_until) AS promo_expired
FROM unnest(CAST(:type_ids AS uuid[]), CAST(:qtys AS integer[])) WITH ORDINALITY AS r(tt, q, ord)
LEFT JOIN events e ON e.id = :event_id
LEFT JOIN ticket_types t ON t.event_id = e.id AND (t.id = r.tt OR (r.tt IS NULL AND t.is_default))
LEFT JOIN promo_codes p ON CAST(:promo AS text) IS NOT NULL AND p.event_id = e.id
     AND p.code = upper(CAST(:promo AS text))
ORDER BY r.ord
"""
)


def _diagnosis(rows: list[Any], promo: str | None) -> str:
    """The reason of a refusal, most specific first (a retry or a race may find the seats
    back: then the event's counters answer)."""
    if not rows or rows[0].event_status is None:
        return ReserveOutcome.EVENT_NOT_FOUND
    if rows[0].event_status != "published":
        return ReserveOutcome.EVENT_NOT_ON_SALE
    code = rows[0]
    for r in rows:
        unlocked = (
            code.promo_id is not None
            and code.unlocks_hidden
            and (code.ticket_type_ids is None or r.tt in code.ticket_type_ids)
        )
        if r.tt is None or (r.hidden and not unlocked):
            return ReserveOutcome.TICKET_TYPE_NOT_FOUND
        if r.max_per_booking is not None and r.q > r.max_per_booking:
            return ReserveOutcome.TOO_MANY_OF_TYPE
        if r.closed:
            return ReserveOutcome.SALES_CLOSED
    if promo is not None:
        if code.promo_id is None:
            return ReserveOutcome.PROMO_CODE_UNKNOWN
        if code.promo_expired:
            return ReserveOutcome.PROMO_CODE_EXPIRED
        if code.ticket_type_ids is not None and not any(r.tt in code.ticket_type_ids for r in rows):
            return ReserveOutcome.PROMO_CODE_NOT_APPLICABLE
    if sum(r.q for r in rows) > rows[0].available:
        return ReserveOutcome.SOLD_OUT
    for r in rows:
        if r.capacity is not None and r.capacity - r.t_held - r.t_sold < r.q:
            return ReserveOutcome.TICKET_TYPE_SOLD_OUT
    if promo is not None and code.uses >= code.max_uses:
        return ReserveOutcome.PROMO_CODE_USED_UP
    # everything looks takeable now: the seats or the use came back right after the refusal
    return ReserveOutcome.SOLD_OUT


_REJECT = text(
    """
UPDATE bookings b SET status = 'rejected', hold_expires_at = NULL, ended_at = now(),
       end_reason = CASE WHEN e.status <> 'published' THEN 'event_not_on_sale' ELSE 'sold_out' END
FROM events e
WHERE b.id = :booking_id AND b.status = 'held' AND e.id = b.event_id
RETURNING b.end_reason
"""
)

BOOKING = text(
    """
SELECT b.id, b.event_id, b.quantity, b.status, b.amount, b.currency, b.hold_expires_at,
       b.end_reason, e.ends_at, b.discount
FROM bookings b JOIN events e ON e.id = b.event_id WHERE b.id = :booking_id
"""
)


async def as_found(
    conn: AsyncConnection, booking_id: uuid.UUID, event_id: uuid.UUID, quantity: int, why: str
) -> Reservation:
    """A retry finds its booking: report what the first attempt did, take nothing. No booking
    at all: rejected for ``why``."""
    row = (await conn.execute(BOOKING, {"booking_id": booking_id})).first()
    if row is None:
        return make_reservation(booking_id, event_id, quantity, BookingStatus.REJECTED, reason=why)
    return make_reservation(
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
    lines: list[tuple[uuid.UUID | None, int]] | None = None,
    promo_code: str | None = None,
    comp: bool = False,
) -> tuple[Reservation, Counters | None]:
    """Insert the booking with its lines and take the seats in one statement (autocommit
    connection): all lines or none. ``lines`` are (ticket type, quantity); None (or a None
    type) is the event's default type. The counters are returned when this call took seats.
    ``comp`` (an organizer's guest-list order): every line's whole price is its discount, so
    the booking's amount is 0.00."""
    params = reserve_params(
        booking_id=booking_id,
        event_id=event_id,
        user_id=user_id,
        quantity=quantity,
        hold_seconds=hold_seconds,
        workflow_id=workflow_id,
        lines=lines,
        promo_code=promo_code,
        comp=comp,
    )
    quantity = params["quantity"]
    try:
        row = (await conn.execute(RESERVE, params)).first()
    except DBAPIError as exc:
        if sqlstate(exc) != REFUSED:
            raise
        row = None  # refused after the event's seats were taken: everything rolled back
    else:
        if row is not None and row.event_id is not None:
            held = make_reservation(booking_id, event_id, quantity, BookingStatus.HELD, row)
            if row.priced_lines is not None:  # a comp (0.00) carries no fee
                fees = None if comp else row.fees
                held = await freeze(conn, held, row.priced_lines, fees, row.rates)
            return held, counters_of(row)
        if row is not None:  # inserted, but the event's seats were not there: reject the row
            reason = (await conn.execute(_REJECT, {"booking_id": booking_id})).scalar_one()
            rejected = make_reservation(
                booking_id, event_id, quantity, BookingStatus.REJECTED, row, reason
            )
            return rejected, None
        found = (await conn.execute(BOOKING, {"booking_id": booking_id})).first()
        if found is not None:  # a retry: report what the first attempt did
            return await freeze_price(
                conn,
                make_reservation(
                    booking_id,
                    found.event_id,
                    found.quantity,
                    BookingStatus(found.status),
                    found,
                    found.end_reason,
                ),
            ), None
    return await refuse(conn, params, promo_code), None


def reserve_params(
    *,
    booking_id: uuid.UUID,
    event_id: uuid.UUID,
    user_id: uuid.UUID,
    quantity: int,
    hold_seconds: int,
    workflow_id: str,
    lines: list[tuple[uuid.UUID | None, int]] | None,
    promo_code: str | None,
    comp: bool = False,
) -> dict[str, Any]:
    """The parameters of :data:`RESERVE` (and of the refusal's diagnosis)."""
    wanted = lines if lines else [(None, quantity)]
    return {
        "booking_id": booking_id,
        "event_id": event_id,
        "user_id": user_id,
        "quantity": sum(q for _, q in wanted),
        "hold_seconds": hold_seconds,
        "workflow_id": workflow_id,
        "type_ids": [t for t, _ in wanted],
        "qtys": [q for _, q in wanted],
        "n_lines": len(wanted),
        "promo": promo_code,
        "comp": comp,
    }


async def refuse(
    conn: AsyncConnection, params: dict[str, Any], promo_code: str | None
) -> Reservation:
    """A refused reserve (autocommit connection): name the reason, record the rejected row
    (a retry reports it), report it."""
    diagnosis = (await conn.execute(_DIAGNOSE, params)).all()
    reason = _diagnosis(list(diagnosis), promo_code)
    if reason != ReserveOutcome.EVENT_NOT_FOUND:
        await conn.execute(INSERT_REJECTED, {**params, "reason": reason})
    return await as_found(
        conn, params["booking_id"], params["event_id"], params["quantity"], reason
    )


# ---- the price breakdown of a hold (issue 31) ------------------------------------------------

_FREEZE = text(
    "UPDATE bookings SET price = CAST(:price AS jsonb), amount = :total "
    "WHERE id = :id AND status = 'held' AND price IS NULL RETURNING amount"
)

# what a held booking's breakdown needs, read back by its id (a retried reserve, a waitlist
# offer): NULL priced_lines when it has no fee and no tax rule, or is priced already
_PRICING_OF = text(
    """
SELECT b.price, e.fees,
       CASE WHEN b.price IS NULL AND (e.fees IS NOT NULL OR EXISTS (
                SELECT 1 FROM booking_lines l JOIN ticket_types t ON t.id = l.ticket_type_id
                WHERE l.booking_id = b.id AND t.tax_rule_id IS NOT NULL))
            THEN (SELECT jsonb_agg(jsonb_build_array(l.ticket_type_id, l.quantity,
                      CAST(l.unit_price AS text), CAST(l.discount AS text), t.tax_rule_id, t.name)
                      ORDER BY t.position, t.created_at)
                  FROM booking_lines l JOIN ticket_types t ON t.id = l.ticket_type_id
                  WHERE l.booking_id = b.id) END AS priced_lines,
       (SELECT jsonb_object_agg(tr.id, jsonb_build_array(tr.name, CAST(tr.rate AS text),
                                tr.price_includes_tax))
        FROM tax_rules tr WHERE tr.organization_id = e.organization_id) AS rates
FROM bookings b JOIN events e ON e.id = b.event_id WHERE b.id = :id
"""
)


async def freeze(
    conn: AsyncConnection, held: Reservation, lines: Any, fees: Any, rates: Any
) -> Reservation:
    """Price the hold once (evently/pricing.py) and freeze its inputs and total on the row."""
    inputs = pricing.inputs_from_rows(held.currency, list(lines), fees, rates)
    b = pricing.breakdown(inputs)
    await conn.execute(
        _FREEZE,
        {"price": json.dumps(inputs.to_json()), "total": b.total, "id": held.booking_id},
    )
    return held.model_copy(update={"amount": b.total, "price": b.answer()})


async def freeze_price(conn: AsyncConnection, found: Reservation) -> Reservation:
    """A held booking read back: its frozen breakdown (pricing it now if a crash came between
    the reserve and its freeze)."""
    if found.status != BookingStatus.HELD:
        return found
    row = (await conn.execute(_PRICING_OF, {"id": found.booking_id})).first()
    if row is None:
        return found
    if row.price is not None:
        b = pricing.breakdown(pricing.PriceInputs.from_json(row.price))
        return found.model_copy(update={"amount": b.total, "price": b.answer()})
    if row.priced_lines is None:
        return found
    return await freeze(conn, found, row.priced_lines, row.fees, row.rates)


#: SQLSTATE of evently_refuse(): a reserve statement refused a line or the promo code
REFUSED = "EV001"


def sqlstate(exc: DBAPIError) -> str | None:
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code is None and orig is not None:
        code = getattr(getattr(orig, "__cause__", None), "sqlstate", None)
    return code if isinstance(code, str) else None


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
    RETURNING w.id, w.offered_quantity, w.ticket_type_id
), tt AS (
    -- the type the entry waited for (issue 34: a seated event's category at its price), else
    -- the event's default type (uncapped: the event's quota is its cap)
    SELECT t.id, t.price FROM ticket_types t, adopt
    WHERE t.event_id = :event_id
      AND (t.id = adopt.ticket_type_id OR (adopt.ticket_type_id IS NULL AND t.is_default))
), ins AS (
    INSERT INTO bookings (id, event_id, user_id, quantity, amount, currency, status,
                          workflow_id, hold_expires_at, waitlist_entry_id)
    SELECT :booking_id, e.id, :user_id, adopt.offered_quantity,
           tt.price * adopt.offered_quantity, e.currency, 'held', :workflow_id,
           now() + make_interval(secs => CAST(:hold_seconds AS integer)), adopt.id
    FROM adopt, tt JOIN events e ON e.id = :event_id
    RETURNING id, amount, currency, hold_expires_at
), lines AS (
    INSERT INTO booking_lines (booking_id, ticket_type_id, quantity, unit_price)
    SELECT ins.id, tt.id, adopt.offered_quantity, tt.price FROM ins, adopt, tt
), types AS (
    UPDATE ticket_types t SET held = t.held + adopt.offered_quantity
    FROM adopt, ins, tt WHERE t.id = tt.id
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
        held = make_reservation(booking_id, event_id, quantity, BookingStatus.HELD, row)
        return await freeze_price(conn, held)
    found = await as_found(conn, booking_id, event_id, quantity, ReserveOutcome.OFFER_NOT_OPEN)
    return await freeze_price(conn, found)


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
# the QR is derived from the row on demand (evently/tickets/store.py), never stored. A seated
# booking's k-th ticket of a type carries its k-th held seat of that type in plan order
# (``seat_id``, issue 34; NULL for general admission: the probe finds no booking seat).
_ISSUE_TICKETS = """
    INSERT INTO tickets (id, booking_id, event_id, seat, status, issued_at, ticket_type_id,
                         seat_id)
    SELECT gen_random_uuid(), ev.booking_id, ev.event_id, ev.tickets_issued - ev.quantity + s.n,
           'valid', date_trunc('second', now()), s.ticket_type_id, bs.seat_id
    FROM ev CROSS JOIN LATERAL (
        SELECT row_number() OVER (ORDER BY l.ticket_type_id, g) AS n,
               row_number() OVER (PARTITION BY l.ticket_type_id ORDER BY g) AS k,
               l.ticket_type_id
        FROM booking_lines l CROSS JOIN LATERAL generate_series(1, l.quantity - l.cancelled) g
        WHERE l.booking_id = ev.booking_id
    ) s LEFT JOIN LATERAL (
        SELECT x.seat_id, x.ticket_type_id,
               row_number() OVER (PARTITION BY x.ticket_type_id
                                  ORDER BY e.section_rank, e.row_rank, e.pos) AS k
        FROM booking_seats x
        JOIN event_seats e ON e.event_id = x.event_id AND e.seat_id = x.seat_id
        WHERE x.booking_id = ev.booking_id AND x.released_at IS NULL
    ) bs ON bs.ticket_type_id = s.ticket_type_id AND bs.k = s.k"""

# the lines of the booking ``b`` move between their types' counters (``held``/``sold``)
_TYPES_MOVE = """
    UPDATE ticket_types t SET held = t.held + {held} * (l.quantity - l.cancelled),
        sold = t.sold + {sold} * (l.quantity - l.cancelled)
    FROM b JOIN booking_lines l ON l.booking_id = b.id
    WHERE t.id = l.ticket_type_id"""

_CONFIRM = text(
    f"""
WITH b AS (
    UPDATE bookings SET status = 'confirmed', confirmed_at = now(), updated_at = now()
    WHERE id = :booking_id AND status = 'held'
      AND EXISTS (SELECT 1 FROM payments p WHERE p.booking_id = bookings.id
                  AND p.kind = 'charge' AND p.status = 'succeeded' AND p.amount = bookings.amount)
    RETURNING id, user_id, event_id, quantity, amount, currency, price, billing
), notice AS ({_CONFIRM_NOTICE}
), types AS ({_TYPES_MOVE.format(held=-1, sold=1)}
), ev AS (
    UPDATE events e SET held = e.held - b.quantity, sold = e.sold + b.quantity,
        tickets_issued = e.tickets_issued + b.quantity, {BUMP}
    FROM b WHERE e.id = b.event_id
    RETURNING {COUNTERS}, e.tickets_issued, b.id AS booking_id, b.quantity
), issued AS ({_ISSUE_TICKETS}
), {ISSUE_INVOICE}
SELECT event_id, capacity, available, held, sold, status, updated_at FROM ev
"""
)


async def confirm(conn: AsyncConnection, booking_id: uuid.UUID) -> Counters | None:
    """held → confirmed, only with a recorded successful charge of its amount, and its tickets
    issued (one per seat). Idempotent: None when the booking was not held (a retry, or nothing
    to confirm)."""
    row = (await conn.execute(_CONFIRM, {"booking_id": booking_id})).first()
    return counters_of(row) if row else None


# ---- a hold confirmed without a card charge (issue 29) ---------------------------------------

# A 0.00 booking (``free``), a comp (0.00) or a box-office sale (its amount, paid at the door):
# the charge is recorded with that provider (no provider is called) and the booking confirmed,
# its tickets issued and its confirmation notice written, all in one statement like _CONFIRM.
# Guards: held; ``free`` and ``comp`` only for a 0.00 booking; the channel is the one the
# booking was reserved for (an online booking is ``free`` only).
_CONFIRM_WITHOUT_CHARGE = text(
    f"""
WITH b AS (
    UPDATE bookings SET status = 'confirmed', confirmed_at = now(), updated_at = now(),
           channel = CAST(:channel AS text), note = CAST(:note AS text)
    WHERE id = :booking_id AND status = 'held'
      AND (CAST(:provider AS text) NOT IN ('free', 'comp') OR amount = 0)
    RETURNING id, user_id, event_id, quantity, amount, currency, price, billing
), pay AS (
    INSERT INTO payments (id, booking_id, kind, status, provider, provider_payment_id,
                          idempotency_key, payment_method, amount, currency, created_at)
    SELECT gen_random_uuid(), b.id, 'charge', 'succeeded', CAST(:provider AS text),
           CAST(:provider AS text) || '-' || b.id, b.id || '-' || CAST(:provider AS text),
           CAST(:provider AS text), b.amount, b.currency, now()
    FROM b
), notice AS ({_CONFIRM_NOTICE}
), types AS ({_TYPES_MOVE.format(held=-1, sold=1)}
), ev AS (
    UPDATE events e SET held = e.held - b.quantity, sold = e.sold + b.quantity,
        tickets_issued = e.tickets_issued + b.quantity, {BUMP}
    FROM b WHERE e.id = b.event_id
    RETURNING {COUNTERS}, e.tickets_issued, b.id AS booking_id, b.quantity
), issued AS ({_ISSUE_TICKETS}
), {ISSUE_INVOICE}
SELECT event_id, capacity, available, held, sold, status, updated_at FROM ev
"""
)


async def confirm_without_charge(
    conn: AsyncConnection,
    booking_id: uuid.UUID,
    *,
    provider: str,
    channel: str,
    note: str | None = None,
) -> Counters | None:
    """held → confirmed with a charge recorded under ``provider`` (``free``, ``comp``,
    ``box_office``: evently.enums.NoChargeProvider) and no provider call; its tickets issued
    and its confirmation notice written. Idempotent: None when the booking was not held (a
    retry) or the guard refused (``free``/``comp`` of a booking that costs money)."""
    row = (
        await conn.execute(
            _CONFIRM_WITHOUT_CHARGE,
            {
                "booking_id": booking_id,
                "provider": provider,
                "channel": channel,
                "note": note[:500] if note else None,
            },
        )
    ).first()
    return counters_of(row) if row else None


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
    RETURNING id, user_id, event_id, quantity, promo_code_id
), {CREDIT_CANCEL}, notice AS ({_RELEASE_NOTICE}
), types AS (
    UPDATE ticket_types t SET
        held = t.held - CASE WHEN CAST(:from_status AS text) = 'held'
                             THEN l.quantity - l.cancelled ELSE 0 END,
        sold = t.sold - CASE WHEN CAST(:from_status AS text) = 'confirmed'
                             THEN l.quantity - l.cancelled ELSE 0 END
    FROM b JOIN booking_lines l ON l.booking_id = b.id
    WHERE t.id = l.ticket_type_id
), promo AS (
    UPDATE promo_codes p SET uses = p.uses - 1 FROM b WHERE p.id = b.promo_code_id
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
    return Released(**counters_of(row).model_dump(), to_waitlist=row.to_waitlist)


# ---- part of a sale ended: some lines of a confirmed booking cancelled (issue 15) -------------

# Guarded by the change's status (refunded → done) and the booking's (still confirmed): a retry,
# or a whole cancellation that came first, changes nothing. The lines' ``cancelled`` grow (CHECK
# cancelled <= quantity), the booking keeps its other seats, each type's ``sold`` and the
# event's go down, exactly those tickets are revoked (per type, those promised to this change
# when the refund was accepted first, then not-yet-scanned, highest serial first), and the
# seats go back on sale or, while anyone waits, to the waitlist's pool.
_CANCEL_LINES = text(
    f"""
WITH ch AS (
    UPDATE booking_changes c SET status = '{BookingChangeStatus.DONE.value}', updated_at = now()
    FROM bookings b
    WHERE c.booking_id = :booking_id AND c.change_no = :change_no
      AND c.status = '{BookingChangeStatus.REFUNDED.value}'
      AND b.id = c.booking_id AND b.status = '{BookingStatus.CONFIRMED.value}'
    RETURNING c.booking_id, c.lines, c.quantity, b.event_id, c.refund_amount
), req AS (
    SELECT ch.booking_id, CAST(x ->> 'ticket_type_id' AS uuid) AS tt,
           CAST(x ->> 'quantity' AS integer) AS q
    FROM ch CROSS JOIN LATERAL jsonb_array_elements(ch.lines) AS x
), {CREDIT_CHANGE}, bl AS (
    UPDATE booking_lines l SET cancelled = l.cancelled + req.q FROM req
    WHERE l.booking_id = req.booking_id AND l.ticket_type_id = req.tt
), bk AS (
    UPDATE bookings b SET quantity = b.quantity - ch.quantity, updated_at = now()
    FROM ch WHERE b.id = ch.booking_id
), types AS (
    UPDATE ticket_types t SET sold = t.sold - req.q FROM req WHERE t.id = req.tt
), revoked AS (
    UPDATE tickets k SET status = 'revoked', revoked_at = now()
    WHERE k.id IN (
        SELECT pick.id FROM req CROSS JOIN LATERAL (
            SELECT v.id FROM tickets v
            WHERE v.booking_id = req.booking_id AND v.ticket_type_id = req.tt
              AND v.status = 'valid'
            ORDER BY v.refund_change IS DISTINCT FROM CAST(:change_no AS integer),
                     v.checked_in_at IS NOT NULL, v.seat DESC LIMIT req.q
        ) pick
    )
)
UPDATE events e SET
    sold = e.sold - ch.quantity,
    held = e.held + CASE WHEN e.waitlist_waiting > 0 THEN ch.quantity ELSE 0 END,
    available = e.available + CASE WHEN e.waitlist_waiting > 0 THEN 0 ELSE ch.quantity END,
    waitlist_pool = e.waitlist_pool + CASE WHEN e.waitlist_waiting > 0 THEN ch.quantity ELSE 0 END,
    {BUMP}
FROM ch WHERE e.id = ch.event_id
RETURNING {COUNTERS}, CASE WHEN e.waitlist_waiting > 0 THEN ch.quantity ELSE 0 END AS to_waitlist
"""
)


async def cancel_lines(
    conn: AsyncConnection, booking_id: uuid.UUID, change_no: int
) -> Released | None:
    """Release the seats of a refunded partial cancellation (autocommit connection). None when
    it was done already, or the booking is no longer confirmed (nothing to release)."""
    row = (
        await conn.execute(_CANCEL_LINES, {"booking_id": booking_id, "change_no": change_no})
    ).first()
    if row is None:
        return None
    return Released(**counters_of(row).model_dump(), to_waitlist=row.to_waitlist)


# ---- a payment after the hold ended -----------------------------------------------------------

_TAKE_AGAIN = text(
    f"""UPDATE events e SET available = e.available - :q, sold = e.sold + :q,
        tickets_issued = e.tickets_issued + :q, {BUMP}
    WHERE e.id = :event_id AND e.status = 'published' AND e.available >= :q
    RETURNING {COUNTERS}, e.tickets_issued"""
)

# the lines of an expired booking back from their types (sold; each cap respected) and one use
# of its code: evently_refuse() when any cannot be taken
_TAKE_LINES_AGAIN = text(
    """
WITH l AS (
    SELECT l.ticket_type_id, l.quantity - l.cancelled AS q FROM booking_lines l
    WHERE l.booking_id = :id
), types AS (
    UPDATE ticket_types t SET sold = t.sold + l.q FROM l
    WHERE t.id = l.ticket_type_id AND (t.capacity IS NULL OR t.capacity - t.held - t.sold >= l.q)
    RETURNING t.id
), used AS (
    UPDATE promo_codes p SET uses = p.uses + 1 FROM bookings b
    WHERE b.id = :id AND p.id = b.promo_code_id AND p.uses < p.max_uses
    RETURNING p.id
)
SELECT CASE WHEN (SELECT count(*) FROM types) <> (SELECT count(*) FROM l)
             OR (NOT EXISTS (SELECT 1 FROM used)
                 AND EXISTS (SELECT 1 FROM bookings b WHERE b.id = :id
                             AND b.promo_code_id IS NOT NULL))
            THEN evently_refuse('a line or the code cannot be taken again') END
"""
)

# the late confirmation: booking → confirmed, its tickets (serials taken by _TAKE_AGAIN on the
# locked event row) and the buyer's confirmation notice, in the same transaction
_CONFIRM_LATE = text(
    f"""
WITH b AS (
    UPDATE bookings SET status = 'confirmed', confirmed_at = now(), ended_at = NULL,
           end_reason = 'late payment accepted', updated_at = now()
    WHERE id = :id AND status = 'expired'
    RETURNING id, user_id, event_id, quantity, amount, currency, price, billing
), notice AS ({_CONFIRM_NOTICE}
), {ISSUE_INVOICE}, ev AS (
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
    # the event's seats, its lines (each type's cap) and its promo code's use: all or none
    # (a savepoint: a refused line undoes the event's seats too), else refund
    nested = await conn.begin_nested()
    ev = (await conn.execute(_TAKE_AGAIN, {"q": b.quantity, "event_id": b.event_id})).first()
    if ev is None:
        await nested.rollback()
        return LateSettlement.REFUND, None
    try:
        await conn.execute(_TAKE_LINES_AGAIN, {"id": booking_id})
    except DBAPIError as exc:
        await nested.rollback()
        if sqlstate(exc) != REFUSED:
            raise
        return LateSettlement.REFUND, None
    from evently.inventory import reserved  # (it builds on this module)

    if not await reserved.take_again(conn, booking_id):  # a seated booking: its very seats
        await nested.rollback()
        return LateSettlement.REFUND, None
    await nested.commit()
    await conn.execute(_CONFIRM_LATE, {"id": booking_id, "tickets_issued": ev.tickets_issued})
    return LateSettlement.CONFIRMED, counters_of(ev)


# ---- the waitlist's counters (evently/waitlist.py runs these in its transactions) -----------


class EventLock:
    """The event row, locked (``FOR NO KEY UPDATE``) for the rest of the transaction."""

    def __init__(self, row: Any) -> None:
        self.status: str = row.status
        self.available: int = row.available
        self.held: int = row.held
        self.waitlist_pool: int = row.waitlist_pool
        self.waitlist_waiting: int = row.waitlist_waiting
        self.seated: bool = row.seated  # sells reserved seats (issue 34)


_LOCK_EVENT = text(
    "SELECT id, status, available, held, waitlist_pool, waitlist_waiting, "
    "seating_plan_id IS NOT NULL AS seated FROM events WHERE id = :id FOR NO KEY UPDATE"
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
    return counters_of(row)


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
