from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

Money = Annotated[Decimal, PlainSerializer(lambda d: f"{d:.2f}", return_type=str)]


class ReserveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_id: uuid.UUID
    quantity: int = Field(
        ge=1, le=1000, description="seats; at most EVENTLY_MAX_TICKETS_PER_BOOKING"
    )


class ReserveResponse(BaseModel):
    booking_id: uuid.UUID
    status: str
    hold_expires_at: datetime | None
    amount: Money
    currency: str
    workflow_id: str


class PendingBooking(BaseModel):
    """A reservation (or a booking) whose outcome is not known yet: poll
    `GET /bookings/{booking_id}` after `Retry-After`, or retry the reserve with the same
    `Idempotency-Key`; it ends `held` or refused, never silently."""

    booking_id: uuid.UUID
    event_id: uuid.UUID
    status: Literal["pending"] = "pending"
    workflow_id: str
    retry_after_seconds: int


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


class BookingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    event_id: uuid.UUID
    user_id: uuid.UUID
    quantity: int
    amount: Money
    currency: str
    status: str
    hold_expires_at: datetime | None
    workflow_id: str
    created_at: datetime
    confirmed_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None


class BookingPage(BaseModel):
    items: list[BookingOut]
    total: int
    page: int
    limit: int


class CancelResponse(BaseModel):
    booking_id: uuid.UUID
    status: str
    refunded: bool
