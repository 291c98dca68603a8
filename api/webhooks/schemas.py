"""Webhook subscriptions and their delivery log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from api.events.schemas import storable
from evently.db.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from evently.enums import WebhookDeliveryStatus, WebhookEventType, WebhookStatus
from evently.webhooks.sender import message_id

_STRICT = ConfigDict(extra="forbid")
Url = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=8, max_length=2000),
    AfterValidator(storable),
    Field(description="where to POST, e.g. https://example.com/evently (https in production)"),
]
EventTypes = Annotated[list[WebhookEventType], Field(min_length=1, max_length=20)]
Description = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=200), AfterValidator(storable)
]


class WebhookCreate(BaseModel):
    model_config = _STRICT

    url: Url
    event_types: EventTypes
    description: Description = ""


class WebhookPatch(BaseModel):
    model_config = _STRICT

    url: Url | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    enabled: bool | None = Field(
        None, description="false disables it (no messages are written for it); true re-enables"
    )

    @model_validator(mode="after")
    def _something_and_no_nulls(self) -> WebhookPatch:
        nulls = sorted(k for k in self.model_fields_set if getattr(self, k) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null (leave the field out instead)")
        if not self.model_fields_set:
            raise ValueError("send at least one field to change")
        return self

    def changes(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.model_fields_set}


class WebhookOut(BaseModel):
    id: uuid.UUID
    url: str
    description: str
    event_types: list[WebhookEventType]
    status: WebhookStatus
    disabled_reason: str | None
    disabled_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, sub: WebhookSubscription) -> WebhookOut:
        return cls(
            id=sub.id,
            url=sub.url,
            description=sub.description,
            event_types=[WebhookEventType(t) for t in sub.event_types],
            status=WebhookStatus(sub.status),
            disabled_reason=sub.disabled_reason,
            disabled_at=sub.disabled_at,
            created_at=sub.created_at,
            updated_at=sub.updated_at,
        )


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="the Standard Webhooks signing secret (whsec_...): shown only now"
    )

    @classmethod
    def of_new(cls, sub: WebhookSubscription) -> WebhookCreated:
        return cls(**WebhookOut.of(sub).model_dump(), secret=sub.secret)


class WebhookPage(BaseModel):
    items: list[WebhookOut]
    total: int
    page: int
    limit: int


class DeliveryOut(BaseModel):
    id: uuid.UUID
    message_id: str = Field(description="the webhook-id header: the same on every attempt")
    event_type: WebhookEventType
    status: WebhookDeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None = Field(description="when the next retry is due")
    delivered_at: datetime | None
    created_at: datetime
    redelivery_of: uuid.UUID | None = Field(
        None, description="the delivery this one repeats (a redelivery asked for by an owner)"
    )

    @classmethod
    def of(cls, d: WebhookDelivery) -> DeliveryOut:
        return cls(
            id=d.id,
            message_id=message_id(d.message_id),
            event_type=WebhookEventType(d.message.event_type),
            status=WebhookDeliveryStatus(d.status),
            attempts=d.attempts,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            next_attempt_at=d.next_attempt_at,
            delivered_at=d.delivered_at,
            created_at=d.created_at,
            redelivery_of=d.redelivery_of,
        )


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    total: int
    page: int
    limit: int


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempt: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None = Field(
        description="why it failed: the status (HTTP 500), a timeout, a refused destination..."
        " (the answer's body is never kept)"
    )
    response_headers: dict[str, str] | None = Field(
        description="the answer's headers (lower-case names), when there was an answer"
    )
    next_attempt_at: datetime | None

    @classmethod
    def of(cls, a: WebhookAttempt) -> AttemptOut:
        return cls.model_validate(a)


class DeliveryDetail(DeliveryOut):
    data: dict[str, Any] = Field(description="the message's data, as sent")
    attempt_log: list[AttemptOut]
