"""Cancelling a published event: stop sales at once, cancel every booking, tell the buyers.

One workflow per event (id ``event-cancel-<event_id>``, booking task queue), started by
``DELETE /api/v1/admin/events/{id}``:

1. ``mark_event_cancelled``: status → cancelled in Postgres (the reserve statement only takes
   seats of published events, so sales stop with that commit) and the availability snapshot.
2. page through the held and confirmed bookings (keyset by id) and, per page, send each
   booking workflow its ``cancel`` update (it refunds confirmed bookings and releases the
   seats itself), then notify the page's buyers (one notice per buyer, deduplicated).
3. repeat the pass until no held or confirmed booking is left (a booking that could not be
   cancelled on a pass is retried on the next, a few times, then reported as stuck).
4. ``finish_event_cancellation``: refresh the availability snapshot and the search index.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from workflows import common
    from workflows.event_cancellation.contract import (
        CANCEL_EVENT_BOOKINGS,
        FINISH_EVENT_CANCELLATION,
        LIST_EVENT_BOOKINGS,
        MARK_EVENT_CANCELLED,
        MAX_PASSES,
        NOTIFY_EVENT_CANCELLED,
        WORKFLOW_NAME,
        BookingPage,
        BookingPageInput,
        CancelBookingsInput,
        CancelBookingsResult,
        EventCancellationInput,
        EventCancellationResult,
        EventRef,
        NotifyInput,
    )

_T = TypeVar("_T")


async def _db(name: str, arg: BaseModel, result_type: type[_T]) -> _T:
    """A short Postgres activity, retried until it succeeds."""
    result: _T = await workflow.execute_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=common.SLOW_RETRY,
    )
    return result


@workflow.defn(name=WORKFLOW_NAME)
class EventCancellationWorkflow:
    def __init__(self) -> None:
        self._cancelled = 0
        self._notified = 0

    @workflow.query(name="progress")
    def progress(self) -> dict[str, int]:
        return {"bookings_cancelled": self._cancelled, "buyers_notified": self._notified}

    @workflow.run
    async def run(self, data: EventCancellationInput) -> EventCancellationResult:
        event = EventRef(event_id=data.event_id)
        await _db(MARK_EVENT_CANCELLED, event, bool)
        passes = 0
        stuck: list[uuid.UUID] = []
        while passes < MAX_PASSES:
            passes += 1
            seen, stuck = await self._one_pass(data.event_id, data.page_size)
            if seen == 0:
                stuck = []
                break
            if stuck or passes >= 2:  # give stragglers a moment (a busy or restarting worker)
                await workflow.sleep(timedelta(seconds=2 * passes))
        await _db(FINISH_EVENT_CANCELLATION, event, bool)
        return EventCancellationResult(
            event_id=data.event_id,
            bookings_cancelled=self._cancelled,
            buyers_notified=self._notified,
            passes=passes,
            stuck_booking_ids=stuck,
        )

    async def _one_pass(self, event_id: uuid.UUID, page_size: int) -> tuple[int, list[uuid.UUID]]:
        """Cancel every held/confirmed booking once. Returns (bookings seen, failed ids)."""
        after: uuid.UUID | None = None
        seen = 0
        failed: list[uuid.UUID] = []
        while True:
            page: BookingPage = await _db(
                LIST_EVENT_BOOKINGS,
                BookingPageInput(event_id=event_id, after=after, limit=page_size),
                BookingPage,
            )
            if not page.bookings:
                break
            seen += len(page.bookings)
            result: CancelBookingsResult = await workflow.execute_activity(
                CANCEL_EVENT_BOOKINGS,
                CancelBookingsInput(
                    event_id=event_id, booking_ids=[b.booking_id for b in page.bookings]
                ),
                result_type=CancelBookingsResult,
                start_to_close_timeout=timedelta(minutes=10),
                heartbeat_timeout=timedelta(seconds=60),
                retry_policy=common.SLOW_RETRY,
            )
            self._cancelled += len(result.cancelled)
            failed.extend(result.failed)
            not_failed = set(result.cancelled) | set(result.already_ended)
            users = sorted({b.user_id for b in page.bookings if b.booking_id in not_failed})
            if users:
                self._notified += await _db(
                    NOTIFY_EVENT_CANCELLED, NotifyInput(event_id=event_id, user_ids=users), int
                )
            if len(page.bookings) < page_size:
                break
            after = page.bookings[-1].booking_id
        return seen, failed
