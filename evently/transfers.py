"""Ticket transfer / name change (issue 32): the old ticket's secret revoked, a new ticket
issued to the new attendee and mailed to them — one statement, audited, idempotent on retry.

The statement revokes the ticket only while it is valid and not checked in (a conditional
UPDATE: of concurrent transfers of one ticket exactly one gets the row), takes the event's next
serial (``events.tickets_issued``, locked by the same UPDATE, as at confirmation), inserts the
replacement (same booking, event and ticket type: the booking keeps one valid ticket per seat)
and records the transfer. A retry — or a concurrent duplicate — finds that record and gets the
same replacement; a transfer of an already transferred ticket to someone else is
``409 ticket_revoked``. Allowed while ``events.transfers_allowed`` and before
``transfer_deadline`` (NULL: the event's start), else ``409 transfer_closed``. Flush only.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from evently import audit
from evently.db.models import Booking
from evently.enums import BookingStatus, NotificationKind
from evently.errors import (
    AlreadyCheckedIn,
    BookingNotConfirmed,
    TicketNotFound,
    TicketRevoked,
    TransferClosed,
)


@dataclass(frozen=True)
class Transferred:
    old_ticket_id: uuid.UUID
    new_ticket_id: uuid.UUID
    name: str
    email: str
    created: bool  # False: a retry, answered with the earlier transfer


_TRANSFER = text(
    """
WITH old AS (
    UPDATE tickets SET status = 'revoked', revoked_at = now()
    WHERE id = :t AND booking_id = :b AND status = 'valid' AND checked_in_at IS NULL
    RETURNING id, event_id, ticket_type_id, seat_id
), ev AS (
    UPDATE events e SET tickets_issued = e.tickets_issued + 1
    FROM old WHERE e.id = old.event_id
    RETURNING e.tickets_issued AS serial
), new AS (
    INSERT INTO tickets (id, booking_id, event_id, seat, status, issued_at, ticket_type_id,
                         seat_id)
    SELECT :new_id, :b, old.event_id, ev.serial, 'valid', date_trunc('second', now()),
           old.ticket_type_id, old.seat_id
    FROM old, ev
    RETURNING id
)
INSERT INTO ticket_transfers (old_ticket_id, new_ticket_id, booking_id, name, email)
SELECT :t, new.id, :b, :name, :email FROM new
RETURNING new_ticket_id
"""
)


async def _earlier(session: AsyncSession, booking_id: uuid.UUID, ticket_id: uuid.UUID) -> Any:
    return (
        await session.execute(
            text(
                "SELECT new_ticket_id, name, email FROM ticket_transfers "
                "WHERE old_ticket_id = :t AND booking_id = :b"
            ),
            {"t": ticket_id, "b": booking_id},
        )
    ).first()


def _same(found: Any, ticket_id: uuid.UUID, name: str, email: str) -> Transferred:
    if (found.name, found.email) != (name, email):
        raise TicketRevoked("This ticket was already transferred; transfer its new ticket.")
    return Transferred(ticket_id, found.new_ticket_id, name, email, created=False)


async def transfer(
    session: AsyncSession,
    booking: Booking,
    ticket_id: uuid.UUID,
    *,
    name: str,
    email: str,
    actor: str,
    actor_user_id: uuid.UUID | None,
) -> Transferred:
    if booking.status != BookingStatus.CONFIRMED:
        raise BookingNotConfirmed("Only a confirmed booking's tickets can be transferred.")
    found = await _earlier(session, booking.id, ticket_id)
    if found is not None:
        return _same(found, ticket_id, name, email)
    policy = (
        await session.execute(
            text(
                "SELECT organization_id, transfers_allowed, "
                "now() < coalesce(transfer_deadline, starts_at) AS open "
                "FROM events WHERE id = :e"
            ),
            {"e": booking.event_id},
        )
    ).one()
    if not policy.transfers_allowed:
        raise TransferClosed("This event does not allow ticket transfers.")
    if not policy.open:
        raise TransferClosed("The deadline for transferring tickets of this event has passed.")
    new_id = await session.scalar(
        _TRANSFER,
        {"t": ticket_id, "b": booking.id, "new_id": uuid.uuid4(), "name": name, "email": email},
    )
    if new_id is None:  # not transferable now: say why (a concurrent transfer may have won)
        found = await _earlier(session, booking.id, ticket_id)
        if found is not None:
            return _same(found, ticket_id, name, email)
        state = (
            await session.execute(
                text("SELECT status, checked_in_at FROM tickets WHERE id = :t AND booking_id = :b"),
                {"t": ticket_id, "b": booking.id},
            )
        ).first()
        if state is None:
            raise TicketNotFound()
        if state.checked_in_at is not None:
            raise AlreadyCheckedIn("This ticket was already used at the door.")
        raise TicketRevoked("This ticket is no longer valid.")
    await audit.record(
        session,
        organization_id=policy.organization_id,
        actor=actor,
        actor_user_id=actor_user_id,
        action="ticket.transferred",
        target_type="ticket",
        target_id=ticket_id,
        details={"booking_id": str(booking.id), "new_ticket_id": str(new_id), "to": email},
    )
    await session.execute(
        text(
            "INSERT INTO notifications (id, user_id, kind, dedupe_key, booking_id, payload) "
            "VALUES (:id, :u, :k, :key, :b, CAST(:p AS jsonb)) ON CONFLICT (dedupe_key) DO NOTHING"
        ),
        {
            "id": uuid.uuid4(),
            "u": booking.user_id,
            "k": str(NotificationKind.TICKET_TRANSFERRED),
            "key": f"{NotificationKind.TICKET_TRANSFERRED}:{new_id}",
            "b": booking.id,
            "p": json.dumps({"ticket_id": str(new_id), "name": name, "email": email}),
        },
    )
    return Transferred(ticket_id, new_id, name, email, created=True)


async def transfer_names(session: AsyncSession, booking_id: uuid.UUID) -> dict[uuid.UUID, str]:
    """The new attendee's name of each replacement ticket of the booking."""
    rows = await session.execute(
        text("SELECT new_ticket_id, name FROM ticket_transfers WHERE booking_id = :b"),
        {"b": booking_id},
    )
    return {r.new_ticket_id: r.name for r in rows}


async def set_policy(
    session: AsyncSession, event_id: uuid.UUID, *, allowed: bool, deadline: datetime | None
) -> None:
    await session.execute(
        text(
            "UPDATE events SET transfers_allowed = :a, transfer_deadline = :d, "
            "updated_at = now() WHERE id = :e"
        ),
        {"a": allowed, "d": deadline, "e": event_id},
    )
