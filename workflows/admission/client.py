"""The only code that starts an AdmissionWorkflow (type name ``QueueAdmissionWorkflow``)."""

from __future__ import annotations

import uuid

from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from workflows import common
from workflows.admission.contract import AdmissionInput, admission_workflow_id
from workflows.admission.workflow import AdmissionWorkflow


async def ensure_running(
    client: Client,
    event_id: uuid.UUID,
    *,
    tick_seconds: float,
    task_queue: str = common.BOOKING,
    organization_id: uuid.UUID | None = None,
) -> None:
    """Start the event's admission workflow unless it runs already (idempotent)."""
    await client.start_workflow(
        AdmissionWorkflow.run,
        AdmissionInput(event_id=event_id, tick_seconds=tick_seconds),
        id=admission_workflow_id(event_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(common.EVENT_ID, str(event_id)),
                *common.organization_pairs(organization_id),
            ]
        ),
        static_summary=f"waiting room of event {event_id}: admits buyers in join order",
    )
