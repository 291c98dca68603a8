"""Activity inputs/outputs for bookings and payments (light: workflows import these)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel

# activity names (workflows call them by these)
RESERVE_SEATS = "reserve_seats"
CONFIRM_BOOKING = "confirm_booking"
RELEASE_BOOKING = "release_booking"
SETTLE_LATE_PAYMENT = "settle_late_payment"
CHARGE = "charge_payment"
REFUND = "refund_payment"
RECORD_PROVIDER_PAYMENT = "record_provider_payment"
NOTIFY = "notify_user"


class ReserveOutcome(BaseModel):
    # held | rejected, or the booking's later status when a new run finds it (late payment)
    status: Literal["held", "confirmed", "expired", "cancelled", "rejected"]
    amount: Decimal
    currency: str
    hold_expires_at: datetime | None
    event_ends_at: datetime | None
    reason: str | None = None


class ReleaseInput(BaseModel):
    booking_id: uuid.UUID
    event_id: uuid.UUID
    quantity: int
    from_status: Literal["held", "confirmed"]
    to_status: Literal["expired", "cancelled"]
    actor: str
    reason: str


class ChargeInput(BaseModel):
    booking_id: uuid.UUID
    attempt: int
    payment_method: str
    amount: Decimal
    currency: str


class ChargeResult(BaseModel):
    succeeded: bool
    provider_payment_id: str
    failure_code: str | None = None


class RefundInput(BaseModel):
    booking_id: uuid.UUID
    # a late payment for an expired booking: the booking ends cancelled (refunded)
    cancel_expired_booking: bool = False


class RefundResult(BaseModel):
    refunded: bool
    provider_payment_id: str | None = None
    amount: Decimal = Decimal(0)


class ProviderPaymentInput(BaseModel):
    booking_id: uuid.UUID
    provider_event_id: str
    provider_payment_id: str
    amount: Decimal
    currency: str


class NotifyInput(BaseModel):
    user_id: uuid.UUID
    kind: str
    dedupe_key: str
    booking_id: uuid.UUID | None = None
    waitlist_entry_id: uuid.UUID | None = None
    payload: dict[str, str] = {}
