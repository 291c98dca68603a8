"""Response shapes of the organizer analytics endpoint."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field, field_serializer

from evently.analytics import EventAnalytics


class Money(BaseModel):
    amount: Decimal
    currency: str

    @field_serializer("amount")
    def _as_string(self, v: Decimal) -> str:
        return f"{v:.2f}"


class Refunds(BaseModel):
    count: int
    amount: Money


class HoldStats(BaseModel):
    made: int = Field(description="bookings that ever held seats (all but rejected)")
    active: int = Field(description="holds still open now")
    confirmed: int = Field(description="holds that were paid (confirmed), even if refunded later")
    expired: int
    cancelled: int
    rejected: int = Field(description="reserve attempts refused (sold out, not on sale)")


class WaitlistStats(BaseModel):
    joined: int
    waiting: int
    offered: int = Field(description="entries that were offered seats")
    converted: int = Field(description="offers accepted")


class HourSalesOut(BaseModel):
    hour: datetime = Field(description="start of the UTC hour of confirmation")
    bookings: int
    seats: int
    revenue: Money


class TypeSalesOut(BaseModel):
    id: uuid.UUID
    name: str
    price: Money
    capacity: int | None
    held: int
    sold: int
    hidden: bool
    is_default: bool
    seats_confirmed: int
    revenue: Money = Field(description="its confirmed seats, net of discounts")


class CodeUsesOut(BaseModel):
    id: uuid.UUID
    code: str
    uses: int
    max_uses: int
    confirmed_bookings: int
    discount: Money = Field(description="given in confirmed bookings")


class ChannelSalesOut(BaseModel):
    channel: str = Field(
        description="online (the buyers' own bookings, by card or free), comp (guest list, "
        "0.00), box_office (paid at the door)"
    )
    bookings: int = Field(description="confirmed bookings")
    seats: int
    revenue: Money = Field(description="their amounts")


class EventAnalyticsOut(BaseModel):
    event_id: uuid.UUID
    name: str
    status: str
    capacity: int
    sold: int
    held: int
    available: int
    revenue: Money = Field(description="succeeded charges minus refunds")
    gross_sales: Money = Field(description="succeeded charges")
    refunds: Refunds
    holds: HoldStats
    conversion: float | None = Field(description="holds confirmed / holds made; null: no holds")
    waitlist: WaitlistStats
    sales_per_hour: list[HourSalesOut]
    ticket_types: list[TypeSalesOut] = []
    promo_codes: list[CodeUsesOut] = []
    by_channel: list[ChannelSalesOut] = Field(
        default=[], description="confirmed sales split by channel (issue 29)"
    )

    @classmethod
    def of(cls, a: EventAnalytics) -> EventAnalyticsOut:
        def money(v: Decimal) -> Money:
            return Money(amount=v, currency=a.currency)

        return cls(
            event_id=a.event_id,
            name=a.name,
            status=a.status,
            capacity=a.capacity,
            sold=a.sold,
            held=a.held,
            available=a.available,
            revenue=money(a.revenue),
            gross_sales=money(a.gross_sales),
            refunds=Refunds(count=a.refunds_count, amount=money(a.refunds_amount)),
            holds=HoldStats(**vars(a.holds)),
            conversion=a.conversion,
            waitlist=WaitlistStats(**vars(a.waitlist)),
            sales_per_hour=[
                HourSalesOut(
                    hour=h.hour, bookings=h.bookings, seats=h.seats, revenue=money(h.revenue)
                )
                for h in a.sales_per_hour
            ],
            ticket_types=[
                TypeSalesOut(
                    id=t.id,
                    name=t.name,
                    price=money(t.price),
                    capacity=t.capacity,
                    held=t.held,
                    sold=t.sold,
                    hidden=t.hidden,
                    is_default=t.is_default,
                    seats_confirmed=t.seats,
                    revenue=money(t.revenue),
                )
                for t in a.ticket_types
            ],
            promo_codes=[
                CodeUsesOut(
                    id=c.id,
                    code=c.code,
                    uses=c.uses,
                    max_uses=c.max_uses,
                    confirmed_bookings=c.confirmed,
                    discount=money(c.discount),
                )
                for c in a.promo_codes
            ],
            by_channel=[
                ChannelSalesOut(
                    channel=c.channel,
                    bookings=c.bookings,
                    seats=c.seats,
                    revenue=money(c.revenue),
                )
                for c in a.channels
            ],
        )
