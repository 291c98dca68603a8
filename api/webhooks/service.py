"""What the webhook routes and the back office's webhooks page (api/manage/) both do: redeliver
a message on demand (issue 30)."""

from __future__ import annotations

import asyncio
import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import end_transaction
from api.webhooks.schemas import DeliveryOut
from evently import audit
from evently.errors import WebhookDeliveryNotFound, WebhookNotFound
from evently.organizations import Access
from evently.webhooks import subscriptions
from workflows.connection import TemporalClient
from workflows.webhooks.client import ensure_relay

log = logging.getLogger("evently.api.webhooks")


async def relay_running(temporal: TemporalClient) -> None:
    """Messages for an active subscription need the outbox relay: make sure it runs (the
    webhooks workers start it too; best effort)."""
    try:
        await asyncio.wait_for(ensure_relay(temporal), timeout=5)
    except Exception as exc:
        log.warning("could not make sure the webhook relay runs: %r", exc)


async def redeliver(
    session: AsyncSession,
    temporal: TemporalClient,
    access: Access,
    webhook_id: uuid.UUID,
    delivery_id: uuid.UUID,
    key: str,
) -> tuple[DeliveryOut, bool]:
    """A new delivery of the delivery's message to the same endpoint (same ``webhook-id``),
    started by the outbox relay: its own attempts and log. Once per ``key`` (the same key
    again: the same redelivery, False). Audited (``webhook.redelivered``) when made; committed
    before the relay is nudged."""
    sub = await subscriptions.get(session, access.organization.id, webhook_id)
    if sub is None:
        raise WebhookNotFound(f"No webhook {webhook_id} in this organization.")
    found = await subscriptions.get_delivery(session, sub.id, delivery_id)
    if found is None:
        raise WebhookDeliveryNotFound(f"No delivery {delivery_id} of this webhook.")
    copy, made = await subscriptions.redeliver(session, found[0], key)
    if made:
        await audit.record_by(
            session,
            access.actor,
            organization_id=access.organization.id,
            action="webhook.redelivered",
            target_type="webhook",
            target_id=sub.id,
            details={
                "delivery_id": delivery_id,
                "redelivery_id": copy.id,
                "message_id": copy.message_id,
                "event_type": copy.message.event_type,
            },
        )
    out = DeliveryOut.of(copy)
    await end_transaction(session)
    await relay_running(temporal)
    return out, made
