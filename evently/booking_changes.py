"""Partial cancellation of a confirmed booking (issue 15): the change is numbered and recorded
here, then run by a BookingChangeWorkflow (``booking-change-<id>-lines-<n>``): refund of that
part (keyed by booking and number) → release of those seats (exactly those tickets revoked) →
the waitlist.

The refund of a change is what its seats cost net of their share of the discount
(:func:`evently.ticket_types.line_net`): the net price of the line's remaining seats before,
minus after, so the partial refunds of a booking and the refund of a later whole cancellation
(the charge minus every partial refund) never add up to more than was charged.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from evently.db.models import BookingChange, BookingLine
from evently.enums import BookingChangeStatus, BookingStatus
from evently.errors import LinesNotCancellable, TicketCheckedIn
from evently.ticket_types import line_net

#: ``tickets.refund_change`` of the tickets promised to a whole cancellation (a partial change
#: uses its number, from 1)
WHOLE = 0


def change_name(change_no: int) -> str:
    """The change's part of its workflow id (``booking-change-<booking>-<name>``)."""
    return f"lines-{change_no}"


def change_no_of(name: str) -> int | None:
    """The number of a partial cancellation's change name, None for other changes."""
    prefix, _, number = name.partition("-")
    return int(number) if prefix == "lines" and number.isdigit() else None


def refund_key(booking_id: uuid.UUID, change_no: int) -> str:
    """The provider's idempotency key of a change's refund."""
    return f"{booking_id}-refund-{change_no}"


async def request(
    session: AsyncSession,
    booking_id: uuid.UUID,
    wanted: dict[uuid.UUID, int],
    *,
    actor: str,
    reason: str,
) -> BookingChange | None:
    """Record the next change of a confirmed booking (the booking row locked, so two requests
    get two numbers and never cancel the same seats twice). None when ``wanted`` covers every
    seat left: that is a whole cancellation. Raises LinesNotCancellable when the booking is not
    confirmed or has fewer active seats of a type than asked."""
    status = await session.scalar(
        text("SELECT status FROM bookings WHERE id = :id FOR UPDATE"), {"id": booking_id}
    )
    if status != BookingStatus.CONFIRMED:
        raise LinesNotCancellable(f"Only a confirmed booking's lines can be cancelled ({status}).")
    lines = {
        line.ticket_type_id: line
        for line in await session.scalars(
            select(BookingLine).where(BookingLine.booking_id == booking_id)
        )
    }
    # seats already promised to changes still running (requested or refunded, not yet done)
    pending: dict[uuid.UUID, int] = {}
    rows = await session.execute(
        text(
            "SELECT lines FROM booking_changes WHERE booking_id = :id "
            "AND status IN (:requested, :refunded)"
        ),
        {
            "id": booking_id,
            "requested": BookingChangeStatus.REQUESTED.value,
            "refunded": BookingChangeStatus.REFUNDED.value,
        },
    )
    for (found,) in rows:
        for item in found:
            key = uuid.UUID(item["ticket_type_id"])
            pending[key] = pending.get(key, 0) + int(item["quantity"])
    refund = Decimal(0)
    for type_id, q in wanted.items():
        line = lines.get(type_id)
        active = 0 if line is None else line.quantity - line.cancelled - pending.get(type_id, 0)
        if line is None or q > active:
            raise LinesNotCancellable(
                f"The booking has {max(active, 0)} seats of ticket type {type_id} left to cancel."
            )
        left = line.quantity - line.cancelled - pending.get(type_id, 0)
        refund += line_net(line, left) - line_net(line, left - q)
    remaining = sum(line.quantity - line.cancelled - pending.get(t, 0) for t, line in lines.items())
    if sum(wanted.values()) >= remaining:
        return None
    change_no = int(
        await session.scalar(
            text(
                "SELECT COALESCE(max(change_no), 0) + 1 FROM booking_changes WHERE booking_id = :id"
            ),
            {"id": booking_id},
        )
        or 1
    )
    for type_id, q in sorted(wanted.items()):
        await _seal_seats(session, booking_id, type_id, q, change_no)
    change = BookingChange(
        booking_id=booking_id,
        change_no=change_no,
        lines=[{"ticket_type_id": str(t), "quantity": q} for t, q in sorted(wanted.items())],
        quantity=sum(wanted.values()),
        refund_amount=refund,
        status=BookingChangeStatus.REQUESTED,
        actor=actor[:200],
        reason=reason[:200],
    )
    session.add(change)
    await session.flush()
    return change


# ---- nothing refunded that was used (issue 29) --------------------------------------------------
#
# A refund is accepted in one transaction that locks the tickets it covers (``FOR UPDATE``: a
# concurrent scan, one UPDATE of the ticket's row in evently/tickets/checkin.py, either
# committed before, and the lock reads its ``checked_in_at``, or waits for this commit), finds
# none of them checked in, and promises them to the refund (``refund_change``). The door
# refuses a promised ticket (``ticket_revoked``), so a ticket is either used or refunded, never
# both, whatever the timing. The release that follows revokes exactly the promised tickets.


