"""An organization's webhooks (owners): subscriptions and their delivery log.

``POST /organizations/{org_id}/webhooks {url, event_types, description?}`` answers the
subscription with its signing secret (shown once). Messages: ``booking.confirmed``,
``booking.cancelled``, ``booking.refunded``, ``event.sold_out``, ``event.cancelled``,
``waitlist.offered`` (docs/api.md, "Organizer webhooks")."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from api.deps import SessionDep, SettingsDep, TemporalDep, end_transaction
from api.http.links import PageLinksDep
from api.organizations.deps import Owner
from api.problems import problem_responses
from api.webhooks.deps import ResolverDep
from api.webhooks.schemas import (
    AttemptOut,
    DeliveryDetail,
    DeliveryOut,
    DeliveryPage,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookPage,
    WebhookPatch,
)
from evently import audit
from evently.db.models import WebhookSubscription
from evently.enums import WebhookDeliveryStatus, WebhookEventType, WebhookStatus
from evently.errors import (
    InvalidWebhookUrl,
    WebhookDeliveryNotFound,
    WebhookNotFound,
    WebhookUrlNotAllowed,
)
from evently.organizations import Access
from evently.settings import Settings
from evently.webhooks import subscriptions, targets
from workflows.connection import TemporalClient
from workflows.webhooks.client import ensure_relay

log = logging.getLogger("evently.api.webhooks")

router = APIRouter(prefix="/organizations/{org_id}/webhooks", tags=["webhooks"])
MAX_PAGE = 100_000
Page = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Limit = Annotated[int, Query(ge=1, le=100)]


async def _check_url(settings: Settings, resolver: targets.Resolver, url: str) -> str:
    """Well-formed (422 invalid_webhook_url) and not pointing at an address webhooks may not
    reach (422 webhook_url_not_allowed; checked again at every delivery)."""
    url = subscriptions.check_url(url, require_https=settings.webhook_require_https)
    await subscriptions.check_destination(url, targets.TargetPolicy.of(settings), resolver)
    return url


async def _own(session: SessionDep, access: Access, webhook_id: uuid.UUID) -> WebhookSubscription:
    sub = await subscriptions.get(session, access.organization.id, webhook_id)
    if sub is None:
        raise WebhookNotFound(f"No webhook {webhook_id} in this organization.")
    return sub


async def _relay_running(temporal: TemporalClient) -> None:
    """Messages for an active subscription need the outbox relay: make sure it runs (the
    webhooks workers start it too; best effort)."""
    try:
        await asyncio.wait_for(ensure_relay(temporal), timeout=5)
    except Exception as exc:
        log.warning("could not make sure the webhook relay runs: %r", exc)


@router.get("", response_model=WebhookPage, summary="The organization's webhooks (owners)")
async def list_webhooks(
    access: Owner, session: SessionDep, links: PageLinksDep, page: Page = 1, limit: Limit = 20
) -> WebhookPage:
    subs, total = await subscriptions.list_for(
        session, access.organization.id, page=page, limit=limit
    )
    links.set(page, limit, total, max_page=MAX_PAGE)
    return WebhookPage(items=[WebhookOut.of(s) for s in subs], total=total, page=page, limit=limit)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreated,
    responses=problem_responses(InvalidWebhookUrl, WebhookUrlNotAllowed),
    summary="Subscribe an endpoint (owners); the answer carries its signing secret, once",
)
async def create_webhook(
    body: WebhookCreate,
    access: Owner,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    resolver: ResolverDep,
) -> WebhookCreated:
    url = await _check_url(settings, resolver, body.url)
    sub = await subscriptions.create(
        session,
        access.organization.id,
        url=url,
        event_types=list(body.event_types),
        description=body.description,
        created_by=access.user.id,
    )
    await audit.record_by(
        session,
        access.actor,
        organization_id=access.organization.id,
        action="webhook.created",
        target_type="webhook",
        target_id=sub.id,
        details={"url": sub.url, "event_types": sub.event_types},
    )
    out = WebhookCreated.of_new(sub)
    await end_transaction(session)  # committed before the relay's Temporal round trip
    await _relay_running(temporal)
    return out


@router.get(
    "/{webhook_id}",
    response_model=WebhookOut,
    responses=problem_responses(WebhookNotFound),
    summary="One webhook (owners)",
)
async def get_webhook(webhook_id: uuid.UUID, access: Owner, session: SessionDep) -> WebhookOut:
    return WebhookOut.of(await _own(session, access, webhook_id))


@router.patch(
    "/{webhook_id}",
    response_model=WebhookOut,
    responses=problem_responses(WebhookNotFound, InvalidWebhookUrl, WebhookUrlNotAllowed),
    summary="Change a webhook: url, event types, description, enabled (owners)",
)
async def update_webhook(
    webhook_id: uuid.UUID,
    body: WebhookPatch,
    access: Owner,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    resolver: ResolverDep,
) -> WebhookOut:
    sub = await _own(session, access, webhook_id)
    changes = body.changes()
    if "url" in changes:
        changes["url"] = await _check_url(settings, resolver, changes["url"])
    changed = await subscriptions.update(session, sub, changes)
    if changed:
        await audit.record_by(
            session,
            access.actor,
            organization_id=access.organization.id,
            action="webhook.updated",
            target_type="webhook",
            target_id=sub.id,
            details=changed,
        )
    out = WebhookOut.of(sub)
    if sub.status == WebhookStatus.ACTIVE and "status" in changed:
        await end_transaction(session)  # committed before the relay's Temporal round trip
        await _relay_running(temporal)
    return out


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(WebhookNotFound),
    summary="Delete a webhook and its delivery log (owners)",
)
async def delete_webhook(webhook_id: uuid.UUID, access: Owner, session: SessionDep) -> Response:
    sub = await _own(session, access, webhook_id)
    details = {"url": sub.url, "event_types": sub.event_types}
    await subscriptions.delete(session, sub)
    await audit.record_by(
        session,
        access.actor,
        organization_id=access.organization.id,
        action="webhook.deleted",
        target_type="webhook",
        target_id=webhook_id,
        details=details,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryPage,
    responses=problem_responses(WebhookNotFound),
    summary="The webhook's delivery log (owners)",
)
async def list_deliveries(
    webhook_id: uuid.UUID,
    access: Owner,
    session: SessionDep,
    links: PageLinksDep,
    status: WebhookDeliveryStatus | None = None,
    event_type: WebhookEventType | None = None,
    page: Page = 1,
    limit: Limit = 50,
) -> DeliveryPage:
    """Newest first: each message's status, attempts, last status code or error, and when
    the next retry is due."""
    sub = await _own(session, access, webhook_id)
    rows, total = await subscriptions.list_deliveries(
        session,
        sub.id,
        subscriptions.DeliveryFilter(status=status, event_type=event_type),
        page=page,
        limit=limit,
    )
    links.set(page, limit, total, max_page=MAX_PAGE)
    return DeliveryPage(
        items=[DeliveryOut.of(d) for d in rows], total=total, page=page, limit=limit
    )


@router.get(
    "/{webhook_id}/deliveries/{delivery_id}",
    response_model=DeliveryDetail,
    responses=problem_responses(WebhookNotFound, WebhookDeliveryNotFound),
    summary="One delivery with its message and every attempt (owners)",
)
async def get_delivery(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, access: Owner, session: SessionDep
) -> DeliveryDetail:
    sub = await _own(session, access, webhook_id)
    found = await subscriptions.get_delivery(session, sub.id, delivery_id)
    if found is None:
        raise WebhookDeliveryNotFound(f"No delivery {delivery_id} of this webhook.")
    delivery, attempts = found
    return DeliveryDetail(
        **DeliveryOut.of(delivery).model_dump(),
        data=delivery.message.payload,
        attempt_log=[AttemptOut.of(a) for a in attempts],
    )
