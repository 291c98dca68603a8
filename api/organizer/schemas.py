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
    PlainSerializer,
    StringConstraints,
    field_serializer,
    model_validator,
)

from api.bookings.schemas import PriceOut
from api.events.schemas import Fee, VenueOut, reasonable_datetime, storable
from evently.attendees import BookingRow
from evently.bank_transfer import BankTransferSetting
from evently.enums import BookingStatus, EventStatus, QueueMode, ShownBookingStatus
from evently.refund_policy import RefundPolicy, RefundUntil

_BANK_TRANSFER = (
    'Payment by bank transfer (issue 29): `{"enabled": true, "window_days": 3}` lets buyers '
    "reserve with `payment_method: bank_transfer`; their seats are held for `window_days` "
    "(1-30) while the money travels. Needs the organization's bank account "
    "(`PUT /organizations/{org_id}/bank-account`)."
)

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

_FEES = (
    'Issue 31: the event\'s fees, e.g. `[{"name": "Service fee", "amount": "1.50", '
    '"per": "ticket", "passed_on": true, "tax_rule_id": null}]` (`[]`: none). They apply to '
    "bookings held from now on; a `tax_rule_id` must be one of the organization's rules (422 "
    "`tax_rule_invalid`)."
)

_SEATING_PLAN = (
    "Issue 34: a seated event names one of the organization's seating plans (POST "
    "/organizations/{org_id}/venues/{venue_id}/seating-plans); its seats become the event's and "
    "its capacity the plan's seats (as PUT /organizations/{org_id}/events/{event_id}/"
    "seating-plan). Drafts only (409 `seats_not_changeable`); an unknown plan: 404 "
    "`seating_plan_not_found`."
)
#: fields a PATCH may set to null
_NULLABLE_CHANGES = frozenset({"seating_plan_id"})

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
    bank_transfer: BankTransferSetting = Field(
        default_factory=BankTransferSetting, description=_BANK_TRANSFER
    )
    fees: list[Fee] | None = Field(None, max_length=10, description=_FEES)
    seating_plan_id: uuid.UUID | None = Field(None, description=_SEATING_PLAN)


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
    bank_transfer: BankTransferSetting | None = Field(None, description=_BANK_TRANSFER)
    fees: list[Fee] | None = Field(None, max_length=10, description=_FEES)
    seating_plan_id: uuid.UUID | None = Field(
        None, description=_SEATING_PLAN + " `null` removes the plan (the capacity stays)."
    )

    @model_validator(mode="after")
    def _no_nulls_and_not_empty(self) -> EventPatch:
        nulls = sorted(
            k
            for k in self.model_fields_set
            if getattr(self, k) is None and k not in _NULLABLE_CHANGES
        )
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null (leave the field out instead)")
        if not self.model_fields_set:
            raise ValueError("send at least one field to change")
        return self

    def changes(self) -> dict[str, Any]:
        """The columns to write (``status`` and ``seating_plan_id`` have their own paths)."""
        out = {
            k: getattr(self, k)
            for k in self.model_fields_set
            if k not in ("status", "seating_plan_id")
        }
        if "fees" in out:
            out["fees"] = fees_json(self.fees)
        return out


def fees_json(fees: list[Fee] | None) -> list[dict[str, Any]] | None:
    """The fees as stored on the event (JSON; None when there are none)."""
    return [f.model_dump(mode="json") for f in fees] if fees else None


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
    status: ShownBookingStatus
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
    payment_reference: str | None = Field(
        default=None, description="a bank transfer's reference (issue 29)"
    )

    @classmethod
    def of(cls, r: BookingRow) -> OrganizerBookingOut:
        return cls(
            id=r.id,
            status=ShownBookingStatus(r.status),
            payment_reference=r.payment_reference,
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


class TicketsResent(BaseModel):
    """The confirmation mail with the booking's tickets, queued again in the mail outbox."""

    booking_id: uuid.UUID
    notification_id: uuid.UUID = Field(description="the queued notice (GET the order: emails)")
    queued: bool = Field(description="false: this Idempotency-Key had queued it already")


class MarkPaidOut(BaseModel):
    """The booking after finance marked its bank transfer arrived: ``confirmed`` (tickets
    mailed), ``refund_due`` (the money came after its seats were gone: pay it back), or, in a
    202, still ``awaiting_transfer``/``expired`` while its workflow settles it."""

    booking_id: uuid.UUID
    status: ShownBookingStatus
    payment_reference: str


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
    price: PriceOut  # issue 31: the breakdown (a comp's is 0.00, without fees)


class EventClone(BaseModel):
    """When the copy takes place; everything else comes from the event cloned (issue 30)."""

    model_config = _STRICT

    starts_at: When
    ends_at: When


# ---- money: tax rules (issue 31) ------------------------------------------------------------

Rate = Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=2)]


class TaxRuleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=100)]
    rate: Rate = Field(description="percent, e.g. 19.00")
    price_includes_tax: bool = True


class TaxRulePatch(BaseModel):
    """Applies to bookings held after the change; earlier ones keep the rate they froze."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    rate: Rate | None = None
    price_includes_tax: bool | None = None


class TaxRuleOut(BaseModel):
    id: uuid.UUID
    name: str
    rate: Annotated[Decimal, PlainSerializer(lambda d: f"{d:.2f}", return_type=str)]
    price_includes_tax: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, rule: Any) -> TaxRuleOut:
        return cls(
            id=rule.id,
            name=rule.name,
            rate=rule.rate,
            price_includes_tax=rule.price_includes_tax,
            created_at=rule.created_at,
            updated_at=rule.updated_at,
        )


class TaxRuleList(BaseModel):
    items: list[TaxRuleOut]
