"""BookingChangeWorkflow: a change to a confirmed booking after its own workflow has ended.

Today the one change is cancelling it: refund (keyed by the booking: once, however often this
runs) → release (guarded by the booking's status: once) → the waitlist. One workflow per
change, id ``booking-change-<booking_id>-<change>``, on the booking task queue; a short run,
so deploys never have to replay months-old histories of confirmed bookings.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from evently.booking_changes import change_no_of
    from evently.enums import BookingStatus
    from workflows import common
    from workflows.booking import steps
    from workflows.booking.contract import (
        CANCEL_LINES,
        CHANGE_WORKFLOW_NAME,
        LOAD_BOOKING,
        REFUND_CHANGE,
        BookingChangeInput,
        BookingFacts,
        CancelLinesResult,
        CancelResult,
        ChangeInput,
        RefundResult,
    )
    from workflows.booking.workflow import CANCELLABLE_AFTER_END


@workflow.defn(name=CHANGE_WORKFLOW_NAME)
class BookingChangeWorkflow:
    @workflow.run
    async def run(self, data: BookingChangeInput) -> CancelResult:
        booking = await steps.local(LOAD_BOOKING, data.booking_id, BookingFacts)
        change_no = change_no_of(data.change)
        if change_no is not None:  # a partial cancellation (issue 15): a new change name
            return await self._cancel_lines(data, booking, change_no)
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

    async def _cancel_lines(
        self, data: BookingChangeInput, booking: BookingFacts, change_no: int
    ) -> CancelResult:
        """Refund of that part (keyed by booking and change number) → release of those seats
        (exactly those tickets revoked) → the waitlist. The booking stays confirmed."""
        if booking.status != BookingStatus.CONFIRMED:
            return CancelResult(
                booking_status=booking.status, detail=f"the booking is {booking.status}"
            )
        ends = booking.event_ends_at
        if ends is not None and workflow.now() > ends + CANCELLABLE_AFTER_END:
            return CancelResult(booking_status=booking.status, detail="the event is over")
        change = ChangeInput(booking_id=booking.booking_id, change_no=change_no)
        workflow.set_current_details(f"change {change_no} for {data.actor}: refunding")
        refund = await steps.payments(REFUND_CHANGE, change, RefundResult)
        if not refund.refunded:
            return CancelResult(booking_status=booking.status, detail="the booking ended meanwhile")
        workflow.set_current_details(f"change {change_no} for {data.actor}: releasing")
        released = await steps.local(CANCEL_LINES, change, CancelLinesResult)
        if released.done and not released.public:
            await steps.hand_over(booking.event_id)
        workflow.set_current_details(f"change {change_no} done; refunded {refund.amount}")
        return CancelResult(
            booking_status=BookingStatus.CONFIRMED, refunded=True, detail=str(refund.amount)
        )
