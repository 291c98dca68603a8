"""Worker entry point: poll the chosen task queues until SIGINT/SIGTERM, then shut down
gracefully (stop polling, let in-flight activities finish within the grace period)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from evently import task_queues
from evently.resources import Resources, open_resources
from evently.settings import Settings
from evently.temporal import connect
from workers.registry import queue_specs

log = logging.getLogger("evently.worker")


def parse_queues(spec: str) -> list[str]:
    names = [q.strip() for q in spec.split(",") if q.strip()]
    unknown = [q for q in names if q not in task_queues.ALL]
    if unknown or not names:
        raise ValueError(
            f"unknown queue(s) {unknown or spec!r}; choose from {', '.join(task_queues.ALL)}"
        )
    return [task_queues.ALL[q] for q in names]


def build_workers(
    client: Client, res: Resources, queues: Sequence[str], settings: Settings
) -> list[Worker]:
    specs = queue_specs()
    workers = []
    for queue in queues:
        spec = specs[queue]
        activities = list(spec.activities(res))
        if not spec.workflows and not activities:
            continue
        workers.append(
            Worker(
                client,
                task_queue=queue,
                workflows=spec.workflows,
                activities=activities,
                max_concurrent_activities=settings.worker_max_concurrent_activities,
                max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
                graceful_shutdown_timeout=timedelta(
                    seconds=settings.worker_graceful_shutdown_seconds
                ),
            )
        )
    return workers


async def run_worker(settings: Settings, queues: Sequence[str]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with open_resources(settings) as res:
        client = await connect(res.endpoints.temporal_address, settings.temporal_namespace)
        res.temporal = client
        workers = build_workers(client, res, queues, settings)
        if not workers:
            log.warning("nothing registered on %s", ", ".join(queues))
        log.info("worker polling %s", ", ".join(queues))
        async with contextlib.AsyncExitStack() as stack:
            for w in workers:
                await stack.enter_async_context(w)
            await stop.wait()
            log.info("shutting down: finishing in-flight tasks")
    log.info("worker stopped")
