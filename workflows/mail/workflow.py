"""The mail dispatcher: one long-running workflow that delivers the outbox (the notifications
table, evently/mail/outbox.py), off every booking's path.

Loop: ``next_due_mail`` returns pending notices nobody is delivering, or waits (inside the
activity, LISTENing on Postgres' ``evently_outbox`` channel, which every committed notice
NOTIFYs) until there is one or ``wait_seconds`` passed — the timer sweep. Each notice gets its
own ``deliver_mail`` activity, at most ``max_in_flight`` at once, retried with exponential
backoff while the SMTP server is unreachable. A delivery that exhausts its
``delivery_timeout_seconds`` leaves the notice pending: the next sweep dispatches it again,
so nothing is ever dropped. After ``deliveries_per_run`` (or when Temporal suggests it) the
workflow lets its deliveries finish and continues as new.

Exactly one message per notice: the notice's state lives in Postgres (a claim lease, then
``sent``), and its id is the Message-ID, so even a send repeated after a crash is the same
message.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from evently.enums import MailStatus
    from workflows import common
    from workflows.mail.contract import (
        DELIVER_MAIL,
        NEXT_DUE_MAIL,
        QUERY_STATE,
        WORKFLOW_NAME,
        DeliverInput,
        DeliverResult,
        DueBatch,
        DueInput,
        OutboxInput,
        OutboxState,
    )


@workflow.defn(name=WORKFLOW_NAME)
class MailOutboxWorkflow:
    def __init__(self) -> None:
        self._in_flight: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._started = 0
        self._outcomes = {s: 0 for s in MailStatus}
        self._gave_up = 0

    @workflow.query(name=QUERY_STATE)
    def state(self) -> OutboxState:
        return OutboxState(
            in_flight=sorted(self._in_flight),
            delivered=self._outcomes[MailStatus.SENT],
            skipped=self._outcomes[MailStatus.SKIPPED],
            failed=self._outcomes[MailStatus.FAILED],
            gave_up=self._gave_up,
        )

    @workflow.run
    async def run(self, data: OutboxInput) -> None:
        while True:
            await workflow.wait_condition(lambda: len(self._in_flight) < data.max_in_flight)
            batch: DueBatch = await workflow.execute_activity(
                NEXT_DUE_MAIL,
                DueInput(
                    exclude=sorted(self._in_flight),
                    limit=data.max_in_flight - len(self._in_flight),
                    wait_seconds=data.wait_seconds,
                ),
                result_type=DueBatch,
                start_to_close_timeout=timedelta(seconds=data.wait_seconds + 30),
                heartbeat_timeout=timedelta(seconds=20),  # it heartbeats every 5 s while waiting
                retry_policy=common.DB_RETRY,
            )
            for notification_id in batch.notification_ids:
                if notification_id not in self._in_flight:
                    self._started += 1
                    self._in_flight[notification_id] = asyncio.create_task(
                        self._deliver(notification_id, data)
                    )
            if (
                self._started >= data.deliveries_per_run
                or workflow.info().is_continue_as_new_suggested()
            ):
                await workflow.wait_condition(lambda: not self._in_flight)
                workflow.continue_as_new(data)

    async def _deliver(self, notification_id: uuid.UUID, data: OutboxInput) -> None:
        try:
            result: DeliverResult = await workflow.execute_activity(
                DELIVER_MAIL,
                DeliverInput(notification_id=notification_id),
                result_type=DeliverResult,
                start_to_close_timeout=timedelta(seconds=90),
                schedule_to_close_timeout=timedelta(seconds=data.delivery_timeout_seconds),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=data.retry_initial_seconds),
                    backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=data.retry_max_interval_seconds),
                ),
            )
            self._outcomes[result.status] += 1
        except ActivityError as exc:
            # still pending in Postgres: the next sweep dispatches it again
            self._gave_up += 1
            workflow.logger.warning("delivery of %s paused: %s", notification_id, exc.cause)
        finally:
            del self._in_flight[notification_id]
