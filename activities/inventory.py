"""Seat changes of a booking: local activities on the booking task queue (the reserve path costs
no extra Temporal round trip), each one statement of evently/inventory/seats.py keyed by the
booking id. After each committed change: write the availability cache through, give seats back
to the sold-out gate, and re-index the event when it flips sold out ↔ on sale."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import text
from temporalio import activity
from temporalio.exceptions import ApplicationError

from evently import bank_transfer, booking_changes, bookings, live
from evently.enums import BookingChannel, BookingStatus, LateSettlement
from evently.infra import metrics
from evently.infra.resources import Resources
from evently.inventory import availability, seated, seats
from evently.inventory.gate import Gate
from evently.inventory.types import Counters, Reservation
from evently.organizations import organization_of_event
from workflows.booking.contract import (
    BOOKING_NOT_FOUND,
    CANCEL_LINES,
    CONFIRM_BOOKING,
    CONFIRM_WITHOUT_CHARGE,
    LOAD_BOOKING,
    NOT_CONFIRMABLE,
    NOT_RELEASABLE,
    RELEASE_BOOKING,
    REMIND_TRANSFER,
    RESERVE_SEATS,
    SETTLE_BANK_TRANSFER,
    SETTLE_LATE_PAYMENT,
    BookingFacts,
    BookingInput,
    CancelLinesResult,
    ChangeInput,
    NoChargeInput,
    ReleaseInput,
    booking_workflow_id,
)
from workflows.connection import TemporalClient
from workflows.search_sync.client import request_index_write

log = logging.getLogger("evently.activities.inventory")


async def after_seat_change(
    res: Resources, temporal: TemporalClient, counters: Counters, before_available: int | None
) -> None:
    """The cache gets the new counters, the event's live channel a message (``sold_out`` when
    this change took the last seat, else ``availability``); an event that flipped sold out ↔
    on sale is re-indexed (``has_seats``). Best effort: the index catches up on the next change
    or a reindex, a live update lost with Redis is read over REST."""
    await availability.store_counters(res.redis, counters)
    flipped_out = before_available is not None and before_available > 0 and counters.available == 0
    await live.publish(
        res.redis,
        live.event_channel(counters.event_id),
        "sold_out" if flipped_out else "availability",
        counters.model_dump(mode="json", include={"event_id", "available", "held", "sold"}),
    )
    if before_available is not None and (before_available > 0) != (counters.available > 0):
        try:
            await request_index_write(
                temporal,
                counters.event_id,
                organization_id=await organization_of_event(res.engine, counters.event_id),
            )
        except Exception as exc:
            log.warning("could not request an index write: %s", exc)


class InventoryActivities:
    def __init__(self, res: Resources, temporal: TemporalClient) -> None:
        self.res = res
        self.temporal = temporal
        self.gate = Gate(res.redis)
        self._autocommit = res.engine.execution_options(isolation_level="AUTOCOMMIT")

    @activity.defn(name=RESERVE_SEATS)
    async def reserve_seats(self, data: BookingInput) -> Reservation:
        if data.waitlist_entry_id is not None:
            return await self._reserve_from_offer(data)
        if data.seated:
            reservation, counters = await seated.reserve(
                self.res.engine,
                booking_id=data.booking_id,
                event_id=data.event_id,
                user_id=data.user_id,
                quantity=data.quantity,
                hold_seconds=data.hold_seconds,
                workflow_id=booking_workflow_id(data.booking_id),
                seat_ids=data.seat_ids or None,
                lines=[(x.ticket_type_id, x.quantity, x.together) for x in data.lines] or None,
                promo_code=data.promo_code,
                comp=data.channel == BookingChannel.COMP,
            )
            if counters is not None:
                await self._seats_changed(data.event_id)
        else:
            reservation, counters = await self._reserve_general(data)
        if data.bank_transfer and reservation.status == BookingStatus.HELD:
            # the reference the buyer writes on the transfer, before the reserve answers
            async with self._autocommit.connect() as conn:
                await bank_transfer.assign_reference(conn, data.booking_id)
        if counters is not None:
            metrics.BOOKINGS.labels(outcome="reserved").inc()
            await after_seat_change(
                self.res, self.temporal, counters, counters.available + data.quantity
            )
            await self._tell_buyer(
                data.booking_id, data.event_id, BookingStatus.HELD, user_id=data.user_id
            )
        elif reservation.status == BookingStatus.REJECTED:
            metrics.BOOKINGS.labels(outcome="rejected").inc()
            # the API took these seats from the gate before starting us: give them back
            await self.gate.give_back_no_hold(data.event_id, data.quantity, data.booking_id)
        return reservation

    async def _reserve_general(self, data: BookingInput) -> tuple[Reservation, Counters | None]:
        async with self._autocommit.connect() as conn:
            return await seats.reserve(
                conn,
                booking_id=data.booking_id,
                event_id=data.event_id,
                user_id=data.user_id,
                quantity=data.quantity,
                hold_seconds=data.hold_seconds,
                workflow_id=booking_workflow_id(data.booking_id),
                lines=[(line.ticket_type_id, line.quantity) for line in data.lines] or None,
                promo_code=data.promo_code,
                comp=data.channel == BookingChannel.COMP,
            )

    async def _seats_changed(self, event_id: uuid.UUID) -> None:
        """A seated event's seat map changed: its live channel says so (the storefront reads
        ``GET /events/{id}/seats`` again, a 304 when nothing moved). Best effort."""
        await live.publish(
            self.res.redis, live.event_channel(event_id), "seats", {"event_id": str(event_id)}
        )

    async def _reserve_from_offer(self, data: BookingInput) -> Reservation:
        """A waitlist offer accepted: adopt its seats (no gate, no counter change)."""
        assert data.waitlist_entry_id is not None
        if data.seated:  # issue 34: the offer's seats are the best free ones
            reservation = await seated.reserve_from_offer(
                self.res.engine,
                booking_id=data.booking_id,
                entry_id=data.waitlist_entry_id,
                event_id=data.event_id,
                user_id=data.user_id,
                quantity=data.quantity,
                hold_seconds=data.hold_seconds,
                workflow_id=booking_workflow_id(data.booking_id),
            )
            if reservation.status == BookingStatus.HELD:
                await self._seats_changed(data.event_id)
        async with self._autocommit.connect() as conn:
            if not data.seated:
                reservation = await seats.reserve_from_offer(
                    conn,
                    booking_id=data.booking_id,
                    entry_id=data.waitlist_entry_id,
                    event_id=data.event_id,
                    user_id=data.user_id,
                    quantity=data.quantity,
                    hold_seconds=data.hold_seconds,
                    workflow_id=booking_workflow_id(data.booking_id),
                )
            held = reservation.status == BookingStatus.HELD
            if held:
                await availability.refresh(self.res.redis, conn, data.event_id)  # waitlist_length
        metrics.BOOKINGS.labels(outcome="reserved" if held else "rejected").inc()
        return reservation

    async def _tell_buyer(
        self,
        booking_id: uuid.UUID,
        event_id: uuid.UUID,
        status: str,
        user_id: uuid.UUID | None = None,
    ) -> None:
        """The buyer's live channel: this booking's new status (one primary-key read when the
        caller does not know the buyer). Best effort."""
        if user_id is None:
            async with self._autocommit.connect() as conn:
                user_id = await conn.scalar(
                    text("SELECT user_id FROM bookings WHERE id = :id"), {"id": booking_id}
                )
            if user_id is None:
                return
        await live.publish(
            self.res.redis,
            live.user_channel(user_id),
            "booking",
            {"booking_id": str(booking_id), "event_id": str(event_id), "status": status},
        )

    async def _status(self, booking_id: uuid.UUID) -> str | None:
        async with self._autocommit.connect() as conn:
            status: str | None = await conn.scalar(
                text("SELECT status FROM bookings WHERE id = :id"), {"id": booking_id}
            )
        return status

    @activity.defn(name=CONFIRM_BOOKING)
    async def confirm_booking(self, booking_id: uuid.UUID) -> bool:
        async with self._autocommit.connect() as conn:
            counters = await seats.confirm(conn, booking_id)
        if counters is None:
            status = await self._status(booking_id)
            if status != BookingStatus.CONFIRMED:
                raise ApplicationError(
                    f"booking {booking_id} cannot be confirmed from {status!r}",
                    type=NOT_CONFIRMABLE,
                    non_retryable=True,
                )
            return True
        metrics.BOOKINGS.labels(outcome="confirmed").inc()
        await after_seat_change(self.res, self.temporal, counters, None)
        await self._tell_buyer(booking_id, counters.event_id, BookingStatus.CONFIRMED)
        return True

    @activity.defn(name=CONFIRM_WITHOUT_CHARGE)
    async def confirm_without_charge(self, data: NoChargeInput) -> bool:
        """A held booking confirmed with its charge recorded under a provider that is never
        called (``free``, ``comp``, ``box_office``). True when confirmed (now, or by an earlier
        attempt); False when it cannot be (a ``free``/``comp`` booking that costs money)."""
        async with self._autocommit.connect() as conn:
            counters = await seats.confirm_without_charge(
                conn,
                data.booking_id,
                provider=data.provider,
                channel=data.channel,
                note=data.note,
            )
        if counters is None:
            return await self._status(data.booking_id) == BookingStatus.CONFIRMED
        metrics.BOOKINGS.labels(outcome="confirmed").inc()
        await after_seat_change(self.res, self.temporal, counters, None)
        await self._tell_buyer(data.booking_id, counters.event_id, BookingStatus.CONFIRMED)
        return True

    @activity.defn(name=RELEASE_BOOKING)
    async def release_booking(self, data: ReleaseInput) -> bool:
        """Returns True when the seats went back to the public pool (the gate gets them back,
        once per booking); False when they were kept for the waitlist (the workflow then hands
        them over). A retry that finds the booking released cannot tell: it gives the gate the
        seats (a high gate is safe) and answers False when the event has seats pooled for the
        waitlist (a spurious hand-over finds nothing to do)."""
        pooled = 0
        async with self._autocommit.connect() as conn:
            released = await seats.release(
                conn,
                data.booking_id,
                from_status=data.from_status,
                to_status=data.to_status,
                actor=data.actor,
                reason=data.reason,
            )
            if released is None:
                status = await conn.scalar(
                    text("SELECT status FROM bookings WHERE id = :id"), {"id": data.booking_id}
                )
                if status not in (BookingStatus.EXPIRED, BookingStatus.CANCELLED):
                    raise ApplicationError(
                        f"booking {data.booking_id} cannot be released from {status!r}",
                        type=NOT_RELEASABLE,
                        non_retryable=True,
                    )
                pooled = await conn.scalar(
                    text("SELECT waitlist_pool FROM events WHERE id = :id"), {"id": data.event_id}
                )
        if released is not None:
            metrics.BOOKINGS.labels(outcome=data.to_status).inc()
            public = data.quantity - released.to_waitlist
            await after_seat_change(self.res, self.temporal, released, released.available - public)
            await self._tell_buyer(data.booking_id, data.event_id, data.to_status)
            if released.to_waitlist:
                # kept from sale by the counters, but free seats of a seated event: what the
                # API knew refused is not true any more (evently/inventory/gate.py)
                await self.gate.seats_freed(data.event_id)
                return False
        elif pooled:
            await self.gate.give_back_released(data.event_id, data.quantity, data.booking_id)
            return False
        await self.gate.give_back_released(data.event_id, data.quantity, data.booking_id)
        return True

    @activity.defn(name=CANCEL_LINES)
    async def cancel_lines(self, data: ChangeInput) -> CancelLinesResult:
        """A refunded partial cancellation's seats back (once: guarded by the change's status).
        A change whose booking ended meanwhile is void (its whole cancellation released them)."""
        async with self._autocommit.connect() as conn:
            released = await seats.cancel_lines(conn, data.booking_id, data.change_no)
            if released is None:
                await booking_changes.void_if_booking_ended(conn, data.booking_id, data.change_no)
                return CancelLinesResult(done=False)
        metrics.BOOKINGS.labels(outcome="lines_cancelled").inc()
        freed = await self._change_quantity(data) if released.to_waitlist == 0 else 0
        await after_seat_change(self.res, self.temporal, released, released.available - freed)
        if released.to_waitlist:
            await self.gate.seats_freed(released.event_id)  # as in release_booking
            return CancelLinesResult(done=True, public=False)
        await self.gate.give_back_cancelled_lines(
            released.event_id, freed, data.booking_id, data.change_no
        )
        return CancelLinesResult(done=True, public=True)

    async def _change_quantity(self, data: ChangeInput) -> int:
        async with self._autocommit.connect() as conn:
            return await booking_changes.quantity_of(conn, data.booking_id, data.change_no)

    @activity.defn(name=LOAD_BOOKING)
    async def load_booking(self, booking_id: uuid.UUID) -> BookingFacts:
        async with self._autocommit.connect() as conn:
            found = await bookings.facts(conn, booking_id)
        if found is None:
            raise ApplicationError(
                f"no booking {booking_id}", type=BOOKING_NOT_FOUND, non_retryable=True
            )
        return BookingFacts.model_validate(found)

    @activity.defn(name=SETTLE_LATE_PAYMENT)
    async def settle_late_payment(self, booking_id: uuid.UUID) -> LateSettlement:
        """``confirmed`` (seats taken again, or already confirmed), ``held`` or ``refund``."""
        async with self.res.engine.begin() as conn:
            outcome, counters = await seats.settle_late_payment(conn, booking_id)
        if counters is not None:
            metrics.BOOKINGS.labels(outcome="confirmed").inc()
            await after_seat_change(self.res, self.temporal, counters, counters.available + 1)
            await self.gate.reset(counters.event_id)
        return outcome

    @activity.defn(name=SETTLE_BANK_TRANSFER)
    async def settle_bank_transfer(self, booking_id: uuid.UUID) -> str:
        """Finance marked the bank transfer arrived: ``confirmed`` (within the window, or after
        it with the seats still free) or ``refund_due`` (evently/bank_transfer.py)."""
        async with self.res.engine.begin() as conn:
            settled = await bank_transfer.settle(conn, booking_id)
        if settled.counters is not None:
            metrics.BOOKINGS.labels(outcome="confirmed").inc()
            before = settled.counters.available + 1 if settled.taken_again else None
            await after_seat_change(self.res, self.temporal, settled.counters, before)
            if settled.taken_again:
                await self.gate.reset(settled.counters.event_id)
            await self._tell_buyer(booking_id, settled.counters.event_id, BookingStatus.CONFIRMED)
        return settled.outcome

    @activity.defn(name=REMIND_TRANSFER)
    async def remind_bank_transfer(self, booking_id: uuid.UUID) -> bool:
        """The reminder a day before the transfer window ends (one per booking: its outbox
        notice is keyed by the booking)."""
        async with self._autocommit.connect() as conn:
            return await bank_transfer.remind(conn, booking_id)
