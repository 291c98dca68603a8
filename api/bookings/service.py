"""The reserve path (admission → sold-out gate → booking workflow) and the buyer's commands on
a booking, in terms of the core (evently/) and the booking workflow's client."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from evently import booking_changes
from evently.bookings import booking_id_for
from evently.db.models import Booking
from evently.enums import BookingStatus, EventStatus, PayOutcome, ReserveOutcome
from evently.errors import (
    BookingNotActive,
    BookingNotHeld,
    EventlyError,
    EventNotFound,
    EventNotOnSale,
    HoldExpired,
    IdempotencyKeyReused,
    Overloaded,
    PaymentDeclined,
    PaymentUnavailable,
    PromoCodeExpired,
    PromoCodeNotApplicable,
    PromoCodeUnknown,
    PromoCodeUsedUp,
    SalesClosed,
    ServiceUnavailable,
    SoldOut,
    TicketTypeNotFound,
    TicketTypeSoldOut,
    TooManyOfType,
)
from evently.infra import metrics
from evently.infra.resources import Resources
from evently.inventory.gate import Gate, Verdict, no_hold_key
from evently.inventory.types import Reservation, ReserveLine
from evently.organizations import organization_of_event
from evently.settings import Settings
from workflows.booking import client as booking_client
from workflows.booking.contract import BookingInput, CancelResult, PayResult
from workflows.connection import TemporalClient


class Admission:
    """Per-process cap on reservations in flight: beyond it, shed load with a fast 503
    instead of letting every request queue for seconds."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    def __enter__(self) -> Admission:
        if self.full:
            raise self.overloaded()
        self.in_flight += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self.in_flight -= 1

    @property
    def full(self) -> bool:
        return self.in_flight >= self.limit

    def overloaded(self) -> Overloaded:
        metrics.RESERVE_REQUESTS.labels(outcome="shed").inc()
        return Overloaded(retry_after=1)


def sold_out() -> SoldOut:
    metrics.RESERVE_REQUESTS.labels(outcome="sold_out").inc()
    return SoldOut()


async def _available(res: Resources, gate: Gate, event_id: uuid.UUID) -> int:
    """Postgres, for a missing or suspect gate: 404/409 for unknown or not-on-sale events, else
    the seats on sale now."""
    async with res.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT available, status FROM events WHERE id = :id"), {"id": event_id}
            )
        ).first()
    if row is None:
        raise EventNotFound()
    if row.status != EventStatus.PUBLISHED:
        await gate.load(event_id, None)
        raise EventNotOnSale()
    return int(row.available)


@dataclass(frozen=True)
class Pending:
    """The reserve was sent but its outcome is not known yet: the booking may be held later."""

    booking_id: uuid.UUID
    event_id: uuid.UUID
    retry_after: int


async def _take(
    res: Resources,
    gate: Gate,
    event_id: uuid.UUID,
    quantity: int,
    booking_id: uuid.UUID,
    idempotent: bool,
) -> Verdict | None:
    """A gate seat (OK), or a verdict; a missing counter is loaded from Postgres, and a sold-out
    verdict from a suspect gate is checked against Postgres before it stands."""
    verdict = await gate.take(event_id, quantity, booking_id, idempotent)
    if verdict == Verdict.MISSING:
        await gate.load(event_id, await _available(res, gate, event_id))
        verdict = await gate.take(event_id, quantity, booking_id, idempotent)
    if verdict == Verdict.UNSURE:
        available = await _available(res, gate, event_id)
        if available < quantity:
            return Verdict.SOLD_OUT
        await gate.reset(event_id)  # it disagrees with Postgres: rebuild it
        await gate.load(event_id, available)
        verdict = await gate.take(event_id, quantity, booking_id, idempotent)
        if verdict in (Verdict.UNSURE, Verdict.MISSING):
            return None  # still racing: let the reserve statement decide
    if verdict == Verdict.CLOSED:
        await _available(res, gate, event_id)  # 404 or 409 with the right code
    return verdict


