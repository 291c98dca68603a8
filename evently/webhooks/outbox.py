"""The outbox's bookkeeping for its relay and its deliveries (activities/webhooks.py).

A delivery is ``pending`` from the transaction that wrote it (a trigger, migration
0006orgs); the relay starts its workflow and marks it ``delivering``; each attempt is one row of
``webhook_attempts`` and updates the delivery (attempts, last status code or error, next
attempt) in one transaction; it ends ``delivered`` or ``failed``. Every function is keyed (the
delivery, its attempt number), so a retried activity changes nothing twice.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from evently import audit
from evently.enums import WebhookDeliveryStatus, WebhookStatus

GONE_REASON = "the endpoint answered 410 Gone"


@dataclass(frozen=True)
class PendingDelivery:
    delivery_id: uuid.UUID
    organization_id: uuid.UUID


async def pending(conn: AsyncConnection, limit: int) -> list[PendingDelivery]:
    """The oldest deliveries nobody has started yet (``ix_webhook_deliveries_pending``)."""
    rows = await conn.execute(
        text(
            "SELECT d.id, m.organization_id FROM webhook_deliveries d "
            "JOIN webhook_messages m ON m.id = d.message_id "
            "WHERE d.status = 'pending' ORDER BY d.created_at LIMIT :n"
        ),
        {"n": limit},
    )
    return [PendingDelivery(r.id, r.organization_id) for r in rows]


async def mark_started(conn: AsyncConnection, delivery_ids: list[uuid.UUID]) -> None:
    """Their workflows run: no longer the relay's (an attempt may have finished already)."""
    if delivery_ids:
        await conn.execute(
            text(
                "UPDATE webhook_deliveries SET status = 'delivering', updated_at = now() "
                "WHERE id = ANY(:ids) AND status = 'pending'"
            ),
            {"ids": delivery_ids},
        )


@dataclass(frozen=True)
class DeliveryContext:
    """What an attempt needs: the delivery, its subscription and its message."""

    delivery_id: uuid.UUID
    status: str
    subscription_id: uuid.UUID
    subscription_status: str
    url: str
    secret: str
    organization_id: uuid.UUID
    message_id: uuid.UUID
    event_type: str
    payload: dict[str, Any]
    created_at: datetime


async def load(conn: AsyncConnection, delivery_id: uuid.UUID) -> DeliveryContext | None:
    """None when the delivery is gone (its subscription was deleted)."""
    row = (
        await conn.execute(
            text(
                "SELECT d.id AS delivery_id, d.status, s.id AS subscription_id, "
                "s.status AS subscription_status, s.url, s.secret, m.organization_id, "
                "m.id AS message_id, m.event_type, m.payload, m.created_at "
                "FROM webhook_deliveries d "
                "JOIN webhook_subscriptions s ON s.id = d.subscription_id "
                "JOIN webhook_messages m ON m.id = d.message_id WHERE d.id = :id"
            ),
            {"id": delivery_id},
        )
    ).first()
    return DeliveryContext(**row._mapping) if row is not None else None


async def record_attempt(
    conn: AsyncConnection,
    delivery_id: uuid.UUID,
    *,
    attempt: int,
    started_at: datetime,
    duration_ms: int,
    status_code: int | None,
    error: str | None,
    outcome: WebhookDeliveryStatus,
    next_delay_seconds: float | None,
    response_headers: dict[str, str] | None = None,
) -> datetime | None:
    """The attempt in the log and the delivery's new state (``outcome``: delivered, failed,
    or delivering with the next attempt ``next_delay_seconds`` from now). Returns when the
    next attempt is due, if any. A retried activity overwrites its own attempt's row."""
    next_at = (
        started_at + timedelta(seconds=next_delay_seconds)
        if outcome == WebhookDeliveryStatus.DELIVERING and next_delay_seconds is not None
        else None
    )
    await conn.execute(
        text(
            "INSERT INTO webhook_attempts (delivery_id, attempt, started_at, duration_ms, "
            "status_code, error, response_headers, next_attempt_at) "
            "VALUES (:d, :a, :at, :ms, :code, :err, CAST(:headers AS jsonb), :next) "
            "ON CONFLICT (delivery_id, attempt) DO UPDATE SET started_at = EXCLUDED.started_at, "
            "duration_ms = EXCLUDED.duration_ms, status_code = EXCLUDED.status_code, "
            "error = EXCLUDED.error, response_headers = EXCLUDED.response_headers, "
            "next_attempt_at = EXCLUDED.next_attempt_at"
        ),
        {
            "d": delivery_id,
            "a": attempt,
            "at": started_at,
            "ms": duration_ms,
            "code": status_code,
            "err": error,
            "headers": json.dumps(response_headers) if response_headers is not None else None,
            "next": next_at,
        },
    )
    await conn.execute(
        text(
            "UPDATE webhook_deliveries SET status = CAST(:status AS text), "
            "attempts = GREATEST(attempts, :a), "
            "last_status_code = :code, last_error = :err, next_attempt_at = :next, "
            "delivered_at = CASE WHEN CAST(:status AS text) = 'delivered' THEN now() "
            "ELSE delivered_at END, "
            "updated_at = now() WHERE id = :d AND status <> 'delivered'"
        ),
        {
            "d": delivery_id,
            "a": attempt,
            "status": outcome,
            "code": status_code,
            "err": error,
            "next": next_at,
        },
    )
    return next_at


async def stop(conn: AsyncConnection, delivery_id: uuid.UUID, reason: str) -> None:
    """No (further) attempt: the subscription is disabled."""
    await conn.execute(
        text(
            "UPDATE webhook_deliveries SET status = 'failed', last_error = :r, "
            "next_attempt_at = NULL, updated_at = now() "
            "WHERE id = :d AND status IN ('pending', 'delivering')"
        ),
        {"d": delivery_id, "r": reason[:500]},
    )


async def disable_for_gone(
    conn: AsyncConnection, ctx: DeliveryContext, *, status_code: int
) -> bool:
    """The endpoint answered 410: disable the subscription (once; audited as the system's
    doing). True when this call disabled it."""
    changed = await conn.scalar(
        text(
            "UPDATE webhook_subscriptions SET status = :disabled, disabled_reason = :r, "
            "disabled_at = now(), updated_at = now() WHERE id = :s AND status = :active "
            "RETURNING id"
        ),
        {
            "s": ctx.subscription_id,
            "r": GONE_REASON,
            "disabled": WebhookStatus.DISABLED,
            "active": WebhookStatus.ACTIVE,
        },
    )
    if changed is None:
        return False
    await audit.record(
        conn,
        organization_id=ctx.organization_id,
        actor=audit.SYSTEM_WEBHOOKS,
        actor_user_id=None,
        action="webhook.disabled",
        target_type="webhook",
        target_id=ctx.subscription_id,
        details={
            "reason": GONE_REASON,
            "status_code": status_code,
            "url": ctx.url,
            "delivery_id": ctx.delivery_id,
            "message_id": ctx.message_id,
        },
    )
    return True
