"""The invariant checker (docs/architecture.md, the booking invariants): run by tests after
every step, by the benchmarks after every run, and by ops as `evently check`.

Per event: available + held + sold == capacity, nothing negative, ``held`` equals the seats of
held bookings plus open waitlist offers plus seats kept for the waitlist (``waitlist_pool``),
``waitlist_waiting`` equals the waiting entries, ``sold`` equals the seats of confirmed bookings.
Per booking: confirmed ⇒ exactly one successful charge of its amount and no refund; every
refund belongs to a cancelled booking, and to a successful charge of it (no refund, whole or
partial, of money never taken); no money kept for a booking that is not confirmed;
nothing held (and no waitlist offer open) past its window plus a grace period.
Tickets (issue 16): a confirmed booking has exactly one valid ticket per seat, any other booking
none (a cancellation revoked them).
Ticket types and promo codes (issue 15): per type, ``held``/``sold`` equal the active seats
(``quantity - cancelled``) of its lines in held/confirmed bookings and stay within its cap;
every event has exactly one default type; a booking with lines has ``quantity`` equal to its
lines' active seats; per code, ``uses`` equals the held or confirmed bookings that use it and
stays within ``max_uses``.
Money (issue 31): per booking with an invoice, succeeded payments - refunds equal its invoices -
credit notes, to the cent.

Reserved seats (issue 34): every seat is in exactly one state (blocked, free, or owned by one
live booking of its event: ``event_seats.booking_id`` is one value, so no seat can be in two
bookings); a live booking of a seated event owns exactly its ``quantity`` seats, its
recorded seats are the ones it owns, an ended one owns none; a seated event's capacity is its
unblocked seats and its free seats are its ``available`` plus the seats kept for or offered to
the waitlist.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class Violation:
    rule: str
    subject: str  # event or booking id
    detail: str

    def __str__(self) -> str:
        return f"{self.rule} [{self.subject}]: {self.detail}"


_EVENTS = text(
    """
SELECT e.id, e.capacity, e.available, e.held, e.sold, e.waitlist_pool, e.waitlist_waiting,
       COALESCE(b.held, 0) AS booked_held, COALESCE(b.sold, 0) AS booked_sold,
       COALESCE(w.offered, 0) AS offered, COALESCE(w.waiting, 0) AS waiting
FROM events e
LEFT JOIN (
    SELECT event_id,
           sum(quantity) FILTER (WHERE status = 'held') AS held,
           sum(quantity) FILTER (WHERE status = 'confirmed') AS sold
    FROM bookings WHERE (CAST(:event_id AS uuid) IS NULL OR event_id = :event_id)
    GROUP BY event_id
) b ON b.event_id = e.id
LEFT JOIN (
    SELECT event_id, sum(offered_quantity) FILTER (WHERE status = 'offered') AS offered,
           count(*) FILTER (WHERE status = 'waiting') AS waiting
    FROM waitlist_entries
    WHERE status IN ('offered', 'waiting')
      AND (CAST(:event_id AS uuid) IS NULL OR event_id = :event_id)
    GROUP BY event_id
) w ON w.event_id = e.id
WHERE CAST(:event_id AS uuid) IS NULL OR e.id = :event_id
"""
)

# Issue 31: per booking with an invoice, payments - refunds = invoices - credit notes, to the
# cent (a partial cancellation between its refund and its credit note is in flight: skipped)
_RECONCILE = text(
    """
SELECT b.id, p.paid, i.invoiced
FROM bookings b
JOIN (SELECT booking_id, sum(CASE WHEN kind = 'invoice' THEN total ELSE -total END) AS invoiced
      FROM invoices GROUP BY booking_id) i ON i.booking_id = b.id
LEFT JOIN LATERAL (
    SELECT COALESCE(sum(CASE WHEN kind = 'charge' THEN amount ELSE -amount END), 0) AS paid
    FROM payments WHERE booking_id = b.id AND status = 'succeeded'
) p ON true
WHERE (CAST(:event_id AS uuid) IS NULL OR b.event_id = :event_id)
  AND NOT EXISTS (SELECT 1 FROM booking_changes c WHERE c.booking_id = b.id
                  AND c.status IN ('requested', 'refunded'))
  AND p.paid <> i.invoiced
"""
)

_PAYMENTS = text(
    """
SELECT b.id, b.status, b.amount, b.refund_due,
       count(p.id) FILTER (WHERE p.kind = 'charge' AND p.status = 'succeeded') AS charges,
       count(p.id) FILTER (WHERE p.kind = 'charge' AND p.status = 'succeeded'
                           AND p.amount = b.amount) AS exact_charges,
       count(p.id) FILTER (WHERE p.kind = 'refund' AND p.status = 'succeeded') AS refunds,
       count(p.id) FILTER (WHERE p.kind IN ('refund', 'partial_refund')
                           AND p.status = 'succeeded') AS any_refunds