async def reserve(
    res: Resources,
    temporal: TemporalClient,
    gate: Gate,
    admission: Admission,
    *,
    user_id: uuid.UUID,
    event_id: uuid.UUID,
    quantity: int,
    idempotency_key: str | None,
    lines: list[ReserveLine] | None = None,
    promo_code: str | None = None,
) -> Reservation | Pending:
    """Hold seats: a Reservation (held), a named error (sold out, not on sale, ...), or Pending
    when the reserve was sent but its answer is late. Whatever happens after a gate seat was
    taken, a request that ends without a known hold gives it back (once per booking: the seat
    comes back exactly once whichever path notices) and marks the gate suspect."""
    booking_id = booking_id_for(user_id, idempotency_key)
    # The admission slot is taken BEFORE any gate seat, so a seat is only ever taken by a
    # request that goes on to start its workflow. (Taking the seat first and giving it back
    # when shed let the gate read 0 while that seat was only borrowed: the flash-sale
    # benchmark counted 8-16 spurious sold_out answers per run; docs/performance.md.)
    # At the cap, a sold-out event still answers 409 from a read-only look at the gate; a
    # sold-out request that got a slot gives it back within one Redis round trip.
    if admission.full and idempotency_key is None and await gate.sold_out(event_id, quantity):
        raise sold_out()
    with admission:
        idempotent = idempotency_key is not None
        verdict = await _take(res, gate, event_id, quantity, booking_id, idempotent)
        if verdict == Verdict.SOLD_OUT:
            raise sold_out()
        data = BookingInput(
            booking_id=booking_id,
            event_id=event_id,
            user_id=user_id,
            quantity=quantity,
            hold_seconds=res.settings.hold_seconds,
            lines=lines or [],
            promo_code=promo_code,
        )
        # the OrganizationId search attribute: a per-process cache (one Postgres read per event
        # per process, not per reserve); it never fails (None: the workflow goes unlabelled)
        organization_id = await organization_of_event(res.engine, event_id)
        try:
            result = await booking_client.start_booking(
                temporal,
                data,
                wait_seconds=res.settings.reserve_timeout_seconds,
                organization_id=organization_id,
            )
        except booking_client.OutcomeUnknown:
            metrics.RESERVE_REQUESTS.labels(outcome="pending").inc()
            if verdict == Verdict.OK:
                await _doubt(gate, event_id, quantity, booking_id)
            return Pending(booking_id, event_id, retry_after=2)
        except BaseException:  # Temporal unreachable, the request cancelled, a bug
            metrics.RESERVE_REQUESTS.labels(outcome="error").inc()
            if verdict == Verdict.OK:
                await _doubt(gate, event_id, quantity, booking_id)
            raise
        if verdict == Verdict.OK and result.status == BookingStatus.REJECTED:
            # the reserve statement gave it back already (same once-key): this covers a
            # give-back that did not reach Redis
            await gate.give_back(event_id, quantity, no_hold_key(booking_id))
            if result.reason == ReserveOutcome.UNAVAILABLE:
                await gate.suspect(event_id)
    return _answer(result, event_id, quantity, idempotent)


async def _doubt(gate: Gate, event_id: uuid.UUID, quantity: int, booking_id: uuid.UUID) -> None:
    """A seat taken by a request whose hold is not known: give it back (a hold that appears
    later only leaves the gate high, which is safe) and doubt the counter. Shielded: a request
    being cancelled still settles its seat."""

    async def settle() -> None:
        await gate.give_back(event_id, quantity, no_hold_key(booking_id))
        await gate.suspect(event_id)

    await asyncio.shield(settle())


def _answer(
    result: Reservation, event_id: uuid.UUID, quantity: int, idempotent: bool
) -> Reservation:
    if idempotent and (result.event_id != event_id or result.quantity != quantity):
        raise IdempotencyKeyReused()
    if result.status != BookingStatus.REJECTED:
        metrics.RESERVE_REQUESTS.labels(outcome="held").inc()
        return result
    if result.reason == ReserveOutcome.SOLD_OUT:
        raise sold_out()
    metrics.RESERVE_REQUESTS.labels(outcome="rejected").inc()
    if result.reason == ReserveOutcome.EVENT_NOT_FOUND:
        raise EventNotFound()
    if result.reason == ReserveOutcome.EVENT_NOT_ON_SALE:
        raise EventNotOnSale()
    refusal = _REFUSALS.get(result.reason or "")
    if refusal is not None:
        raise refusal()
    raise ServiceUnavailable("Bookings are unavailable right now; retry shortly.")


