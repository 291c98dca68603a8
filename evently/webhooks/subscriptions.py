"""Webhook subscriptions of an organization, and the delivery log its owners read.

A subscription names an HTTP(S) endpoint and the message types it wants; it is signed with its
own Standard Webhooks secret (``whsec_`` + base64 of 32 random bytes), shown once, when it is
created. Messages are written for it only while it is ``active``; a 410 from the endpoint (or
its owner) disables it.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from evently.db.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookMessage,
    WebhookSubscription,
)
from evently.enums import WebhookDeliveryStatus, WebhookStatus
from evently.errors import InvalidWebhookUrl, WebhookUrlNotAllowed
from evently.webhooks import targets

DISABLED_BY_OWNER = "disabled by an owner"
REGISTRATION_RESOLVE_SECONDS = 5.0


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def check_url(url: str, *, require_https: bool) -> str:
    """A well-formed URL an organization may send us to: http(s), a host, no credentials;
    HTTPS when required (production). Where it points is checked by :func:`check_destination`
    (and again, resolved, at every delivery)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise InvalidWebhookUrl(f"url: {exc}") from exc
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidWebhookUrl(
            "url: must be an absolute http(s) URL, e.g. https://example.com/hooks"
        )
    if require_https and parts.scheme != "https":
        raise InvalidWebhookUrl("url: must use https")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookUrl("url: must not carry credentials (use the signature instead)")
    if port == 0:
        raise InvalidWebhookUrl("url: port 0 is not a port")
    return url.strip()


async def check_destination(
    url: str,
    policy: targets.TargetPolicy,
    resolver: targets.Resolver = targets.system_resolver,
    *,
    resolve_seconds: float = REGISTRATION_RESOLVE_SECONDS,
) -> None:
    """Refuse (:class:`WebhookUrlNotAllowed`) a URL whose host is, or resolves to, an address
    webhooks may not reach. A name that does not resolve now is accepted: every delivery
    resolves and checks it again before it connects."""
    parts = httpx.URL(url)
    host = parts.raw_host.decode("ascii")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        async with asyncio.timeout(resolve_seconds):
            await targets.checked_addresses(host, port, policy, resolver)
    except targets.TargetRefused as exc:
        raise WebhookUrlNotAllowed(f"url: {exc}") from exc
    except (targets.Unresolvable, TimeoutError):
        return


async def create(
    session: AsyncSession,
    organization_id: uuid.UUID,
    *,
    url: str,
    event_types: list[str],
    description: str,
    created_by: uuid.UUID,
) -> WebhookSubscription:
    sub = WebhookSubscription(
        organization_id=organization_id,
        url=url,
        event_types=sorted(set(event_types)),
        description=description,
        secret=new_secret(),
        status=WebhookStatus.ACTIVE,
        created_by=created_by,
    )
    session.add(sub)
    await session.flush()
    await session.refresh(sub)
    return sub


async def get(
    session: AsyncSession, organization_id: uuid.UUID, webhook_id: uuid.UUID
) -> WebhookSubscription | None:
    return await session.scalar(
        select(WebhookSubscription).where(
            WebhookSubscription.id == webhook_id,
            WebhookSubscription.organization_id == organization_id,
        )
    )


async def list_for(
    session: AsyncSession, organization_id: uuid.UUID, *, page: int, limit: int
) -> tuple[list[WebhookSubscription], int]:
    where = WebhookSubscription.organization_id == organization_id
    total = await session.scalar(select(func.count()).select_from(WebhookSubscription).where(where))
    rows = await session.scalars(
        select(WebhookSubscription)
        .where(where)
        .order_by(WebhookSubscription.created_at, WebhookSubscription.id)
        .offset((page - 1) * limit)
        .limit(limit)
    )
    return list(rows), int(total or 0)