FROM bookings b LEFT JOIN payments p ON p.booking_id = b.id
WHERE (CAST(:event_id AS uuid) IS NULL OR b.event_id = :event_id)
  AND b.status IN ('confirmed', 'cancelled', 'expired', 'rejected')
GROUP BY b.id
HAVING b.status = 'confirmed'
    OR count(p.id) FILTER (WHERE p.status = 'succeeded') > 0
"""
)

_TICKETS = text(
    """
SELECT b.id, b.status, b.quantity, count(t.id) FILTER (WHERE t.status = 'valid') AS valid
FROM bookings b LEFT JOIN tickets t ON t.booking_id = b.id
WHERE (CAST(:event_id AS uuid) IS NULL OR b.event_id = :event_id)
GROUP BY b.id
HAVING count(t.id) FILTER (WHERE t.status = 'valid')
       <> CASE WHEN b.status = 'confirmed' THEN b.quantity ELSE 0 END
"""
)

_TYPES = text(
    """
SELECT t.id, t.capacity, t.held, t.sold,
       COALESCE(sum(l.quantity - l.cancelled) FILTER (WHERE b.status = 'held'), 0) AS lines_held,
       COALESCE(sum(l.quantity - l.cancelled) FILTER (WHERE b.status = 'confirmed'), 0)
           AS lines_sold
FROM ticket_types t
LEFT JOIN booking_lines l ON l.ticket_type_id = t.id
LEFT JOIN bookings b ON b.id = l.booking_id
WHERE CAST(:event_id AS uuid) IS NULL OR t.event_id = :event_id
GROUP BY t.id
"""
)

_DEFAULT_TYPES = text(
    """
SELECT e.id, count(t.id) AS defaults FROM events e
LEFT JOIN ticket_types t ON t.event_id = e.id AND t.is_default
WHERE CAST(:event_id AS uuid) IS NULL OR e.id = :event_id
GROUP BY e.id HAVING count(t.id) <> 1
"""
)

_LINES = text(
    """
SELECT b.id, b.quantity, sum(l.quantity - l.cancelled) AS active
FROM bookings b JOIN booking_lines l ON l.booking_id = b.id
WHERE (CAST(:event_id AS uuid) IS NULL OR b.event_id = :event_id)
  AND b.status IN ('held', 'confirmed')
GROUP BY b.id HAVING sum(l.quantity - l.cancelled) <> b.quantity
"""
)

_CODES = text(
    """
SELECT p.id, p.uses, p.max_uses,
       count(b.id) FILTER (WHERE b.status IN ('held', 'confirmed')) AS active
FROM promo_codes p LEFT JOIN bookings b ON b.promo_code_id = p.id
WHERE CAST(:event_id AS uuid) IS NULL OR p.event_id = :event_id
GROUP BY p.id
"""
)

_STUCK = text(
    """
SELECT id, hold_expires_at FROM bookings
WHERE status = 'held' AND hold_expires_at < now() - make_interval(secs => :grace)
  AND (CAST(:event_id AS uuid) IS NULL OR event_id = :event_id)
"""
)

_STUCK_OFFERS = text(
    """
SELECT id, offer_expires_at FROM waitlist_entries
WHERE status = 'offered' AND offer_expires_at < now() - make_interval(secs => :grace)
  AND (CAST(:event_id AS uuid) IS NULL OR event_id = :event_id)
"""
)


_SEAT_OWNERS = text(
    """
SELECT s.event_id, s.seat_id, b.status, b.event_id AS booking_event FROM event_seats s
LEFT JOIN bookings b ON b.id = s.booking_id
WHERE s.booking_id IS NOT NULL AND (CAST(:event_id AS uuid) IS NULL OR s.event_id = :event_id)
  AND (b.id IS NULL OR b.status NOT IN ('held', 'confirmed') OR b.event_id <> s.event_id)
"""
)

_SEATED_BOOKINGS = text(
    """
SELECT b.id, b.status, b.quantity,
       (SELECT count(*) FROM event_seats s WHERE s.booking_id = b.id) AS owned,
       (SELECT count(*) FROM booking_seats r WHERE r.booking_id = b.id
            AND r.released_at IS NULL) AS recorded,
       (SELECT count(*) FROM booking_seats r JOIN event_seats s
            ON s.event_id = r.event_id AND s.seat_id = r.seat_id
        WHERE r.booking_id = b.id AND r.released_at IS NULL
          AND s.booking_id IS DISTINCT FROM b.id) AS lost,
       (SELECT count(*) FROM booking_lines l WHERE l.booking_id = b.id
          AND l.quantity - l.cancelled <> (SELECT count(*) FROM booking_seats r
              WHERE r.booking_id = b.id AND r.released_at IS NULL
                AND r.ticket_type_id = l.ticket_type_id)) AS mistyped
