"""BookingWorkflow: reserve → hold (Temporal timer) → pay → confirm, or release.

One workflow per booking, id ``booking-<booking_id>``. The API starts it with
update-with-start on the ``reserve`` update, so the buyer learns "held until T" or "sold out"
in one request. Deterministic: no I/O, no clock but workflow.now(), activities for the rest.

Lifetime: since the ``end-at-confirmation`` patch, the workflow ends once the booking is
confirmed (or ended otherwise); a later cancellation of a confirmed booking runs in its own
short BookingChangeWorkflow (workflows/booking_change/). Runs started before the patch keep
the old path: they stay open until a day after the event and cancel in place. Either way the
refund is keyed by the booking, so it happens once (docs/architecture.md, "How long a
booking's workflow lives").
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from evently.enums import (
        BookingChannel,
        BookingStatus,
        LateSettlement,
        NoChargeProvider,
        PayOutcome,
        ReserveOutcome,
    )
    from workflows import common
    from workflows.booking import steps
    from workflows.booking.contract import (
        CHARGE,
        CONFIRM_BOOKING,
        CONFIRM_WITHOUT_CHARGE,
        HANDED_OVER,
        QUERY_STATE,
        RECONCILE_CHARGE,
        RECORD_PROVIDER_PAYMENT,
        REMIND_TRANSFER,
        RESERVE_SEATS,
        SETTLE_BANK_TRANSFER,
        SETTLE_LATE_PAYMENT,
        SIGNAL_PAYMENT_SUCCEEDED,
        SIGNAL_TRANSFER_RECEIVED,
        WORKFLOW_NAME,
        BookingInput,
        BookingState,
        CancelInput,
        CancelResult,
        ChargeInput,
        ChargeResult,
        NoChargeInput,
        PayInput,
        PaymentNotice,
        PayResult,
        ProviderPaymentInput,
        Reservation,
        TransferNotice,
    )

T = TypeVar("T")


# a confirmed booking stays cancellable until its event is over (old lifetime: the workflow
# waits this long; new lifetime: BookingChangeWorkflow checks it)
CANCELLABLE_AFTER_END = timedelta(days=1)
END_AT_CONFIRMATION = "end-at-confirmation"
# the charge may take at most until the hold ends (at least this long): with the payments
# worker down, the hold still ends at its window
MIN_CHARGE_WINDOW = timedelta(seconds=10)
# a charge whose answer was lost is settled before the hold is released (so a buyer whose money
# moved gets the seats); while the payments worker cannot answer within this long, the hold is
# released first and the charge settled after (confirmed if the seats are still free, else
# refunded)
RECONCILE_BEFORE_RELEASE = timedelta(seconds=10)
RECONCILE_UNANSWERED = "reconcile-unanswered-charges"
# issue 29: a 0.00 booking and an organizer's order (comp, box office) are confirmed right
# after the reserve, with no payment step: the reserve update answers ``confirmed``
CONFIRM_WITHOUT_CHARGE_PATCH = "confirm-without-charge"
# issue 29: a bank-transfer booking holds its seats for the window (days), reminds the buyer a
# day before it ends, and is confirmed by finance's mark-paid (the transfer_received signal);
# money marked after the window follows the late-payment rule
BANK_TRANSFER_PATCH = "bank-transfer"
TRANSFER_REMINDER_BEFORE = timedelta(days=1)
# issue 31: a pay request that arrives once the hold is over while this booking's money may
# have moved (a charge succeeded and is being confirmed, or a charge whose answer was lost is
# being settled) waits for that outcome: ``confirmed`` when the settlement confirms the
# booking, never ``hold_expired`` for a booking that ends confirmed
PAY_AFTER_SETTLEMENT = "pay-after-settlement"


def _local(name: str, arg: Any, result_type: type[T]) -> Awaitable[T]:
    return steps.local(name, arg, result_type)


def _payments(name: str, arg: Any, result_type: type[T]) -> Awaitable[T]:
    return steps.payments(name, arg, result_type)


@workflow.defn(name=WORKFLOW_NAME)
class BookingWorkflow:
    @workflow.init
    def __init__(self, data: BookingInput) -> None:
        self.data = data
        self.status = BookingStatus.PENDING
        self.outcome: Reservation | None = None  # the reserve step's answer
        self.paid = False
        self.charging = False
        self.closing = False  # the hold is over (or being cancelled): no new charges
        self.cancel_request: CancelInput | None = None
        self.refunded = False
        self.charge_attempts = 0
        self.notices: list[PaymentNotice] = []
        self.seen_notices: set[str] = set()
        self.history: list[str] = []
        self.handed_over = False  # confirmed under the new lifetime: later changes go elsewhere
        # charges that ran (maybe to the end) but whose answer never arrived
        self.unanswered: list[ChargeInput] = []
        self.transfer: TransferNotice | None = None  # finance marked the bank transfer arrived
        self.settling = False  # a late payment is being settled (seats taken again or refunded)
        self.finishing = False  # the run is over: every outcome is known

    # ---- handlers -------------------------------------------------------------------------

    @workflow.update
    async def reserve(self, data: BookingInput) -> Reservation:
        await workflow.wait_condition(lambda: self.outcome is not None)
        assert self.outcome is not None
        return self.outcome

    @workflow.update
    async def pay(self, req: PayInput) -> PayResult:
        await workflow.wait_condition(
            lambda: self.status != BookingStatus.PENDING and not self.charging
        )
        if self.status == BookingStatus.CONFIRMED:
            return PayResult(status=PayOutcome.CONFIRMED, booking_status=self.status)
        if (
            (self.status != BookingStatus.HELD or self.closing or self.paid)
            and (self.paid or self.unanswered or self.settling)
            and workflow.patched(PAY_AFTER_SETTLEMENT)
        ):
            # the hold is over (or paid: a second click) but money may have moved: answer
            # once it is settled, never charging a paid booking again
            await workflow.wait_condition(
                lambda: self.status == BookingStatus.CONFIRMED or self.finishing
            )
            settled: BookingStatus = self.status  # the main loop changed it
            if settled == BookingStatus.CONFIRMED:
                return PayResult(status=PayOutcome.CONFIRMED, booking_status=settled)
            if self.refunded:  # the seats were gone: the late payment was given back
                return PayResult(
                    status=PayOutcome.HOLD_EXPIRED,
                    booking_status=self.status,
                    detail="the hold ended before the payment settled; it was refunded",
                )
        if self.status != BookingStatus.HELD or self.closing:
            ended = self.status in (BookingStatus.HELD, BookingStatus.EXPIRED)
            return PayResult(
                status=PayOutcome.HOLD_EXPIRED if ended else PayOutcome.NOT_HELD,
                booking_status=self.status,
                detail="the hold has ended" if ended else None,
            )
        assert self.outcome is not None
        self.charging = True
        self.charge_attempts += 1
        attempt = ChargeInput(
            booking_id=self.data.booking_id,
            attempt=self.charge_attempts,
            payment_method=req.payment_method,
            amount=self.outcome.amount,
            currency=self.outcome.currency,
        )
        try:
            charge = await steps.payments(
                CHARGE, attempt, ChargeResult, schedule_to_close=self._charge_window()
            )
        except ActivityError:
            # the payment service did not answer before the hold ends (its worker is down, the
            # provider hangs, or the answer was lost while Temporal was down): the hold ends at
            # its window, and before it is released the attempt is settled (reconciled)
            self.unanswered.append(attempt)
            self._log(f"payment attempt {self.charge_attempts}: no answer from the provider")
            self._details(f"payment attempt {self.charge_attempts} unanswered")
            return PayResult(status=PayOutcome.UNAVAILABLE, booking_status=self.status)
        finally:
            self.charging = False
        if charge.pending is not None:
            # 3-D Secure (or a payment still processing): the hold keeps running; the outcome
            # arrives as the payment_succeeded signal (webhook) or the hold ends
            self._log(f"payment {charge.pending} ({charge.provider_payment_id})")
            self._details(f"payment attempt {self.charge_attempts} {charge.pending}")
            return PayResult(
                status=charge.pending,
                booking_status=self.status,
                client_secret=charge.client_secret,
            )
        if not charge.succeeded:
            self._log(f"payment declined ({charge.failure_code})")
            self._details(f"payment attempt {self.charge_attempts} declined")
            return PayResult(
                status=PayOutcome.DECLINED, booking_status=self.status, detail=charge.failure_code
            )
        self._log(f"payment succeeded ({charge.provider_payment_id})")
        self.paid = True
        await workflow.wait_condition(lambda: self.status != BookingStatus.HELD)
        final: BookingStatus = self.status  # the main loop changed it
        return PayResult(
            status=PayOutcome.CONFIRMED
            if final == BookingStatus.CONFIRMED
            else PayOutcome.NOT_HELD,
            booking_status=final,
        )

    @workflow.signal(name=SIGNAL_PAYMENT_SUCCEEDED)
    def payment_succeeded(self, notice: PaymentNotice) -> None:
        if notice.provider_event_id not in self.seen_notices:
            self.seen_notices.add(notice.provider_event_id)
            self.notices.append(notice)

    @workflow.signal(name=SIGNAL_TRANSFER_RECEIVED)
    def transfer_received(self, notice: TransferNotice) -> None:
        if self.transfer is None:
            self.transfer = notice

    @workflow.update
    async def cancel(self, req: CancelInput) -> CancelResult:
        await workflow.wait_condition(lambda: self.status != BookingStatus.PENDING)
        if self.status.is_active and self.cancel_request is None:
            self.cancel_request = req
            self._log(f"cancel requested by {req.actor}: {req.reason}")
        await workflow.wait_condition(lambda: self.status.is_final)
        return CancelResult(booking_status=self.status, refunded=self.refunded)

    @cancel.validator
    def _refuse_cancel_once_handed_over(self, req: CancelInput) -> None:
        if self.handed_over:
            # confirmed, and this run is ending: the cancellation runs in its own workflow
            raise ApplicationError(
                "confirmed: cancel through BookingChangeWorkflow", type=HANDED_OVER
            )

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
            # retried until Postgres answers: a buyer whose reserve answered "pending" learns
            # the outcome from the booking (or the same Idempotency-Key) once it lands
            outcome = await workflow.execute_local_activity(
                RESERVE_SEATS,
                data,
                result_type=Reservation,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=common.DB_RETRY,
            )
        except ActivityError:
            # a non-retryable failure: nothing was taken (the insert and the seat update are
            # one statement); the buyer gets an error and may retry with the same key.
            outcome = Reservation(
                booking_id=data.booking_id,
                event_id=data.event_id,
                quantity=data.quantity,
                status=BookingStatus.REJECTED,
                reason=ReserveOutcome.UNAVAILABLE,
            )
        if (
            outcome.status == BookingStatus.HELD
            and (outcome.amount == 0 or data.channel is not None)
            and workflow.patched(CONFIRM_WITHOUT_CHARGE_PATCH)
        ):
            outcome = await self._confirm_without_charge(data, outcome)
        self.outcome = outcome
        self.status = outcome.status
        self._log(f"reserve: {outcome.status}" + (f" ({outcome.reason})" if outcome.reason else ""))
        if self.status == BookingStatus.REJECTED:
            self._set_status(BookingStatus.REJECTED)
            return await self._finish()
        if self.status == BookingStatus.HELD:
            self._details(None)
            if data.bank_transfer and workflow.patched(BANK_TRANSFER_PATCH):
                await self._await_transfer()
            else:
                await self._hold()
        if self.status == BookingStatus.CONFIRMED:
            await self._after_confirmation()
        elif (
            self.unanswered
            and workflow.patched(RECONCILE_UNANSWERED)
            and await self._reconcile(None)
        ):
            await self._settle_late()  # money moved after all: the late-payment rule
        await self._late_payments()
        if (
            self.transfer is not None
            and self.status != BookingStatus.CONFIRMED
            and workflow.patched(BANK_TRANSFER_PATCH)
        ):
            await self._settle_transfer(late=True)
        return await self._finish()

    async def _await_transfer(self) -> None:
        """A bank-transfer booking: the seats stay held for the whole window (a durable timer
        of days), with one reminder a day before it ends; finance's mark-paid (or a card
        payment after all) confirms it, the window's end releases the seats (the waitlist
        first)."""
        assert self.outcome is not None
        assert self.outcome.hold_expires_at is not None
        ends = self.outcome.hold_expires_at

        def done() -> bool:
            return self.transfer is not None or self.paid or self.cancel_request is not None

        remind_at = ends - TRANSFER_REMINDER_BEFORE
        if remind_at > workflow.now():
            try:
                await workflow.wait_condition(
                    done, timeout=(remind_at - workflow.now()).total_seconds()
                )
            except TimeoutError:
                await _local(REMIND_TRANSFER, self.data.booking_id, bool)
                self._log("transfer reminder sent")
        if not done():
            with contextlib.suppress(TimeoutError):  # the window ended
                await workflow.wait_condition(
                    done, timeout=max((ends - workflow.now()).total_seconds(), 0.001)
                )
        self.closing = True
        await workflow.wait_condition(lambda: not self.charging)
        if self.transfer is not None and await self._settle_transfer(late=False):
            return
        if self.paid:
            await _local(CONFIRM_BOOKING, self.data.booking_id, bool)
            self._set_status(BookingStatus.CONFIRMED)
            return
        cancel = self.cancel_request
        await self._release(
            BookingStatus.HELD,
            BookingStatus.CANCELLED if cancel else BookingStatus.EXPIRED,
            cancel.actor if cancel else "transfer-window",
            cancel.reason if cancel else "the bank transfer window ended",
        )

    async def _settle_transfer(self, *, late: bool) -> bool:
        """Finance marked the transfer arrived: confirmed (in the window, or after it when the
        seats are still free), else the booking shows ``refund_due``. True when confirmed."""
        assert self.transfer is not None
        outcome = await _local(SETTLE_BANK_TRANSFER, self.data.booking_id, str)
        self._log(f"bank transfer marked paid by {self.transfer.actor}: {outcome}")
        if outcome != BookingStatus.CONFIRMED:
            return False
        self._set_status(BookingStatus.CONFIRMED)
        if late:
            await self._after_confirmation()
        return True

    async def _confirm_without_charge(self, data: BookingInput, held: Reservation) -> Reservation:
        """A 0.00 booking (``free``) or an organizer's order (``comp``, ``box_office``): the
        charge is recorded with no provider call and the booking confirmed, before the reserve
        update answers (the buyer sees ``confirmed``, never a hold to pay). Should the
        confirmation be refused (it never is for a held 0.00 booking), the hold stays and runs
        its course like any other."""
        channel = data.channel or BookingChannel.ONLINE
        provider = NoChargeProvider.FREE if channel == BookingChannel.ONLINE else channel
        confirmed = await _local(
            CONFIRM_WITHOUT_CHARGE,
            NoChargeInput(
                booking_id=data.booking_id, provider=provider, channel=channel, note=data.note
            ),
            bool,
        )
        if not confirmed:
            return held
        self._log(f"confirmed without a charge ({provider})")
        workflow.upsert_search_attributes(
            [common.BOOKING_STATUS.value_set(BookingStatus.CONFIRMED)]
        )
        return held.model_copy(update={"status": BookingStatus.CONFIRMED, "hold_expires_at": None})

    async def _after_confirmation(self) -> None:
        if not workflow.patched(END_AT_CONFIRMATION):
            await self._confirmed()  # runs started before the patch: stay open, cancel here
            return
        if self.cancel_request is not None:  # asked while the payment was confirming
            await self._cancel_confirmed(self.cancel_request)
            return
        self.handed_over = True  # a later cancellation starts BookingChangeWorkflow

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
        if not self.paid and self.unanswered and workflow.patched(RECONCILE_UNANSWERED):
            self.paid = await self._reconcile(RECONCILE_BEFORE_RELEASE)
        if self.paid:
            await _local(CONFIRM_BOOKING, self.data.booking_id, bool)
            self._set_status(BookingStatus.CONFIRMED)
            return
        cancel = self.cancel_request
        await self._release(
            BookingStatus.HELD,
            BookingStatus.CANCELLED if cancel else BookingStatus.EXPIRED,
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
        await self._cancel_confirmed(self.cancel_request)

    async def _cancel_confirmed(self, cancel: CancelInput) -> None:
        refund = await steps.refund(self.data.booking_id)
        self.refunded = refund.refunded
        self._log(f"refunded {refund.amount} ({refund.provider_payment_id})")
        await self._release(
            BookingStatus.CONFIRMED, BookingStatus.CANCELLED, cancel.actor, cancel.reason
        )

    async def _release(
        self, from_status: BookingStatus, to_status: BookingStatus, actor: str, reason: str
    ) -> None:
        public = await steps.release(
            self.data.booking_id,
            self.data.event_id,
            self.data.quantity,
            from_status=from_status,
            to_status=to_status,
            actor=actor,
            reason=reason,
        )
        self._set_status(to_status)
        if not public:
            await steps.hand_over(self.data.event_id)
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
        if recorded and self.status == BookingStatus.HELD and not self.closing:
            self.paid = True
        return recorded

    async def _late_payments(self) -> None:
        """A payment that arrives after the hold ended: confirm if the seats can still be
        taken atomically, otherwise refund it automatically."""
        while self.notices:
            notice = self.notices.pop(0)
            if self.status == BookingStatus.CONFIRMED:
                continue  # already paid for; the provider reports the same payment again
            await self._record_notice(notice)
            await self._settle_late()

    async def _settle_late(self) -> None:
        """The booking's hold ended but its payment succeeded: take the seats again when they
        are still free (confirmed), otherwise refund."""
        self.settling = True
        outcome = await _local(SETTLE_LATE_PAYMENT, self.data.booking_id, LateSettlement)
        if outcome == LateSettlement.CONFIRMED:
            self._set_status(BookingStatus.CONFIRMED)
            self._log("late payment accepted: seats taken again")
            await self._after_confirmation()
        else:
            refund = await steps.refund(self.data.booking_id, cancel_expired_booking=True)
            self.refunded = refund.refunded
            if self.status == BookingStatus.EXPIRED:
                self._set_status(BookingStatus.CANCELLED)
            self._log("late payment refunded: the seats were gone")

    async def _reconcile(self, within: timedelta | None) -> bool:
        """Settle the unanswered charges (oldest first); True when one of them succeeded.
        Those the payments worker cannot settle ``within`` stay for later (``None``: wait)."""
        succeeded = False
        while self.unanswered:
            attempt = self.unanswered[0]
            try:
                charge = await steps.payments(
                    RECONCILE_CHARGE, attempt, ChargeResult, schedule_to_close=within
                )
            except ActivityError:
                self._log(f"payment attempt {attempt.attempt}: still unanswered")
                return succeeded
            self.unanswered.pop(0)
            self._log(
                f"payment attempt {attempt.attempt} reconciled: "
                + ("succeeded" if charge.succeeded else charge.pending or "not charged")
            )
            succeeded = succeeded or charge.succeeded
        return succeeded

    async def _finish(self) -> BookingState:
        self.finishing = True
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.state()

    def _set_status(self, status: BookingStatus) -> None:
        self.status = status
        workflow.upsert_search_attributes([common.BOOKING_STATUS.value_set(status)])
        self._details(None)

    def _charge_window(self) -> timedelta:
        assert self.outcome is not None
        assert self.outcome.hold_expires_at is not None
        return max(self.outcome.hold_expires_at - workflow.now(), MIN_CHARGE_WINDOW)

    def _details(self, note: str | None) -> None:
        """What support sees at a glance in the Temporal UI ("current details")."""
        o = self.outcome
        if o is None:
            return
        seats = f"{self.data.quantity} seat{'s' if self.data.quantity != 1 else ''}"
        amount = f"{o.amount:.2f} {o.currency}" if o.currency else ""
        if self.status == BookingStatus.HELD and o.hold_expires_at is not None:
            line = f"held until {o.hold_expires_at:%Y-%m-%d %H:%M:%S} UTC"
        else:
            line = str(self.status)
        parts = [line, f"{seats}, {amount}".rstrip(", ")]
        if note:
            parts.append(note)
        workflow.set_current_details("; ".join(parts))

    def _log(self, line: str) -> None:
        self.history.append(f"{workflow.now().isoformat()} {line}")
