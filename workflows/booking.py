"""BookingWorkflow: reserve → hold (Temporal timer) → pay → confirm, or release; a confirmed
booking stays cancellable (refund → release) until its event ends.

One workflow per booking, id ``booking-<booking_id>``. The API starts it with
update-with-start on the ``reserve`` update, so the buyer learns "held until T" or "sold out"
in one request. Deterministic: no I/O, no clock but workflow.now(), activities for the rest.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.booking_models import (
        CHARGE,
        CONFIRM_BOOKING,
        RECORD_PROVIDER_PAYMENT,
        REFUND,
        RELEASE_BOOKING,
        RESERVE_SEATS,
        SETTLE_LATE_PAYMENT,
        ChargeInput,
        ChargeResult,
        ProviderPaymentInput,
        RefundInput,
        RefundResult,
        ReleaseInput,
        ReserveOutcome,
    )
    from activities.waitlist_models import WAITLIST_SEATS_FREED, SeatsFreed
    from evently import task_queues
    from workflows.booking_models import (
        QUERY_STATE,
        SIGNAL_PAYMENT_SUCCEEDED,
        UPDATE_CANCEL,
        UPDATE_PAY,
        UPDATE_RESERVE,
        WORKFLOW_NAME,
        BookingInput,
        BookingState,
        BookingStatus,
        CancelInput,
        CancelResult,
        PayInput,
        PaymentNotice,
        PayResult,
        ReserveResult,
    )

EVENT_ID = SearchAttributeKey.for_keyword("EventId")
USER_ID = SearchAttributeKey.for_keyword("UserId")
BOOKING_STATUS = SearchAttributeKey.for_keyword("BookingStatus")

DB_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=5)
)
T = TypeVar("T")


async def _local(name: str, arg: Any, result_type: type[T]) -> T:
    """A Postgres seat change: a local activity (no extra round trip through the server)."""
    result: T = await workflow.execute_local_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=timedelta(seconds=10),
        retry_policy=DB_RETRY,
    )
    return result


async def _payments(name: str, arg: Any, result_type: type[T]) -> T:
    """A provider call or a notice: a regular activity on the payments task queue."""
    result: T = await workflow.execute_activity(
        name,
        arg,
        result_type=result_type,
        task_queue=task_queues.PAYMENTS,
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
    )
    return result


# a confirmed booking stays cancellable until its event is over
CANCELLABLE_AFTER_END = timedelta(days=1)
TERMINAL = ("expired", "cancelled", "rejected")


@workflow.defn(name=WORKFLOW_NAME)
class BookingWorkflow:
    @workflow.init
    def __init__(self, data: BookingInput) -> None:
        self.data = data
        self.status: BookingStatus = "pending"
        self.result: ReserveResult | None = None
        self.outcome: ReserveOutcome | None = None
        self.paid = False
        self.charging = False
        self.closing = False  # the hold is over (or being cancelled): no new charges
        self.cancel_request: CancelInput | None = None
        self.refunded = False
        self.charge_attempts = 0
        self.notices: list[PaymentNotice] = []
        self.seen_notices: set[str] = set()
        self.history: list[str] = []

    # ---- handlers -------------------------------------------------------------------------

    @workflow.update(name=UPDATE_RESERVE)
    async def reserve(self, data: BookingInput) -> ReserveResult:
        await workflow.wait_condition(lambda: self.result is not None)
        assert self.result is not None
        return self.result

    @workflow.update(name=UPDATE_PAY)
    async def pay(self, req: PayInput) -> PayResult:
        await workflow.wait_condition(lambda: self.status != "pending" and not self.charging)
        if self.status == "confirmed":
            return PayResult(status="confirmed", booking_status=self.status)
        if self.status != "held" or self.closing:
            return PayResult(
                status="hold_expired" if self.status in ("held", "expired") else "not_held",
                booking_status=self.status,
                detail="the hold has ended" if self.status in ("held", "expired") else None,
            )
        assert self.outcome is not None
        self.charging = True
        self.charge_attempts += 1
        try:
            charge = await _payments(
                CHARGE,
                ChargeInput(
                    booking_id=self.data.booking_id,
                    attempt=self.charge_attempts,
                    payment_method=req.payment_method,
                    amount=self.outcome.amount,
                    currency=self.outcome.currency,
                ),
                ChargeResult,
            )
        finally:
            self.charging = False
        if not charge.succeeded:
            self._log(f"payment declined ({charge.failure_code})")
            return PayResult(
                status="declined", booking_status=self.status, detail=charge.failure_code
            )
        self._log(f"payment succeeded ({charge.provider_payment_id})")
        self.paid = True
        await workflow.wait_condition(lambda: self.status != "held")
        final = self.state().status  # re-read: the main loop changed it
        return PayResult(
            status="confirmed" if final == "confirmed" else "not_held", booking_status=final
        )

    @workflow.signal(name=SIGNAL_PAYMENT_SUCCEEDED)
    def payment_succeeded(self, notice: PaymentNotice) -> None:
        if notice.provider_event_id not in self.seen_notices:
            self.seen_notices.add(notice.provider_event_id)
            self.notices.append(notice)

    @workflow.update(name=UPDATE_CANCEL)
    async def cancel(self, req: CancelInput) -> CancelResult:
        await workflow.wait_condition(lambda: self.status != "pending")
        if self.status in ("held", "confirmed") and self.cancel_request is None:
            self.cancel_request = req
            self._log(f"cancel requested by {req.actor}: {req.reason}")
        await workflow.wait_condition(lambda: self.status in TERMINAL)
        return CancelResult(booking_status=self.status, refunded=self.refunded)

    @workflow.query(name=QUERY_STATE)
    def state(self) -> BookingState:
        return BookingState(
            booking_id=self.data.booking_id,
            event_id=self.data.event_id,
            user_id=self.data.user_id,
            quantity=self.data.quantity,
            status=self.status,
            hold_expires_at=self.outcome.hold_expires_at if self.outcome else None,
            amount=self.outcome.amount if self.outcome else 0,
            currency=self.outcome.currency if self.outcome else "",
            history=list(self.history),
        )

    # ---- the lifecycle --------------------------------------------------------------------

    @workflow.run
    async def run(self, data: BookingInput) -> BookingState:
        try:
            outcome = await workflow.execute_local_activity(
                RESERVE_SEATS,
                data,
                result_type=ReserveOutcome,
                start_to_close_timeout=timedelta(seconds=10),
                schedule_to_close_timeout=timedelta(seconds=30),
                retry_policy=DB_RETRY,
            )
        except ActivityError:
            # Postgres unreachable for 30 s: nothing was taken (the insert and the seat update
            # are one statement); the buyer gets an error and may retry with the same key.
            outcome = ReserveOutcome(
                status="rejected",
                amount=0,
                currency="",
                hold_expires_at=None,
                event_ends_at=None,
                reason="unavailable",
            )
        self.outcome = outcome
        self.status = outcome.status
        self.result = ReserveResult(
            booking_id=data.booking_id,
            event_id=data.event_id,
            quantity=data.quantity,
            status="held" if outcome.status != "rejected" else "rejected",
            hold_expires_at=outcome.hold_expires_at,
            amount=outcome.amount,
            currency=outcome.currency,
            reason=outcome.reason,
        )
        self._log(f"reserve: {outcome.status}" + (f" ({outcome.reason})" if outcome.reason else ""))
        if self.status == "rejected":
            self._set_status("rejected")
            return await self._finish()
        if self.status == "held":
            await self._hold()
        if self.status == "confirmed":
            await self._confirmed()
        await self._late_payments()
        return await self._finish()

    async def _hold(self) -> None:
        assert self.outcome is not None
        assert self.outcome.hold_expires_at is not None
        remaining = (self.outcome.hold_expires_at - workflow.now()).total_seconds()
        while True:
            try:
                await workflow.wait_condition(
                    lambda: self.paid or self.cancel_request is not None or bool(self.notices),
                    timeout=max(remaining, 0.001),
                )
            except TimeoutError:
                break
            if self.notices and not self.paid:
                await self._record_notice(self.notices.pop(0))
                remaining = (self.outcome.hold_expires_at - workflow.now()).total_seconds()
                continue
            break
        self.closing = True
        await workflow.wait_condition(lambda: not self.charging)
        if self.paid:
            await _local(CONFIRM_BOOKING, self.data.booking_id, bool)
            self._set_status("confirmed")
            return
        cancel = self.cancel_request
        await self._release(
            "held",
            "cancelled" if cancel else "expired",
            cancel.actor if cancel else "hold-timer",
            cancel.reason if cancel else "the payment window ended",
        )

    async def _confirmed(self) -> None:
        assert self.outcome is not None
        ends = self.outcome.event_ends_at
        timeout = (ends - workflow.now() + CANCELLABLE_AFTER_END).total_seconds() if ends else None
        try:
            await workflow.wait_condition(
                lambda: self.cancel_request is not None,
                timeout=max(timeout, 0.001) if timeout is not None else None,
            )
        except TimeoutError:
            return  # the event is over: the booking stays confirmed
        assert self.cancel_request is not None
        refund = await _payments(REFUND, RefundInput(booking_id=self.data.booking_id), RefundResult)
        self.refunded = refund.refunded
        self._log(f"refunded {refund.amount} ({refund.provider_payment_id})")
        await self._release(
            "confirmed", "cancelled", self.cancel_request.actor, self.cancel_request.reason
        )

    async def _release(self, from_status: str, to_status: str, actor: str, reason: str) -> None:
        public = await _local(
            RELEASE_BOOKING,
            ReleaseInput(
                booking_id=self.data.booking_id,
                event_id=self.data.event_id,
                quantity=self.data.quantity,
                from_status=from_status,
                to_status=to_status,
                actor=actor,
                reason=reason,
            ),
            bool,
        )
        self._set_status(to_status)  # type: ignore[arg-type]
        if not public:
            await self._seats_freed()

    async def _seats_freed(self) -> None:
        """The release kept the seats for the waitlist (someone waits): hand them over to the
        event's WaitlistWorkflow (signal-with-start from a local activity, retried until it is
        delivered; the seats wait in ``events.waitlist_pool`` meanwhile)."""
        await _local(WAITLIST_SEATS_FREED, SeatsFreed(event_id=self.data.event_id), bool)
        self._log("freed seats handed to the waitlist")

    async def _record_notice(self, notice: PaymentNotice) -> bool:
        recorded = await _payments(
            RECORD_PROVIDER_PAYMENT,
            ProviderPaymentInput(
                booking_id=self.data.booking_id,
                provider_event_id=notice.provider_event_id,
                provider_payment_id=notice.provider_payment_id,
                amount=notice.amount,
                currency=notice.currency,
            ),
            bool,
        )
        self._log(f"provider payment {notice.provider_payment_id}: recorded={recorded}")
        if recorded and self.status == "held" and not self.closing:
            self.paid = True
        return recorded

    async def _late_payments(self) -> None:
        """A payment that arrives after the hold ended: confirm if the seats can still be
        taken atomically, otherwise refund it automatically."""
        while self.notices:
            notice = self.notices.pop(0)
            if self.status == "confirmed":
                continue  # already paid for; the provider reports the same payment again
            await self._record_notice(notice)
            outcome = await _local(SETTLE_LATE_PAYMENT, self.data.booking_id, str)
            if outcome == "confirmed":
                self._set_status("confirmed")
                self._log("late payment accepted: seats taken again")
                await self._confirmed()
            else:
                refund = await _payments(
                    REFUND,
                    RefundInput(booking_id=self.data.booking_id, cancel_expired_booking=True),
                    RefundResult,
                )
                self.refunded = refund.refunded
                if self.status == "expired":
                    self._set_status("cancelled")
                self._log("late payment refunded: the seats were gone")

    async def _finish(self) -> BookingState:
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.state()

    def _set_status(self, status: BookingStatus) -> None:
        self.status = status
        workflow.upsert_search_attributes([BOOKING_STATUS.value_set(status)])

    def _log(self, line: str) -> None:
        self.history.append(f"{workflow.now().isoformat()} {line}")
