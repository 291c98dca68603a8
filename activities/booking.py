"""Booking activities: the Postgres seat changes (local activities on the booking queue, so
the reserve path costs no extra Temporal round trip) and payments/notifications (regular
activities on the payments queue). Every write is keyed by the booking or payment id."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.booking_models import (
    CHARGE,
    CONFIRM_BOOKING,
    NOTIFY,
    RECORD_PROVIDER_PAYMENT,
    REFUND,
    RELEASE_BOOKING,
    RESERVE_SEATS,
    SETTLE_LATE_PAYMENT,
    ChargeInput,
    ChargeResult,
    NotifyInput,
    ProviderPaymentInput,
    RefundInput,
    RefundResult,
    ReleaseInput,
    ReserveOutcome,
)
from evently import inventory, metrics
from evently.db.models import Notification, Payment
from evently.inventory import Counters, Gate
from evently.payments.provider import PaymentProvider, get_provider
from evently.resources import Resources
from workflows.booking_models import BookingInput, booking_workflow_id

log = logging.getLogger("evently.activities.booking")


class InventoryActivities:
    """Seat changes. After each committed change: write-through the availability cache, give
    seats back to the sold-out gate, and re-index the event when it flips sold out ↔ on sale."""

    def __init__(self, res: Resources) -> None:
        self.res = res
        self.gate = Gate(res.redis)
        self._autocommit = res.engine.execution_options(isolation_level="AUTOCOMMIT")

    async def _after_change(self, counters: Counters, before_available: int | None) -> None:
        from evently import availability

        await availability.store(
            self.res.redis,
            availability.Availability(
                event_id=counters.event_id,
                capacity=counters.capacity,
                available=counters.available,
                held=counters.held,
                sold=counters.sold,
                status=counters.status,
                version=availability.version_of(counters.updated_at),
            ),
        )
        flipped = before_available is not None and (
            (before_available > 0) != (counters.available > 0)
        )
        if flipped:
            from evently.search_sync import request_index_write

            try:
                await request_index_write(self.res.temporal, counters.event_id)
            except Exception as exc:  # the index catches up on the next change or a reindex
                log.warning("could not request an index write: %s", exc)

    @activity.defn(name=RESERVE_SEATS)
    async def reserve_seats(self, data: BookingInput) -> ReserveOutcome:
        if data.waitlist_entry_id is not None:
            return await self._reserve_from_offer(data)
        async with self._autocommit.connect() as conn:
            r = await inventory.reserve(
                conn,
                booking_id=data.booking_id,
                event_id=data.event_id,
                user_id=data.user_id,
                quantity=data.quantity,
                hold_seconds=data.hold_seconds,
                workflow_id=booking_workflow_id(data.booking_id),
            )
        if r.counters is not None:
            metrics.BOOKINGS.labels(outcome="reserved").inc()
            await self._after_change(r.counters, r.counters.available + data.quantity)
        elif r.status == "rejected":
            metrics.BOOKINGS.labels(outcome="rejected").inc()
            # the API took these seats from the gate before starting us: give them back
            await self.gate.give_back(data.event_id, data.quantity, f"{data.booking_id}:reserve")
        return ReserveOutcome(
            status=r.status,
            amount=r.amount,
            currency=r.currency,
            hold_expires_at=r.hold_expires_at,
            event_ends_at=r.event_ends_at,
            reason=r.reason,
        )

    async def _reserve_from_offer(self, data: BookingInput) -> ReserveOutcome:
        """A waitlist offer accepted: adopt its seats (no gate, no counter change)."""
        from evently import availability

        assert data.waitlist_entry_id is not None
        async with self._autocommit.connect() as conn:
            r = await inventory.reserve_from_offer(
                conn,
                booking_id=data.booking_id,
                entry_id=data.waitlist_entry_id,
                event_id=data.event_id,
                user_id=data.user_id,
                quantity=data.quantity,
                hold_seconds=data.hold_seconds,
                workflow_id=booking_workflow_id(data.booking_id),
            )
            if r.status == "held":
                await availability.refresh(self.res.redis, conn, data.event_id)  # waitlist_length
        metrics.BOOKINGS.labels(outcome="reserved" if r.status == "held" else "rejected").inc()
        return ReserveOutcome(
            status=r.status,
            amount=r.amount,
            currency=r.currency,
            hold_expires_at=r.hold_expires_at,
            event_ends_at=r.event_ends_at,
            reason=r.reason,
        )

    @activity.defn(name=CONFIRM_BOOKING)
    async def confirm_booking(self, booking_id: uuid.UUID) -> bool:
        async with self._autocommit.connect() as conn:
            counters = await inventory.confirm(conn, booking_id)
            if counters is None:
                status = await conn.scalar(
                    text("SELECT status FROM bookings WHERE id = :id"), {"id": booking_id}
                )
                if status != "confirmed":
                    raise ApplicationError(
                        f"booking {booking_id} cannot be confirmed from {status!r}",
                        type="NotConfirmable",
                        non_retryable=True,
                    )
                return True
        metrics.BOOKINGS.labels(outcome="confirmed").inc()
        await self._after_change(counters, None)
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
            counters = await inventory.release(
                conn,
                data.booking_id,
                from_status=data.from_status,
                to_status=data.to_status,
                actor=data.actor,
                reason=data.reason,
            )
            if counters is None:
                status = await conn.scalar(
                    text("SELECT status FROM bookings WHERE id = :id"), {"id": data.booking_id}
                )
                if status not in ("expired", "cancelled"):
                    raise ApplicationError(
                        f"booking {data.booking_id} cannot be released from {status!r}",
                        type="NotReleasable",
                        non_retryable=True,
                    )
                pooled = await conn.scalar(
                    text("SELECT waitlist_pool FROM events WHERE id = :id"), {"id": data.event_id}
                )
        if counters is not None:
            metrics.BOOKINGS.labels(outcome=data.to_status).inc()
            public = data.quantity - counters.to_waitlist
            await self._after_change(counters, counters.available - public)
            if counters.to_waitlist:
                return False
        elif pooled:
            await self.gate.give_back(data.event_id, data.quantity, f"{data.booking_id}:release")
            return False
        await self.gate.give_back(data.event_id, data.quantity, f"{data.booking_id}:release")
        return True

    @activity.defn(name=SETTLE_LATE_PAYMENT)
    async def settle_late_payment(self, booking_id: uuid.UUID) -> str:
        """``confirmed`` (seats taken again, or already confirmed), ``held`` or ``refund``."""
        async with self.res.engine.begin() as conn:
            outcome, counters = await inventory.settle_late_payment(conn, booking_id)
        if counters is not None:
            metrics.BOOKINGS.labels(outcome="confirmed").inc()
            await self._after_change(counters, counters.available + 1)
            await self.gate.reset(counters.event_id)
        return outcome


class PaymentActivities:
    """Provider calls and their records. A charge is keyed by (booking, attempt), a refund by
    the booking: a retried activity finds its row and never charges or refunds twice."""

    def __init__(self, res: Resources, provider: PaymentProvider | None = None) -> None:
        self.res = res
        self.provider = provider or get_provider(res.settings.payment_provider)

    @activity.defn(name=CHARGE)
    async def charge_payment(self, data: ChargeInput) -> ChargeResult:
        key = f"{data.booking_id}-charge-{data.attempt}"
        result = await self.provider.charge(
            idempotency_key=key,
            amount=data.amount,
            currency=data.currency,
            payment_method=data.payment_method,
        )
        async with self.res.engine.begin() as conn:
            await conn.execute(
                pg_insert(Payment)
                .values(
                    id=uuid.uuid4(),
                    booking_id=data.booking_id,
                    kind="charge",
                    status="succeeded" if result.succeeded else "failed",
                    provider=self.provider.name,
                    provider_payment_id=result.provider_payment_id,
                    idempotency_key=key,
                    payment_method=data.payment_method,
                    amount=data.amount,
                    currency=data.currency,
                    failure_code=result.failure_code,
                )
                .on_conflict_do_nothing()
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
            res = await conn.execute(
                pg_insert(Payment)
                .values(
                    id=uuid.uuid4(),
                    booking_id=data.booking_id,
                    kind="charge",
                    status="succeeded",
                    provider=self.provider.name,
                    provider_payment_id=data.provider_payment_id,
                    idempotency_key=f"{data.booking_id}-webhook-{data.provider_payment_id}",
                    amount=data.amount,
                    currency=data.currency,
                )
                .on_conflict_do_nothing()
                .returning(Payment.id)
            )
            if res.first() is not None:
                return True
            same = await conn.scalar(
                text(
                    "SELECT 1 FROM payments WHERE booking_id = :b AND kind = 'charge' "
                    "AND status = 'succeeded' AND provider_payment_id = :p"
                ),
                {"b": data.booking_id, "p": data.provider_payment_id},
            )
            return same is not None

    @activity.defn(name=REFUND)
    async def refund_payment(self, data: RefundInput) -> RefundResult:
        """Refund the booking's successful charge, once (idempotent by booking id)."""
        key = f"{data.booking_id}-refund"
        async with self.res.engine.connect() as conn:
            charge = (
                await conn.execute(
                    text(
                        "SELECT provider_payment_id, amount, currency FROM payments "
                        "WHERE booking_id = :b AND kind = 'charge' AND status = 'succeeded'"
                    ),
                    {"b": data.booking_id},
                )
            ).first()
        if charge is None:
            return RefundResult(refunded=False)
        result = await self.provider.refund(
            idempotency_key=key,
            charge_id=charge.provider_payment_id,
            amount=charge.amount,
            currency=charge.currency,
        )
        if not result.succeeded:
            raise ApplicationError("the provider refused the refund; retrying", type="RefundFailed")
        async with self.res.engine.begin() as conn:
            await conn.execute(
                pg_insert(Payment)
                .values(
                    id=uuid.uuid4(),
                    booking_id=data.booking_id,
                    kind="refund",
                    status="succeeded",
                    provider=self.provider.name,
                    provider_payment_id=result.provider_payment_id,
                    idempotency_key=key,
                    amount=charge.amount,
                    currency=charge.currency,
                )
                .on_conflict_do_nothing()
            )
            await conn.execute(
                text(
                    "INSERT INTO notifications "
                    "(id, user_id, kind, dedupe_key, booking_id, payload) "
                    "SELECT gen_random_uuid(), user_id, 'refund_issued', :dedupe, id, "
                    "jsonb_build_object('amount', CAST(:amount AS text), 'currency', currency) "
                    "FROM bookings WHERE id = :b ON CONFLICT (dedupe_key) DO NOTHING"
                ),
                {
                    "b": data.booking_id,
                    "amount": str(charge.amount),
                    "dedupe": f"booking:{data.booking_id}:refund_issued",
                },
            )
            if data.cancel_expired_booking:
                await conn.execute(
                    text(
                        "UPDATE bookings SET status = 'cancelled', updated_at = now(), "
                        "end_reason = 'late payment refunded: the seats were gone' "
                        "WHERE id = :b AND status = 'expired'"
                    ),
                    {"b": data.booking_id},
                )
        metrics.BOOKINGS.labels(outcome="refunded").inc()
        return RefundResult(
            refunded=True, provider_payment_id=result.provider_payment_id, amount=charge.amount
        )

    @activity.defn(name=NOTIFY)
    async def notify_user(self, data: NotifyInput) -> None:
        async with self.res.engine.begin() as conn:
            await conn.execute(
                pg_insert(Notification)
                .values(
                    id=uuid.uuid4(),
                    user_id=data.user_id,
                    kind=data.kind,
                    dedupe_key=data.dedupe_key,
                    booking_id=data.booking_id,
                    waitlist_entry_id=data.waitlist_entry_id,
                    payload=data.payload,
                )
                .on_conflict_do_nothing(index_elements=["dedupe_key"])
            )
