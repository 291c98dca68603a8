"""The only code that starts an EventCancellationWorkflow."""

from __future__ import annotations

import uuid

from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.service import RPCError

from evently.errors import ServiceUnavailable
from workflows import common
from workflows.event_cancellation.contract import (
    MAX_HISTORY,
    PAGE_SIZE,
    EventCancellationInput,
    event_cancellation_workflow_id,
)
from workflows.event_cancellation.workflow import EventCancellationWorkflow


async def start(
    client: Client,
    event_id: uuid.UUID,
    *,
    requested_by: str,
    page_size: int = PAGE_SIZE,
    max_history: int = MAX_HISTORY,
    organization_id: uuid.UUID | None = None,
) -> str:
    """Start (or find) the event's cancellation; returns its workflow id. Temporal down → 503
    (the caller has changed nothing yet)."""
    workflow_id = event_cancellation_workflow_id(event_id)
    try:
        await client.start_workflow(
            EventCancellationWorkflow.run,
            EventCancellationInput(
                event_id=event_id,
                requested_by=requested_by,
                page_size=page_size,
                max_history=max_history,
            ),
            static_summary=f"cancel event {event_id} ({requested_by})",
            id=workflow_id,
            task_queue=common.BOOKING,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(common.EVENT_ID, str(event_id)),
                    *common.organization_pairs(organization_id),
                ]
            ),
        )
    except (RPCError, RuntimeError) as exc:
        # a lazy client that cannot connect raises RuntimeError("Failed client connect ...")
        if isinstance(exc, RuntimeError) and "client connect" not in str(exc):
            raise
        raise ServiceUnavailable(
            "The workflow service is unavailable; the event was not changed. Retry shortly.",
            retry_after=5,
        ) from exc
    return workflow_id
