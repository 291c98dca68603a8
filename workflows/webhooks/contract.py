"""The organizer webhooks' workflows: their inputs and the activities they run (webhooks task
queue). Light module (no I/O imports); fields are only ever added, with defaults."""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import BaseModel

DELIVERY_WORKFLOW = "WebhookDeliveryWorkflow"
RELAY_WORKFLOW = "WebhookRelayWorkflow"
RELAY_WORKFLOW_ID = "webhook-relay"  # one per namespace

# activities (webhooks queue)
DELIVER_WEBHOOK = "deliver_webhook"
RELAY_WEBHOOKS = "relay_webhooks"


def webhook_delivery_workflow_id(delivery_id: uuid.UUID | str) -> str:
    return f"webhook-delivery-{delivery_id}"


class RetrySchedule(BaseModel):
    """Exponential backoff: after attempt ``n`` fails, wait ``min(initial x 2^(n-1), max)``;
    no attempt later than ``horizon`` after the first. The defaults (5 s doubling to 6 h, for
    3 days) make 24 attempts; the settings ``EVENTLY_WEBHOOK_RETRY_*`` choose them, frozen into
    each delivery when it starts."""

    initial_seconds: float = 5.0
    max_interval_seconds: float = 6 * 3600.0
    horizon_seconds: float = 3 * 86400.0
    timeout_seconds: float = 10.0  # one attempt

    def delay_after(self, attempt: int) -> float:
        exponent = min(attempt - 1, 62)  # 2^62 x anything positive is past any cap
        return float(min(self.initial_seconds * 2.0**exponent, self.max_interval_seconds))

    def plan(self) -> list[float]:
        """Seconds from the first attempt to each attempt (what the workflow will do when
        every attempt fails)."""
        at, times, attempt = 0.0, [0.0], 1
        while True:
            at += self.delay_after(attempt)
            if at > self.horizon_seconds:
                return times
            times.append(at)
            attempt += 1


class DeliveryInput(BaseModel):
    delivery_id: uuid.UUID
    schedule: RetrySchedule = RetrySchedule()


class AttemptOutcome(StrEnum):
    DELIVERED = "delivered"  # a 2xx
    RETRY = "retry"  # anything else but a 410: try again later (or give up at the horizon)
    GONE = "gone"  # 410: the subscription is disabled, no more attempts
    STOPPED = "stopped"  # nothing to send: delivered before, subscription disabled or deleted


class AttemptInput(BaseModel):
    delivery_id: uuid.UUID
    attempt: int  # 1-based
    timeout_seconds: float = 10.0
    # when the next attempt follows if this one fails; None: this is the last one (the
    # delivery is marked failed if it fails)
    next_delay_seconds: float | None = None


class AttemptResult(BaseModel):
    outcome: AttemptOutcome
    status_code: int | None = None
    error: str | None = None
    attempts: int = 0  # attempts made so far (the workflow's result)


class RelayInput(BaseModel):
    # activity runs per workflow run before continue-as-new (each run lasts
    # RELAY_RUN_SECONDS, polling the outbox every EVENTLY_WEBHOOK_RELAY_POLL_SECONDS)
    runs_per_history: int = 50
    run_seconds: float = 300.0
