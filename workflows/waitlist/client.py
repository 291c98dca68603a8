"""The only code that starts, signals or updates a WaitlistWorkflow."""

from __future__ import annotations

import asyncio
import uuid

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
)
from temporalio.service import RPCError

from evently.errors import ServiceUnavailable, WorkflowTimeout
from workflows import common
from workflows.waitlist.contract import (
    SIGNAL_SEATS_FREED,
    LeaveInput,
    LeaveResult,
    WaitlistInput,
    waitlist_workflow_id,
)
from workflows.waitlist.workflow import WaitlistWorkflow

LEAVE_TIMEOUT_SECONDS = 30.0


def _attributes(event_id: uuid.UUID) -> TypedSearchAttributes:
    return TypedSearchAttributes([SearchAttributePair(common.EVENT_ID, str(event_id))])


async def poke(
    client: Client,
    event_id: uuid.UUID,
    *,
    offer_seconds: int,
    task_queue: str = common.BOOKING,
) -> None:
    """Signal-with-start the event's WaitlistWorkflow: something changed, allocate again."""
    await client.start_workflow(
        WaitlistWorkflow.run,
        WaitlistInput(event_id=event_id, offer_seconds=offer_seconds),
        id=waitlist_workflow_id(event_id),
        task_queue=task_queue,
        start_signal=SIGNAL_SEATS_FREED,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=_attributes(event_id),
    )


async def leave(
    client: Client,
    req: LeaveInput,
    *,
    offer_seconds: int,
    task_queue: str = common.BOOKING,
    wait_seconds: float = LEAVE_TIMEOUT_SECONDS,
) -> LeaveResult:
    """Leave (or decline) through the event's WaitlistWorkflow, which runs the keyed activity
    and passes any declined seats on. Update id per entry: a retry gets the stored result.
    Temporal down → 503 and nothing changed."""
    last: Exception | None = None
    for attempt in range(3):
        start = WithStartWorkflowOperation(
            WaitlistWorkflow.run,
            WaitlistInput(event_id=req.event_id, offer_seconds=offer_seconds),
            id=waitlist_workflow_id(req.event_id),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=_attributes(req.event_id),
        )
        try:
            return await asyncio.wait_for(
                client.execute_update_with_start_workflow(
                    WaitlistWorkflow.leave,
                    req,
                    start_workflow_operation=start,
                    id=f"leave-{req.entry_id}",
                ),
                timeout=wait_seconds,
            )
        except (RPCError, WorkflowUpdateFailedError) as exc:
            # the run may have been finishing as the update arrived: the next attempt starts
            # (or finds) a live run; the activity is keyed by the entry, so a repeat is a no-op
            last = exc
            await asyncio.sleep(0.2 * (attempt + 1))
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
            raise WorkflowTimeout("The waitlist did not answer in time; retry.") from exc
    raise ServiceUnavailable(f"The waitlist is unavailable right now; retry. ({last})")
