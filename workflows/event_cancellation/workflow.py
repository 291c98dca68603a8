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
        NOTIFY_EVENT_CANCELLED,
        WORKFLOW_NAME,
        BookingPage,
        BookingPageInput,
        CancelBookingsInput,
        CancelBookingsResult,
        CancellationProgress,
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
        self._p = CancellationProgress()

    @workflow.query(name="progress")
    def progress(self) -> dict[str, int]:
        return {"bookings_cancelled": self._p.cancelled, "buyers_notified": self._p.notified}

    @workflow.run
    async def run(self, data: EventCancellationInput) -> EventCancellationResult:
        event = EventRef(event_id=data.event_id)
        if data.progress is None:
            await _db(MARK_EVENT_CANCELLED, event, bool)
        else:  # a continued run: sales stopped long ago
            self._p = data.progress
        p = self._p
        stuck: list[uuid.UUID] = []
        while True:
            if not p.in_pass:
                if p.passes >= data.max_passes:
                    stuck = p.failed  # given up on these: reported, for support
                    break
                p.passes += 1
                p.in_pass, p.after, p.seen, p.failed = True, None, 0, []
            more = await self._page(data, p)
            if more:
                self._continue_as_new_if_long(data)
                continue
            p.in_pass = False  # the pass is over
            if p.seen == 0:
                break  # nothing held or confirmed is left
            stuck = p.failed
            if stuck or p.passes >= 2:  # give stragglers a moment (a busy or restarting worker)
                await workflow.sleep(timedelta(seconds=2 * p.passes))
            self._continue_as_new_if_long(data)
        await _db(FINISH_EVENT_CANCELLATION, event, bool)
        workflow.set_current_details(
            f"done: {p.cancelled} bookings cancelled, {p.notified} buyers told"
        )
        return EventCancellationResult(
            event_id=data.event_id,
            bookings_cancelled=p.cancelled,
            buyers_notified=p.notified,
            passes=p.passes,
            stuck_booking_ids=stuck,
        )

    async def _page(self, data: EventCancellationInput, p: CancellationProgress) -> bool:
        """Cancel the next page of the current pass; True while pages remain."""
        page: BookingPage = await _db(
            LIST_EVENT_BOOKINGS,
            BookingPageInput(event_id=data.event_id, after=p.after, limit=data.page_size),
            BookingPage,
        )
        if not page.bookings:
            return False
        p.seen += len(page.bookings)
        result: CancelBookingsResult = await workflow.execute_activity(
            CANCEL_EVENT_BOOKINGS,
            CancelBookingsInput(
                event_id=data.event_id, booking_ids=[b.booking_id for b in page.bookings]
            ),
            result_type=CancelBookingsResult,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(seconds=60),
            retry_policy=common.SLOW_RETRY,
        )
        p.cancelled += len(result.cancelled)
        p.failed.extend(result.failed)
        not_failed = set(result.cancelled) | set(result.already_ended)
        users = sorted({b.user_id for b in page.bookings if b.booking_id in not_failed})
        if users:
            p.notified += await _db(
                NOTIFY_EVENT_CANCELLED,
                NotifyInput(event_id=data.event_id, user_ids=users),
                int,
            )
        workflow.set_current_details(
            f"pass {p.passes}: {p.seen} bookings so far; {p.cancelled} cancelled in all"
        )
        if len(page.bookings) < data.page_size:
            return False
        p.after = page.bookings[-1].booking_id
        return True

    def _continue_as_new_if_long(self, data: EventCancellationInput) -> None:
        info = workflow.info()
        if info.is_continue_as_new_suggested() or (
            info.get_current_history_length() > data.max_history
        ):
            workflow.continue_as_new(data.model_copy(update={"progress": self._p}))
