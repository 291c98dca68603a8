"""Shared helpers of the waitlist tests: a private time-skipping server per test (its clock
starts at the wall clock, so a booking's hold — timed from Postgres' clock — lines up with
workflow time) with real workers and real activities against the real Postgres and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import text
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.testservice.v1 import UnlockTimeSkippingRequest
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.booking import InventoryActivities, PaymentActivities
from activities.search import SearchIndexActivities
from activities.waitlist import WaitlistActivities
from evently import task_queues
from evently.embedded import SEARCH_ATTRIBUTES
from evently.invariants import check
from evently.resources import Resources
from workflows.booking import BookingWorkflow
from workflows.booking_models import (
    UPDATE_RESERVE,
    BookingInput,
    ReserveResult,
    booking_workflow_id,
)
from workflows.search_sync import EventIndexSyncWorkflow
from workflows.waitlist import WaitlistWorkflow

HOLD = 300
OFFER = 600
T = TypeVar("T")


async def start_env() -> WorkflowEnvironment:
    path = shutil.which("temporal-test-server") or os.path.join(
        os.path.dirname(sys.executable), "temporal-test-server"
    )
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=path, data_converter=pydantic_data_converter
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for name in SEARCH_ATTRIBUTES
            },
        )
    )
    return env


def ts_resources(resources: Resources, env: WorkflowEnvironment) -> Resources:
    return dataclasses.replace(
        resources,
        temporal=env.client,
        settings=resources.settings.model_copy(
            update={
                "hold_seconds": HOLD,
                "waitlist_offer_seconds": OFFER,
                "reserve_timeout_seconds": 30.0,  # shared CI machines stall at times
            }
        ),
    )


@contextlib.asynccontextmanager
async def workers(res: Resources, task_queue: str, *, cache: bool = True) -> AsyncIterator[None]:
    """The booking + waitlist worker on ``task_queue`` and a payments worker, as in production.
    ``cache=False`` for a worker that is going to be stopped mid-flight: no workflow cache, so
    no sticky queue is left behind (the test server never hands a stranded sticky task to the
    next worker); each task then replays the history."""
    inv = InventoryActivities(res)
    pay = PaymentActivities(res)
    booking = Worker(
        res.temporal,
        task_queue=task_queue,
        workflows=[BookingWorkflow, WaitlistWorkflow],
        activities=[
            inv.reserve_seats,
            inv.confirm_booking,
            inv.release_booking,
            inv.settle_late_payment,
            *WaitlistActivities(res, task_queue).all(),
        ],
        graceful_shutdown_timeout=timedelta(seconds=2),
        max_cached_workflows=1000 if cache else 0,
    )
    payments = Worker(
        res.temporal,
        task_queue=task_queues.PAYMENTS,
        activities=[
            pay.charge_payment,
            pay.refund_payment,
            pay.record_provider_payment,
            pay.notify_user,
        ],
    )
    # the search-index sync the inventory activities request (sold out ↔ on sale) runs too:
    # an unpolled workflow or activity task would stop the test server from skipping time
    search_sync = Worker(
        res.temporal, task_queue=task_queues.BOOKING, workflows=[EventIndexSyncWorkflow]
    )
    search = Worker(
        res.temporal,
        task_queue=task_queues.SEARCH,
        activities=[SearchIndexActivities.from_resources(res).index_event],
    )
    async with booking, payments, search_sync, search:
        yield


async def hold(
    res: Resources, task_queue: str, event_id: uuid.UUID, user_id: uuid.UUID, qty: int
) -> uuid.UUID:
    """A held booking through the real BookingWorkflow (update-with-start, like the API)."""
    data = BookingInput(
        booking_id=uuid.uuid4(),
        event_id=event_id,
        user_id=user_id,
        quantity=qty,
        hold_seconds=res.settings.hold_seconds,
    )
    result: ReserveResult = await res.temporal.execute_update_with_start_workflow(
        UPDATE_RESERVE,
        data,
        start_workflow_operation=WithStartWorkflowOperation(
            BookingWorkflow.run,
            data,
            id=booking_workflow_id(data.booking_id),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        ),
        id=UPDATE_RESERVE,
        result_type=ReserveResult,
    )
    assert result.status == "held", result
    return data.booking_id


async def eventually(fn: Callable[[], Awaitable[T]], timeout: float = 15.0) -> T:
    """Poll until ``fn`` returns something truthy (the hand-over runs asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await fn()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def row(res: Resources, sql: str, **params: Any) -> Any:
    async with res.engine.connect() as conn:
        return (await conn.execute(text(sql), params)).one()


async def counters(res: Resources, event_id: uuid.UUID) -> tuple[int, int, int, int]:
    """(available, held, sold, waitlist_pool)."""
    r = await row(
        res,
        "SELECT available, held, sold, waitlist_pool FROM events WHERE id = :id",
        id=event_id,
    )
    return (r.available, r.held, r.sold, r.waitlist_pool)


async def entry(res: Resources, entry_id: uuid.UUID) -> Any:
    return await row(res, "SELECT * FROM waitlist_entries WHERE id = :id", id=entry_id)


async def statuses(res: Resources, *entry_ids: uuid.UUID) -> list[str]:
    return [(await entry(res, e)).status for e in entry_ids]


async def kinds(res: Resources, user_id: uuid.UUID) -> list[str]:
    async with res.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT kind FROM notifications WHERE user_id = :u ORDER BY created_at, kind"),
            {"u": user_id},
        )
        return [r.kind for r in rows]


async def invariants_hold(res: Resources, event_id: uuid.UUID) -> None:
    async with res.engine.connect() as conn:
        assert await check(conn, event_id) == []


async def advance(env: WorkflowEnvironment, seconds: float, *workflow_ids: str) -> None:
    """Skip workflow time. If the test server cannot skip (something holds time, e.g. a task
    nobody polls), fail with what each named workflow is waiting for instead of hanging."""
    try:
        await asyncio.wait_for(env.sleep(timedelta(seconds=seconds)), 20)
        return
    except TimeoutError:
        pass
    # seen on temporal-test-server 1.40 after client updates: its time-skipping lock count
    # stays one too high and a sleep never skips; one extra unlock restores it
    with contextlib.suppress(Exception):
        await env.client.test_service.unlock_time_skipping(UnlockTimeSkippingRequest())
    try:
        await asyncio.wait_for(env.sleep(timedelta(seconds=seconds)), 20)
    except TimeoutError:
        lines = []
        for wid in workflow_ids:
            try:
                raw = (await env.client.get_workflow_handle(wid).describe()).raw_description
                acts = [(a.activity_type.name, a.state, a.attempt) for a in raw.pending_activities]
                lines.append(
                    f"{wid}: {raw.workflow_execution_info.status} activities={acts} "
                    f"task={raw.pending_workflow_task}"
                )
            except Exception as exc:
                lines.append(f"{wid}: {exc!r}")
        raise AssertionError("time did not advance:\n" + "\n".join(lines)) from None
