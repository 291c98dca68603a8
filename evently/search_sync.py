"""Ask for an event's search document to be (re)written, durably, through Temporal."""

from __future__ import annotations

import uuid

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from evently import task_queues
from workflows.search_sync import (
    SIGNAL_CHANGED,
    EventIndexSyncWorkflow,
    IndexEventInput,
    search_sync_workflow_id,
)


async def request_index_write(client: Client, event_id: uuid.UUID) -> None:
    """Signal-with-start the event's sync workflow: cheap, idempotent, coalesces bursts."""
    await client.start_workflow(
        EventIndexSyncWorkflow.run,
        IndexEventInput(event_id=event_id),
        id=search_sync_workflow_id(event_id),
        task_queue=task_queues.BOOKING,
        start_signal=SIGNAL_CHANGED,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
