"""Booking service: the reserve path (admission → sold-out gate → update-with-start) and the
reads and commands the API needs. SQL for bookings lives here; seat SQL in inventory.py."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError

from evently import metrics, task_queues
from evently.db.models import Booking
from evently.errors import Conflict, NotFound, ServiceUnavailable
from evently.inventory import GATE_CLOSED, GATE_MISSING, GATE_OK, GATE_SOLD_OUT, Gate, gate_key
from evently.resources import Resources
from workflows.booking_models import (
    UPDATE_CANCEL,
    UPDATE_PAY,
    UPDATE_RESERVE,
    WORKFLOW_NAME,
    BookingInput,
    CancelInput,
    CancelResult,
    PayInput,
    PayResult,
    ReserveResult,
    booking_workflow_id,
)

IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c3a52-3f7e-4a55-9d8e-0b6f1d2c9e11")
EVENT_ID = SearchAttributeKey.for_keyword("EventId")
USER_ID = SearchAttributeKey.for_keyword("UserId")
BOOKING_STATUS = SearchAttributeKey.for_keyword("BookingStatus")


def booking_id_for(user_id: uuid.UUID, idempotency_key: str | None) -> uuid.UUID:
    """The same Idempotency-Key from the same buyer always names the same booking."""
    if idempotency_key is None:
        return uuid.uuid4()
    return uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{user_id}:{idempotency_key}")


class Overloaded(ServiceUnavailable):
    """Shed by admission control: the client may retry (not a sold-out answer)."""


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
        return Overloaded(
            "Too many reservations in flight; retry shortly.", code="overloaded", retry_after=1
        )


async def _event_on_sale(res: Resources, event_id: uuid.UUID) -> int:
    """Postgres fallback for a missing gate: 404/409 for unknown or not-on-sale events."""
    async with res.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT available, status FROM events WHERE id = :id"), {"id": event_id}
            )
        ).first()
    if row is None:
        raise NotFound("No such event.", code="event_not_found")
    if row.status != "published":
        await Gate(res.redis).load(event_id, None)
        raise Conflict("This event is not on sale.", code="event_not_on_sale")
    return int(row.available)


def _sold_out() -> Conflict:
    metrics.RESERVE_REQUESTS.labels(outcome="sold_out").inc()
    return Conflict("Sold out: no seats are left for this quantity.", code="sold_out")


async def reserve(
    res: Resources,
    gate: Gate,
    admission: Admission,
    *,
    user_id: uuid.UUID,
    event_id: uuid.UUID,
    quantity: int,
    idempotency_key: str | None,
) -> ReserveResult:
    booking_id = booking_id_for(user_id, idempotency_key)
    # The admission slot is taken BEFORE any gate seat, so a seat is only ever taken by a
    # request that goes on to start its workflow. (Taking the seat first and giving it back
    # when shed let the gate read 0 while that seat was only borrowed: the flash-sale
    # benchmark counted 8-16 spurious sold_out answers per run; docs/performance.md.)
    # At the cap, a sold-out event still answers 409 from a read-only look at the gate; a
    # sold-out request that got a slot gives it back within one Redis round trip.
    if (
        admission.full
        and idempotency_key is None
        and await sold_out_at_gate(gate, event_id, quantity)
    ):
        raise _sold_out()
    with admission:
        verdict = await gate.take(event_id, quantity, booking_id, idempotency_key is not None)
        if verdict == GATE_MISSING:
            available = await _event_on_sale(res, event_id)
            await gate.load(event_id, available)
            verdict = await gate.take(event_id, quantity, booking_id, idempotency_key is not None)
        if verdict == GATE_SOLD_OUT:
            raise _sold_out()
        if verdict == GATE_CLOSED:
            await _event_on_sale(res, event_id)  # 404 or 409 with the right code
        try:
            return await _start(res, booking_id, event_id, user_id, quantity, idempotency_key)
        except ServiceUnavailable:
            # Temporal slow or down: the workflow may or may not take the seats later. Give
            # the gate seat back (once per booking): a gate that runs high only sends extra
            # requests to the authoritative activity; one that runs low answers sold_out
            # while seats are free.
            if verdict == GATE_OK:
                await gate.give_back(event_id, quantity, f"{booking_id}:failed")
            raise


async def sold_out_at_gate(gate: Gate, event_id: uuid.UUID, quantity: int) -> bool:
    """Read-only look at the gate (no seat taken): True only when the counter is there and
    below ``quantity``. Seats in it are taken only by admitted requests, which hold them."""
    try:
        value = await gate.redis.get(gate_key(event_id))
    except RedisError:
        return False
    try:
        return value is not None and int(value) < quantity
    except ValueError:  # "closed"
        return False


async def start_booking(
    res: Resources, data: BookingInput, *, task_queue: str = task_queues.BOOKING
) -> ReserveResult:
    """Update-with-start of a BookingWorkflow: its reserve step's outcome in one call (used by
    POST /bookings/reserve and by accepting a waitlist offer). A second call for the same
    booking id returns the first call's result (same update id, REJECT_DUPLICATE reuse)."""
    start: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
        WORKFLOW_NAME,
        data,
        id=booking_workflow_id(data.booking_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(EVENT_ID, str(data.event_id)),
                SearchAttributePair(USER_ID, str(data.user_id)),
                SearchAttributePair(BOOKING_STATUS, "held"),
            ]
        ),
    )
    try:
        result: ReserveResult = await asyncio.wait_for(
            res.temporal.execute_update_with_start_workflow(
                UPDATE_RESERVE,
                data,
                start_workflow_operation=start,
                id=UPDATE_RESERVE,
                result_type=ReserveResult,
            ),
            timeout=res.settings.reserve_timeout_seconds,
        )
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
        # the server's own long-poll deadline ends the wait too (an unhandled 500 before)
        raise ServiceUnavailable(
            "The reservation is taking too long; retry with the same Idempotency-Key.",
            code="reserve_timeout",
        ) from exc
    return result


