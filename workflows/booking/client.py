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
from temporalio.api.sdk.v1 import WorkflowMetadata
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
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from evently.booking_changes import change_name
from evently.enums import BookingStatus
from evently.errors import (
    BookingNotHeld,
    ReleaseRefused,
    ServiceUnavailable,
    WorkflowNotFound,
    WorkflowNotRunning,
    WorkflowTimeout,
)
from workflows import common
from workflows.booking.change_workflow import BookingChangeWorkflow
from workflows.booking.contract import (
    CANCEL,
    HANDED_OVER,
    SIGNAL_PAYMENT_SUCCEEDED,
    SIGNAL_TRANSFER_RECEIVED,
    BookingChangeInput,
    BookingInput,
    BookingState,
    CancelInput,
    CancelResult,
    PayInput,
    PaymentNotice,
    PayResult,
    Reservation,
    TransferNotice,
    booking_change_workflow_id,
    booking_workflow_id,
)
from workflows.booking.workflow import BookingWorkflow

UPDATE_TIMEOUT_SECONDS = 30.0
QUERY_TIMEOUT_SECONDS = 5.0
MAX_HISTORY_EVENTS = 2000

T = TypeVar("T")


def summary(data: BookingInput) -> str:
    """The one line support sees first in the Temporal UI (the amount is in the details)."""
    seats = f"{data.quantity} seat{'s' if data.quantity != 1 else ''}"
    origin = " from a waitlist offer" if data.waitlist_entry_id else ""
    return f"booking: {seats} of event {data.event_id} for buyer {data.user_id}{origin}"


def _search_attributes(
    data: BookingInput, organization_id: uuid.UUID | None = None
) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(common.EVENT_ID, str(data.event_id)),
            SearchAttributePair(common.USER_ID, str(data.user_id)),
            SearchAttributePair(common.BOOKING_STATUS, str(BookingStatus.HELD)),
            *common.organization_pairs(organization_id),
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


class OutcomeUnknown(Exception):
    """The reserve was sent but its answer did not come back in time (a timeout, Temporal
    failing mid-call): the booking may still be held later. The caller answers "pending" with
    the booking id, never a bare error for a booking that may exist."""

    def __init__(self, booking_id: uuid.UUID) -> None:
        super().__init__(f"booking {booking_id}: outcome unknown")
        self.booking_id = booking_id


class RunEnded(Exception):
    """The booking's run has ended without an answer to this reserve: the update-with-start
    found the closed run (REJECT_DUPLICATE) and no ``reserve`` update of it to read back. Seen
    when Temporal restarted after accepting the start but before the update was: the run
    reserved from its input, was refused, and ended; the buyer's retry then hit this. What the
    run did is in Postgres."""

    def __init__(self, booking_id: uuid.UUID) -> None:
        super().__init__(f"booking {booking_id}: its run has ended")
        self.booking_id = booking_id


async def start_booking(
    client: Client,
    data: BookingInput,
    *,
    wait_seconds: float,
    task_queue: str = common.BOOKING,
    organization_id: uuid.UUID | None = None,
) -> Reservation:
    """Update-with-start: the reserve step's outcome in one call (POST /bookings/reserve and
    accepting a waitlist offer). A second call for the same booking id returns the first
    call's result (same update id, REJECT_DUPLICATE reuse policy). ``organization_id``: the
    event's organization, the workflow's ``OrganizationId`` search attribute.

    Raises ``ServiceUnavailable`` only when the call certainly never reached Temporal (no
    connection): nothing was started. A run that has ended without answering this reserve
    raises :class:`RunEnded`. Any later failure or timeout raises :class:`OutcomeUnknown`."""
    start = WithStartWorkflowOperation(
        BookingWorkflow.run,
        data,
        id=booking_workflow_id(data.booking_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=_search_attributes(data, organization_id),
        static_summary=summary(data),
    )
    try:
        return await asyncio.wait_for(
            client.execute_update_with_start_workflow(
                BookingWorkflow.reserve, data, start_workflow_operation=start, id="reserve"
            ),
            timeout=wait_seconds,
        )
    except RuntimeError as exc:
        if "client connect" in str(exc):  # a lazy client that could not connect: nothing sent
            raise ServiceUnavailable("Temporal is unreachable; retry shortly.") from exc
        raise
    except WorkflowAlreadyStartedError as exc:
        raise RunEnded(data.booking_id) from exc
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError, RPCError) as exc:
        raise OutcomeUnknown(data.booking_id) from exc


class HandedOver(Exception):
    """The booking's run is confirmed and ending: later changes run elsewhere."""


