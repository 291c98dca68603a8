"""Sales analytics of one event, straight from Postgres.

Every query is keyed by ``event_id`` and served by an index whose leading column is
``event_id`` (bookings: ``ix_bookings_event_status`` / ``ix_bookings_event_created``;
payments: ``ix_payments_booking_id`` reached through the event's bookings; waitlist:
``ix_waitlist_event_status_created``), so the cost grows with the size of *this* event,
never with the size of the table. ``bench/analytics_plans.py`` loads a million bookings and
records the plans (docs/analytics-plans.md).

Definitions (what the numbers mean):

- holds made: bookings that ever held seats (every status but ``rejected``);
- holds confirmed: bookings that reached ``confirmed`` (``confirmed_at`` set), including
  ones cancelled and refunded later; conversion = confirmed / made;
- revenue: succeeded charges minus succeeded refunds; refunds are counted separately;
- sales per hour: bookings by the UTC hour they were confirmed (seats and gross amount);
- refunds: whole refunds and partial ones (cancelled lines of a booking that stays confirmed);
- per ticket type (issue 15): its counters, and seats and revenue (net of discounts, of the
  seats still booked) of its lines in confirmed bookings; per promo code: uses (held or
  confirmed bookings), and the discount given in confirmed bookings;
- waitlist offered: entries that were ever offered seats; converted: offers accepted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

EVENT_SQL: Final = text(
    "SELECT id, name, status, capacity, available, held, sold, currency "
    "FROM events WHERE id = :event_id"
)

BOOKINGS_SQL: Final = text(
    """
    SELECT status,
           confirmed_at IS NOT NULL AS was_confirmed,
           count(*) AS bookings,
           coalesce(sum(quantity), 0) AS seats
    FROM bookings
    WHERE event_id = :event_id
    GROUP BY 1, 2
    """
)

# A LATERAL probe per booking (OFFSET 0 keeps the planner from flattening it into a hash
# join that would read the whole payments table): cost follows this event's bookings.
PAYMENTS_SQL: Final = text(
    """
    SELECT p.kind, count(*) AS n, coalesce(sum(p.amount), 0) AS amount
    FROM bookings b
    CROSS JOIN LATERAL (
        SELECT kind, amount FROM payments
        WHERE payments.booking_id = b.id AND payments.status = 'succeeded'
        OFFSET 0
    ) AS p
    WHERE b.event_id = :event_id
    GROUP BY p.kind
    """
)

SALES_PER_HOUR_SQL: Final = text(
    """
    SELECT date_trunc('hour', confirmed_at, 'UTC') AS hour,
           count(*) AS bookings,
           coalesce(sum(quantity), 0) AS seats,
           coalesce(sum(amount), 0) AS revenue
    FROM bookings
    WHERE event_id = :event_id AND confirmed_at IS NOT NULL
    GROUP BY 1
    ORDER BY 1
    """
)

WAITLIST_SQL: Final = text(
    """
    SELECT count(*) AS joined,
           count(*) FILTER (WHERE status = 'waiting') AS waiting,
           count(*) FILTER (
               WHERE offer_id IS NOT NULL OR status IN ('offered', 'accepted')
           ) AS offered,
           count(*) FILTER (WHERE status = 'accepted') AS converted
    FROM waitlist_entries
    WHERE event_id = :event_id
    """
)

TYPES_SQL: Final = text(
    """
    SELECT t.id, t.name, t.price, t.capacity, t.held, t.sold, t.hidden, t.is_default,
           coalesce(sum(l.quantity - l.cancelled) FILTER (WHERE b.status = 'confirmed'), 0)
               AS seats,
           coalesce(sum(round((l.quantity - l.cancelled) * l.unit_price
                              - l.discount * (l.quantity - l.cancelled) / l.quantity, 2))
                    FILTER (WHERE b.status = 'confirmed'), 0) AS revenue
    FROM ticket_types t
    LEFT JOIN booking_lines l ON l.ticket_type_id = t.id
    LEFT JOIN bookings b ON b.id = l.booking_id
    WHERE t.event_id = :event_id
    GROUP BY t.id
    ORDER BY t.position, t.created_at, t.id
    """
)

CODES_SQL: Final = text(
    """
    SELECT p.id, p.code, p.uses, p.max_uses,
           coalesce(sum(b.discount) FILTER (WHERE b.status = 'confirmed'), 0) AS discount,
           count(b.id) FILTER (WHERE b.status = 'confirmed') AS confirmed
    FROM promo_codes p LEFT JOIN bookings b ON b.promo_code_id = p.id
    WHERE p.event_id = :event_id
    GROUP BY p.id
    ORDER BY p.created_at, p.id
    """
)

# issue 29: confirmed sales split by channel (online card/free sales, comps, box office)
CHANNELS_SQL: Final = text(
    """
    SELECT channel, count(*) AS bookings, coalesce(sum(quantity), 0) AS seats,
           coalesce(sum(amount), 0) AS revenue
    FROM bookings
    WHERE event_id = :event_id AND status = 'confirmed'
    GROUP BY channel
    ORDER BY channel
    """
)

ALL_QUERIES: Final = {
    "event": EVENT_SQL,
    "bookings_by_status": BOOKINGS_SQL,
    "payments": PAYMENTS_SQL,
    "sales_per_hour": SALES_PER_HOUR_SQL,
    "waitlist": WAITLIST_SQL,
}


@dataclass
class Holds:
    made: int = 0
    active: int = 0
    confirmed: int = 0
    expired: int = 0
    cancelled: int = 0
    rejected: int = 0


@dataclass
class Waitlist:
    joined: int = 0
    waiting: int = 0
    offered: int = 0
    converted: int = 0


@dataclass
class HourSales:
    hour: datetime
    bookings: int
    seats: int
    revenue: Decimal


@dataclass
class TypeSales:
    id: uuid.UUID
    name: str
    price: Decimal
    capacity: int | None
    held: int
    sold: int
    hidden: bool
    is_default: bool
    seats: int  # in confirmed bookings (cancelled lines excluded)
    revenue: Decimal  # net of discounts


@dataclass
class ChannelSales:
    channel: str  # online, comp, box_office
    bookings: int  # confirmed
    seats: int
    revenue: Decimal  # the bookings' amounts (comps: 0.00; box office: paid at the door)


@dataclass
class CodeUses:
    id: uuid.UUID
    code: str
    uses: int
    max_uses: int
    confirmed: int
    discount: Decimal  # given in confirmed bookings


@dataclass
class EventAnalytics:
    event_id: uuid.UUID
    name: str
    status: str
    currency: str
    capacity: int
    sold: int
    held: int
    available: int
    revenue: Decimal = Decimal("0.00")
    gross_sales: Decimal = Decimal("0.00")
    refunds_count: int = 0
    refunds_amount: Decimal = Decimal("0.00")
    holds: Holds = field(default_factory=Holds)
    waitlist: Waitlist = field(default_factory=Waitlist)
    sales_per_hour: list[HourSales] = field(default_factory=list)
    ticket_types: list[TypeSales] = field(default_factory=list)
    promo_codes: list[CodeUses] = field(default_factory=list)
    channels: list[ChannelSales] = field(default_factory=list)

    @property
    def conversion(self) -> float | None:
        if self.holds.made == 0:
            return None
        return round(self.holds.confirmed / self.holds.made, 4)


def _money(value: object) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


async def event_analytics(session: AsyncSession, event_id: uuid.UUID) -> EventAnalytics | None:
    """All numbers of one event in five indexed queries (one REPEATABLE READ snapshot is
    not required: each figure is exact as of its own query)."""
    params = {"event_id": event_id}
    ev = (await session.execute(EVENT_SQL, params)).one_or_none()
    if ev is None:
        return None
    out = EventAnalytics(
        event_id=ev.id,
        name=ev.name,
        status=ev.status,
        currency=ev.currency,
        capacity=ev.capacity,
        sold=ev.sold,
        held=ev.held,
        available=ev.available,
    )

    holds = out.holds
    for row in (await session.execute(BOOKINGS_SQL, params)).all():
        n = int(row.bookings)
        if row.status == "rejected":
            holds.rejected += n
            continue
        holds.made += n
        if row.was_confirmed:
            holds.confirmed += n
        if row.status == "held":
            holds.active += n
        elif row.status == "expired":
            holds.expired += n
        elif row.status == "cancelled":
            holds.cancelled += n

    charges = Decimal("0")
    for row in (await session.execute(PAYMENTS_SQL, params)).all():
        if row.kind == "charge":
            charges = _money(row.amount)
        elif row.kind in ("refund", "partial_refund"):
            out.refunds_count += int(row.n)
            out.refunds_amount = _money(out.refunds_amount + Decimal(str(row.amount)))
    out.gross_sales = _money(charges)
    out.revenue = _money(charges - out.refunds_amount)

    out.sales_per_hour = [
        HourSales(
            hour=row.hour,
            bookings=int(row.bookings),
            seats=int(row.seats),
            revenue=_money(row.revenue),
        )
        for row in (await session.execute(SALES_PER_HOUR_SQL, params)).all()
    ]

    out.ticket_types = [
        TypeSales(
            id=r.id,
            name=r.name,
            price=_money(r.price),
            capacity=r.capacity,
            held=r.held,
            sold=r.sold,
            hidden=r.hidden,
            is_default=r.is_default,
            seats=int(r.seats),
            revenue=_money(r.revenue),
        )
        for r in (await session.execute(TYPES_SQL, params)).all()
    ]
    out.promo_codes = [
        CodeUses(
            id=r.id,
            code=r.code,
            uses=r.uses,
            max_uses=r.max_uses,
            confirmed=int(r.confirmed),
            discount=_money(r.discount),
        )
        for r in (await session.execute(CODES_SQL, params)).all()
    ]

    out.channels = [
        ChannelSales(
            channel=r.channel,
            bookings=int(r.bookings),
            seats=int(r.seats),
            revenue=_money(r.revenue),
        )
        for r in (await session.execute(CHANNELS_SQL, params)).all()
    ]

    w = (await session.execute(WAITLIST_SQL, params)).one()
    out.waitlist = Waitlist(
        joined=int(w.joined),
        waiting=int(w.waiting),
        offered=int(w.offered),
        converted=int(w.converted),
    )
    return out
