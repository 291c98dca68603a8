"""BookingWorkflow's contract: its input, its updates, signal and query with their payloads,
and the activities it calls with theirs. Light module (no I/O imports): the workflow, its
client and the activities all import it; fields are only ever added, with defaults, so
running workflows keep decoding their histories.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel

from evently.enums import BookingStatus, PayOutcome
from evently.inventory.types import Reservation, ReserveLine

__all__ = [
    "Reservation",
    "ReserveLine",
]  # the reserve step's outcome (activity result = update result)

WORKFLOW_NAME = "BookingWorkflow"
# updates (by method name: BookingWorkflow.reserve, .pay, .cancel)
SIGNAL_PAYMENT_SUCCEEDED = "payment_succeeded"  # signed webhook from the provider
QUERY_STATE = "state"
# the cancel update's refusal once a confirmed booking's run has handed over (new lifetime)
HANDED_OVER = "BookingHandedOver"

# the activities' failure types (ApplicationError.type): the strings are part of recorded
# histories and running workflows, never change them
NOT_CONFIRMABLE = "NotConfirmable"  # confirm_booking: the booking is not held (non-retryable)
NOT_RELEASABLE = "NotReleasable"  # release_booking: confirmed or not ended (non-retryable)
BOOKING_NOT_FOUND = "BookingNotFound"  # load_booking: no such booking (non-retryable)
NO_CHANGE = "NoChange"  # refund_booking_change: no such booking or change (non-retryable)
REFUND_FAILED = "RefundFailed"  # refund_payment, refund_booking_change: retried

# activities (names are the contract: the worker registers the implementations under them)
RESERVE_SEATS = "reserve_seats"  # local, booking queue
CONFIRM_BOOKING = "confirm_booking"  # local
RELEASE_BOOKING = "release_booking"  # local
SETTLE_LATE_PAYMENT = "settle_late_payment"  # local
CHARGE = "charge_payment"  # payments queue
# a charge whose answer never reached the workflow: settle it (void or read) before the hold ends
RECONCILE_CHARGE = "reconcile_charge"  # payments queue
REFUND = "refund_payment"  # payments queue
RECORD_PROVIDER_PAYMENT = "record_provider_payment"  # payments queue
# issue 29: a held booking confirmed with no card charge (a 0.00 booking, an organizer's order)
CONFIRM_WITHOUT_CHARGE = "confirm_without_charge"  # local
# issue 29, bank transfer: finance marked the money arrived (confirm, or the late-payment rule),
# and the reminder a day before the window ends
SETTLE_BANK_TRANSFER = "settle_bank_transfer"  # local
REMIND_TRANSFER = "remind_bank_transfer"  # local
SIGNAL_TRANSFER_RECEIVED = "transfer_received"  # POST .../bookings/{id}/mark-paid


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
    # ticket types (issue 15): the lines (empty: ``quantity`` of the default type) and the
    # promo code, both read only by the reserve activity (``quantity`` is the lines' total)
    lines: list[ReserveLine] = []
    promo_code: str | None = None
    # issue 29: an organizer's order (evently.enums.BookingChannel ``comp`` | ``box_office``):
    # confirmed at once without a card charge, the staff member's note recorded; None: the
    # buyer's own booking (confirmed at once only when it costs 0.00)
    channel: str | None = None
    note: str | None = None
    # issue 29: the buyer pays by bank transfer; ``hold_seconds`` is the event's window (days)
    bank_transfer: bool = False
    # reserved seating (issue 34), read only by the reserve activity: the event is seated (its
    # seats are held by evently/inventory/reserved.py), and the seats asked for by id (empty:
    # best available per line)
    seated: bool = False
    seat_ids: list[str] = []


# ---- updates, signal, query --------------------------------------------------------------------


class PayInput(BaseModel):
    payment_method: str
    actor: str = "buyer"


class PayResult(BaseModel):
    status: PayOutcome
    booking_status: BookingStatus
    detail: str | None = None
    # REQUIRES_ACTION: what the buyer's browser needs to finish 3-D Secure (Stripe.js)
    client_secret: str | None = None


class PaymentNotice(BaseModel):
    """A provider-confirmed payment (webhook): money already moved."""

    provider_event_id: str
    provider_payment_id: str
    amount: Decimal
    currency: str


class TransferNotice(BaseModel):
    """Finance marked the booking's bank transfer arrived (mark-paid)."""

    actor: str  # "user:<id>"


class CancelInput(BaseModel):
    actor: str  # "user:<id>", "support:<id>", "event-cancellation", ...
    reason: str = "cancelled by buyer"


class CancelResult(BaseModel):
    booking_status: BookingStatus
    refunded: bool = False
    detail: str | None = None  # why nothing changed, when nothing did


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


# ---- activities ----------------------------------------------------------------------------


class NoChargeInput(BaseModel):
    """confirm_without_charge: the provider the charge is recorded under (``free``, ``comp``,
    ``box_office``), the booking's channel and the organizer's note."""

    booking_id: uuid.UUID
    provider: str
    channel: str = "online"
    note: str | None = None


class ReleaseInput(BaseModel):
    booking_id: uuid.UUID
    event_id: uuid.UUID
    quantity: int
    from_status: BookingStatus  # held | confirmed
    to_status: BookingStatus  # expired | cancelled
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
    # set when the charge waits for the buyer (REQUIRES_ACTION, with client_secret) or the
    # provider (PROCESSING): the hold keeps running, the outcome arrives by webhook
    pending: PayOutcome | None = None
    client_secret: str | None = None


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


# ---- BookingChangeWorkflow: a later change to a confirmed booking (its own short workflow) ---

CHANGE_WORKFLOW_NAME = "BookingChangeWorkflow"
LOAD_BOOKING = "load_booking"  # local, booking queue
CANCEL = "cancel"  # the change that cancels the whole booking


def booking_change_workflow_id(booking_id: uuid.UUID | str, change: str) -> str:
    return f"booking-change-{booking_id}-{change}"


class BookingChangeInput(BaseModel):
    booking_id: uuid.UUID
    change: str = CANCEL
    actor: str
    reason: str


class BookingFacts(BaseModel):
    """What a change needs to know about the booking, read when it starts."""

    booking_id: uuid.UUID
    event_id: uuid.UUID
    user_id: uuid.UUID
    quantity: int
    status: BookingStatus
    amount: Decimal
    currency: str
    event_ends_at: datetime | None = None


# ---- a partial cancellation (issue 15): change ``lines-<n>`` of BookingChangeWorkflow ---------

REFUND_CHANGE = "refund_booking_change"  # payments queue
CANCEL_LINES = "cancel_booking_lines"  # local, booking queue


class ChangeInput(BaseModel):
    booking_id: uuid.UUID
    change_no: int


class CancelLinesResult(BaseModel):
    done: bool  # the seats were released now (False: done before, or the booking ended)
    public: bool = True  # False: kept for the waitlist (the workflow hands them over)
