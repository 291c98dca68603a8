"""What an organization's members send and read about their venues, events and sales (the
platform admin's /admin routes take the same bodies)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_serializer,
    model_validator,
)

from api.events.schemas import VenueOut, reasonable_datetime, storable
from evently.attendees import BookingRow
from evently.enums import BookingStatus, EventStatus, QueueMode
from evently.refund_policy import RefundPolicy, RefundUntil

MAX_CAPACITY = 10_000_000


def _limits(max_length: int, min_length: int = 1) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length)


Name = Annotated[str, _limits(200), AfterValidator(storable)]
Address = Annotated[str, _limits(400), AfterValidator(storable)]
City = Annotated[str, _limits(120), AfterValidator(storable)]
Description = Annotated[str, _limits(10_000, min_length=0), AfterValidator(storable)]
EventType = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=50, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _-]*$"
    ),
]
Capacity = Annotated[int, Field(strict=True, gt=0, le=MAX_CAPACITY)]
Price = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2, allow_inf_nan=False)]
Currency = Annotated[
    str, StringConstraints(pattern=r"^[A-Z]{3}$"), Field(description="ISO 4217, e.g. EUR")
]
When = Annotated[AwareDatetime, AfterValidator(reasonable_datetime)]

_STRICT = ConfigDict(extra="forbid")

_REFUND_POLICY = (
    'Who may refund: `{"mode": "until", "hours_before_start": 48}` (buyers until 48 h before '
    'the start; the default is 0 h), `{"mode": "organizer_only"}` (owners and finance only) or '
    '`{"mode": "none"}` (nobody through Evently; cancelling the event still refunds everyone). '
    "A checked-in ticket is never refunded."
)


class VenueCreate(BaseModel):
    model_config = _STRICT

    name: Name
    address: Address
    city: City
    capacity: Capacity


class EventCreate(BaseModel):
    model_config = _STRICT

    name: Name
    description: Description = ""
    venue_id: uuid.UUID
    event_type: EventType
    starts_at: When
    ends_at: When
    capacity: Capacity
    price: Price = Field(description='decimal, as a string or a number: "25.00"')
    currency: Currency
    refund_policy: RefundPolicy = Field(
        default_factory=lambda: RefundUntil(mode="until"),
        description=_REFUND_POLICY,
    )


class EventPatch(BaseModel):
    """Any subset of the event's fields; ``status`` moves it along its life cycle."""

    model_config = _STRICT

    name: Name | None = None
    description: Description | None = None
    venue_id: uuid.UUID | None = None
    event_type: EventType | None = None
    starts_at: When | None = None
    ends_at: When | None = None
    capacity: Capacity | None = None
    price: Price | None = None
    currency: Currency | None = None
    status: EventStatus | None = None
    queue: QueueMode | None = Field(
        None,
        description="The on-sale's waiting room: `on`, `off`, or `auto` (queue only while the "
        "reserve path is saturated).",
    )
    refund_policy: RefundPolicy | None = Field(None, description=_REFUND_POLICY)

    @model_validator(mode="after")
    def _no_nulls_and_not_empty(self) -> EventPatch:
        nulls = sorted(k for k in self.model_fields_set if getattr(self, k) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null (leave the field out instead)")
        if not self.model_fields_set:
            raise ValueError("send at least one field to change")
        return self

    def changes(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.model_fields_set if k != "status"}


class CancellationAccepted(BaseModel):
    event_id: uuid.UUID
    status: Literal["cancelled"] = "cancelled"
    workflow_id: str
    detail: str = "Held and confirmed bookings are being cancelled and refunded."


class VenuePage(BaseModel):
    items: list[VenueOut]
    total: int
    page: int
    limit: int


class Buyer(BaseModel):
    id: uuid.UUID
    email: str
    name: str


class _Money(BaseModel):
    amount: Decimal
    currency: str

    @field_serializer("amount")
    def _amount(self, amount: Decimal) -> str:
        return f"{amount:.2f}"


class OrganizerBookingOut(_Money):
    id: uuid.UUID
    status: BookingStatus
    quantity: int
    buyer: Buyer
    created_at: datetime
    confirmed_at: datetime | None
    hold_expires_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    channel: str = Field(
        default="online", description="online (card or free), comp, box_office (issue 29)"
    )

    @classmethod
    def of(cls, r: BookingRow) -> OrganizerBookingOut:
        return cls(
            id=r.id,
            status=BookingStatus(r.status),
            quantity=r.quantity,
            amount=r.amount,
            currency=r.currency,
            buyer=Buyer(id=r.user_id, email=r.email, name=r.full_name),
            created_at=r.created_at,
            confirmed_at=r.confirmed_at,
            hold_expires_at=r.hold_expires_at,
            ended_at=r.ended_at,
            end_reason=r.end_reason,
            channel=r.channel,
        )


class OrganizerBookingPage(BaseModel):
    items: list[OrganizerBookingOut]
    total: int
    page: int
    limit: int


class AttendeeOut(_Money):
    booking_id: uuid.UUID
    buyer: Buyer
    quantity: int
    confirmed_at: datetime | None

    @classmethod
    def of(cls, r: BookingRow) -> AttendeeOut:
        return cls(
            booking_id=r.id,
            buyer=Buyer(id=r.user_id, email=r.email, name=r.full_name),
            quantity=r.quantity,
            amount=r.amount,
            currency=r.currency,
            confirmed_at=r.confirmed_at,
        )


class AttendeePage(BaseModel):
    items: list[AttendeeOut]
    total: int
    page: int
    limit: int


class RefundOut(BaseModel):
    booking_id: uuid.UUID
    status: BookingStatus
    refunded: bool


# ---- issue 29: organizer orders (comp, box office) -------------------------------------------


class OrderLineIn(BaseModel):
    model_config = _STRICT
    ticket_type_id: uuid.UUID
    quantity: int = Field(ge=1, le=1000)


class OrderBuyerIn(BaseModel):
    model_config = _STRICT
    email: Annotated[str, _limits(320), AfterValidator(storable)]
    name: Annotated[str, _limits(200, min_length=0), AfterValidator(storable)] = ""


class OrderCreate(BaseModel):
    """Either ``quantity`` (seats of the default type) or ``lines`` (one per ticket type), the
    buyer the tickets go to (an account is made for a new email, with no usable password),
    how it is paid and a note for the organization's records."""

    model_config = _STRICT
    quantity: int | None = Field(
        default=None, ge=1, le=1000, description="at most EVENTLY_MAX_TICKETS_PER_BOOKING"
    )
    lines: list[OrderLineIn] | None = Field(default=None, min_length=1, max_length=20)
    buyer: OrderBuyerIn
    payment: Literal["comp", "box_office"] = Field(
        description="`comp`: a guest-list ticket, 0.00; `box_office`: the full price, paid "
        "at the door (recorded as paid)"
    )
    note: Annotated[str, _limits(500, min_length=0), AfterValidator(storable)] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> OrderCreate:
        if (self.quantity is None) == (self.lines is None):
            raise ValueError("give either quantity or lines")
        return self

    @property
    def total(self) -> int:
        if self.lines is None:
            return self.quantity or 0
        return sum(x.quantity for x in self.lines)


class OrderOut(_Money):
    """The confirmed booking of an organizer's order (tickets issued and emailed)."""

    booking_id: uuid.UUID
    event_id: uuid.UUID
    status: BookingStatus
    quantity: int
    channel: Literal["comp", "box_office"]
    payment: Literal["comp", "box_office"]
    note: str | None
    buyer: Buyer
    buyer_account_created: bool
    workflow_id: str


class EventClone(BaseModel):
    """When the copy takes place; everything else comes from the event cloned (issue 30)."""

    model_config = _STRICT

    starts_at: When
    ends_at: When
