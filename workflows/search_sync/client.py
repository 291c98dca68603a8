"""The only code that talks to EventIndexSyncWorkflow: ask for an event's search document to
be (re)written, durably, through Temporal."""

from __future__ import annotations

import uuid

from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)

from workflows import common
from workflows.search_sync.contract import (
    SIGNAL_CHANGED,
    IndexEventInput,
    search_sync_workflow_id,
)
from workflows.search_sync.workflow import EventIndexSyncWorkflow


async def request_index_write(
    client: Client, event_id: uuid.UUID, *, organization_id: uuid.UUID | None = None
) -> None:
    """Signal-with-start the event's sync workflow: cheap, idempotent, coalesces bursts.
    ``organization_id``: the event's (its ``OrganizationId`` when this call starts it)."""
    await client.start_workflow(
        EventIndexSyncWorkflow.run,
        IndexEventInput(event_id=event_id),
        id=search_sync_workflow_id(event_id),
        task_queue=common.BOOKING,
        start_signal=SIGNAL_CHANGED,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(common.EVENT_ID, str(event_id)),
                *common.organization_pairs(organization_id),
            ]
        ),
        static_summary=f"search index of event {event_id}",
    )
