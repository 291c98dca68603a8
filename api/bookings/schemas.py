from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)

from api.auth.schemas import GuestBuyer
from api.events.schemas import storable
from evently.bank_transfer import shown_status

Money = Annotated[Decimal, PlainSerializer(lambda d: f"{d:.2f}", return_type=str)]


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
    payment_method: Literal["card", "bank_transfer"] = Field(
        default="card",
        description="`card` (default): a hold of minutes, paid with `POST /bookings/confirm`. "
        "`bank_transfer` (events whose `bank_transfer` is enabled): 202 `awaiting_transfer` "
        "with a payment reference and the organization's bank account; the seats are held for "
        "the event's window (docs/payments.md)",
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


class TaxOut(BaseModel):
    name: str
    rate: Money  # percent, e.g. "19.00"
    amount: Money
    included: bool  # true: already inside the prices (VAT incl.); false: added to the total


class PriceOut(BaseModel):
    """The booking's price breakdown (issue 31; docs/money.md), frozen at hold time: tickets
    (``subtotal``) less the promo code (``discount``) plus fees passed on to the buyer
    (``fees``) plus taxes that are not included in the prices = ``total`` (what is charged).
    Rounding: per line, half-up to the currency's minor unit."""

    subtotal: Money
    discount: Money
    fees: Money
    taxes: list[TaxOut]
    total: Money
    currency: str


class ReserveResponse(BaseModel):
    booking_id: uuid.UUID
    status: str
    hold_expires_at: datetime | None
    amount: Money  # the total to pay, net of the discount
    discount: Money = Decimal(0)
    currency: str
    workflow_id: str
    price: PriceOut  # issue 31: the breakdown of ``amount``
    # guest checkout (issue 32): the key that opens this booking without an account
    access_key: str | None = None
    access_url: str | None = None
    seats: list[SeatOut] = []  # a seated event's held seats (issue 34)


class BankAccountOut(BaseModel):
    account_holder: str
    iban: str
    bic: str | None = None


class AwaitingTransfer(BaseModel):
    """A booking paid by bank transfer (issue 29): its seats are held until `pay_by`; transfer
    `amount` to `bank_account` quoting `payment_reference`. Finance marks it paid
    (`POST .../bookings/{booking_id}/mark-paid`); the tickets are then mailed."""

    booking_id: uuid.UUID
    status: Literal["awaiting_transfer"] = "awaiting_transfer"
    pay_by: datetime
    amount: Money
    discount: Money = Decimal(0)
    currency: str
    payment_reference: str
    bank_account: BankAccountOut
    workflow_id: str
    access_key: str | None = None
    access_url: str | None = None


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


class BillingIn(BaseModel):
    """The buyer's optional billing details, printed on the invoice (issue 31)."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(max_length=200), AfterValidator(storable)] = ""
    address: Annotated[str, Field(max_length=400), AfterValidator(storable)] = ""
    vat_id: Annotated[str, Field(max_length=40), AfterValidator(storable)] = ""


class ConfirmRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    booking_id: uuid.UUID
    payment_method: str = Field(
        pattern=r"^pm_[A-Za-z0-9_]{1,64}$", examples=["pm_card_visa", "pm_card_chargeDeclined"]
    )
    billing: BillingIn | None = Field(
        default=None, description="who the invoice is made out to (a business buyer)"
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
    price: PriceOut | None = None  # issue 31: the breakdown of the seats still booked
    currency: str
    status: str
    hold_expires_at: datetime | None
    workflow_id: str
    created_at: datetime
    confirmed_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    # issue 35: the refund owed is being refused by the payment provider (retried until it
    # goes through; both cleared then)
    refund_failure: str | None = Field(
        default=None, description="the provider's code of the last refused refund, while owed"
    )
    refund_failing_since: datetime | None = Field(
        default=None, description="since when the refund owed has been refused (retried)"
    )
    # issue 29, bank transfer: the reference to quote (shown ``awaiting_transfer`` while the
    # seats are held), and money that arrived too late (shown ``refund_due``: finance pays back)
    payment_reference: str | None = None
    refund_due: bool = False

    @model_validator(mode="after")
    def _shown_status(self) -> BookingOut:
        self.status = shown_status(self.status, self.payment_reference, self.refund_due)
        return self

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
