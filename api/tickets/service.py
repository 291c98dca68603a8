"""Who may see a booking's tickets, and the documents made from them."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from evently import bookings
from evently.db.models import Booking, User
from evently.enums import Role
from evently.errors import BookingNotFound, EventNotFound, NoValidTickets
from evently.tickets import render, store


async def readable_booking(session: AsyncSession, user: User, booking_id: uuid.UUID) -> Booking:
    """The booking, for its owner, support and admins (anyone else: 404, like GET /bookings)."""
    booking = await bookings.get_booking(session, booking_id)
    if booking is None or (
        booking.user_id != user.id and user.role not in (Role.ADMIN, Role.SUPPORT)
    ):
        raise BookingNotFound()
    return booking


async def tickets_pdf(
    session: AsyncSession, signer: store.Signer, booking: Booking, public_url: str | None
) -> bytes:
    tickets = await store.for_booking(session, booking.id)
    views = store.ticket_views(
        signer,
        tickets,
        await store.holder(session, booking.user_id),
        await store.attendee_names(session, booking.id),
    )
    if not views:
        raise NoValidTickets()
    event = await store.event_view(session, booking.event_id, public_url=public_url)
    if event is None:
        raise EventNotFound()
    # fpdf2 is CPU work (~0.3-0.5 s a document here, mostly parsing and subsetting the TTF
    # font, + ~50 ms a page): off the event loop
    return await asyncio.to_thread(render.tickets_pdf, event, views)
