"""The Temporal Schedules of the periodic jobs, created at worker start-up, idempotently
(docs/temporal.md, "Schedules")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)

from workflows import common
from workflows.maintenance.contract import WORKFLOW_NAME, MaintenanceInput, Task


@dataclass(frozen=True)
class Job:
    schedule_id: str
    task: Task
    every: timedelta


JOBS = (
    Job("evently-prune-tokens", "prune_tokens", timedelta(days=1)),
    Job("evently-check-invariants", "check_invariants", timedelta(minutes=15)),
    # issue 33: hourly, so a reminder goes out within the hour after it is due
    Job("evently-reminders", "queue_reminders", timedelta(hours=1)),
    Job("evently-retention", "retention", timedelta(days=1)),
)


async def ensure_schedules(client: Client) -> list[str]:
    """Create the schedules that do not exist yet; existing ones are left as they are (an
    operator may have paused one). Returns the ids created."""
    created = []
    for job in JOBS:
        schedule = Schedule(
            action=ScheduleActionStartWorkflow(
                WORKFLOW_NAME,
                MaintenanceInput(task=job.task),
                id=f"{job.schedule_id}-run",  # the schedule appends the scheduled time
                task_queue=common.BOOKING,
            ),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=job.every)]),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        )
        try:
            await client.create_schedule(job.schedule_id, schedule)
        except ScheduleAlreadyRunningError:
            continue
        created.append(job.schedule_id)
    return created
