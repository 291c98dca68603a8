"""Activities of the event cancellation workflow (booking task queue). Each is idempotent:
keyed by the event id (status update, notices' dedupe keys) or by the booking workflow's
update id (``event-cancel-<event_id>``), so a retry repeats nothing."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from evently import availability, events
from evently.inventory import Gate
from evently.resources import Resources
from workflows.booking_models import (
    UPDATE_CANCEL,
    CancelInput,
    CancelResult,
    booking_workflow_id,
)
from workflows.event_cancellation import (
    CANCEL_EVENT_BOOKINGS,
    FINISH_EVENT_CANCELLATION,
    LIST_EVENT_BOOKINGS,
    MARK_EVENT_CANCELLED,
    NOTIFY_EVENT_CANCELLED,
    BookingOwner,
    BookingPage,
    BookingPageInput,
    CancelBookingsInput,
    CancelBookingsResult,
    EventRef,
    NotifyInput,
    event_cancellation_workflow_id,
)

log = logging.getLogger("evently.activities.events")

CANCEL_CONCURRENCY = 20
CANCEL_TIMEOUT_SECONDS = 60.0
HEARTBEAT_SECONDS = 10.0
CANCEL_ACTOR = "event-cancellation"
CANCEL_REASON = "event cancelled"


class EventActivities:
    def __init__(self, res: Resources) -> None:
        self.res = res
        self._autocommit = res.engine.execution_options(isolation_level="AUTOCOMMIT")

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.mark_event_cancelled,
            self.list_event_bookings,
            self.cancel_event_bookings,
            self.notify_event_cancelled,
            self.finish_event_cancellation,
        ]

    async def _publish_snapshot(self, event_id: uuid.UUID) -> None:
        async with self._autocommit.connect() as conn:
            await availability.refresh(self.res.redis, conn, event_id)

    @activity.defn(name=MARK_EVENT_CANCELLED)
    async def mark_event_cancelled(self, data: EventRef) -> bool:
        """published → cancelled (no-op when already cancelled): sales stop with this commit."""
        async with self._autocommit.connect() as conn:
            cancelled = await events.mark_cancelled(conn, data.event_id)
        await Gate(self.res.redis).reset(data.event_id)
        await self._publish_snapshot(data.event_id)
        if not cancelled:
            log.warning(
                "event %s could not be marked cancelled (unknown or not published)", data.event_id
            )
        return cancelled

    @activity.defn(name=LIST_EVENT_BOOKINGS)
    async def list_event_bookings(self, data: BookingPageInput) -> BookingPage:
        async with self._autocommit.connect() as conn:
            refs = await events.active_bookings_page(
                conn, data.event_id, after=data.after, limit=data.limit
            )
        return BookingPage(
            bookings=[BookingOwner(booking_id=r.booking_id, user_id=r.user_id) for r in refs]
        )

    async def _still_active(self, booking_id: uuid.UUID) -> bool:
        async with self._autocommit.connect() as conn:
            status = await conn.scalar(
                text("SELECT status FROM bookings WHERE id = :id"), {"id": booking_id}
            )
        return status in ("held", "confirmed")

    async def _cancel_one(self, event_id: uuid.UUID, booking_id: uuid.UUID) -> str:
        handle = self.res.temporal.get_workflow_handle(booking_workflow_id(booking_id))
        try:
            await asyncio.wait_for(
                handle.execute_update(
                    UPDATE_CANCEL,
                    CancelInput(actor=CANCEL_ACTOR, reason=CANCEL_REASON),
                    # one update id per event cancellation: a retried activity gets the
                    # stored result instead of a second cancel
                    id=event_cancellation_workflow_id(event_id),
                    result_type=CancelResult,
                ),
                timeout=CANCEL_TIMEOUT_SECONDS,
            )
        except WorkflowUpdateFailedError as exc:
            log.warning("booking %s refused the cancel update: %s", booking_id, exc.cause)
            return "failed" if await self._still_active(booking_id) else "already_ended"
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            # the booking workflow has completed (e.g. its hold just expired) or never existed
            return "failed" if await self._still_active(booking_id) else "already_ended"
        except TimeoutError:
            log.warning("cancel update of booking %s timed out; retried next pass", booking_id)
            return "failed"
        return "cancelled"

    @activity.defn(name=CANCEL_EVENT_BOOKINGS)
    async def cancel_event_bookings(self, data: CancelBookingsInput) -> CancelBookingsResult:
        """Send every booking its ``cancel`` update, a few at a time; the booking workflow
        refunds a confirmed booking and releases the seats itself."""
        gate = asyncio.Semaphore(CANCEL_CONCURRENCY)
        result = CancelBookingsResult()
        done = 0

        async def one(booking_id: uuid.UUID) -> None:
            nonlocal done
            async with gate:
                outcome = await self._cancel_one(data.event_id, booking_id)
            getattr(result, outcome).append(booking_id)
            done += 1
            activity.heartbeat(done)

        async def keep_alive() -> None:  # a slow refund must not look like a dead worker
            while True:
                await asyncio.sleep(HEARTBEAT_SECONDS)
                activity.heartbeat(done)

        beat = asyncio.create_task(keep_alive())
        try:
            await asyncio.gather(*(one(b) for b in data.booking_ids))
        finally:
            beat.cancel()
        return result

    @activity.defn(name=NOTIFY_EVENT_CANCELLED)
    async def notify_event_cancelled(self, data: NotifyInput) -> int:
        async with self._autocommit.connect() as conn:
            return await events.notify_event_cancelled(conn, data.event_id, data.user_ids)

    @activity.defn(name=FINISH_EVENT_CANCELLATION)
    async def finish_event_cancellation(self, data: EventRef) -> bool:
        from evently.search_sync import request_index_write
        from evently.waitlist import poke

        await self._publish_snapshot(data.event_id)
        await request_index_write(self.res.temporal, data.event_id)
        # the event's waitlist closes (entries end, kept seats return) even when no booking
        # release woke it during the cancellation
        await poke(self.res.temporal, self.res.settings, data.event_id)
        return True