async def _update(call: Awaitable[T], wait_seconds: float) -> T:
    try:
        return await _bounded(
            call, wait_seconds, WorkflowTimeout("The booking did not answer in time.")
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type == HANDED_OVER:
            raise HandedOver() from exc
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
    held_only: bool = False,
    organization_id: uuid.UUID | None = None,
) -> CancelResult:
    """End the booking, whatever phase it is in: a held booking (its workflow is running) is
    released through the workflow's ``cancel`` update; a confirmed one is refunded, then
    released — in place for runs from before the end-at-confirmation patch, else in its own
    BookingChangeWorkflow. One update id per actor: the same actor asking again (a retried
    request, a retried activity) gets the stored result, never a second cancellation.

    ``held_only`` (support's release): a booking whose workflow is not running is answered
    ``WorkflowNotRunning`` and one confirmed meanwhile ``BookingNotHeld`` — never refunded."""
    handle = client.get_workflow_handle(booking_workflow_id(booking_id))
    try:
        return await _update(
            handle.execute_update(
                BookingWorkflow.cancel,
                CancelInput(actor=actor, reason=reason),
                id=f"cancel:{actor}",
            ),
            wait_seconds,
        )
    except HandedOver as exc:
        if held_only:
            raise BookingNotHeld("The booking was confirmed meanwhile.") from exc
        return await cancel_confirmed(
            client,
            booking_id,
            actor=actor,
            reason=reason,
            wait_seconds=wait_seconds,
            organization_id=organization_id,
        )
    except WorkflowNotRunning:
        if held_only:
            raise
        return await cancel_confirmed(
            client,
            booking_id,
            actor=actor,
            reason=reason,
            wait_seconds=wait_seconds,
            organization_id=organization_id,
        )


async def deliver_payment(
    client: Client,
    data: BookingInput,
    notice: PaymentNotice,
    *,
    organization_id: uuid.UUID | None = None,
) -> None:
    """A provider-confirmed payment (signed webhook) for the booking. If its workflow has
    finished (hold over), a new run picks the booking up where it is and applies the
    late-payment rule: confirm if the seats can still be taken, refund otherwise. The
    workflow ignores provider event ids it has seen."""
    await _signal_with_start(
        client,
        data,
        SIGNAL_PAYMENT_SUCCEEDED,
        notice,
        organization_id=organization_id,
        why="a payment reported by the provider",
        on_timeout=WorkflowTimeout(
            "Temporal did not take the payment in time; the provider will retry."
        ),
    )


async def mark_transfer_received(
    client: Client,
    data: BookingInput,
    notice: TransferNotice,
    *,
    organization_id: uuid.UUID | None = None,
) -> None:
    """Finance marked a bank transfer arrived (issue 29): the booking's workflow confirms it
    (its window still open). If the workflow has ended (the window is over), a new run picks
    the booking up where it is and applies the late-payment rule: confirmed if the seats can
    still be taken, else ``refund_due``."""
    await _signal_with_start(
        client,
        data,
        SIGNAL_TRANSFER_RECEIVED,
        notice,
        organization_id=organization_id,
        why="a bank transfer marked paid",
        on_timeout=WorkflowTimeout("Temporal did not take the payment in time; retry shortly."),
    )


async def _signal_with_start(
    client: Client,
    data: BookingInput,
    signal: str,
    notice: PaymentNotice | TransferNotice,
    *,
    organization_id: uuid.UUID | None,
    why: str,
    on_timeout: ServiceUnavailable,
) -> None:
    """Money for the booking: signal its running workflow, or start a new run (its hold is
    over) that picks the booking up where it is and applies the late-payment rule."""
    await _bounded(
        client.start_workflow(
            BookingWorkflow.run,
            data,
            id=booking_workflow_id(data.booking_id),
            task_queue=common.BOOKING,
            start_signal=signal,
            start_signal_args=[notice],
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=_search_attributes(data, organization_id),
            static_summary=summary(data) + f" ({why})",
        ),
        UPDATE_TIMEOUT_SECONDS,
        on_timeout,
    )


@dataclass
class WorkflowStory:
    workflow_id: str
    run_status: str | None
    events: list[HistoryEvent]
    truncated: bool
    state: BookingState | None
    summary: str | None = None  # set at start ("booking: 2 seats of event ... for buyer ...")
    details: str | None = None  # kept current by the workflow ("held until ...; attempt 2 ...")


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
    details: str | None = None
    try:
        state = await asyncio.wait_for(
            handle.query(BookingWorkflow.state), timeout=QUERY_TIMEOUT_SECONDS
        )
        metadata = await asyncio.wait_for(
            handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata),
            timeout=QUERY_TIMEOUT_SECONDS,
        )
        details = metadata.current_details or None
    except Exception:  # a bonus: a worker may be down or the run long gone
        pass
    return WorkflowStory(
        workflow_id=workflow_id,
        run_status=desc.status.name if desc.status else None,
        events=events,
        truncated=truncated,
        state=state,
        summary=await desc.static_summary(),
        details=details,
    )


