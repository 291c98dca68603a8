"""WebhookDeliveryWorkflow on the time-skipping test server, with the real activity (signing,
HTTP, the delivery log in Postgres) and a real HTTP receiver: three days of retries in
seconds."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus

from evently.db.models import Organization
from evently.infra.resources import Resources
from evently.webhooks import subscriptions
from tests.support.histories import record
from tests.support.temporal import TimeSkipping, workers
from tests.support.webhook_receiver import Receiver
from workflows import common
from workflows.webhooks import client as webhooks_client
from workflows.webhooks.contract import (
    AttemptOutcome,
    AttemptResult,
    RetrySchedule,
    webhook_delivery_workflow_id,
)
from workflows.webhooks.workflow import WebhookDeliveryWorkflow

PRODUCTION = RetrySchedule()  # 5 s doubling to 6 h, for 3 days, 10 s per attempt


@pytest.fixture
async def ts(time_skipping: TimeSkipping) -> AsyncIterator[TimeSkipping]:
    async with workers(time_skipping, queues=(common.WEBHOOKS,)):
        yield time_skipping


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


async def a_delivery(res: Resources, url: str) -> tuple[uuid.UUID, uuid.UUID, str]:
    """An organization, its subscription to ``url`` and one message for it, written as the
    triggers write them; the delivery is already 'delivering' (no relay picks it up)."""
    async with res.sessionmaker() as session, session.begin():
        org = Organization(name=f"Org {uuid.uuid4().hex[:6]}")
        session.add(org)
        await session.flush()
        sub = await subscriptions.create(
            session,
            org.id,
            url=url,
            event_types=["event.cancelled"],
            description="",
            created_by=None,  # type: ignore[arg-type]
        )
        org_id, secret = org.id, sub.secret
        await session.execute(
            text("UPDATE webhook_subscriptions SET status = 'active' WHERE id = :id"),
            {"id": sub.id},
        )
    async with res.engine.begin() as conn:
        await conn.execute(
            text(
                "SELECT evently_webhook_enqueue(:org, 'event.cancelled', :key, "
                "jsonb_build_object('event_id', CAST(:key AS text)))"
            ),
            {"org": org_id, "key": f"test:{uuid.uuid4()}"},
        )
        delivery_id = await conn.scalar(
            text(
                "UPDATE webhook_deliveries SET status = 'delivering' WHERE subscription_id = :s "
                "RETURNING id"
            ),
            {"s": sub.id},
        )
    return delivery_id, org_id, secret


async def delivery_row(res: Resources, delivery_id: uuid.UUID) -> Any:
    async with res.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT * FROM webhook_deliveries WHERE id = :id"), {"id": delivery_id}
            )
        ).one()
        attempts = (
            await conn.execute(
                text(
                    "SELECT attempt, status_code, error, next_attempt_at FROM webhook_attempts "
                    "WHERE delivery_id = :id ORDER BY attempt"
                ),
                {"id": delivery_id},
            )
        ).all()
    return row, attempts


async def deliver(ts: TimeSkipping, delivery_id: uuid.UUID, org_id: uuid.UUID) -> AttemptResult:
    """Start the delivery and skip time until it ends (result() alone does not skip on this
    server while nothing waits on the workflow)."""
    await webhooks_client.start_delivery(
        ts.client, delivery_id, organization_id=org_id, schedule=PRODUCTION
    )
    handle = ts.client.get_workflow_handle_for(
        WebhookDeliveryWorkflow.run, webhook_delivery_workflow_id(delivery_id)
    )
    deadline = time.monotonic() + 60
    while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        assert time.monotonic() < deadline, "the delivery did not finish"
        await ts.env.sleep(timedelta(hours=1))
    return await handle.result()


def test_the_production_schedule() -> None:
    plan = PRODUCTION.plan()
    assert len(plan) == 24  # attempts within 3 days
    gaps = [b - a for a, b in itertools.pairwise(plan)]
    assert gaps[:13] == [5.0 * 2**i for i in range(13)]  # 5 s, 10 s, ... 5.7 h
    assert set(gaps[13:]) == {6 * 3600.0}
    assert plan[-1] <= 3 * 86400 < plan[-1] + 6 * 3600


async def test_a_receiver_that_never_answers_2xx_is_given_up_after_three_days(
    ts: TimeSkipping, receiver: Receiver
) -> None:
    delivery_id, org_id, secret = await a_delivery(ts.res, receiver.url)
    receiver.secret = secret
    receiver.behaviour = lambda msg_id, n: 503
    result = await deliver(ts, delivery_id, org_id)
    assert (result.outcome, result.attempts) == (AttemptOutcome.RETRY, 24)
    assert (len(receiver.arrivals), receiver.bad_signatures) == (24, 0)
    assert len({a.msg_id for a in receiver.arrivals}) == 1  # one stable id throughout

    row, attempts = await delivery_row(ts.res, delivery_id)
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 24, 503)
    assert row.next_attempt_at is None
    assert [a.attempt for a in attempts] == list(range(1, 25))
    assert all(a.next_attempt_at is not None for a in attempts[:-1])
    assert attempts[-1].next_attempt_at is None

    # the waits are Temporal timers of exactly the schedule
    handle = ts.client.get_workflow_handle(webhook_delivery_workflow_id(delivery_id))
    timers = [
        e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta().total_seconds()
        async for e in handle.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
    ]
    plan = PRODUCTION.plan()
    assert timers == [b - a for a, b in itertools.pairwise(plan)]
    desc = await handle.describe()
    assert desc.typed_search_attributes.get(common.ORGANIZATION_ID) == str(org_id)
    await record(ts.client, webhook_delivery_workflow_id(delivery_id), "webhook-delivery-gave-up")


async def test_a_receiver_that_recovers_gets_the_message(
    ts: TimeSkipping, receiver: Receiver
) -> None:
    delivery_id, org_id, secret = await a_delivery(ts.res, receiver.url)
    receiver.secret = secret
    receiver.behaviour = lambda msg_id, n: {1: 500, 2: 429}.get(n, 200)
    result = await deliver(ts, delivery_id, org_id)
    assert (result.outcome, result.attempts, result.status_code) == ("delivered", 3, 200)
    row, attempts = await delivery_row(ts.res, delivery_id)
    assert (row.status, row.attempts, row.delivered_at is not None) == ("delivered", 3, True)
    assert [a.status_code for a in attempts] == [500, 429, 200]
    assert list(receiver.processed) == [receiver.arrivals[0].msg_id]
    await record(
        ts.client, webhook_delivery_workflow_id(delivery_id), "webhook-delivery-retried-delivered"
    )


async def test_a_410_ends_the_delivery_and_the_subscription(
    ts: TimeSkipping, receiver: Receiver
) -> None:
    delivery_id, org_id, secret = await a_delivery(ts.res, receiver.url)
    receiver.secret = secret
    receiver.behaviour = lambda msg_id, n: 500 if n == 1 else 410
    result = await deliver(ts, delivery_id, org_id)
    assert (result.outcome, result.attempts, result.status_code) == ("gone", 2, 410)
    row, _ = await delivery_row(ts.res, delivery_id)
    assert (row.status, row.last_status_code) == ("failed", 410)
    async with ts.res.engine.connect() as conn:
        status = await conn.scalar(
            text("SELECT status FROM webhook_subscriptions WHERE id = :id"),
            {"id": row.subscription_id},
        )
    assert status == "disabled"
    await record(ts.client, webhook_delivery_workflow_id(delivery_id), "webhook-delivery-gone")
