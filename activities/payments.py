"""Payment provider calls and our record of them: regular activities on the payments task
queue. A charge is keyed by (booking, attempt), a refund by the booking: a retried activity
finds its row and never charges or refunds twice."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from evently.infra import metrics
from evently.infra.resources import Resources
from evently.payments import records
from evently.payments.provider import PaymentProvider, get_provider
from workflows.booking.contract import (
    CHARGE,
    RECORD_PROVIDER_PAYMENT,
    REFUND,
    ChargeInput,
    ChargeResult,
    ProviderPaymentInput,
    RefundInput,
    RefundResult,
)
from workflows.connection import TemporalClient


class PaymentActivities:
    def __init__(
        self,
        res: Resources,
        temporal: TemporalClient | None = None,
        provider: PaymentProvider | None = None,
    ) -> None:
        self.res = res
        self.provider = provider or get_provider(res.settings.payment_provider)

    @activity.defn(name=CHARGE)
    async def charge_payment(self, data: ChargeInput) -> ChargeResult:
        key = records.charge_key(data.booking_id, data.attempt)
        result = await self.provider.charge(
            idempotency_key=key,
            amount=data.amount,
            currency=data.currency,
            payment_method=data.payment_method,
        )
        async with self.res.engine.begin() as conn:
            await records.record_charge(
                conn,
                booking_id=data.booking_id,
                idempotency_key=key,
                provider=self.provider.name,
                provider_payment_id=result.provider_payment_id,
                succeeded=result.succeeded,
                failure_code=result.failure_code,
                payment_method=data.payment_method,
                amount=data.amount,
                currency=data.currency,
            )
        return ChargeResult(
            succeeded=result.succeeded,
            provider_payment_id=result.provider_payment_id,
            failure_code=result.failure_code,
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
        """Refund the booking's successful charge, once (idempotent by booking id)."""
        async with self.res.engine.connect() as conn:
            charge = await records.successful_charge(conn, data.booking_id)
        if charge is None:
            return RefundResult(refunded=False)
        result = await self.provider.refund(
            idempotency_key=records.refund_key(data.booking_id),
            charge_id=charge.provider_payment_id,
            amount=charge.amount,
            currency=charge.currency,
        )
        if not result.succeeded:
            raise ApplicationError("the provider refused the refund; retrying", type="RefundFailed")
        async with self.res.engine.begin() as conn:
            await records.record_refund(
                conn,
                booking_id=data.booking_id,
                provider=self.provider.name,
                provider_payment_id=result.provider_payment_id,
                charge=charge,
                cancel_expired_booking=data.cancel_expired_booking,
            )
        metrics.BOOKINGS.labels(outcome="refunded").inc()
        return RefundResult(
            refunded=True, provider_payment_id=result.provider_payment_id, amount=charge.amount
        )
