"""Activities of the event cancellation workflow (booking task queue). Each is idempotent:
keyed by the event id (status update, notices' dedupe keys) or by the booking workflow's
update id (``event-cancel-<event_id>``), so a retry repeats nothing."""

from __future__ import annotations

import asyncio
import logging
import uuid

from sqlalchemy import text
from temporalio import activity

from evently import events
from evently.enums import BookingStatus
from evently.errors import EventlyError, WorkflowTimeout
from evently.infra.resources import Resources
from evently.inventory import availability
from evently.inventory.gate import Gate
from evently.organizations import organization_of_event
from workflows.booking import client as booking_client
from workflows.connection import TemporalClient
from workflows.event_cancellation.contract import (
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
)
from workflows.search_sync.client import request_index_write
from workflows.waitlist import client as waitlist_client

log = logging.getLogger("evently.activities.events")

CANCEL_CONCURRENCY = 20
HEARTBEAT_SECONDS = 10.0
CANCEL_ACTOR = "event-cancellation"
CANCEL_REASON = "event cancelled"


class EventActivities:
    def __init__(self, res: Resources, temporal: TemporalClient) -> None:
        self.res = res
        self.temporal = temporal
        self._autocommit = res.engine.execution_options(isolation_level="AUTOCOMMIT")

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
        return status in (BookingStatus.HELD, BookingStatus.CONFIRMED)

    async def _cancel_one(self, booking_id: uuid.UUID, event_id: uuid.UUID) -> str:
        try:
            # the booking client's update id is per actor: a retried activity (or a second
            # pass) gets the stored result instead of a second cancel
            result = await booking_client.cancel(
                self.temporal,
                booking_id,
                actor=CANCEL_ACTOR,
                reason=CANCEL_REASON,
                wait_seconds=self.res.settings.event_cancel_wait_seconds,
                organization_id=await organization_of_event(self.res.engine, event_id),
            )
        except WorkflowTimeout:
            log.warning("cancel update of booking %s timed out; retried next pass", booking_id)
            return "failed"
        except EventlyError as exc:  # refused, or the workflow has ended (e.g. its hold expired)
            log.warning("booking %s was not cancelled through its workflow: %s", booking_id, exc)
            return "failed" if await self._still_active(booking_id) else "already_ended"
        if result.booking_status.is_active:  # nothing could be done (e.g. no workflow holds it)
            return "failed"
        if result.detail is not None:  # it had ended on its own meanwhile: nothing to do
            return "already_ended"
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
                outcome = await self._cancel_one(booking_id, data.event_id)
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
        await self._publish_snapshot(data.event_id)
        organization_id = await organization_of_event(self.res.engine, data.event_id)
        await request_index_write(self.temporal, data.event_id, organization_id=organization_id)
        # the event's waitlist closes (entries end, kept seats return) even when no booking
        # release woke it during the cancellation
        await waitlist_client.poke(
            self.temporal,
            data.event_id,
            offer_seconds=self.res.settings.waitlist_offer_seconds,
            organization_id=organization_id,
        )
        return True
