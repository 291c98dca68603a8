"""Payment provider webhooks: signature check (HMAC-SHA256 over "<t>.<raw body>", constant
time, timestamp tolerance) and delivery to the booking workflow, once per provider event."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.dialects.postgresql import insert as pg_insert
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from evently import task_queues
from evently.db.models import Booking, ProcessedWebhookEvent
from evently.errors import BadRequest, NotFound, Unauthorized, Unprocessable
from evently.resources import Resources
from workflows.booking_models import (
    SIGNAL_PAYMENT_SUCCEEDED,
    WORKFLOW_NAME,
    BookingInput,
    PaymentNotice,
    booking_workflow_id,
)

SIGNATURE_HEADER = "Evently-Signature"


class WebhookData(BaseModel):
    model_config = ConfigDict(extra="allow")
    booking_id: uuid.UUID
    amount: Decimal = Field(ge=0, max_digits=14, decimal_places=2)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    payment_id: str = Field(min_length=1, max_length=100)


class WebhookEvent(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(min_length=1, max_length=200)
    type: Literal["payment.succeeded", "payment.failed", "refund.succeeded"]
    data: WebhookData


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value a provider sends (also used by tests and the benchmark)."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, header: str | None, body: bytes, tolerance: int) -> None:
    if not header:
        raise Unauthorized(f"Missing {SIGNATURE_HEADER} header.", code="invalid_signature")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key, []).append(value)
    try:
        t = int(parts["t"][0])
    except (KeyError, ValueError) as exc:
        raise Unauthorized("Malformed signature header.", code="invalid_signature") from exc
    if abs(time.time() - t) > tolerance:
        raise Unauthorized("The signature timestamp is too old.", code="signature_expired")
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, v1) for v1 in parts.get("v1", [])):
        raise Unauthorized("The signature does not match.", code="invalid_signature")


async def handle(res: Resources, event: WebhookEvent) -> str:
    """Act on a verified event once. Returns "processed" or "duplicate"."""
    async with res.sessionmaker() as session:
        seen = await session.get(ProcessedWebhookEvent, event.id)
        if seen is not None:
            return "duplicate"
        booking = await session.get(Booking, event.data.booking_id)
    if booking is None:
        raise NotFound("No such booking.", code="booking_not_found")
    if event.type == "payment.succeeded":
        if event.data.amount != booking.amount or event.data.currency != booking.currency:
            raise Unprocessable(
                "The payment amount does not match the booking.", code="amount_mismatch"
            )
        # Deliver to the booking's workflow. If it has finished (hold over), a new run picks
        # the booking up where it is and applies the late-payment rule: confirm if the seats
        # can still be taken, refund otherwise. The workflow ignores event ids it has seen.
        await res.temporal.start_workflow(
            WORKFLOW_NAME,
            BookingInput(
                booking_id=booking.id,
                event_id=booking.event_id,
                user_id=booking.user_id,
                quantity=booking.quantity,
                hold_seconds=res.settings.hold_seconds,
            ),
            id=booking_workflow_id(booking.id),
            task_queue=task_queues.BOOKING,
            start_signal=SIGNAL_PAYMENT_SUCCEEDED,
            start_signal_args=[
                PaymentNotice(
                    provider_event_id=event.id,
                    provider_payment_id=event.data.payment_id,
                    amount=event.data.amount,
                    currency=event.data.currency,
                )
            ],
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
    # payment.failed: the hold stays until it ends; refund.succeeded: our refunds are recorded
    # when we make them. Either way, remember the event id so a replay does nothing.
    async with res.engine.begin() as conn:
        await conn.execute(
            pg_insert(ProcessedWebhookEvent)
            .values(provider_event_id=event.id, event_type=event.type, booking_id=booking.id)
            .on_conflict_do_nothing()
        )
    return "processed"


def parse(body: bytes) -> WebhookEvent:
    from pydantic import ValidationError

    try:
        return WebhookEvent.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise BadRequest("The body is not valid JSON.", code="malformed_json") from exc
        where = ".".join(str(p) for p in first["loc"])
        raise Unprocessable(f"{where}: {first['msg']}") from exc