FROM bookings b
WHERE (EXISTS (SELECT 1 FROM booking_seats r WHERE r.booking_id = b.id)
       OR (b.status IN ('held', 'confirmed') AND EXISTS (
           SELECT 1 FROM events e WHERE e.id = b.event_id AND e.seating_plan_id IS NOT NULL)))
  AND (CAST(:event_id AS uuid) IS NULL OR b.event_id = :event_id)
"""
)

_SEATED_EVENTS = text(
    """
SELECT e.id, e.capacity, e.available, e.waitlist_pool,
       COALESCE((SELECT sum(w.offered_quantity) FROM waitlist_entries w
                 WHERE w.event_id = e.id AND w.status = 'offered'), 0) AS offered,
       count(*) FILTER (WHERE NOT s.blocked) AS unblocked,
       count(*) FILTER (WHERE NOT s.blocked AND s.booking_id IS NULL) AS free
FROM events e JOIN event_seats s ON s.event_id = e.id
WHERE e.seating_plan_id IS NOT NULL AND (CAST(:event_id AS uuid) IS NULL OR e.id = :event_id)
GROUP BY e.id
"""
)


# issue 34 (0019seatlabels): a valid ticket's reserved seat is held by its own booking
_TICKET_SEATS = text(
    """
SELECT t.id, t.seat_id, s.booking_id FROM tickets t
JOIN event_seats s ON s.event_id = t.event_id AND s.seat_id = t.seat_id
WHERE t.status = 'valid' AND t.seat_id IS NOT NULL
  AND s.booking_id IS DISTINCT FROM t.booking_id
  AND (CAST(:event_id AS uuid) IS NULL OR t.event_id = :event_id)
"""
)


async def _check_seats(
    conn: AsyncConnection, params: dict[str, uuid.UUID | None]
) -> list[Violation]:
    out: list[Violation] = []
    for t in await conn.execute(_TICKET_SEATS, params):
        out.append(
            Violation(
                "ticket_seat",
                str(t.id),
                f"valid ticket for seat {t.seat_id}, which "
                + ("is free" if t.booking_id is None else f"booking {t.booking_id} holds"),
            )
        )
    for s in await conn.execute(_SEAT_OWNERS, params):
        out.append(
            Violation(
                "seat_owner",
                f"{s.event_id}/{s.seat_id}",
                f"owned by a {s.status or 'missing'} booking"
                + (" of another event" if s.booking_event not in (None, s.event_id) else ""),
            )
        )
    for b in await conn.execute(_SEATED_BOOKINGS, params):
        live = b.status in ("held", "confirmed")
        want = b.quantity if live else 0
        # the seats' types, once their number is right (else booking_seats says so)
        if live and b.recorded == want and b.mistyped:
            out.append(
                Violation(
                    "seat_types",
                    str(b.id),
                    f"{b.mistyped} of its ticket types record a number of seats other than "
                    "their tickets",
                )
            )
        if b.owned != want or b.recorded != want or b.lost:
            out.append(
                Violation(
                    "booking_seats",
                    str(b.id),
                    f"{b.status} booking of {b.quantity} owns {b.owned} seats, "
                    f"records {b.recorded}, {b.lost} recorded not owned",
                )
            )
    for e in await conn.execute(_SEATED_EVENTS, params):
        if e.capacity != e.unblocked or e.free != e.available + e.waitlist_pool + e.offered:
            out.append(
                Violation(
                    "seats",
                    str(e.id),
                    f"capacity {e.capacity} vs unblocked seats {e.unblocked}; free seats "
                    f"{e.free} vs available {e.available} + pool {e.waitlist_pool} "
                    f"+ offered {e.offered}",
                )
            )
    return out


_SCOPE = text(
    """
SELECT (SELECT count(*) FROM events e WHERE CAST(:event_id AS uuid) IS NULL
            OR e.id = :event_id) AS events,
       count(*) AS bookings,
       count(*) FILTER (WHERE b.status = 'confirmed') AS confirmed,
       (SELECT count(*) FROM payments p JOIN bookings pb ON pb.id = p.booking_id
        WHERE p.status = 'succeeded' AND (CAST(:event_id AS uuid) IS NULL
            OR pb.event_id = :event_id)) AS payments,
       (SELECT count(*) FROM invoices i JOIN bookings ib ON ib.id = i.booking_id
        WHERE CAST(:event_id AS uuid) IS NULL OR ib.event_id = :event_id) AS invoices
