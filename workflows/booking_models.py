"""Inputs, outputs and handler names of BookingWorkflow (light module: no I/O imports).

Other code talks to a booking only through these: the API (reserve/pay/cancel), the event
cancellation workflow (cancel), support (cancel with actor), the waitlist (reserve with
``from_offer``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel

WORKFLOW_NAME = "BookingWorkflow"
UPDATE_RESERVE = "reserve"
UPDATE_PAY = "pay"
UPDATE_CANCEL = "cancel"
SIGNAL_PAYMENT_SUCCEEDED = "payment_succeeded"  # signed webhook from the provider
QUERY_STATE = "state"

BookingStatus = Literal["pending", "held", "confirmed", "expired", "cancelled", "rejected"]


def booking_workflow_id(booking_id: uuid.UUID | str) -> str:
    return f"booking-{booking_id}"


class BookingInput(BaseModel):
    booking_id: uuid.UUID
    event_id: uuid.UUID
    user_id: uuid.UUID
    quantity: int
    hold_seconds: int = 300
    # seats already taken from inventory for a waitlist offer: the booking adopts them
    waitlist_entry_id: uuid.UUID | None = None


class ReserveResult(BaseModel):
    booking_id: uuid.UUID
    event_id: uuid.UUID | None = None
    quantity: int = 0
    status: Literal["held", "rejected"]
    hold_expires_at: datetime | None = None
    amount: Decimal = Decimal("0")
    currency: str = ""
    reason: str | None = None  # "sold_out", "event_not_on_sale", ...


class PayInput(BaseModel):
    payment_method: str
    actor: str = "buyer"


class PaymentNotice(BaseModel):
    """A provider-confirmed payment (webhook): money already moved."""

    provider_event_id: str
    provider_payment_id: str
    amount: Decimal
    currency: str


class PayResult(BaseModel):
    status: Literal["confirmed", "declined", "hold_expired", "not_held"]
    booking_status: BookingStatus
    detail: str | None = None


class CancelInput(BaseModel):
    actor: str  # "user:<id>", "support:<id>", "event-cancellation", ...
    reason: str = "cancelled by buyer"


class CancelResult(BaseModel):
    booking_status: BookingStatus
    refunded: bool = False


class BookingState(BaseModel):
    booking_id: uuid.UUID
    event_id: uuid.UUID
    user_id: uuid.UUID
    quantity: int
    status: BookingStatus
    hold_expires_at: datetime | None = None
    amount: Decimal = Decimal("0")
    currency: str = ""
    history: list[str] = []
