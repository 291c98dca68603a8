"""Public shapes of venues, events and availability (JSON out; money as decimal strings)."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    TypeAdapter,
    computed_field,
    field_serializer,
    model_validator,
)

from evently.bank_transfer import BankTransferSetting
from evently.db.models import Event, Venue
from evently.inventory.availability import Availability, TypeAvailability
from evently.refund_policy import RefundPolicy, describe

MIN_YEAR, MAX_YEAR = 2000, 2999


def storable(value: str) -> str:
    """Postgres text refuses NUL and lone surrogates: refuse them here (422, not 500)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text") from exc
    return value


StorableText = Annotated[str, AfterValidator(storable)]


def _reasonable_year(value: datetime | date) -> datetime | date:
    # also keeps hostile dates (year 1 at +14:00) away from a UTC conversion that overflows
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"must be between the years {MIN_YEAR} and {MAX_YEAR}")
    return value


def reasonable_datetime(value: datetime) -> datetime:
    """An instant between the years MIN_YEAR and MAX_YEAR."""
    _reasonable_year(value)
    return value


_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INSTANT: TypeAdapter[datetime] = TypeAdapter(datetime)


def _day_or_instant(value: object) -> datetime | date:
    """``2026-12-01`` is a whole day; anything else must be an ISO datetime."""
    if isinstance(value, str) and _DAY.match(value.strip()):
        try:
            return _reasonable_year(date.fromisoformat(value.strip()))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a valid date") from exc
    return _reasonable_year(_INSTANT.validate_python(value))


ReasonableDate = Annotated[
    datetime | date, PlainValidator(_day_or_instant, json_schema_input_type=str)
]


class VenueOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    address: str
    city: str
    capacity: int
    created_at: datetime

    @classmethod
    def of(cls, venue: Venue) -> VenueOut:
        return cls.model_validate(venue)


# ---- issue 31: an event's fees --------------------------------------------------------------

_FeeMoney = Annotated[
    Decimal,
    Field(ge=0, le=1_000_000, max_digits=12, decimal_places=2, allow_inf_nan=False),
    PlainSerializer(lambda d: f"{d:.2f}", return_type=str),
]
_FeePercent = Annotated[
    Decimal,
    Field(ge=0, le=100, max_digits=5, decimal_places=2, allow_inf_nan=False),
    PlainSerializer(lambda d: f"{d:.2f}", return_type=str),
]


class Fee(BaseModel):
    """A fee of the event: a fixed ``amount`` (per ticket or per booking) or a ``percent`` of
    the tickets' price after the discount; passed on to the buyer (in the total) or absorbed by
    the organizer; taxed by one of the organization's tax rules or not (docs/money.md)."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=100), AfterValidator(storable)]
    amount: _FeeMoney | None = None
    percent: _FeePercent | None = None
    per: Literal["ticket", "booking"] = "ticket"
    passed_on: bool = True
    tax_rule_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _amount_or_percent(self) -> Fee:
        if (self.amount is None) == (self.percent is None):
            raise ValueError("give exactly one of amount and percent")
        return self


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    description: str
    venue_id: uuid.UUID
    event_type: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    available: int
    held: int
    sold: int
    price: Decimal
    currency: str
    status: str
    queue: str  # the waiting room: on, off or auto
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    cancelled_at: datetime | None
    venue: VenueOut
    refund_policy: RefundPolicy
    bank_transfer_days: int | None = Field(default=None, exclude=True)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def bank_transfer(self) -> BankTransferSetting:
        """Whether buyers may pay by bank transfer, and within how many days (issue 29)."""
        return BankTransferSetting.of_days(self.bank_transfer_days)

    fees: list[Fee] | None = None  # issue 31: None when the event has none
    seating_plan_id: uuid.UUID | None = Field(
        None, description="issue 34: the seating plan of a seated event (null: general admission)"
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def refund_summary(self) -> str:
        """The policy in one sentence for buyers, e.g. "Refunds: until 48 h before the start"."""
        return describe(self.refund_policy)

    @field_serializer("price")
    def _price(self, price: Decimal) -> str:
        return str(price.quantize(Decimal("0.01")))

    @classmethod
    def of(cls, event: Event) -> EventOut:
        return cls.model_validate(event)


class TicketTypeAvailabilityOut(BaseModel):
    """A visible ticket type with its live availability (its own cap's room, at most the
    event's seats on sale) and whether it is on sale now (its sales window)."""

    id: uuid.UUID
    name: str
    description: str
    price: str
    currency: str
    available: int
    on_sale: bool
    sales_start: datetime | None
    sales_end: datetime | None
    max_per_booking: int | None
    is_default: bool

    @classmethod
    def of(cls, t: TypeAvailability, now: datetime) -> TicketTypeAvailabilityOut:
        return cls(**t.model_dump(), on_sale=t.on_sale(now))


class PublicQuestionOut(BaseModel):
    """A question the buyer answers (issue 32: PUT /bookings/{booking_id}/attendees)."""

    id: uuid.UUID
    label: str
    kind: str
    options: list[str]
    required: bool
    per: str
    ticket_type_ids: list[uuid.UUID] | None


class EventDetailOut(EventOut):
    """One event with its visible ticket types (hidden ones are unlocked by a promo code)."""

    ticket_types: list[TicketTypeAvailabilityOut]
    questions: list[PublicQuestionOut] = []


class EventPage(BaseModel):
    items: list[EventOut]
    total: int
    page: int
    limit: int


class AvailabilityOut(BaseModel):
    event_id: uuid.UUID
    capacity: int
    available: int
    held: int
    sold: int
    waitlist_length: int
    status: str
    ticket_types: list[TicketTypeAvailabilityOut] = []

    @classmethod
    def of(
        cls, snapshot: Availability, types: list[TicketTypeAvailabilityOut] | None = None
    ) -> AvailabilityOut:
        return cls(
            ticket_types=types or [],
            event_id=snapshot.event_id,
            capacity=snapshot.capacity,
            available=snapshot.available,
            held=snapshot.held,
            sold=snapshot.sold,
            waitlist_length=snapshot.waitlist_length or 0,
            status=snapshot.status,
        )
