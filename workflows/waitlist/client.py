"""The only code that starts, signals or updates a WaitlistWorkflow."""

from __future__ import annotations

import uuid

from temporalio.client import (
    Client,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)

from workflows import common
from workflows.waitlist.contract import (
    SIGNAL_SEATS_FREED,
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
        static_summary=f"waitlist of event {event_id}: offers freed seats in join order",
    )
