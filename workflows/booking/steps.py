"""The steps a booking's workflows share (deterministic: activity calls only): the booking's
own workflow and the short workflow that changes a confirmed booking later."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from evently.enums import BookingStatus
    from workflows import common
    from workflows.booking.contract import (
        REFUND,
        RELEASE_BOOKING,
        RefundInput,
        RefundResult,
        ReleaseInput,
    )
    from workflows.waitlist.contract import WAITLIST_SEATS_FREED, SeatsFreed

T = TypeVar("T")


async def local(name: str, arg: Any, result_type: type[T]) -> T:
    """A Postgres seat change: a local activity (no extra round trip through the server)."""
    result: T = await workflow.execute_local_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=timedelta(seconds=10),
        retry_policy=common.DB_RETRY,
    )
    return result


async def payments(
    name: str, arg: Any, result_type: type[T], *, schedule_to_close: timedelta | None = None
) -> T:
    """A payment provider call: a regular activity on the payments task queue."""
    result: T = await workflow.execute_activity(
        name,
        arg,
        result_type=result_type,
        task_queue=common.PAYMENTS,
        start_to_close_timeout=timedelta(seconds=30),
        schedule_to_close_timeout=schedule_to_close,
        retry_policy=common.SERVICE_RETRY,
    )
    return result


async def refund(booking_id: uuid.UUID, *, cancel_expired_booking: bool = False) -> RefundResult:
    """Refund the booking's charge (once: keyed by the booking)."""
    return await payments(
        REFUND,
        RefundInput(booking_id=booking_id, cancel_expired_booking=cancel_expired_booking),
        RefundResult,
    )


async def release(
    booking_id: uuid.UUID,
    event_id: uuid.UUID,
    quantity: int,
    *,
    from_status: BookingStatus,
    to_status: BookingStatus,
    actor: str,
    reason: str,
) -> bool:
    """End the booking and give its seats back (once: guarded by the booking's status). True
    when the seats went back on sale; False when the release kept them for the waitlist (then
    call :func:`hand_over`)."""
    return await local(
        RELEASE_BOOKING,
        ReleaseInput(
            booking_id=booking_id,
            event_id=event_id,
            quantity=quantity,
            from_status=from_status,
            to_status=to_status,
            actor=actor,
            reason=reason,
        ),
        bool,
    )


async def hand_over(event_id: uuid.UUID) -> None:
    """Seats kept for the waitlist go to the event's WaitlistWorkflow (signal-with-start from a
    local activity, retried until delivered; the seats wait in ``events.waitlist_pool``)."""
    await local(WAITLIST_SEATS_FREED, SeatsFreed(event_id=event_id), bool)