#: a line or the promo code refused (issue 15): nothing was taken
_REFUSALS: dict[str, type[EventlyError]] = {
    ReserveOutcome.TICKET_TYPE_SOLD_OUT: TicketTypeSoldOut,
    ReserveOutcome.TICKET_TYPE_NOT_FOUND: TicketTypeNotFound,
    ReserveOutcome.SALES_CLOSED: SalesClosed,
    ReserveOutcome.TOO_MANY_OF_TYPE: TooManyOfType,
    ReserveOutcome.PROMO_CODE_UNKNOWN: PromoCodeUnknown,
    ReserveOutcome.PROMO_CODE_EXPIRED: PromoCodeExpired,
    ReserveOutcome.PROMO_CODE_USED_UP: PromoCodeUsedUp,
    ReserveOutcome.PROMO_CODE_NOT_APPLICABLE: PromoCodeNotApplicable,
}


def update_wait_seconds(settings: Settings) -> float:
    """How long a request waits for a booking workflow's answer: inside the request deadline,
    with room to answer (a late answer is a 503 with Retry-After; the update goes on)."""
    return max(settings.request_deadline_seconds - 2.0, 1.0)


async def pay(
    temporal: TemporalClient, settings: Settings, booking: Booking, payment_method: str
) -> PayResult:
    """Pay for a held booking: the result is CONFIRMED, or REQUIRES_ACTION / PROCESSING (the
    hold keeps running, a webhook settles it); every other outcome raises its error."""
    if booking.status == BookingStatus.CONFIRMED:
        return PayResult(status=PayOutcome.CONFIRMED, booking_status=BookingStatus.CONFIRMED)
    if booking.status in (BookingStatus.EXPIRED, BookingStatus.CANCELLED):
        raise HoldExpired()
    if booking.status != BookingStatus.HELD:
        raise BookingNotHeld()
    result = await booking_client.pay(
        temporal, booking.id, payment_method, wait_seconds=update_wait_seconds(settings)
    )
    if result.status in (
        PayOutcome.CONFIRMED,
        PayOutcome.REQUIRES_ACTION,
        PayOutcome.PROCESSING,
    ):
        return result
    if result.status == PayOutcome.DECLINED:
        raise PaymentDeclined(
            f"The payment was declined ({result.detail}); the hold stays until it ends."
        )
    if result.status == PayOutcome.HOLD_EXPIRED:
        raise HoldExpired()
    if result.status == PayOutcome.UNAVAILABLE:
        raise PaymentUnavailable(retry_after=5)
    raise BookingNotHeld()


async def cancel(
    temporal: TemporalClient,
    settings: Settings,
    booking: Booking,
    actor: str,
    *,
    reason: str = "cancelled by buyer",
    organization_id: uuid.UUID | None = None,
) -> CancelResult:
    """A held booking is released; a confirmed one is refunded, then released."""
    if booking.status not in (BookingStatus.HELD, BookingStatus.CONFIRMED):
        raise BookingNotActive(f"This booking is already {booking.status}.")
    result = await booking_client.cancel(
        temporal,
        booking.id,
        actor=actor,
        reason=reason,
        wait_seconds=update_wait_seconds(settings),
        organization_id=organization_id,
    )
    if result.booking_status not in (BookingStatus.CANCELLED, BookingStatus.EXPIRED):
        raise BookingNotActive(
            f"This booking is {result.booking_status}"
            + (f": {result.detail}." if result.detail else ".")
        )
    return result


async def cancel_lines(
    session: AsyncSession,
    temporal: TemporalClient,
    settings: Settings,
    booking: Booking,
    wanted: dict[uuid.UUID, int],
    actor: str,
    *,
    reason: str = "lines cancelled by buyer",
    organization_id: uuid.UUID | None = None,
) -> tuple[int | None, CancelResult, Decimal | None]:
    """Cancel part of a confirmed booking: the change is numbered and recorded (committed),
    then run by its BookingChangeWorkflow. Lines that cover every seat left are a whole
    cancellation. Returns (change number or None, the result, the change's refund)."""
    change = await booking_changes.request(session, booking.id, wanted, actor=actor, reason=reason)
    if change is None:
        await session.commit()
        return (
            None,
            await cancel(
                temporal, settings, booking, actor, reason=reason, organization_id=organization_id
            ),
            None,
        )
    change_no, amount = change.change_no, change.refund_amount
    await session.commit()  # the workflow reads the change
    result = await booking_client.cancel_lines(
        temporal,
        booking.id,
        change_no,
        actor=actor,
        reason=reason,
        wait_seconds=update_wait_seconds(settings),
        organization_id=organization_id,
    )
    if result.booking_status != BookingStatus.CONFIRMED or not result.refunded:
        raise BookingNotActive(
            f"This booking is {result.booking_status}"
            + (f": {result.detail}." if result.detail else ".")
        )
    return change_no, result, amount
