"""Ticket types and promo codes: the organizer's bodies and answers (money as decimal
strings)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from api.bookings.schemas import Money
from api.events.schemas import storable
from api.organizer.schemas import Currency, Description, Price, When

TypeName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]


class TicketTypeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[TypeName, AfterValidator(storable)]
    description: Description = ""
    price: Price
    currency: Currency | None = Field(default=None, description="the event's (the default)")
    capacity: int | None = Field(
        default=None, ge=1, le=1_000_000, description="a cap of its own within the event's"
    )
    sales_start: When | None = None
    sales_end: When | None = None
    hidden: bool = Field(default=False, description="sold only with a code that unlocks it")
    max_per_booking: int | None = Field(default=None, ge=1, le=1000)
    tax_rule_id: uuid.UUID | None = Field(
        default=None, description="one of the organization's tax rules, or none (issue 31)"
    )


class TicketTypePatch(BaseModel):
    """Only the fields sent change; ``null`` clears an optional one (cap, window, maximum)."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[TypeName, AfterValidator(storable)] | None = None
    description: Description | None = None
    price: Price | None = None
    currency: Currency | None = None
    capacity: int | None = Field(default=None, ge=1, le=1_000_000)
    sales_start: When | None = None
    sales_end: When | None = None
    hidden: bool | None = None
    max_per_booking: int | None = Field(default=None, ge=1, le=1000)
    tax_rule_id: uuid.UUID | None = Field(
        default=None, description="one of the organization's tax rules, or none (issue 31)"
    )


class TicketTypeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    event_id: uuid.UUID
    name: str
    description: str
    price: Money
    currency: str
    capacity: int | None
    held: int
    sold: int
    sales_start: datetime | None
    sales_end: datetime | None
    hidden: bool
    max_per_booking: int | None
    is_default: bool
    created_at: datetime
    tax_rule_id: uuid.UUID | None = None


class TicketTypeList(BaseModel):
    items: list[TicketTypeOut]


class PromoCodeCreate(BaseModel):
    """Exactly one of ``percent_off`` and ``amount_off`` (per ticket, at most its price)."""

    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    percent_off: Decimal | None = Field(
        default=None, gt=0, le=100, max_digits=5, decimal_places=2, allow_inf_nan=False
    )
    amount_off: Annotated[Price, Field(gt=0)] | None = None
    max_uses: int = Field(ge=1, le=1_000_000)
    valid_from: When | None = None
    valid_until: When | None = None
    ticket_type_ids: list[uuid.UUID] | None = Field(
        default=None, min_length=1, max_length=100, description="default: every type"
    )
    unlocks_hidden: bool = False


class PromoCodeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    event_id: uuid.UUID
    code: str
    percent_off: Decimal | None
    amount_off: Money | None
    max_uses: int
    uses: int
    valid_from: datetime | None
    valid_until: datetime | None
    ticket_type_ids: list[uuid.UUID] | None
    unlocks_hidden: bool
    created_at: datetime


class PromoCodeList(BaseModel):
    items: list[PromoCodeOut]
