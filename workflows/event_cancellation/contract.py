"""EventCancellationWorkflow's contract: input, result, and the activities it runs."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

WORKFLOW_NAME = "EventCancellationWorkflow"
MARK_EVENT_CANCELLED = "mark_event_cancelled"
LIST_EVENT_BOOKINGS = "list_event_bookings"
CANCEL_EVENT_BOOKINGS = "cancel_event_bookings"
NOTIFY_EVENT_CANCELLED = "notify_event_cancelled"
FINISH_EVENT_CANCELLATION = "finish_event_cancellation"

PAGE_SIZE = 100
MAX_PASSES = 6


def event_cancellation_workflow_id(event_id: uuid.UUID | str) -> str:
    return f"event-cancel-{event_id}"


class EventCancellationInput(BaseModel):
    event_id: uuid.UUID
    requested_by: str = "admin"
    page_size: int = PAGE_SIZE  # bookings cancelled per activity (tests use a small one)


class EventRef(BaseModel):
    event_id: uuid.UUID


class BookingPageInput(BaseModel):
    event_id: uuid.UUID
    after: uuid.UUID | None = None
    limit: int = PAGE_SIZE


class BookingOwner(BaseModel):
    booking_id: uuid.UUID
    user_id: uuid.UUID


class BookingPage(BaseModel):
    bookings: list[BookingOwner]


class CancelBookingsInput(BaseModel):
    event_id: uuid.UUID
    booking_ids: list[uuid.UUID]


class CancelBookingsResult(BaseModel):
    cancelled: list[uuid.UUID] = []  # the booking workflow accepted the cancel update
    already_ended: list[uuid.UUID] = []  # ended on its own meanwhile (expired, cancelled)
    failed: list[uuid.UUID] = []  # to retry on the next pass


class NotifyInput(BaseModel):
    event_id: uuid.UUID
    user_ids: list[uuid.UUID]


class EventCancellationResult(BaseModel):
    event_id: uuid.UUID
    bookings_cancelled: int
    buyers_notified: int
    passes: int
    stuck_booking_ids: list[uuid.UUID] = []
