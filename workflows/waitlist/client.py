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


def _attributes(event_id: uuid.UUID, organization_id: uuid.UUID | None) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(common.EVENT_ID, str(event_id)),
            *common.organization_pairs(organization_id),
        ]
    )


async def poke(
    client: Client,
    event_id: uuid.UUID,
    *,
    offer_seconds: int,
    task_queue: str = common.BOOKING,
    organization_id: uuid.UUID | None = None,
) -> None:
    """Signal-with-start the event's WaitlistWorkflow: something changed, allocate again.
    ``organization_id``: the event's (its ``OrganizationId`` when this call starts it)."""
    await client.start_workflow(
        WaitlistWorkflow.run,
        WaitlistInput(event_id=event_id, offer_seconds=offer_seconds),
        id=waitlist_workflow_id(event_id),
        task_queue=task_queue,
        start_signal=SIGNAL_SEATS_FREED,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=_attributes(event_id, organization_id),
        static_summary=f"waitlist of event {event_id}: offers freed seats in join order",
    )
