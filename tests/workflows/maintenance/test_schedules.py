"""Schedules, not cron (issue 33): the periodic jobs' Temporal Schedules are created at worker
start-up, exactly once however often workers start (every one of JOBS: token pruning, the
invariant check, reminders, retention); the jobs run on real workers."""

from __future__ import annotations

import asyncio
import time
import uuid

from temporalio.client import Client

from evently.infra.resources import Resources
from evently.settings import Settings
from tests.support.histories import record
from tests.support.temporal import register_namespace
from workers.main import build_workers
from workflows import common
from workflows.connection import connect
from workflows.maintenance.client import JOBS, ensure_schedules
from workflows.maintenance.contract import WORKFLOW_NAME, MaintenanceInput, MaintenanceResult


async def _schedule_ids(client: Client) -> list[str]:
    return [s.id async for s in await client.list_schedules()]


async def test_schedules_exist_exactly_once_after_two_starts(
    temporal_client: Client, settings: Settings, resources: Resources
) -> None:
    namespace = await register_namespace(temporal_client)
    assert settings.temporal_address
    client = await connect(settings.temporal_address, namespace)
    first = await ensure_schedules(client)  # the first worker start
    second = await ensure_schedules(client)  # a restart (or a second booking worker)
    assert sorted(first) == sorted(j.schedule_id for j in JOBS)
    assert second == []
    expected = sorted(j.schedule_id for j in JOBS)
    deadline = time.monotonic() + 20  # the schedule list is eventually consistent
    while (ids := sorted(await _schedule_ids(client))) != expected:
        assert time.monotonic() < deadline, ids
        await asyncio.sleep(0.2)
    for job in JOBS:
        described = await client.get_schedule_handle(job.schedule_id).describe()
        assert described.schedule.spec.intervals[0].every == job.every

    # the jobs run on the booking pool's real workers
    workers = build_workers(
        client, resources, [common.BOOKING], resources.settings, strict_sandbox=True
    )
    async with workers[0]:
        for task in ("check_invariants", "prune_tokens", "queue_reminders", "retention"):
            workflow_id = f"maintenance-{uuid.uuid4()}"
            result = await asyncio.wait_for(
                client.execute_workflow(
                    WORKFLOW_NAME,
                    MaintenanceInput(task=task),
                    id=workflow_id,
                    task_queue=common.BOOKING,
                    result_type=MaintenanceResult,
                ),
                30,
            )
            assert result.task == task
            assert result.count >= 0
            await record(client, workflow_id, f"maintenance-{task.replace('_', '-')}")
