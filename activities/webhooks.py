"""Organizer webhook activities (webhooks task queue): the outbox relay and one delivery
attempt. The relay starts a delivery workflow per pending delivery (idempotent by workflow id);
an attempt signs and POSTs the message, then records itself in the delivery log (keyed by the
delivery and the attempt number: a retried activity overwrites its own row)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import httpx
from temporalio import activity

from evently.enums import WebhookDeliveryStatus, WebhookStatus
from evently.infra.resources import Resources
from evently.webhooks import outbox, sender, targets
from workflows.connection import TemporalClient
from workflows.webhooks import client as webhooks_client
from workflows.webhooks.contract import (
    DELIVER_WEBHOOK,
    RELAY_WEBHOOKS,
    AttemptInput,
    AttemptOutcome,
    AttemptResult,
    RelayInput,
    RetrySchedule,
)

log = logging.getLogger("evently.activities.webhooks")

RELAY_BATCH = 100
START_CONCURRENCY = 20


class WebhookActivities:
    def __init__(
        self,
        res: Resources,
        temporal: TemporalClient,
        resolver: targets.Resolver = targets.system_resolver,
    ) -> None:
        self.res = res
        self.temporal = temporal
        self.resolver = resolver  # pluggable: tests answer names with a stub
        self.policy = targets.TargetPolicy.of(res.settings)
        self._http: httpx.AsyncClient | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:  # made on first use, inside the worker's event loop
            self._http = sender.client()
        return self._http

    def schedule(self) -> RetrySchedule:
        s = self.res.settings
        return RetrySchedule(
            initial_seconds=s.webhook_retry_initial_seconds,
            max_interval_seconds=s.webhook_retry_max_interval_seconds,
            horizon_seconds=s.webhook_retry_horizon_seconds,
            timeout_seconds=s.webhook_timeout_seconds,
        )

    # ---- the relay --------------------------------------------------------------------------

    async def relay_once(self, limit: int = RELAY_BATCH) -> int:
        """Start the workflows of up to ``limit`` pending deliveries; returns how many."""
        async with self.res.engine.connect() as conn:
            found = await outbox.pending(conn, limit)
        if not found:
            return 0
        schedule = self.schedule()
        gate = asyncio.Semaphore(START_CONCURRENCY)

        async def start(p: outbox.PendingDelivery) -> None:
            async with gate:
                await webhooks_client.start_delivery(
                    self.temporal,
                    p.delivery_id,
                    organization_id=p.organization_id,
                    schedule=schedule,
                )

        await asyncio.gather(*(start(p) for p in found))
        async with self.res.engine.begin() as conn:
            await outbox.mark_started(conn, [p.delivery_id for p in found])
        return len(found)

    @activity.defn(name=RELAY_WEBHOOKS)
    async def relay_webhooks(self, data: RelayInput) -> int:
        """Poll the outbox for ``run_seconds`` (heartbeating), then return; the relay
        workflow runs it again. Returns the deliveries started."""
        deadline = time.monotonic() + data.run_seconds
        started = 0
        while time.monotonic() < deadline and not activity.is_worker_shutdown():
            activity.heartbeat(started)
            try:
                n = await self.relay_once()
            except Exception as exc:  # Postgres or Temporal down: keep polling, heartbeat on
                log.warning("webhook relay pass failed: %r", exc)
                n = 0
            started += n
            if n < RELAY_BATCH:
                # a worker shutting down hands the relay over at once (its workflow schedules
                # the next run, for the next worker): a deploy never waits the grace period
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        activity.wait_for_worker_shutdown(),
                        self.res.settings.webhook_relay_poll_seconds,
                    )
        return started

    # ---- one attempt -------------------------------------------------------------------------

    @activity.defn(name=DELIVER_WEBHOOK)
    async def deliver_webhook(self, data: AttemptInput) -> AttemptResult:
        async with self.res.engine.connect() as conn:
            ctx = await outbox.load(conn, data.delivery_id)
        if ctx is None:  # its subscription was deleted
            return AttemptResult(outcome=AttemptOutcome.STOPPED, error="subscription deleted")
        if ctx.status in (WebhookDeliveryStatus.DELIVERED, WebhookDeliveryStatus.FAILED):
            return AttemptResult(outcome=AttemptOutcome.STOPPED, error=f"already {ctx.status}")
        if ctx.subscription_status != WebhookStatus.ACTIVE:
            async with self.res.engine.begin() as conn:
                await outbox.stop(conn, ctx.delivery_id, "the subscription is disabled")
            return AttemptResult(outcome=AttemptOutcome.STOPPED, error="subscription disabled")

        payload = sender.body(
            event_type=ctx.event_type,
            created_at=ctx.created_at,
            organization_id=ctx.organization_id,
            data=ctx.payload,
        )
        sent = await sender.send(
            self.http,
            ctx.url,
            secret=ctx.secret,
            msg_id=sender.message_id(ctx.message_id),
            payload=payload,
            timeout_seconds=data.timeout_seconds,
            policy=self.policy,
            resolver=self.resolver,
        )
        if sent.delivered:
            outcome, status = AttemptOutcome.DELIVERED, WebhookDeliveryStatus.DELIVERED
        elif sent.gone or data.next_delay_seconds is None:
            outcome = AttemptOutcome.GONE if sent.gone else AttemptOutcome.RETRY
            status = WebhookDeliveryStatus.FAILED
        else:
            outcome, status = AttemptOutcome.RETRY, WebhookDeliveryStatus.DELIVERING
        async with self.res.engine.begin() as conn:
            await outbox.record_attempt(
                conn,
                ctx.delivery_id,
                attempt=data.attempt,
                started_at=sent.started_at,
                duration_ms=sent.duration_ms,
                status_code=sent.status_code,
                error=sent.error,
                response_headers=sent.response_headers,
                outcome=status,
                next_delay_seconds=data.next_delay_seconds,
            )
            if sent.gone:
                await outbox.disable_for_gone(conn, ctx, status_code=410)
        if outcome == AttemptOutcome.RETRY:
            log.info(
                "webhook delivery %s attempt %s failed: %s",
                ctx.delivery_id,
                data.attempt,
                sent.error,
            )
        return AttemptResult(outcome=outcome, status_code=sent.status_code, error=sent.error)
