"""The data a seat change returns (light: workflow contracts re-export these)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from evently.enums import BookingStatus


class Counters(BaseModel):
    """An event's seat counters right after a change (``UPDATE ... RETURNING``)."""

    event_id: uuid.UUID
    capacity: int
    available: int
    held: int
    sold: int
    status: str
    updated_at: datetime  # the availability cache's version: bumped by every seat change


class Released(Counters):
    to_waitlist: int = 0  # seats kept for the waitlist (not returned to the public pool)


class SeatRef(BaseModel):
    """A reserved seat of a booking (issue 34)."""

    id: str
    section: str
    row: str
    label: str


class Reservation(BaseModel):
    """The outcome of a reserve step: the reserve activity's result and the booking
    workflow's ``reserve`` update result (what the API answers from)."""

    booking_id: uuid.UUID
    event_id: uuid.UUID
    quantity: int
    # held or rejected; a retry (or a new run after a late payment) reports the booking's
    # later status
    status: BookingStatus
    amount: Decimal = Decimal(0)
    currency: str = ""
    hold_expires_at: datetime | None = None
    event_ends_at: datetime | None = None
    reason: str | None = None  # why it was rejected: evently.enums.ReserveOutcome
    discount: Decimal = Decimal(0)  # the promo code's, already taken off ``amount``
    # issue 31: the frozen breakdown (evently.pricing.Breakdown.answer()) when the booking has a
    # fee or a tax rule; None: ``amount`` and ``discount`` say it all
    price: dict[str, Any] | None = None
    # reserved seating (issue 34): the booking's seats, and on a ``seats_taken`` refusal the
    # asked seats that were not free
    seats: list[SeatRef] = []
    seats_taken: list[str] = []
    # a ``seats_taken`` refusal true of the committed seats: the listed seats were not free, or
    # the first best-available line found no block (the API notes it: evently/inventory/gate.py)
    refusal_committed: bool = False


class ReserveLine(BaseModel):
    """One line of a reserve: a ticket type of the event (None: its default type)."""

    ticket_type_id: uuid.UUID | None = None
    quantity: int
    # reserved seating (issue 34): the best free seats of the line, adjacent in one row
    together: bool = True
