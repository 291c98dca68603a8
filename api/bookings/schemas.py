from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, model_validator

from api.auth.schemas import Email, FullName

Money = Annotated[Decimal, PlainSerializer(lambda d: f"{d:.2f}", return_type=str)]


class GuestBuyer(BaseModel):
    """Guest checkout (issue 32): who buys, without an account."""

    model_config = ConfigDict(extra="forbid")
    email: Email
    name: Annotated[FullName, Field(min_length=1)]


class ReserveLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ticket_type_id: uuid.UUID
    quantity: int = Field(ge=1, le=1000)
    together: bool = Field(
        default=True,
        description="a seated event's best available: adjacent seats in one row (ignored for "
        "general admission)",
    )


SeatId = Annotated[str, Field(min_length=1, max_length=130)]


class SeatOut(BaseModel):
    """A reserved seat of the booking (issue 34)."""

    id: str
    section: str
    row: str
    label: str


class ReserveRequest(BaseModel):
    """Either ``quantity`` (seats of the event's default type, as before ticket types) or
    ``lines`` (one per ticket type), optionally with a promo code."""

    model_config = ConfigDict(extra="forbid")
    event_id: uuid.UUID
    quantity: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="seats of the default type; at most EVENTLY_MAX_TICKETS_PER_BOOKING",
    )
    lines: list[ReserveLineIn] | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        description="one per ticket type; all are held or none (the total at most "
        "EVENTLY_MAX_TICKETS_PER_BOOKING)",
    )
    seats: list[SeatId] | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="a seated event's seats by id (GET /events/{id}/seating): all are held or "
        "none (409 seats_taken names the ones not free)",
    )
    promo_code: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$"
    )
    buyer: GuestBuyer | None = Field(
        default=None,
        description="guest checkout: only without a bearer token; the booking belongs to this "
        "email and the answer carries its access key (docs/buyers.md)",
    )

    @model_validator(mode="after")
    def _one_form(self) -> ReserveRequest:
        given = [x is not None for x in (self.quantity, self.lines, self.seats)]
        if sum(given) != 1:
            raise ValueError("give one of quantity, lines or seats")
        return self

    @property
    def total(self) -> int:
        if self.seats is not None:
            return len(set(self.seats))
        if self.lines is None:
            return self.quantity or 0
        return sum(x.quantity for x in self.lines)


class ReserveResponse(BaseModel):
    booking_id: uuid.UUID
    status: str
    hold_expires_at: datetime | None
    amount: Money  # the total to pay, net of the discount
    discount: Money = Decimal(0)
    currency: str
    workflow_id: str
    # guest checkout (issue 32): the key that opens this booking without an account
    access_key: str | None = None
    access_url: str | None = None
    seats: list[SeatOut] = []  # a seated event's held seats (issue 34)


class PendingBooking(BaseModel):
    """A reservation (or a booking) whose outcome is not known yet: poll
    `GET /bookings/{booking_id}` after `Retry-After`, or retry the reserve with the same
    `Idempotency-Key`; it ends `held` or refused, never silently."""

    booking_id: uuid.UUID
    event_id: uuid.UUID
    status: Literal["pending"] = "pending"
    workflow_id: str
    retry_after_seconds: int
    access_key: str | None = None  # a guest checkout's (issue 32)
    access_url: str | None = None


class BookingAccess(BaseModel):
    """A guest booking's new access key (the earlier ones stop working)."""

    booking_id: uuid.UUID
    access_key: str
    access_url: str


class ConfirmRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    booking_id: uuid.UUID
    payment_method: str = Field(
        pattern=r"^pm_[A-Za-z0-9_]{1,64}$", examples=["pm_card_visa", "pm_card_chargeDeclined"]
    )


class ConfirmResponse(BaseModel):
    booking_id: uuid.UUID
    status: str


class PaymentPending(BaseModel):
    """202: the payment waits for the buyer (3-D Secure) or the provider; the hold keeps
    running and the booking is confirmed when the provider's webhook reports the payment."""

    booking_id: uuid.UUID
    status: Literal["requires_action", "processing"]
    # requires_action: hand it to Stripe.js (`stripe.handleNextAction({clientSecret})`)
    client_secret: str | None = None
    hold_expires_at: datetime | None = None


class BookingLineOut(BaseModel):
    """A ticket type of the booking: seats, the unit price frozen at hold time, the line's
    discount, and seats cancelled since (partial cancellation)."""

    ticket_type_id: uuid.UUID
    name: str
    quantity: int
    cancelled: int
    unit_price: Money
    discount: Money
    total: Money  # (quantity - cancelled) x unit_price - discount of the remaining seats


class BookingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    event_id: uuid.UUID
    user_id: uuid.UUID
    quantity: int  # seats still booked (cancelled lines' seats excluded)
    amount: Money  # what was charged, net of the discount and of refunded lines
    discount: Money = Decimal(0)
    lines: list[BookingLineOut] = []
    currency: str
    status: str
    hold_expires_at: datetime | None
    workflow_id: str
    created_at: datetime
    confirmed_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    seats: list[SeatOut] = []  # a seated event's seats still booked (issue 34)


class BookingPage(BaseModel):
    items: list[BookingOut]
    total: int
    page: int
    limit: int


class CancelResponse(BaseModel):
    booking_id: uuid.UUID
    status: str
    refunded: bool


class CancelLinesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lines: list[ReserveLineIn] = Field(min_length=1, max_length=20)


class CancelLinesResponse(BaseModel):
    """The booking after the change: still ``confirmed`` with fewer seats, or ``cancelled``
    when the lines were all it had left."""

    booking_id: uuid.UUID
    status: str
    change: int | None  # the change number (None: the whole booking was cancelled)
    refunded: bool
    refund_amount: Money | None = None
