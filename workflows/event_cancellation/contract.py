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
MAX_HISTORY = 10_000
MAX_PASSES = 6


def event_cancellation_workflow_id(event_id: uuid.UUID | str) -> str:
    return f"event-cancel-{event_id}"


class CancellationProgress(BaseModel):
    """Where a cancellation is, carried into the next run when it continues as new."""

    passes: int = 0  # passes started (a pass pages through every held/confirmed booking)
    in_pass: bool = False
    after: uuid.UUID | None = None  # the current pass's cursor (keyset by booking id)
    seen: int = 0  # bookings seen in the current pass
    failed: list[uuid.UUID] = []  # bookings the current pass could not cancel (retried next)
    cancelled: int = 0
    notified: int = 0


class EventCancellationInput(BaseModel):
    event_id: uuid.UUID
    requested_by: str = "admin"
    page_size: int = PAGE_SIZE  # bookings cancelled per activity (tests use a small one)
    # continue as new beyond this many history events (100,000 bookings take ~6 events per
    # page of 100: a run stays far below Temporal's limits); tests use a small one
    max_history: int = MAX_HISTORY
    progress: CancellationProgress | None = None  # set by continue-as-new
    # passes over the bookings before the ones left are reported stuck (tests use fewer)
    max_passes: int = MAX_PASSES


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
