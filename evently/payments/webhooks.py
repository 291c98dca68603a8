"""Payment provider webhooks: the signature check (HMAC-SHA256 over "<t>.<raw body>",
constant time, timestamp tolerance), the event's shape, and the record of events already acted
on. Delivery to the booking workflow: api/payments/service.py."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from evently.db.models import ProcessedWebhookEvent
from evently.errors import InvalidSignature, MalformedJson, SignatureExpired, Unprocessable

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
        raise InvalidSignature(f"Missing {SIGNATURE_HEADER} header.")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key, []).append(value)
    try:
        t = int(parts["t"][0])
    except (KeyError, ValueError) as exc:
        raise InvalidSignature("Malformed signature header.") from exc
    if abs(time.time() - t) > tolerance:
        raise SignatureExpired()
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, v1) for v1 in parts.get("v1", [])):
        raise InvalidSignature("The signature does not match.")


async def seen(session: AsyncSession, event_id: str) -> bool:
    """Was this provider event acted on already?"""
    found = await session.scalar(
        select(ProcessedWebhookEvent.provider_event_id).where(
            ProcessedWebhookEvent.provider_event_id == event_id
        )
    )
    return found is not None


async def remember(
    session: AsyncSession, event_id: str, event_type: str, booking_id: uuid.UUID | None
) -> None:
    """Record a provider event as acted on (idempotent): a replay of it does nothing."""
    await session.execute(
        pg_insert(ProcessedWebhookEvent)
        .values(provider_event_id=event_id, event_type=event_type, booking_id=booking_id)
        .on_conflict_do_nothing()
    )


def parse(body: bytes) -> WebhookEvent:
    from pydantic import ValidationError

    try:
        return WebhookEvent.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise MalformedJson() from exc
        where = ".".join(str(p) for p in first["loc"])
        raise Unprocessable(f"{where}: {first['msg']}") from exc
