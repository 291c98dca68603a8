from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from evently.tickets.store import Place


class SeatFields(BaseModel):
    """What a ticket says about its seat (the tickets answer, the door's answer)."""

    label: str = Field(examples=["General admission #12", "Section B · Row 7 · Seat 12"])
    seat_id: str | None = Field(
        None, description="the reserved seat it admits to (`<section>-<row>-<label>`); null: GA"
    )
    section: str | None = Field(None, description="the reserved seat's section; null: GA")
    row: str | None = Field(None, description="the reserved seat's row; null: GA")
    seat_label: str | None = Field(None, description="the reserved seat's label; null: GA")


class TicketOut(SeatFields):
    id: uuid.UUID
    booking_id: uuid.UUID
    event_id: uuid.UUID
    seat: int = Field(description="serial number of the ticket within its event (1, 2, ...)")
    ticket_type: str | None = Field(None, description="null until events have ticket types")
    status: str = Field(description="`valid` or `revoked`")
    issued_at: datetime
    revoked_at: datetime | None
    checked_in_at: datetime | None
    secret: str | None = Field(
        description="the QR payload `EVT1.<base32>`, signed with the platform's Ed25519 key "
        "(GET /api/v1/checkin/keys); null once revoked"
    )
    qr_svg_url: str | None = Field(description="this ticket's QR code as SVG; null once revoked")


class BookingTicketsOut(BaseModel):
    booking_id: uuid.UUID
    event_id: uuid.UUID
    booking_status: str
    tickets: list[TicketOut]
    pdf_url: str | None = Field(description="every valid ticket as one PDF; null without any")


def seat_fields(place: Place | None) -> dict[str, Any]:
    """A reserved seat's answer fields (``seat_id``, ``section``, ``row``, ``seat_label``);
    all null for a general-admission ticket."""
    if place is None:
        return {"seat_id": None, "section": None, "row": None, "seat_label": None}
    return {
        "seat_id": place.seat_id,
        "section": place.section,
        "row": place.row,
        "seat_label": place.label,
    }
