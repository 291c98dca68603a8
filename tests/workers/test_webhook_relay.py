"""The webhooks pool's outbox relay is a long-running activity: a worker shutting down hands it
over at once instead of waiting out its grace period (a deploy never stalls on it), and the
relay workflow runs it again on the next worker."""

from __future__ import annotations

import asyncio
import time

from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client

from evently.infra.resources import Resources
from workers.main import build_workers
from workflows import common
from workflows.webhooks.client import ensure_relay
from workflows.webhooks.contract import RELAY_WORKFLOW_ID


async def relay_running(client: Client, timeout: float = 30) -> None:
    handle = client.get_workflow_handle(RELAY_WORKFLOW_ID)
    deadline = time.monotonic() + timeout
    while True:
        desc = await handle.describe()
        pending = desc.raw_description.pending_activities
        if any(p.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED for p in pending):
            return
        assert time.monotonic() < deadline, "the relay activity never started"
        await asyncio.sleep(0.2)


async def test_a_worker_shutting_down_hands_the_relay_over_at_once(
    ns_client: Client, resources: Resources
) -> None:
    settings = resources.settings.model_copy(update={"worker_graceful_shutdown_seconds": 3600.0})
    first = build_workers(ns_client, resources, [common.WEBHOOKS], settings)[0]
    task = asyncio.create_task(first.run())
    await ensure_relay(ns_client)
    await ensure_relay(ns_client)  # idempotent: one relay per namespace
    await relay_running(ns_client)
    # at once, not after the hour-long grace period: a bounded wait of 5 minutes fails only a
    # shutdown that waits the grace out (no wall-clock assertion, issue 35)
    await asyncio.wait_for(first.shutdown(), 300)
    await task

    second = build_workers(ns_client, resources, [common.WEBHOOKS], settings)[0]
    task = asyncio.create_task(second.run())
    try:
        await relay_running(ns_client)  # the next worker picks it up
    finally:
        await second.shutdown()
        await task
    await ns_client.get_workflow_handle(RELAY_WORKFLOW_ID).terminate("test over")
