"""Delivering organizer webhooks.

``WebhookRelayWorkflow`` (one per namespace, id ``webhook-relay``) keeps one long-running
activity polling the outbox (``webhook_deliveries`` in ``pending``) and starting one
``WebhookDeliveryWorkflow`` per delivery; Temporal restarts the activity on another worker if
its worker dies (heartbeats). ``WebhookDeliveryWorkflow`` (``webhook-delivery-<id>``) makes the
attempts: at once, then with exponential backoff (``RetrySchedule``) until a 2xx, a 410 (the
subscription is disabled) or the horizon (3 days of waits by default: 24 attempts,
``RetrySchedule.plan()``). Each attempt is one activity that
records itself in the delivery log; the waits are durable Temporal timers.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows import common
    from workflows.webhooks.contract import (
        DELIVER_WEBHOOK,
        DELIVERY_WORKFLOW,
        RELAY_WEBHOOKS,
        RELAY_WORKFLOW,
        AttemptInput,
        AttemptOutcome,
        AttemptResult,
        DeliveryInput,
        RelayInput,
    )

# a failure of the activity itself (Postgres down while recording): retried a few times
# within one attempt; beyond that the attempt counts as failed and the schedule goes on
ATTEMPT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
)


@workflow.defn(name=DELIVERY_WORKFLOW)
class WebhookDeliveryWorkflow:
    @workflow.run
    async def run(self, data: DeliveryInput) -> AttemptResult:
        schedule = data.schedule
        waited = 0.0  # the schedule's waits so far: the attempts are schedule.plan(), always
        attempt = 1
        while True:
            delay = schedule.delay_after(attempt)
            last = waited + delay > schedule.horizon_seconds
            try:
                result: AttemptResult = await workflow.execute_activity(
                    DELIVER_WEBHOOK,
                    AttemptInput(
                        delivery_id=data.delivery_id,
                        attempt=attempt,
                        timeout_seconds=schedule.timeout_seconds,
                        next_delay_seconds=None if last else delay,
                    ),
                    result_type=AttemptResult,
                    task_queue=common.WEBHOOKS,
                    start_to_close_timeout=timedelta(seconds=schedule.timeout_seconds + 30),
                    schedule_to_close_timeout=timedelta(
                        seconds=max(schedule.timeout_seconds + 30, min(delay, 3600))
                    ),
                    retry_policy=ATTEMPT_RETRY,
                )
            except ActivityError as exc:
                if last:
                    raise
                workflow.logger.warning("attempt %s could not run: %s", attempt, exc.cause)
                result = AttemptResult(outcome=AttemptOutcome.RETRY, error=str(exc.cause))
            result.attempts = attempt
            if result.outcome != AttemptOutcome.RETRY or last:
                return result
            await workflow.sleep(timedelta(seconds=delay))
            waited += delay
            attempt += 1


@workflow.defn(name=RELAY_WORKFLOW)
class WebhookRelayWorkflow:
    @workflow.run
    async def run(self, data: RelayInput) -> None:
        for _ in range(data.runs_per_history):
            await workflow.execute_activity(
                RELAY_WEBHOOKS,
                data,
                task_queue=common.WEBHOOKS,
                start_to_close_timeout=timedelta(seconds=data.run_seconds + 60),
                heartbeat_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
            )
        workflow.continue_as_new(data)
