"""A booking's tickets (JSON, one QR as SVG, all as PDF) and an event's calendar entry."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response

from api.bookings.access import BookingUser
from api.deps import SessionDep, SettingsDep
from api.problems import problem_responses
from api.tickets import service
from api.tickets.schemas import BookingTicketsOut, TicketOut, seat_fields
from evently.errors import (
    BookingNotFound,
    EventNotFound,
    NoValidTickets,
    TicketNotFound,
    TicketRevoked,
)
from evently.events import event_not_found
from evently.tickets import render, store

router = APIRouter(tags=["tickets"])

API = "/api/v1"


class SvgResponse(Response):
    media_type = "image/svg+xml"


class PdfResponse(Response):
    media_type = "application/pdf"


class CalendarResponse(Response):
    media_type = "text/calendar"


def _binary(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": description,
            "content": {media_type: {"schema": {"type": "string", "format": "binary"}}},
        }
    }


def _ticket_out(signer: store.Signer, t: store.TicketRow) -> TicketOut:
    return TicketOut(
        id=t.id,
        booking_id=t.booking_id,
        event_id=t.event_id,
        seat=t.seat,
        label=t.label,
        **seat_fields(t.place),
        status=t.status,
        issued_at=t.issued_at,
        revoked_at=t.revoked_at,
        checked_in_at=t.checked_in_at,
        secret=signer.sign(t.claims) if t.valid else None,
        qr_svg_url=f"{API}/bookings/{t.booking_id}/tickets/{t.id}.svg" if t.valid else None,
    )


@router.get(
    "/bookings/{booking_id}/tickets",
    response_model=BookingTicketsOut,
    summary="The booking's tickets with their QR payloads",
    responses=problem_responses(BookingNotFound),
)
async def list_tickets(
    booking_id: uuid.UUID, user: BookingUser, session: SessionDep, settings: SettingsDep
) -> BookingTicketsOut:
    """One ticket per seat of a confirmed booking (none while it is held); a cancelled or
    refunded booking's tickets are `revoked`. Owner, support and admins (others: 404)."""
    booking = await service.readable_booking(session, user, booking_id)
    signer = store.signer(settings)
    tickets = await store.for_booking(session, booking.id)
    return BookingTicketsOut(
        booking_id=booking.id,
        event_id=booking.event_id,
        booking_status=booking.status,
        tickets=[_ticket_out(signer, t) for t in tickets],
        pdf_url=f"{API}/bookings/{booking.id}/tickets.pdf"
        if any(t.valid for t in tickets)
        else None,
    )


@router.get(
    "/bookings/{booking_id}/tickets/{ticket_id}.svg",
    response_class=SvgResponse,
    summary="One ticket's QR code (SVG)",
    responses={
        **_binary("image/svg+xml", "The QR code of the ticket's secret"),
        **problem_responses(BookingNotFound, TicketNotFound, TicketRevoked),
    },
)
async def ticket_svg(
    booking_id: uuid.UUID,
    ticket_id: uuid.UUID,
    user: BookingUser,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    booking = await service.readable_booking(session, user, booking_id)
    ticket = await store.get(session, ticket_id)
    if ticket is None or ticket.booking_id != booking.id:
        raise TicketNotFound()
    if not ticket.valid:
        raise TicketRevoked()
    svg = render.qr_svg(store.signer(settings).sign(ticket.claims))
    return SvgResponse(svg, headers={"Cache-Control": "private, no-store"})


@router.get(
    "/bookings/{booking_id}/tickets.pdf",
    response_class=PdfResponse,
    summary="Every valid ticket of the booking, one A4 page each (PDF)",
    responses={
        **_binary("application/pdf", "The tickets, one page each, with their QR codes"),
        **problem_responses(BookingNotFound, NoValidTickets),
    },
)
async def tickets_pdf(
    booking_id: uuid.UUID, user: BookingUser, session: SessionDep, settings: SettingsDep
) -> Response:
    booking = await service.readable_booking(session, user, booking_id)
    pdf = await service.tickets_pdf(session, store.signer(settings), booking, settings.public_url)
    return PdfResponse(
        pdf,
        headers={
            "Content-Disposition": f'attachment; filename="tickets-{booking.id}.pdf"',
            "Cache-Control": "private, no-store",
        },
    )


@router.get(
    "/events/{event_id}.ics",
    response_class=CalendarResponse,
    summary="The event as an iCalendar file",
    responses={
        **_binary("text/calendar", "A VCALENDAR with one VEVENT (times in UTC)"),
        **problem_responses(EventNotFound),
    },
)
async def event_ics(event_id: uuid.UUID, session: SessionDep, settings: SettingsDep) -> Response:
    """Published, cancelled and completed events (a cancelled one has `STATUS:CANCELLED`, the
    same UID, so calendars that imported it drop it). Drafts: 404."""
    event = await store.event_view(session, event_id, public_url=settings.public_url, drafts=False)
    if event is None:
        raise event_not_found(event_id)
    return CalendarResponse(
        render.event_ics(event),
        headers={
            "Content-Disposition": f'attachment; filename="event-{event_id}.ics"',
            "Cache-Control": "public, max-age=300",
        },
    )
