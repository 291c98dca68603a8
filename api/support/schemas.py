"""Support API shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from evently.db.models import Booking


class SupportBooking(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    user_id: uuid.UUID
    quantity: int
    amount: Decimal
    currency: str
    status: str
    hold_expires_at: datetime | None
    created_at: datetime
    confirmed_at: datetime | None
    ended_at: datetime | None
    ended_by: str | None = Field(description="who ended it: user:<id>, support:<id>, ...")
    end_reason: str | None
    stuck: bool = Field(description="still held although the hold window is over")
    refund_failure: str | None = Field(
        default=None, description="the provider refuses the refund owed: its last code"
    )
    refund_failing_since: datetime | None = Field(
        default=None, description="since when the refund owed has been refused (retried)"
    )
    refund_refusals: int = Field(default=0, description="refunds the provider refused, ever")
    workflow_id: str
    temporal_ui_url: str | None = Field(description="the workflow in the Temporal UI")

    @field_serializer("amount")
    def _money(self, v: Decimal) -> str:
        return f"{v:.2f}"

    @classmethod
    def of(cls, b: Booking, *, now: datetime, ui_url: str | None) -> SupportBooking:
        return cls(
            id=b.id,
            event_id=b.event_id,
            user_id=b.user_id,
            quantity=b.quantity,
            amount=b.amount,
            currency=b.currency,
            status=b.status,
            hold_expires_at=b.hold_expires_at,
            created_at=b.created_at,
            confirmed_at=b.confirmed_at,
            ended_at=b.ended_at,
            ended_by=b.ended_by,
            end_reason=b.end_reason,
            stuck=b.status == "held" and b.hold_expires_at is not None and b.hold_expires_at < now,
            refund_failure=b.refund_failure,
            refund_failing_since=b.refund_failing_since,
            refund_refusals=b.refund_refusals or 0,
            workflow_id=b.workflow_id,
            temporal_ui_url=ui_url,
        )


class SupportBookingPage(BaseModel):
    items: list[SupportBooking]
    total: int
    page: int
    limit: int


class ReleaseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        "released by support", min_length=1, max_length=200, description="recorded on the booking"
    )


class ReleaseResponse(BaseModel):
    booking_id: uuid.UUID
    status: str = Field(description="the booking's status once the workflow has ended it")
    released: bool = Field(description="false when the hold had already ended another way")
    released_by: str
    workflow_id: str
    temporal_ui_url: str | None


class HistoryEventOut(BaseModel):
    event_id: int
    time: datetime
    type: str
    details: dict[str, Any]


class BookingHistory(BaseModel):
    booking_id: uuid.UUID
    workflow_id: str
    temporal_ui_url: str | None
    run_status: str | None = Field(description="RUNNING, COMPLETED, FAILED, ... in Temporal")
    booking_status: str = Field(description="status in Postgres")
    state: dict[str, Any] | None = Field(description="the workflow's own state and log, if up")
    summary: str | None = Field(
        default=None, description="the workflow's one-line summary (set when it started)"
    )
    current_details: str | None = Field(
        default=None,
        description="what the workflow says it is doing now, e.g. 'held until ...; payment "
        "attempt 2 declined' (the Temporal UI shows the same)",
    )
    events: list[HistoryEventOut]
    truncated: bool
