"""Our record of money moved: charges and refunds with the provider's ids. Every row is keyed
by an idempotency key derived from the booking (and attempt), so a retried activity records
nothing twice; a partial unique index allows one successful charge and one refund per booking.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from evently.db.models import Payment
from evently.enums import PaymentKind, PaymentStatus


def charge_key(booking_id: uuid.UUID, attempt: int) -> str:
    return f"{booking_id}-charge-{attempt}"


def refund_key(booking_id: uuid.UUID) -> str:
    return f"{booking_id}-refund"


async def record_charge(
    conn: AsyncConnection,
    *,
    booking_id: uuid.UUID,
    idempotency_key: str,
    provider: str,
    provider_payment_id: str,
    succeeded: bool,
    failure_code: str | None,
    payment_method: str,
    amount: Decimal,
    currency: str,
) -> None:
    await conn.execute(
        pg_insert(Payment)
        .values(
            id=uuid.uuid4(),
            booking_id=booking_id,
            kind=PaymentKind.CHARGE,
            status=PaymentStatus.SUCCEEDED if succeeded else PaymentStatus.FAILED,
            provider=provider,
            provider_payment_id=provider_payment_id,
            idempotency_key=idempotency_key,
            payment_method=payment_method,
            amount=amount,
            currency=currency,
            failure_code=failure_code,
        )
        .on_conflict_do_nothing()
    )


async def record_provider_payment(
    conn: AsyncConnection,
    *,
    booking_id: uuid.UUID,
    provider: str,
    provider_payment_id: str,
    amount: Decimal,
    currency: str,
) -> bool:
    """A payment the provider reports by webhook (money already moved). False when the
    booking already has a different successful charge (nothing recorded)."""
    res = await conn.execute(
        pg_insert(Payment)
        .values(
            id=uuid.uuid4(),
            booking_id=booking_id,
            kind=PaymentKind.CHARGE,
            status=PaymentStatus.SUCCEEDED,
            provider=provider,
            provider_payment_id=provider_payment_id,
            idempotency_key=f"{booking_id}-webhook-{provider_payment_id}",
            amount=amount,
            currency=currency,
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
        {"b": booking_id, "p": provider_payment_id},
    )
    return same is not None


@dataclass(frozen=True)
class Charge:
    provider_payment_id: str
    amount: Decimal
    currency: str


async def successful_charge(conn: AsyncConnection, booking_id: uuid.UUID) -> Charge | None:
    row = (
        await conn.execute(
            text(
                "SELECT provider_payment_id, amount, currency FROM payments "
                "WHERE booking_id = :b AND kind = 'charge' AND status = 'succeeded'"
            ),
            {"b": booking_id},
        )
    ).first()
    return Charge(row.provider_payment_id, row.amount, row.currency) if row else None


async def record_refund(
    conn: AsyncConnection,
    *,
    booking_id: uuid.UUID,
    provider: str,
    provider_payment_id: str,
    charge: Charge,
    cancel_expired_booking: bool,
) -> None:
    """The refund, the buyer's notice and, for a late payment refunded, the expired booking
    → cancelled: one transaction (the caller's)."""
    await conn.execute(
        pg_insert(Payment)
        .values(
            id=uuid.uuid4(),
            booking_id=booking_id,
            kind=PaymentKind.REFUND,
            status=PaymentStatus.SUCCEEDED,
            provider=provider,
            provider_payment_id=provider_payment_id,
            idempotency_key=refund_key(booking_id),
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
            "b": booking_id,
            "amount": str(charge.amount),
            "dedupe": f"booking:{booking_id}:refund_issued",
        },
    )
    if cancel_expired_booking:
        await conn.execute(
            text(
                "UPDATE bookings SET status = 'cancelled', updated_at = now(), "
                "end_reason = 'late payment refunded: the seats were gone' "
                "WHERE id = :b AND status = 'expired'"
            ),
            {"b": booking_id},
        )
