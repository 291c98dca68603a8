"""What the organizer's back office (api/manage/, issue 30) reads that no JSON route reads yet:
orders of an organization found by buyer name, email, booking id or ticket code; one order
with its lines, payments, tickets and the emails sent about it; check-ins per hour; and the
tickets mailed again (a new confirmation notice in the mail outbox). Every read is scoped by
the organization (another organization's order is not found)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from evently import attendees
from evently.tickets import store

SEARCH_LIMIT = 50

_ORDER = """
SELECT b.id, b.event_id, e.name AS event_name, b.status, b.quantity, b.amount, b.currency,
       b.created_at, b.confirmed_at, b.ended_at, b.end_reason, b.discount, b.workflow_id,
       b.user_id, u.email, u.full_name
FROM bookings b
JOIN events e ON e.id = b.event_id
JOIN users u ON u.id = b.user_id
"""


@dataclass(frozen=True)
class OrderRow:
    id: uuid.UUID
    event_id: uuid.UUID
    event_name: str
    status: str
    quantity: int
    amount: Decimal
    currency: str
    created_at: datetime
    confirmed_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    discount: Decimal
    workflow_id: str
    user_id: uuid.UUID
    email: str
    full_name: str

    @classmethod
    def of(cls, row: Any) -> OrderRow:
        return cls(**row._mapping)


def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        return None


async def search_orders(
    session: AsyncSession,
    organization_id: uuid.UUID,
    q: str,
    *,
    event_id: uuid.UUID | None = None,
    limit: int = SEARCH_LIMIT,
) -> list[OrderRow]:
    """Newest first. ``q``: a booking id or a ticket code (the ticket's id) matches exactly;
    anything else matches the buyer's email or name (case-insensitive, a part of it)."""
    q = q.strip()
    params: dict[str, Any] = {"org": organization_id, "ev": event_id, "limit": limit}
    scope = "e.organization_id = :org AND (CAST(:ev AS uuid) IS NULL OR b.event_id = :ev)"
    exact = _as_uuid(q)
    if exact is not None:
        params["id"] = exact
        where = (
            f"{scope} AND (b.id = :id OR b.id IN (SELECT booking_id FROM tickets WHERE id = :id))"
        )
    elif q:
        params["like"] = "%" + q.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"
        where = f"{scope} AND (u.email ILIKE :like OR u.full_name ILIKE :like)"
    else:
        where = scope
    rows = await session.execute(
        text(f"{_ORDER} WHERE {where} ORDER BY b.created_at DESC, b.id DESC LIMIT :limit"),
        params,
    )
    return [OrderRow.of(r) for r in rows]


@dataclass(frozen=True)
class LineRow:
    ticket_type_id: uuid.UUID
    ticket_type: str
    quantity: int
    cancelled: int
    unit_price: Decimal
    discount: Decimal


@dataclass(frozen=True)
class PaymentRow:
    kind: str
    status: str
    provider: str
    amount: Decimal
    currency: str
    created_at: datetime


@dataclass(frozen=True)
class TicketRow:
    id: uuid.UUID
    seat: int
    status: str
    ticket_type: str | None
    checked_in_at: datetime | None
    checked_in_device: str | None
    attendee: str | None = None  # the name given for this ticket's seat (issue 32)
    place: str | None = None  # its reserved seat, "Section B, row 7, seat 12" (issue 34)


@dataclass(frozen=True)
class EmailRow:
    kind: str
    mail_status: str
    created_at: datetime


@dataclass
class Order:
    booking: OrderRow
    lines: list[LineRow] = field(default_factory=list)
    payments: list[PaymentRow] = field(default_factory=list)
    tickets: list[TicketRow] = field(default_factory=list)
    emails: list[EmailRow] = field(default_factory=list)
    attendees: list[attendees.AttendeeView] = field(default_factory=list)
    answers: list[tuple[str, str]] = field(default_factory=list)  # per booking


def _ticket_row(r: Any) -> TicketRow:
    place = store.place_of(r.seat_id, r.section, r.row, r.seat_label)
    return TicketRow(
        id=r.id,
        seat=r.seat,
        status=r.status,
        ticket_type=r.ticket_type,
        checked_in_at=r.checked_in_at,
        checked_in_device=r.checked_in_device,
        place=place.spoken if place else None,
    )


async def get_order(
    session: AsyncSession, organization_id: uuid.UUID, booking_id: uuid.UUID
) -> Order | None:
    """The organization's booking with its lines, payments, tickets and emails (None: not
    found, or another organization's)."""
    row = (
        await session.execute(
            text(f"{_ORDER} WHERE b.id = :b AND e.organization_id = :org"),
            {"b": booking_id, "org": organization_id},
        )
    ).first()
    if row is None:
        return None
    order = Order(OrderRow.of(row))
    p = {"b": booking_id}
    order.lines = [
        LineRow(**r._mapping)
        for r in await session.execute(
            text(
                "SELECT l.ticket_type_id, t.name AS ticket_type, l.quantity, l.cancelled, "
                "l.unit_price, l.discount "
                "FROM booking_lines l JOIN ticket_types t ON t.id = l.ticket_type_id "
                "WHERE l.booking_id = :b ORDER BY t.position, t.created_at"
            ),
            p,
        )
    ]
    order.payments = [
        PaymentRow(**r._mapping)
        for r in await session.execute(
            text(
                "SELECT kind, status, provider, amount, currency, created_at FROM payments "
                "WHERE booking_id = :b ORDER BY created_at, id"
            ),
            p,
        )
    ]
    order.tickets = [
        _ticket_row(r)
        for r in await session.execute(
            text(
                "SELECT k.id, k.seat, k.status, t.name AS ticket_type, k.checked_in_at, "
                "k.checked_in_device, k.seat_id, es.section, es.row, es.label AS seat_label "
                "FROM tickets k LEFT JOIN ticket_types t ON t.id = k.ticket_type_id "
                "LEFT JOIN event_seats es ON es.event_id = k.event_id AND es.seat_id = k.seat_id "
                "WHERE k.booking_id = :b ORDER BY k.seat"
            ),
            p,
        )
    ]
    names = await store.attendee_names(session, booking_id)
    order.tickets = [replace(t, attendee=names.get(t.id)) for t in order.tickets]
    order.attendees, order.answers = await attendees.of_booking(
        session, booking_id, order.booking.event_id
    )
    order.emails = [
        EmailRow(**r._mapping)
        for r in await session.execute(
            text(
                "SELECT kind, mail_status, created_at FROM notifications "
                "WHERE booking_id = :b ORDER BY created_at, id"
            ),
            p,
        )
    ]
    return order


@dataclass(frozen=True)
class HourCount:
    hour: datetime
    count: int


async def checkins_per_hour(session: AsyncSession, event_id: uuid.UUID) -> list[HourCount]:
    """Tickets checked in, by the UTC hour they were."""
    rows = await session.execute(
        text(
            "SELECT date_trunc('hour', checked_in_at, 'UTC') AS hour, count(*) AS count "
            "FROM tickets WHERE event_id = :e AND checked_in_at IS NOT NULL "
            "GROUP BY 1 ORDER BY 1"
        ),
        {"e": event_id},
    )
    return [HourCount(hour=r.hour, count=int(r[1])) for r in rows]


#: one resend per booking and key: the organizer's page sends a fresh key per form shown, so a
#: double click (or a retried POST) queues one mail, a second click on a new page another
_RESEND = text(
    """
INSERT INTO notifications (id, user_id, kind, dedupe_key, booking_id, payload)
SELECT :id, b.user_id, 'booking_confirmed', :key, b.id,
       jsonb_build_object('event_id', b.event_id, 'quantity', b.quantity, 'resent', true)
FROM bookings b WHERE b.id = :b
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING id
"""
)


@dataclass(frozen=True)
class Resent:
    notification_id: uuid.UUID
    queued: bool  # False: this key had queued it already (nothing new)


async def queue_tickets_mail(session: AsyncSession, booking_id: uuid.UUID, key: str) -> Resent:
    """The booking's confirmation mail (its tickets, as they are now) again, through the mail
    outbox (evently/mail/outbox.py: a pending ``booking_confirmed`` notice; the outbox's
    trigger wakes the mail workflow at commit). Idempotent per (booking, ``key``)."""
    dedupe = f"booking:{booking_id}:booking_confirmed:resend:{key}"
    new_id = await session.scalar(_RESEND, {"id": uuid.uuid4(), "key": dedupe, "b": booking_id})
    if new_id is not None:
        return Resent(new_id, queued=True)
    found = await session.scalar(
        text("SELECT id FROM notifications WHERE dedupe_key = :key"), {"key": dedupe}
    )
    assert found is not None, "queue_tickets_mail: the booking must exist"
    return Resent(found, queued=False)
