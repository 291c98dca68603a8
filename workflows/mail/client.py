"""The only code that starts or asks the mail dispatcher (MailOutboxWorkflow)."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from workflows import common
from workflows.mail.contract import OUTBOX_WORKFLOW_ID, OutboxInput, OutboxState
from workflows.mail.workflow import MailOutboxWorkflow


async def ensure_outbox(
    client: Client,
    data: OutboxInput | None = None,
    *,
    workflow_id: str = OUTBOX_WORKFLOW_ID,
    task_queue: str = common.MAIL,
) -> None:
    """Start the dispatcher unless it runs already (every mail worker calls this at start)."""
    await client.start_workflow(
        MailOutboxWorkflow.run,
        data or OutboxInput(),
        id=workflow_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def outbox_state(client: Client, workflow_id: str = OUTBOX_WORKFLOW_ID) -> OutboxState:
    return await client.get_workflow_handle(workflow_id).query(MailOutboxWorkflow.state)


async def stop_outbox(client: Client, workflow_id: str = OUTBOX_WORKFLOW_ID) -> None:
    """Terminate the dispatcher (tests; ops pausing mail). Undelivered notices stay pending."""
    await client.get_workflow_handle(workflow_id).terminate("stopped")
