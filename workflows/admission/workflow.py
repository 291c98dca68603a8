"""AdmissionWorkflow (registered as ``QueueAdmissionWorkflow``): admits an on-sale's waiting
room in join order, at the rate the stack sustains.

One workflow per event, id ``queue-admission-<event_id>``, booking task queue, started by the
API (idempotently) when a buyer joins the waiting room or an organizer turns the queue on. Each
tick (``tick_seconds``) it runs one local activity, ``queue_admission_tick``, which reads the
measured signals (reserves shed for this event, admitted buyers who reserved, seats left),
adapts the rate and advances the line's ``admitted`` counter in Redis (and ``admitted_at`` in
Postgres). The line itself never enters the history: the workflow only carries the rate and a
few counters, and continues as new every ``max_ticks`` ticks (or when Temporal suggests it).
It ends when the on-sale ends (event not published, queue off, sold for good) or after the
line has been idle for a while; the next join starts it again.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows import common
    from workflows.admission.contract import (
        ADMISSION_TICK,
        WORKFLOW_NAME,
        AdmissionInput,
        TickInput,
        TickResult,
    )


@workflow.defn(name=WORKFLOW_NAME)
class AdmissionWorkflow:
    @workflow.run
    async def run(self, data: AdmissionInput) -> str:
        progress = data.progress
        for _ in range(data.max_ticks):
            result: TickResult = await workflow.execute_local_activity(
                ADMISSION_TICK,
                TickInput(
                    event_id=data.event_id, tick_seconds=data.tick_seconds, progress=progress
                ),
                result_type=TickResult,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=common.DB_RETRY,
            )
            if result.done:
                return f"closed at admitted-through {result.admitted_through}"
            progress = result.progress
            if workflow.info().is_continue_as_new_suggested():
                break
            await workflow.sleep(timedelta(seconds=data.tick_seconds))
        workflow.continue_as_new(data.model_copy(update={"progress": progress}))
