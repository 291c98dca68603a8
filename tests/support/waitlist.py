"""Shared helpers of the waitlist tests: a private time-skipping server per test (its clock
starts at the wall clock, so a booking's hold — timed from Postgres' clock — lines up with
workflow time) with the production workers and real activities against the real Postgres and
Redis."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import text
from temporalio.api.testservice.v1 import UnlockTimeSkippingRequest
from temporalio.testing import WorkflowEnvironment

from evently.enums import BookingStatus
from evently.infra.resources import Resources
from evently.invariants import check
from tests.support.temporal import TimeSkipping
from tests.support.temporal import workers as production_workers
from workflows.booking import client as booking_client
from workflows.booking.contract import BookingInput

HOLD = 300
OFFER = 600
T = TypeVar("T")


def waitlist_settings(ts: TimeSkipping) -> TimeSkipping:
    return ts.with_settings(
        hold_seconds=HOLD,
        waitlist_offer_seconds=OFFER,
        reserve_timeout_seconds=30.0,  # shared CI machines stall at times
        worker_graceful_shutdown_seconds=2.0,
    )


@contextlib.asynccontextmanager
async def workers(ts: TimeSkipping, *, cache: bool = True) -> AsyncIterator[None]:
    """Every production worker. ``cache=False`` for a worker that is going to be stopped
    mid-flight: no workflow cache, so no sticky queue is left behind (the test server never
    hands a stranded sticky task to the next worker); each task then replays the history."""
    if not cache:
        ts = ts.with_settings(worker_max_cached_workflows=0)
    async with production_workers(ts):
        yield


async def hold(ts: TimeSkipping, event_id: uuid.UUID, user_id: uuid.UUID, qty: int) -> uuid.UUID:
    """A held booking through the real BookingWorkflow (update-with-start, like the API)."""
    data = BookingInput(
        booking_id=uuid.uuid4(),
        event_id=event_id,
        user_id=user_id,
        quantity=qty,
        hold_seconds=ts.res.settings.hold_seconds,
    )
    result = await booking_client.start_booking(ts.client, data, wait_seconds=30)
    assert result.status == BookingStatus.HELD, result
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