def checked_in(ticket_id: uuid.UUID, at: datetime) -> TicketCheckedIn:
    return TicketCheckedIn(
        f"Ticket {ticket_id} was checked in at {at.isoformat()}; a used ticket is not refunded.",
        ticket_id=str(ticket_id),
        checked_in_at=at.isoformat(),
    )


async def _seal_seats(
    session: AsyncSession, booking_id: uuid.UUID, type_id: uuid.UUID, q: int, change_no: int
) -> None:
    """Promise ``q`` unused tickets of a type to partial change ``change_no`` (highest serial
    first, as the release picks them); TicketCheckedIn when fewer than ``q`` are unused."""
    rows = (
        await session.execute(
            text(
                "SELECT id, checked_in_at FROM tickets WHERE booking_id = :b "
                "AND ticket_type_id = :t AND status = 'valid' AND refund_change IS NULL "
                "ORDER BY seat DESC FOR UPDATE"
            ),
            {"b": booking_id, "t": type_id},
        )
    ).all()
    unused = [r.id for r in rows if r.checked_in_at is None]
    if len(unused) < q:
        used = [r for r in rows if r.checked_in_at is not None]
        if used:
            raise checked_in(used[0].id, used[0].checked_in_at)
        raise LinesNotCancellable(
            f"The booking has {len(unused)} tickets of ticket type {type_id} left to cancel."
        )
    await session.execute(
        text("UPDATE tickets SET refund_change = :n WHERE id = ANY(:ids)"),
        {"n": change_no, "ids": unused[:q]},
    )


async def seal_booking(session: AsyncSession, booking_id: uuid.UUID) -> None:
    """Accepting a whole booking's refund: lock its valid tickets, refuse (TicketCheckedIn) if
    any was checked in, else promise them to the cancellation. Call it in the transaction that
    commits before the cancellation runs."""
    rows = (
        await session.execute(
            text(
                "SELECT id, checked_in_at FROM tickets WHERE booking_id = :b "
                "AND status = 'valid' ORDER BY seat FOR UPDATE"
            ),
            {"b": booking_id},
        )
    ).all()
    for r in rows:
        if r.checked_in_at is not None:
            raise checked_in(r.id, r.checked_in_at)
    await session.execute(
        text(
            "UPDATE tickets SET refund_change = :n "
            "WHERE booking_id = :b AND status = 'valid' AND refund_change IS NULL"
        ),
        {"b": booking_id, "n": WHOLE},
    )


async def unseal_booking(session: AsyncSession, booking_id: uuid.UUID) -> None:
    """The whole cancellation did not happen (the booking stays confirmed): its tickets are
    usable again."""
    await session.execute(
        text(
            "UPDATE tickets SET refund_change = NULL "
            "WHERE booking_id = :b AND status = 'valid' AND refund_change = :n"
        ),
        {"b": booking_id, "n": WHOLE},
    )


async def get(conn: AsyncConnection, booking_id: uuid.UUID, change_no: int) -> Any:
    return (
        await conn.execute(
            text(
                "SELECT booking_id, change_no, status, refund_amount, quantity "
                "FROM booking_changes WHERE booking_id = :b AND change_no = :n"
            ),
            {"b": booking_id, "n": change_no},
        )
    ).first()


async def quantity_of(conn: AsyncConnection, booking_id: uuid.UUID, change_no: int) -> int:
    """The seats a change cancels (0 for an unknown change)."""
    found = await conn.scalar(
        text("SELECT quantity FROM booking_changes WHERE booking_id = :b AND change_no = :n"),
        {"b": booking_id, "n": change_no},
    )
    return int(found or 0)


async def settle_request(
    conn: AsyncConnection, booking_id: uuid.UUID, change_no: int, to: BookingChangeStatus
) -> None:
    """A requested change's refund step ended: ``refunded`` (its part refunded) or ``void``
    (nothing to refund: the booking ended meanwhile). A no-op unless it is still requested."""
    await conn.execute(
        text(
            "UPDATE booking_changes SET status = :to, updated_at = now() "
            "WHERE booking_id = :b AND change_no = :n AND status = :requested"
        ),
        {
            "to": to.value,
            "b": booking_id,
            "n": change_no,
            "requested": BookingChangeStatus.REQUESTED.value,
        },
    )


async def void_if_booking_ended(
    conn: AsyncConnection, booking_id: uuid.UUID, change_no: int
) -> None:
    """A refunded change whose booking is no longer confirmed is void: the whole cancellation
    that ended it released (and refunded) its seats."""
    await conn.execute(
        text(
            "UPDATE booking_changes c SET status = :void, updated_at = now() "
            "FROM bookings b WHERE c.booking_id = :b AND c.change_no = :n "
            "AND c.status = :refunded AND b.id = c.booking_id AND b.status <> :confirmed"
        ),
        {
            "b": booking_id,
            "n": change_no,
            "void": BookingChangeStatus.VOID.value,
            "refunded": BookingChangeStatus.REFUNDED.value,
            "confirmed": BookingStatus.CONFIRMED.value,
        },
    )
