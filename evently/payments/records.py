"""Our record of money moved: charges and refunds with the provider's ids. Every row is keyed
by an idempotency key derived from the booking (and attempt), so a retried activity records
nothing twice; a partial unique index allows one successful charge and one refund per booking.

Charge attempts (``payment_attempts``) record the provider's payment id before any money moves,
and where each attempt stands (3-D Secure pending, succeeded, failed): the charge activity and
the Stripe webhook read and settle them here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from evently.db.models import Payment, PaymentAttempt
from evently.enums import NoChargeProvider, PaymentAttemptStatus, PaymentKind, PaymentStatus


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
    provider: str = ""  # issue 29: ``free``/``comp``/``box_office`` were never a provider's


def refunds_without_provider(charge: Charge) -> bool:
    """A charge no provider took (a 0.00 booking, a comp, a box-office sale): its refund is
    recorded under the same provider with no provider call (box office: paid back at the
    door)."""
    return charge.provider in {p.value for p in NoChargeProvider}


async def successful_charge(conn: AsyncConnection, booking_id: uuid.UUID) -> Charge | None:
    row = (
        await conn.execute(
            text(
                "SELECT provider_payment_id, amount, currency, provider FROM payments "
                "WHERE booking_id = :b AND kind = 'charge' AND status = 'succeeded'"
            ),
            {"b": booking_id},
        )
    ).first()
    if row is None:
        return None
    return Charge(row.provider_payment_id, row.amount, row.currency, row.provider)


async def _record_succeeded(
    conn: AsyncConnection,
    booking_id: uuid.UUID,
    kind: PaymentKind,
    idempotency_key: str,
    provider: str,
    provider_payment_id: str,
    amount: Decimal,
    currency: str,
) -> None:
    """A succeeded payment row, once per idempotency key."""
    await conn.execute(
        pg_insert(Payment)
        .values(
            id=uuid.uuid4(),
            booking_id=booking_id,
            kind=kind,
            status=PaymentStatus.SUCCEEDED,
            provider=provider,
            provider_payment_id=provider_payment_id,
            idempotency_key=idempotency_key,
            amount=amount,
            currency=currency,
        )
        .on_conflict_do_nothing()
    )


async def record_partial_refund(
    conn: AsyncConnection,
    *,
    booking_id: uuid.UUID,
    change_no: int,
    provider: str,
    provider_payment_id: str,
    amount: Decimal,
    currency: str,
) -> None:
    """A partial cancellation's refund (keyed by booking and change number) and the buyer's
    notice: one transaction (the caller's)."""
    await _record_succeeded(
        conn,
        booking_id,
        PaymentKind.PARTIAL_REFUND,
        f"{booking_id}-refund-{change_no}",
        provider,
        provider_payment_id,
        amount,
        currency,
    )
    await conn.execute(
        text(
            "INSERT INTO notifications "
            "(id, user_id, kind, dedupe_key, booking_id, payload) "
            "SELECT gen_random_uuid(), user_id, 'refund_issued', :dedupe, id, "
            "jsonb_build_object('amount', CAST(:amount AS text), 'currency', currency, "
            "'change', CAST(:change AS integer)) "
            "FROM bookings WHERE id = :b ON CONFLICT (dedupe_key) DO NOTHING"
        ),
        {
            "b": booking_id,
            "amount": str(amount),
            "change": change_no,
            "dedupe": f"booking:{booking_id}:refund_issued:{change_no}",
        },
    )


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
    await _record_succeeded(
        conn,
        booking_id,
        PaymentKind.REFUND,
        refund_key(booking_id),
        provider,
        provider_payment_id,
        charge.amount,
        charge.currency,
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


# ---- charge attempts ---------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    idempotency_key: str
    booking_id: uuid.UUID
    attempt: int
    provider: str
    provider_payment_id: str | None
    status: PaymentAttemptStatus
    payment_method: str
    amount: Decimal
    currency: str
    failure_code: str | None


_ATTEMPT_COLUMNS = (
    "idempotency_key, booking_id, attempt, provider, provider_payment_id, status, "
    "payment_method, amount, currency, failure_code"
)


def _attempt(row: object) -> Attempt:
    fields = row._mapping  # type: ignore[attr-defined]
    return Attempt(**{**fields, "status": PaymentAttemptStatus(fields["status"])})


async def find_attempt(conn: AsyncConnection, idempotency_key: str) -> Attempt | None:
    row = (
        await conn.execute(
            text(f"SELECT {_ATTEMPT_COLUMNS} FROM payment_attempts WHERE idempotency_key = :k"),
            {"k": idempotency_key},
        )
    ).first()
    return _attempt(row) if row else None


async def attempt_by_payment(conn: AsyncConnection, provider_payment_id: str) -> Attempt | None:
    """The attempt that created this provider payment (a webhook's way to its booking)."""
    row = (
        await conn.execute(
            text(f"SELECT {_ATTEMPT_COLUMNS} FROM payment_attempts WHERE provider_payment_id = :p"),
            {"p": provider_payment_id},
        )
    ).first()
    return _attempt(row) if row else None


async def earlier_attempts(
    conn: AsyncConnection, booking_id: uuid.UUID, *, before: int
) -> list[Attempt]:
    """The booking's earlier attempts that succeeded or may still succeed (prepared, waiting
    for 3-D Secure, processing), oldest first: a new attempt must not charge beside them."""
    rows = await conn.execute(
        text(
            f"SELECT {_ATTEMPT_COLUMNS} FROM payment_attempts WHERE booking_id = :b "
            "AND attempt < :n AND provider_payment_id IS NOT NULL AND status <> 'failed' "
            "ORDER BY attempt"
        ),
        {"b": booking_id, "n": before},
    )
    return [_attempt(r) for r in rows]


async def record_attempt(
    conn: AsyncConnection,
    *,
    idempotency_key: str,
    booking_id: uuid.UUID,
    attempt: int,
    provider: str,
    provider_payment_id: str | None,
    status: PaymentAttemptStatus,
    payment_method: str,
    amount: Decimal,
    currency: str,
    failure_code: str | None = None,
) -> Attempt:
    """Record the attempt (once per key) and return the stored one: when a concurrent run of
    the same activity recorded first, its payment id wins and this one is never confirmed."""
    await conn.execute(
        pg_insert(PaymentAttempt)
        .values(
            idempotency_key=idempotency_key,
            booking_id=booking_id,
            attempt=attempt,
            provider=provider,
            provider_payment_id=provider_payment_id,
            status=status,
            payment_method=payment_method,
            amount=amount,
            currency=currency,
            failure_code=failure_code,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    stored = await find_attempt(conn, idempotency_key)
    assert stored is not None
    return stored


async def settle_attempt(
    conn: AsyncConnection,
    provider_payment_id: str,
    status: PaymentAttemptStatus,
    failure_code: str | None = None,
) -> Attempt | None:
    """Where the provider says the payment now stands. A succeeded attempt stays succeeded
    (events can arrive out of order); returns the attempt, None when it is not ours."""
    row = (
        await conn.execute(
            text(
                "UPDATE payment_attempts SET status = :s, failure_code = :f, updated_at = now() "
                "WHERE provider_payment_id = :p AND status <> 'succeeded' "
                f"RETURNING {_ATTEMPT_COLUMNS}"
            ),
            {"p": provider_payment_id, "s": status, "f": failure_code},
        )
    ).first()
    if row is not None:
        return _attempt(row)
    return await attempt_by_payment(conn, provider_payment_id)


async def has_charge(conn: AsyncConnection, provider_payment_id: str) -> bool:
    """Is this provider payment recorded as a successful charge already?"""
    found = await conn.scalar(
        text(
            "SELECT 1 FROM payments WHERE provider_payment_id = :p AND kind = 'charge' "
            "AND status = 'succeeded'"
        ),
        {"p": provider_payment_id},
    )
    return found is not None


async def has_refund(conn: AsyncConnection, booking_id: uuid.UUID) -> bool:
    """Has Evently refunded this booking's charge?"""
    found = await conn.scalar(
        text(
            "SELECT 1 FROM payments WHERE booking_id = :b AND kind = 'refund' "
            "AND status = 'succeeded'"
        ),
        {"b": booking_id},
    )
    return found is not None