async def _run_change(
    client: Client,
    booking_id: uuid.UUID,
    change: str,
    *,
    actor: str,
    reason: str,
    wait_seconds: float,
    organization_id: uuid.UUID | None,
    reuse_policy: WorkflowIDReusePolicy,
    summary: str,
) -> CancelResult:
    """Start (or join) the booking's BookingChangeWorkflow for ``change`` and wait for its
    result; a run that ended before is read back. Temporal down → 503, slow → WorkflowTimeout."""
    workflow_id = booking_change_workflow_id(booking_id, change)
    try:
        handle = await client.start_workflow(
            BookingChangeWorkflow.run,
            BookingChangeInput(booking_id=booking_id, change=change, actor=actor, reason=reason),
            id=workflow_id,
            task_queue=common.BOOKING,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=reuse_policy,
            static_summary=summary,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(common.BOOKING_STATUS, str(BookingStatus.CONFIRMED)),
                    *common.organization_pairs(organization_id),
                ]
            ),
        )
    except WorkflowAlreadyStartedError:  # done before: its result is the answer
        handle = client.get_workflow_handle_for(BookingChangeWorkflow.run, workflow_id)
    except RPCError as exc:
        if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            raise ServiceUnavailable("Temporal is unavailable; retry shortly.") from exc
        raise
    try:
        return await asyncio.wait_for(handle.result(), timeout=wait_seconds)
    except TimeoutError as exc:
        raise WorkflowTimeout("The cancellation is taking long; it will finish.") from exc


async def cancel_confirmed(
    client: Client,
    booking_id: uuid.UUID,
    *,
    actor: str,
    reason: str,
    wait_seconds: float,
    organization_id: uuid.UUID | None = None,
) -> CancelResult:
    """Cancel a confirmed booking whose own workflow has ended, in a BookingChangeWorkflow
    (one at a time per booking: asking again while it runs joins it; after it ended, a new run
    finds the booking cancelled and answers so — the refund is keyed by the booking)."""
    result = await _run_change(
        client,
        booking_id,
        CANCEL,
        actor=actor,
        reason=reason,
        wait_seconds=wait_seconds,
        organization_id=organization_id,
        # a finished one may have found nothing to do then: run again (it is idempotent)
        reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        summary=f"cancel confirmed booking {booking_id} for {actor}",
    )
    if result.booking_status == BookingStatus.HELD:
        # held, yet its own workflow is gone: never "fixed" behind Temporal's back
        raise WorkflowNotRunning("The booking is held but its workflow is not running.")
    return result


async def in_flight(client: Client, booking_id: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(buyer, event) of a booking whose workflow runs but whose row is not written yet (a
    reserve answered "pending"), from its search attributes; None when there is no such
    workflow. Bounded; Temporal down → 503."""
    handle = client.get_workflow_handle(booking_workflow_id(booking_id))
    try:
        desc = await asyncio.wait_for(handle.describe(), timeout=QUERY_TIMEOUT_SECONDS)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise ServiceUnavailable("Temporal is unavailable; retry.", retry_after=2) from exc
    except (TimeoutError, RuntimeError) as exc:
        raise ServiceUnavailable("Temporal is unavailable; retry.", retry_after=2) from exc
    attrs = desc.typed_search_attributes
    user, event = attrs.get(common.USER_ID), attrs.get(common.EVENT_ID)
    if user is None or event is None:
        return None
    return uuid.UUID(user), uuid.UUID(event)


async def cancel_lines(
    client: Client,
    booking_id: uuid.UUID,
    change_no: int,
    *,
    actor: str,
    reason: str,
    wait_seconds: float,
    organization_id: uuid.UUID | None = None,
) -> CancelResult:
    """Run a recorded partial cancellation (evently/booking_changes.py) in its own
    BookingChangeWorkflow, ``booking-change-<id>-lines-<n>``: asking again joins it, or reads
    its result once it ended."""
    return await _run_change(
        client,
        booking_id,
        change_name(change_no),
        actor=actor,
        reason=reason,
        wait_seconds=wait_seconds,
        organization_id=organization_id,
        reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        summary=f"cancel lines of booking {booking_id} (change {change_no}) for {actor}",
    )