async def update(
    session: AsyncSession, sub: WebhookSubscription, changes: dict[str, Any]
) -> dict[str, Any]:
    """Apply url / event_types / description / enabled; returns what changed (for the audit
    log, secrets never included)."""
    changed: dict[str, Any] = {}
    if "url" in changes and changes["url"] != sub.url:
        changed["url"] = {"from": sub.url, "to": changes["url"]}
        sub.url = changes["url"]
    if "event_types" in changes:
        types = sorted(set(changes["event_types"]))
        if types != sorted(sub.event_types):
            changed["event_types"] = {"from": sorted(sub.event_types), "to": types}
            sub.event_types = types
    if "description" in changes and changes["description"] != sub.description:
        changed["description"] = {"from": sub.description, "to": changes["description"]}
        sub.description = changes["description"]
    if "enabled" in changes:
        status = WebhookStatus.ACTIVE if changes["enabled"] else WebhookStatus.DISABLED
        if status != sub.status:
            changed["status"] = {"from": sub.status, "to": status}
            sub.status = status
            sub.disabled_reason = None if status == WebhookStatus.ACTIVE else DISABLED_BY_OWNER
            sub.disabled_at = None if status == WebhookStatus.ACTIVE else func.now()
    if changed:
        sub.updated_at = func.now()
        await session.flush()
    await session.refresh(sub)
    return changed


async def delete(session: AsyncSession, sub: WebhookSubscription) -> None:
    """Gone with its deliveries and their log (running deliveries find nothing and stop)."""
    await session.delete(sub)
    await session.flush()


# ---- the delivery log ----------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryFilter:
    status: WebhookDeliveryStatus | None = None
    event_type: str | None = None


async def list_deliveries(
    session: AsyncSession,
    subscription_id: uuid.UUID,
    filters: DeliveryFilter,
    *,
    page: int,
    limit: int,
) -> tuple[list[WebhookDelivery], int]:
    """Newest first, each with its message."""

    where = [WebhookDelivery.subscription_id == subscription_id]
    if filters.status is not None:
        where.append(WebhookDelivery.status == filters.status)
    base = select(WebhookDelivery).where(*where)
    if filters.event_type is not None:
        base = base.join(WebhookDelivery.message).where(
            WebhookMessage.event_type == filters.event_type
        )
    total = await session.scalar(select(func.count()).select_from(base.subquery()))
    rows = await session.scalars(
        base.options(joinedload(WebhookDelivery.message))
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
        .offset((page - 1) * limit)
        .limit(limit)
    )
    return list(rows.unique()), int(total or 0)


async def get_delivery(
    session: AsyncSession, subscription_id: uuid.UUID, delivery_id: uuid.UUID
) -> tuple[WebhookDelivery, list[WebhookAttempt]] | None:
    delivery = await session.scalar(
        select(WebhookDelivery)
        .options(joinedload(WebhookDelivery.message))
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.subscription_id == subscription_id,
        )
    )
    if delivery is None:
        return None
    attempts = await session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id == delivery_id)
        .order_by(WebhookAttempt.attempt)
    )
    return delivery, list(attempts)


async def redeliver(
    session: AsyncSession, delivery: WebhookDelivery, key: str
) -> tuple[WebhookDelivery, bool]:
    """Send the delivery's message to its endpoint again (issue 30): a new ``pending`` delivery
    of the same message (same ``webhook-id``, so a receiver that de-duplicates sees one
    message) that the outbox relay starts like any other — its own workflow, retries and log.
    Any delivery may be redelivered (a redelivery's redelivery repeats the original). Once
    per ``key``: the same key again answers the same redelivery (second value False)."""
    original = delivery.redelivery_of or delivery.id
    redelivery_key = f"{original}:{key}"
    new_id = await session.scalar(
        insert(WebhookDelivery)
        .values(
            id=uuid.uuid4(),
            message_id=delivery.message_id,
            subscription_id=delivery.subscription_id,
            status=str(WebhookDeliveryStatus.PENDING),
            redelivery_of=original,
            redelivery_key=redelivery_key,
        )
        .on_conflict_do_nothing(index_elements=["redelivery_key"])
        .returning(WebhookDelivery.id)
    )
    found = await session.scalar(
        select(WebhookDelivery)
        .options(joinedload(WebhookDelivery.message))
        .where(WebhookDelivery.redelivery_key == redelivery_key)
    )
    assert found is not None
    return found, new_id is not None
