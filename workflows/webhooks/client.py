"""The only code that starts the webhook workflows."""

from __future__ import annotations

import contextlib
import uuid

from temporalio.client import Client
from temporalio.common import (
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from workflows import common
from workflows.webhooks.contract import (
    RELAY_WORKFLOW_ID,
    DeliveryInput,
    RelayInput,
    RetrySchedule,
    webhook_delivery_workflow_id,
)
from workflows.webhooks.workflow import WebhookDeliveryWorkflow, WebhookRelayWorkflow


async def ensure_relay(client: Client, *, task_queue: str = common.WEBHOOKS) -> None:
    """Start the namespace's outbox relay unless it runs (workers polling the webhooks queue
    call this at start-up; so does creating or enabling a subscription)."""
    await client.start_workflow(
        WebhookRelayWorkflow.run,
        RelayInput(),
        id=RELAY_WORKFLOW_ID,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        static_summary="organizer webhooks: starts a delivery for every message in the outbox",
    )


async def start_delivery(
    client: Client,
    delivery_id: uuid.UUID,
    *,
    organization_id: uuid.UUID,
    schedule: RetrySchedule,
    task_queue: str = common.WEBHOOKS,
) -> None:
    """Start the delivery's workflow; idempotent (one workflow per delivery, ever)."""
    with contextlib.suppress(WorkflowAlreadyStartedError):  # it ran (and ended) before
        await client.start_workflow(
            WebhookDeliveryWorkflow.run,
            DeliveryInput(delivery_id=delivery_id, schedule=schedule),
            id=webhook_delivery_workflow_id(delivery_id),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(common.organization_pairs(organization_id)),
            static_summary=f"webhook delivery {delivery_id}",
        )