async def _start(
    res: Resources,
    booking_id: uuid.UUID,
    event_id: uuid.UUID,
    user_id: uuid.UUID,
    quantity: int,
    idempotency_key: str | None,
) -> ReserveResult:
    """Update-with-start of the booking workflow: the reserve step's outcome in one call."""
    data = BookingInput(
        booking_id=booking_id,
        event_id=event_id,
        user_id=user_id,
        quantity=quantity,
        hold_seconds=res.settings.hold_seconds,
    )
    try:
        result = await start_booking(res, data)
    except ServiceUnavailable:
        metrics.RESERVE_REQUESTS.labels(outcome="error").inc()
        raise
    if idempotency_key is not None and (
        result.event_id not in (None, event_id) or result.quantity not in (0, quantity)
    ):
        raise Conflict(
            "This Idempotency-Key was used for a different reservation.",
            code="idempotency_key_reused",
        )
    if result.status == "held":
        metrics.RESERVE_REQUESTS.labels(outcome="held").inc()
        return result
    if result.reason == "sold_out":
        raise _sold_out()
    metrics.RESERVE_REQUESTS.labels(outcome="rejected").inc()
    if result.reason == "event_not_found":
        raise NotFound("No such event.", code="event_not_found")
    if result.reason == "event_not_on_sale":
        raise Conflict("This event is not on sale.", code="event_not_on_sale")
    raise ServiceUnavailable("Bookings are unavailable right now; retry shortly.")


async def get_booking(session: AsyncSession, booking_id: uuid.UUID) -> Booking | None:
    booking: Booking | None = await session.get(Booking, booking_id)
    return booking


async def list_user_bookings(
    session: AsyncSession, user_id: uuid.UUID, *, page: int, limit: int
) -> tuple[list[Booking], int]:
    total = await session.scalar(
        select(func.count()).select_from(Booking).where(Booking.user_id == user_id)
    )
    rows = await session.scalars(
        select(Booking)
        .where(Booking.user_id == user_id)
        .order_by(Booking.created_at.desc(), Booking.id.desc())
        .offset((page - 1) * limit)
        .limit(limit)
    )
    return list(rows), int(total or 0)


async def _update(client: Client, booking_id: uuid.UUID, name: str, arg: Any, rtype: Any) -> Any:
    handle = client.get_workflow_handle(booking_workflow_id(booking_id))
    try:
        return await asyncio.wait_for(
            handle.execute_update(name, arg, result_type=rtype), timeout=60
        )
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
        raise ServiceUnavailable("The booking did not answer in time; retry.") from exc
    except WorkflowUpdateFailedError as exc:
        raise ServiceUnavailable(f"The booking could not process this: {exc.cause}") from exc
    except RPCError as exc:
        if exc.status.name == "NOT_FOUND":
            raise Conflict("This booking is no longer active.", code="booking_not_active") from exc
        raise


async def pay(client: Client, booking_id: uuid.UUID, payment_method: str) -> PayResult:
    result: PayResult = await _update(
        client, booking_id, UPDATE_PAY, PayInput(payment_method=payment_method), PayResult
    )
    return result


async def cancel(client: Client, booking_id: uuid.UUID, actor: str, reason: str) -> CancelResult:
    result: CancelResult = await _update(
        client, booking_id, UPDATE_CANCEL, CancelInput(actor=actor, reason=reason), CancelResult
    )
    return result


def hold_is_over(booking: Booking, now: datetime) -> bool:
    return booking.hold_expires_at is not None and booking.hold_expires_at <= now
