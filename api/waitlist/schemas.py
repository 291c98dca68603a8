from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.bookings.schemas import Money

EntryStatus = Literal["waiting", "offered", "accepted", "expired", "left"]


class JoinRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_id: uuid.UUID
    quantity: int = Field(
        ge=1, le=1000, description="seats wanted together; at most EVENTLY_MAX_TICKETS_PER_BOOKING"
    )
    ticket_type_id: uuid.UUID | None = Field(
        default=None,
        description="a seated event only: wait for this ticket type (the seats of its "
        "category, at its price); offers of it are made only of seats of that category. "
        "Omitted: the default tickets, any seat.",
    )


class JoinResponse(BaseModel):
    entry_id: uuid.UUID
    event_id: uuid.UUID
    quantity: int
    status: EntryStatus
    position: int | None
    ticket_type_id: uuid.UUID | None = None


class OfferOut(BaseModel):
    seats: int
    expires_at: datetime | None
    booking_id: uuid.UUID | None = None  # set once the offer was accepted


class EntryOut(BaseModel):
    entry_id: uuid.UUID
    event_id: uuid.UUID
    quantity: int
    status: EntryStatus
    position: int | None = Field(description="1-based place among waiting entries; null otherwise")
    offer: OfferOut | None
    created_at: datetime
    ticket_type_id: uuid.UUID | None = None


class AcceptResponse(BaseModel):
    entry_id: uuid.UUID
    booking_id: uuid.UUID
    status: str
    quantity: int
    hold_expires_at: datetime | None
    amount: Money
    currency: str
    workflow_id: str


class LeaveResponse(BaseModel):
    entry_id: uuid.UUID
    status: EntryStatus
    declined_offer: bool
