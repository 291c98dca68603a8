"""The only code that starts, updates, signals or reads a BookingWorkflow.

Every call is bounded (``asyncio.wait_for``: a workflow task that keeps failing would otherwise
hold the caller forever), and every Temporal failure becomes one of our named errors here, once:
callers (the API, the event-cancellation activity, support) handle ``evently.errors`` only.
Updates that may be repeated carry an update id derived from who asks, so a retried request
gets the stored result instead of acting twice.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError, RPCStatusCode

from evently.enums import BookingStatus
from evently.errors import (
    ReleaseRefused,
    ReserveTimeout,
    ServiceUnavailable,
    WorkflowNotFound,
    WorkflowNotRunning,
    WorkflowTimeout,
)
from workflows import common
from workflows.booking.contract import (
    SIGNAL_PAYMENT_SUCCEEDED,
    BookingInput,
    BookingState,
    CancelInput,
    CancelResult,
    PayInput,
    PaymentNotice,
    PayResult,
    Reservation,
    booking_workflow_id,
)
from workflows.booking.workflow import BookingWorkflow

UPDATE_TIMEOUT_SECONDS = 30.0
QUERY_TIMEOUT_SECONDS = 5.0
MAX_HISTORY_EVENTS = 2000

T = TypeVar("T")


def _search_attributes(data: BookingInput) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(common.EVENT_ID, str(data.event_id)),
            SearchAttributePair(common.USER_ID, str(data.user_id)),
            SearchAttributePair(common.BOOKING_STATUS, str(BookingStatus.HELD)),
        ]
    )


async def _bounded(call: Awaitable[T], wait_seconds: float, on_timeout: ServiceUnavailable) -> T:
    """The call, or ``on_timeout`` when it (or the server's own long-poll) runs out of time;
    an unreachable Temporal is a 503 too."""
    try:
        return await asyncio.wait_for(call, timeout=wait_seconds)
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
        raise on_timeout from exc
    except RPCError as exc:
        if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            raise ServiceUnavailable("Temporal is unavailable; retry shortly.") from exc
        raise


async def start_booking(
    client: Client, data: BookingInput, *, wait_seconds: float, task_queue: str = common.BOOKING
) -> Reservation:
    """Update-with-start: the reserve step's outcome in one call (POST /bookings/reserve and
    accepting a waitlist offer). A second call for the same booking id returns the first
    call's result (same update id, REJECT_DUPLICATE reuse policy)."""
    start = WithStartWorkflowOperation(
        BookingWorkflow.run,
        data,
        id=booking_workflow_id(data.booking_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=_search_attributes(data),
    )
    return await _bounded(
        client.execute_update_with_start_workflow(
            BookingWorkflow.reserve, data, start_workflow_operation=start, id="reserve"
        ),
        wait_seconds,
        ReserveTimeout(),
    )


async def _update(call: Awaitable[T], wait_seconds: float) -> T:
    try:
        return await _bounded(
            call, wait_seconds, WorkflowTimeout("The booking did not answer in time.")
        )
    except WorkflowUpdateFailedError as exc:
        raise ReleaseRefused(f"The booking refused this: {exc.cause}") from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:  # the workflow has ended (or never ran)
            raise WorkflowNotRunning("The booking's workflow is not running.") from exc
        raise


async def pay(
    client: Client,
    booking_id: uuid.UUID,
    payment_method: str,
    *,
    wait_seconds: float = UPDATE_TIMEOUT_SECONDS,
) -> PayResult:
    """Charge the hold (each call is a new attempt: a declined card may be followed by
    another)."""
    handle = client.get_workflow_handle(booking_workflow_id(booking_id))
    return await _update(
        handle.execute_update(BookingWorkflow.pay, PayInput(payment_method=payment_method)),
        wait_seconds,
    )


async def cancel(
    client: Client,
    booking_id: uuid.UUID,
    *,
    actor: str,
    reason: str,
    wait_seconds: float = UPDATE_TIMEOUT_SECONDS,
) -> CancelResult:
    """End the booking through its workflow (held → released; confirmed → refunded, then
    released). One update id per actor: the same actor asking again (a retried request, a
    retried activity) gets the stored result, never a second cancellation."""
    handle = client.get_workflow_handle(booking_workflow_id(booking_id))
    return await _update(
        handle.execute_update(
            BookingWorkflow.cancel, CancelInput(actor=actor, reason=reason), id=f"cancel:{actor}"
        ),
        wait_seconds,
    )


async def deliver_payment(client: Client, data: BookingInput, notice: PaymentNotice) -> None:
    """A provider-confirmed payment (signed webhook) for the booking. If its workflow has
    finished (hold over), a new run picks the booking up where it is and applies the
    late-payment rule: confirm if the seats can still be taken, refund otherwise. The
    workflow ignores provider event ids it has seen."""
    await _bounded(
        client.start_workflow(
            BookingWorkflow.run,
            data,
            id=booking_workflow_id(data.booking_id),
            task_queue=common.BOOKING,
            start_signal=SIGNAL_PAYMENT_SUCCEEDED,
            start_signal_args=[notice],
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        ),
        UPDATE_TIMEOUT_SECONDS,
        WorkflowTimeout("Temporal did not take the payment in time; the provider will retry."),
    )


@dataclass
class WorkflowStory:
    workflow_id: str
    run_status: str | None
    events: list[HistoryEvent]
    truncated: bool
    state: BookingState | None


async def story(client: Client, booking_id: uuid.UUID) -> WorkflowStory:
    """The booking workflow's history (what happened, who asked) and, when a worker answers
    quickly, its own state and log (support)."""
    workflow_id = booking_workflow_id(booking_id)
    handle = client.get_workflow_handle(workflow_id)
    try:
        desc = await handle.describe()
        events: list[HistoryEvent] = []
        truncated = False
        async for ev in handle.fetch_history_events():
            if len(events) >= MAX_HISTORY_EVENTS:
                truncated = True
                break
            events.append(ev)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise WorkflowNotFound() from exc
        raise ServiceUnavailable("Temporal is unavailable; retry.", retry_after=5) from exc
    state: BookingState | None = None
    try:
        state = await asyncio.wait_for(
            handle.query(BookingWorkflow.state), timeout=QUERY_TIMEOUT_SECONDS
        )
    except Exception:  # the state is a bonus: a worker may be down or the run long gone
        state = None
    return WorkflowStory(
        workflow_id=workflow_id,
        run_status=desc.status.name if desc.status else None,
        events=events,
        truncated=truncated,
        state=state,
    )
