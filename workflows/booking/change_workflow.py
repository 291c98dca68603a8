"""BookingChangeWorkflow: a change to a confirmed booking after its own workflow has ended.

Today the one change is cancelling it: refund (keyed by the booking: once, however often this
runs) → release (guarded by the booking's status: once) → the waitlist. One workflow per
change, id ``booking-change-<booking_id>-<change>``, on the booking task queue; a short run,
so deploys never have to replay months-old histories of confirmed bookings.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from evently.enums import BookingStatus
    from workflows import common
    from workflows.booking import steps
    from workflows.booking.contract import (
        CHANGE_WORKFLOW_NAME,
        LOAD_BOOKING,
        BookingChangeInput,
        BookingFacts,
        CancelResult,
    )
    from workflows.booking.workflow import CANCELLABLE_AFTER_END


@workflow.defn(name=CHANGE_WORKFLOW_NAME)
class BookingChangeWorkflow:
    @workflow.run
    async def run(self, data: BookingChangeInput) -> CancelResult:
        booking = await steps.local(LOAD_BOOKING, data.booking_id, BookingFacts)
        if booking.status != BookingStatus.CONFIRMED:
            return CancelResult(
                booking_status=booking.status, detail=f"the booking is {booking.status}"
            )
        ends = booking.event_ends_at
        if ends is not None and workflow.now() > ends + CANCELLABLE_AFTER_END:
            return CancelResult(booking_status=booking.status, detail="the event is over")
        workflow.set_current_details(f"cancelling for {data.actor}: refunding {booking.amount}")
        refund = await steps.refund(booking.booking_id)
        workflow.set_current_details(f"cancelling for {data.actor}: releasing the seats")
        public = await steps.release(
            booking.booking_id,
            booking.event_id,
            booking.quantity,
            from_status=BookingStatus.CONFIRMED,
            to_status=BookingStatus.CANCELLED,
            actor=data.actor,
            reason=data.reason,
        )
        workflow.upsert_search_attributes(
            [common.BOOKING_STATUS.value_set(BookingStatus.CANCELLED)]
        )
        if not public:
            await steps.hand_over(booking.event_id)
        workflow.set_current_details(f"cancelled by {data.actor}; refunded {refund.amount}")
        return CancelResult(booking_status=BookingStatus.CANCELLED, refunded=refund.refunded)
