"""One periodic job per run, started by a Temporal Schedule (workflows/maintenance/client.py):
the job is an activity on the booking queue; Temporal retries it and the schedule records each
run (no cron)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows import common
    from workflows.maintenance.contract import (
        ACTIVITY_CHECK,
        ACTIVITY_PRUNE_TOKENS,
        ACTIVITY_REMINDERS,
        ACTIVITY_RETENTION,
        WORKFLOW_NAME,
        MaintenanceInput,
        MaintenanceResult,
    )

_ACTIVITIES = {
    "prune_tokens": ACTIVITY_PRUNE_TOKENS,
    "check_invariants": ACTIVITY_CHECK,
    "queue_reminders": ACTIVITY_REMINDERS,  # issue 33: the reminder mail, once per ticket
    "retention": ACTIVITY_RETENTION,  # issue 33: personal data after EVENTLY_RETENTION_DAYS
}


@workflow.defn(name=WORKFLOW_NAME)
class MaintenanceWorkflow:
    @workflow.run
    async def run(self, data: MaintenanceInput) -> MaintenanceResult:
        count: int = await workflow.execute_activity(
            _ACTIVITIES[data.task],
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=common.DB_RETRY,
            schedule_to_close_timeout=timedelta(hours=1),
            result_type=int,
        )
        return MaintenanceResult(task=data.task, count=count)
