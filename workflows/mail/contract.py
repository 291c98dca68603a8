"""MailOutboxWorkflow's contract: its input, the two activities it runs and their payloads."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

from evently.enums import MailStatus

WORKFLOW_NAME = "MailOutboxWorkflow"
OUTBOX_WORKFLOW_ID = "mail-outbox"  # one dispatcher per namespace (mail task queue)
NEXT_DUE_MAIL = "next_due_mail"
DELIVER_MAIL = "deliver_mail"
QUERY_STATE = "state"

# deliver_mail's failure types (ApplicationError.type), all retried: the strings are part of
# recorded histories and running workflows, never change them
MAIL_LEASED = "MailLeased"  # another delivery of the notification holds its lease
MAIL_NOT_CONFIGURED = "MailNotConfigured"  # EVENTLY_SMTP_URL is not set
MAIL_SERVER_UNAVAILABLE = "MailServerUnavailable"  # unreachable, busy or a 4xx answer
MAIL_NOT_READY = "MailNotReady"  # what the mail carries is about to exist (a credit note)


class OutboxInput(BaseModel):
    """Carried over every continue-as-new. Defaults suit production; tests shorten them."""

    wait_seconds: float = Field(
        60.0, gt=0, description="longest wait for a wake-up (NOTIFY) before looking anyway"
    )
    max_in_flight: int = Field(50, ge=1, description="deliveries running at once")
    retry_initial_seconds: float = Field(1.0, gt=0)
    retry_max_interval_seconds: float = Field(60.0, gt=0)
    delivery_timeout_seconds: float = Field(
        1800.0, gt=0, description="retries of one delivery; after that it is dispatched again"
    )
    deliveries_per_run: int = Field(500, ge=1, description="then continue-as-new")


class DueInput(BaseModel):
    exclude: list[uuid.UUID] = Field(default_factory=list, description="deliveries in flight")
    limit: int = Field(ge=1)
    wait_seconds: float = Field(gt=0)


class DueBatch(BaseModel):
    notification_ids: list[uuid.UUID]


class DeliverInput(BaseModel):
    notification_id: uuid.UUID


class DeliverResult(BaseModel):
    notification_id: uuid.UUID
    status: MailStatus
    attempts: int = 0


class OutboxState(BaseModel):
    in_flight: list[uuid.UUID]
    delivered: int
    skipped: int
    failed: int
    gave_up: int
