"""Payment provider calls and our record of them: regular activities on the payments task
queue. A charge is keyed by (booking, attempt), a refund by the booking: a retried activity
finds its row and never charges or refunds twice.

A charge is two provider calls with our own record in between (evently/payments/provider.py):
prepare (no money moves) → record the provider's payment id in ``payment_attempts`` → confirm
that recorded payment. A retry of the activity finds the record and confirms, or just reads, the
same payment, so no second charge even where the provider ignores idempotency keys. Before a new
attempt, earlier attempts still waiting for 3-D Secure are cancelled (or taken, when the buyer
finished one meanwhile), so a buyer who tries again never pays twice.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import text
from temporalio import activity
from temporalio.exceptions import ApplicationError

from evently import booking_changes
from evently.enums import (
    BookingChangeStatus,
    BookingStatus,
    PaymentAttemptStatus,
    PaymentKind,
    PaymentStatus,
    PayOutcome,
)
from evently.infra import metrics
from evently.infra.resources import Resources
from evently.payments import records
from evently.payments.factory import get_provider
from evently.payments.provider import PaymentProvider, ProviderResult
from workflows.booking.contract import (
    CHARGE,
    NO_CHANGE,
    RECONCILE_CHARGE,
    RECORD_PROVIDER_PAYMENT,
    REFUND,
    REFUND_CHANGE,
    REFUND_FAILED,
    ChangeInput,
    ChargeInput,
    ChargeResult,
    ProviderPaymentInput,
    RefundInput,
    RefundResult,
)
from workflows.connection import TemporalClient

# the failure code of a charge voided before it reached the provider (its answer was lost)
UNANSWERED = "unanswered"

_PENDING = {
    PaymentStatus.REQUIRES_ACTION: PayOutcome.REQUIRES_ACTION,
    PaymentStatus.PROCESSING: PayOutcome.PROCESSING,
}


class PaymentActivities:
    def __init__(
        self,
        res: Resources,
        temporal: TemporalClient | None = None,
        provider: PaymentProvider | None = None,
    ) -> None:
        self.res = res
        self.provider = provider or get_provider(res.settings.payment_provider, res.settings)

    @activity.defn(name=CHARGE)
    async def charge_payment(self, data: ChargeInput) -> ChargeResult:
        key = records.charge_key(data.booking_id, data.attempt)
        async with self.res.engine.connect() as conn:
            mine = await records.find_attempt(conn, key)
            earlier = await records.earlier_attempts(conn, data.booking_id, before=data.attempt)
        for old in earlier:
            # the buyer finished an earlier attempt (3-D Secure done, its webhook maybe still on
            # the way): that payment counts; one still waiting is cancelled first
            assert old.provider_payment_id is not None
            if old.status is PaymentAttemptStatus.SUCCEEDED:
                state = ProviderResult(old.provider_payment_id, True)
            else:
                state = await self.provider.cancel_charge(old.provider_payment_id)
            await self._settle(old, state)
            if state.state in (PaymentStatus.SUCCEEDED, PaymentStatus.PROCESSING):
                return _answer(state)
        fresh = False
        if mine is None:
            prepared = await self.provider.prepare_charge(
                idempotency_key=key,
                amount=data.amount,
                currency=data.currency,
                payment_method=data.payment_method,
                metadata={"booking_id": str(data.booking_id), "attempt": str(data.attempt)},
            )
            created = prepared.state is PaymentStatus.REQUIRES_CONFIRMATION
            async with self.res.engine.begin() as conn:
                mine = await records.record_attempt(
                    conn,
                    idempotency_key=key,
                    booking_id=data.booking_id,
                    attempt=data.attempt,
                    provider=self.provider.name,
                    provider_payment_id=prepared.provider_payment_id or None,
                    status=PaymentAttemptStatus(prepared.state),
                    payment_method=data.payment_method,
                    amount=data.amount,
                    currency=data.currency,
                    failure_code=prepared.failure_code,
                )
            if not created:  # refused before any payment existed (an unusable payment method)
                await self._settle(mine, prepared)
                return _answer(prepared)
            fresh = mine.provider_payment_id == prepared.provider_payment_id
        if mine.status.is_final or mine.provider_payment_id is None:
            return ChargeResult(
                succeeded=mine.status is PaymentAttemptStatus.SUCCEEDED,
                provider_payment_id=mine.provider_payment_id or "",
                failure_code=mine.failure_code,
            )
        result = await self.provider.confirm_charge(
            mine.provider_payment_id,
            idempotency_key=key,
            payment_method=data.payment_method,
            fresh=fresh,
        )
        await self._settle(mine, result)
        return _answer(result)

    @activity.defn(name=RECONCILE_CHARGE)
    async def reconcile_charge(self, data: ChargeInput) -> ChargeResult:
        """Where a charge stands whose answer never reached the workflow (Temporal or the
        payments worker was down while it ran, or it ran past its window), made final:

        - never recorded: a voided attempt is recorded under the charge's key, so a charge
          activity still running somewhere (a zombie) finds it and never confirms a payment;
        - prepared or waiting: the provider payment is cancelled (Stripe refuses to confirm a
          cancelled PaymentIntent; the buyer may have finished it first: then it stands);
        - final: read.

        A succeeded answer means money moved: the workflow confirms the booking (or refunds)."""
        key = records.charge_key(data.booking_id, data.attempt)
        async with self.res.engine.begin() as conn:
            mine = await records.record_attempt(
                conn,
                idempotency_key=key,
                booking_id=data.booking_id,
                attempt=data.attempt,
                provider=self.provider.name,
                provider_payment_id=None,
                status=PaymentAttemptStatus.FAILED,
                payment_method=data.payment_method,
                amount=data.amount,
                currency=data.currency,
                failure_code=UNANSWERED,
            )
        if mine.provider_payment_id is None or mine.status.is_final:
            return ChargeResult(
                succeeded=mine.status is PaymentAttemptStatus.SUCCEEDED,
                provider_payment_id=mine.provider_payment_id or "",
                failure_code=mine.failure_code,
            )
        state = await self.provider.cancel_charge(mine.provider_payment_id)
        await self._settle(mine, state)
        activity.logger.info(
            "unanswered charge %s reconciled: %s", mine.provider_payment_id, state.state
        )
        return _answer(state)

    async def _settle(self, attempt: records.Attempt, result: ProviderResult) -> None:
        """Record where the attempt stands; a final outcome also goes into ``payments``."""
        async with self.res.engine.begin() as conn:
            if attempt.provider_payment_id is not None:
                await records.settle_attempt(
                    conn,
                    attempt.provider_payment_id,
                    PaymentAttemptStatus(result.state),
                    result.failure_code,
                )
            if result.state.is_final:
                await records.record_charge(
                    conn,
                    booking_id=attempt.booking_id,
                    idempotency_key=attempt.idempotency_key,
                    provider=self.provider.name,
                    # a payment method refused before any payment existed has no provider id
                    provider_payment_id=attempt.provider_payment_id
                    or f"none-{attempt.idempotency_key}",
                    succeeded=result.succeeded,
                    failure_code=result.failure_code,
                    payment_method=attempt.payment_method,
                    amount=attempt.amount,
                    currency=attempt.currency,
                )

    @activity.defn(name=RECORD_PROVIDER_PAYMENT)
    async def record_provider_payment(self, data: ProviderPaymentInput) -> bool:
        """A payment the provider reports by webhook (money already moved). Returns False when
        the booking already has a different successful charge (nothing recorded)."""
        async with self.res.engine.begin() as conn:
            return await records.record_provider_payment(
                conn,
                booking_id=data.booking_id,
                provider=self.provider.name,
                provider_payment_id=data.provider_payment_id,
                amount=data.amount,
                currency=data.currency,
            )

    @activity.defn(name=REFUND)
    async def refund_payment(self, data: RefundInput) -> RefundResult:
        """Refund the booking's successful charge, once (idempotent by booking id): what is
        left of it after the partial refunds of cancelled lines. The booking row is locked
        from the amount's read to the refund's record, so a partial cancellation's refund
        (which takes the same lock) never overlaps it."""
        async with self.res.engine.begin() as conn:
            await conn.execute(
                text("SELECT 1 FROM bookings WHERE id = :id FOR UPDATE"), {"id": data.booking_id}
            )
            charge = await records.successful_charge(conn, data.booking_id)
            if charge is None:
                return RefundResult(refunded=False)
            partial = Decimal(
                await conn.scalar(
                    text(
                        "SELECT COALESCE(sum(amount), 0) FROM payments WHERE booking_id = :b "
                        "AND kind = 'partial_refund' AND status = 'succeeded'"
                    ),
                    {"b": data.booking_id},
                )
                or 0
            )
            left = records.Charge(
                charge.provider_payment_id,
                max(charge.amount - partial, Decimal(0)),
                charge.currency,
            )
            if records.refunds_without_provider(charge):
                # issue 29: free, comp, box office: no provider took it, none gives it back
                result = ProviderResult(f"{charge.provider_payment_id}-refund", True)
                provider_name = charge.provider
            else:
                result = await self.provider.refund(
                    idempotency_key=records.refund_key(data.booking_id),
                    charge_id=charge.provider_payment_id,
                    amount=left.amount,
                    currency=charge.currency,
                )
                provider_name = self.provider.name
            # a refund still processing (Stripe: pending) is accepted: it settles at the provider
            if result.state not in (PaymentStatus.SUCCEEDED, PaymentStatus.PROCESSING):
                raise ApplicationError(
                    "the provider refused the refund; retrying", type=REFUND_FAILED
                )
            await records.record_refund(
                conn,
                booking_id=data.booking_id,
                provider=provider_name,
                provider_payment_id=result.provider_payment_id,
                charge=left,
                cancel_expired_booking=data.cancel_expired_booking,
            )
        metrics.BOOKINGS.labels(outcome="refunded").inc()
        return RefundResult(
            refunded=True, provider_payment_id=result.provider_payment_id, amount=left.amount
        )

    @activity.defn(name=REFUND_CHANGE)
    async def refund_change(self, data: ChangeInput) -> RefundResult:
        """Refund a partial cancellation's part, once (keyed by booking and change number),
        under the booking's row lock: nothing when the booking was cancelled or refunded
        meanwhile (the change is void: that refund covered these seats)."""
        async with self.res.engine.begin() as conn:
            booking = (
                await conn.execute(
                    text("SELECT status FROM bookings WHERE id = :id FOR UPDATE"),
                    {"id": data.booking_id},
                )
            ).first()
            change = await booking_changes.get(conn, data.booking_id, data.change_no)
            if booking is None or change is None:
                raise ApplicationError("no such change", type=NO_CHANGE, non_retryable=True)
            if change.status in (BookingChangeStatus.REFUNDED, BookingChangeStatus.DONE):
                return RefundResult(refunded=True, amount=change.refund_amount)
            whole = await conn.scalar(
                text(
                    "SELECT count(*) FROM payments WHERE booking_id = :b AND kind = :refund "
                    "AND status = :succeeded"
                ),
                {
                    "b": data.booking_id,
                    "refund": PaymentKind.REFUND.value,
                    "succeeded": PaymentStatus.SUCCEEDED.value,
                },
            )
            charge = await records.successful_charge(conn, data.booking_id)
            if (
                change.status == BookingChangeStatus.VOID
                or booking.status != BookingStatus.CONFIRMED
                or whole
                or not charge
            ):
                await booking_changes.settle_request(
                    conn, data.booking_id, data.change_no, BookingChangeStatus.VOID
                )
                return RefundResult(refunded=False)
            provider_id = None
            if change.refund_amount > 0 and records.refunds_without_provider(charge):
                # issue 29: a box-office sale's part, paid back at the door (no provider call)
                provider_id = f"{charge.provider_payment_id}-refund-{data.change_no}"
                await records.record_partial_refund(
                    conn,
                    booking_id=data.booking_id,
                    change_no=data.change_no,
                    provider=charge.provider,
                    provider_payment_id=provider_id,
                    amount=change.refund_amount,
                    currency=charge.currency,
                )
            elif change.refund_amount > 0:
                result = await self.provider.refund(
                    idempotency_key=booking_changes.refund_key(data.booking_id, data.change_no),
                    charge_id=charge.provider_payment_id,
                    amount=change.refund_amount,
                    currency=charge.currency,
                )
                if result.state not in (PaymentStatus.SUCCEEDED, PaymentStatus.PROCESSING):
                    raise ApplicationError(
                        "the provider refused the refund; retrying", type=REFUND_FAILED
                    )
                provider_id = result.provider_payment_id
                await records.record_partial_refund(
                    conn,
                    booking_id=data.booking_id,
                    change_no=data.change_no,
                    provider=self.provider.name,
                    provider_payment_id=provider_id,
                    amount=change.refund_amount,
                    currency=charge.currency,
                )
            await booking_changes.settle_request(
                conn, data.booking_id, data.change_no, BookingChangeStatus.REFUNDED
            )
        metrics.BOOKINGS.labels(outcome="partially_refunded").inc()
        return RefundResult(
            refunded=True, provider_payment_id=provider_id, amount=change.refund_amount
        )


def _answer(result: ProviderResult) -> ChargeResult:
    return ChargeResult(
        succeeded=result.succeeded,
        provider_payment_id=result.provider_payment_id,
        failure_code=result.failure_code,
        pending=_PENDING.get(result.state),
        client_secret=result.client_secret,
    )