FROM bookings b WHERE CAST(:event_id AS uuid) IS NULL OR b.event_id = :event_id
"""
)


async def scope(conn: AsyncConnection, event_id: uuid.UUID | None = None) -> dict[str, int]:
    """What :func:`check` looks at (for its report): events, bookings (confirmed), succeeded
    payments (charges and refunds) and invoices (with credit notes)."""
    row = (await conn.execute(_SCOPE, {"event_id": event_id})).one()
    return dict(row._mapping)


async def check(
    conn: AsyncConnection, event_id: uuid.UUID | None = None, *, grace_seconds: float = 60
) -> list[Violation]:
    out: list[Violation] = []
    params = {"event_id": event_id}
    for e in await conn.execute(_EVENTS, params):
        sid = str(e.id)
        if e.available + e.held + e.sold != e.capacity:
            out.append(
                Violation(
                    "balance",
                    sid,
                    f"available {e.available} + held {e.held} + sold {e.sold} "
                    f"!= capacity {e.capacity}",
                )
            )
        if min(e.available, e.held, e.sold) < 0:
            out.append(Violation("negative", sid, f"{e.available}/{e.held}/{e.sold}"))
        if e.held != e.booked_held + e.offered + e.waitlist_pool:
            out.append(
                Violation(
                    "held",
                    sid,
                    f"held {e.held} != held bookings {e.booked_held} + offers {e.offered} "
                    f"+ kept for the waitlist {e.waitlist_pool}",
                )
            )
        if e.waitlist_waiting != e.waiting:
            out.append(
                Violation(
                    "waitlist",
                    sid,
                    f"waitlist_waiting {e.waitlist_waiting} != waiting entries {e.waiting}",
                )
            )
        if e.sold != e.booked_sold:
            out.append(Violation("sold", sid, f"sold {e.sold} != confirmed {e.booked_sold}"))
    for b in await conn.execute(_PAYMENTS, params):
        sid = str(b.id)
        if b.any_refunds and not b.charges:
            out.append(
                Violation("refund_without_charge", sid, f"{b.status} booking refunded, never paid")
            )
        if b.status == "confirmed":
            if b.charges != 1 or b.exact_charges != 1:
                out.append(
                    Violation(
                        "paid", sid, f"confirmed with {b.charges} successful charges of its amount"
                    )
                )
            if b.refunds:
                out.append(Violation("refund", sid, "confirmed but refunded"))
        else:
            if b.refunds and b.status != "cancelled":
                out.append(Violation("refund", sid, f"refund on a {b.status} booking"))
            # refund_due (issue 29): a bank transfer that came after its seats were gone,
            # owed back by finance and shown to them as such
            if b.charges > b.refunds and not b.refund_due:
                out.append(
                    Violation("money_kept", sid, f"{b.status} booking kept a successful charge")
                )
    for t in await conn.execute(_TICKETS, params):
        out.append(
            Violation(
                "tickets", str(t.id), f"{t.status} booking of {t.quantity} has {t.valid} valid"
            )
        )
    for t in await conn.execute(_TYPES, params):
        if t.held != t.lines_held or t.sold != t.lines_sold:
            out.append(
                Violation(
                    "type_counters",
                    str(t.id),
                    f"held {t.held}/sold {t.sold} != lines held {t.lines_held}/"
                    f"confirmed {t.lines_sold}",
                )
            )
        if min(t.held, t.sold) < 0 or (t.capacity is not None and t.held + t.sold > t.capacity):
            out.append(Violation("type_cap", str(t.id), f"{t.held}+{t.sold} over cap {t.capacity}"))
    for e in await conn.execute(_DEFAULT_TYPES, params):
        out.append(Violation("default_type", str(e.id), f"{e.defaults} default types"))
    for b in await conn.execute(_LINES, params):
        out.append(
            Violation("lines", str(b.id), f"quantity {b.quantity} != lines' seats {b.active}")
        )
    for c in await conn.execute(_CODES, params):
        if c.uses != c.active or c.uses > c.max_uses:
            out.append(
                Violation(
                    "promo_uses",
                    str(c.id),
                    f"uses {c.uses} (max {c.max_uses}) != active bookings {c.active}",
                )
            )
    for r in await conn.execute(_RECONCILE, params):
        out.append(
            Violation(
                "reconciliation",
                str(r.id),
                f"payments - refunds {r.paid} != invoices - credit notes {r.invoiced}",
            )
        )
    for s in await conn.execute(_STUCK, {**params, "grace": grace_seconds}):
        out.append(Violation("stuck_hold", str(s.id), f"held past {s.hold_expires_at}"))
    for s in await conn.execute(_STUCK_OFFERS, {**params, "grace": grace_seconds}):
        out.append(Violation("stuck_offer", str(s.id), f"offered past {s.offer_expires_at}"))
    out += await _check_seats(conn, params)
    return out
