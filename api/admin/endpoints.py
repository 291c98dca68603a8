"""Organizer endpoints: venues and events (admin role)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from fastapi import APIRouter, status
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from api.admin.schemas import CancellationAccepted, EventCreate, EventPatch, VenueCreate
from api.auth.deps import AdminUser
from api.deps import ResourcesDep, SessionDep
from api.events.schemas import EventOut, VenueOut
from evently import availability, events, task_queues
from evently.db.models import Event
from evently.errors import ServiceUnavailable
from evently.inventory import Gate
from evently.resources import Resources
from evently.search_sync import request_index_write
from workflows.event_cancellation import (
    EventCancellationInput,
    EventCancellationWorkflow,
    event_cancellation_workflow_id,
)

log = logging.getLogger("evently.api.admin")

router = APIRouter(prefix="/admin", tags=["admin"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not authenticated"},
    403: {"description": "not an admin"},
    422: {"description": "invalid body"},
}


async def _after_commit(
    res: Resources, session: AsyncSession, event_id: uuid.UUID, *, seats_changed: bool
) -> None:
    """After the commit: availability snapshot, sold-out gate, search index. Best effort: the
    change is committed; a lost cache write expires (TTL) and the index can be rebuilt."""
    await availability.refresh(res.redis, session, event_id)
    if seats_changed:
        await Gate(res.redis).reset(event_id)
    try:
        await asyncio.wait_for(request_index_write(res.temporal, event_id), timeout=5)
    except Exception as exc:
        log.warning("could not request the index write of event %s: %r", event_id, exc)


async def _cancel(res: Resources, session: AsyncSession, event: Event, admin_id: uuid.UUID) -> str:
    """Start the cancellation workflow, then mark the event cancelled at once (the workflow
    does that too, idempotently). The workflow starts first: a 503 from Temporal leaves the
    event untouched, and once it runs every booking is cancelled even if we crash here."""
    events.check_transition(event.status, "cancelled")
    await session.commit()  # end the read transaction before talking to Temporal
    workflow_id = event_cancellation_workflow_id(event.id)
    try:
        await res.temporal.start_workflow(
            EventCancellationWorkflow.run,
            EventCancellationInput(event_id=event.id, requested_by=f"admin:{admin_id}"),
            id=workflow_id,
            task_queue=task_queues.BOOKING,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
    except (RPCError, RuntimeError) as exc:
        # a lazy client that cannot connect raises RuntimeError("Failed client connect ...")
        if isinstance(exc, RuntimeError) and "client connect" not in str(exc):
            raise
        log.warning("cannot start the cancellation of event %s: %r", event.id, exc)
        raise ServiceUnavailable(
            "The workflow service is unavailable; the event was not changed. Retry shortly.",
            retry_after=5,
        ) from exc
    await events.mark_cancelled(session, event.id)
    await session.commit()
    await _after_commit(res, session, event.id, seats_changed=True)
    return workflow_id


@router.post(
    "/venues",
    status_code=status.HTTP_201_CREATED,
    response_model=VenueOut,
    responses=_ERRORS,
    summary="Create a venue",
)
async def create_venue(body: VenueCreate, session: SessionDep, admin: AdminUser) -> VenueOut:
    venue = await events.create_venue(
        session, name=body.name, address=body.address, city=body.city, capacity=body.capacity
    )
    await session.refresh(venue)
    return VenueOut.of(venue)


@router.post(
    "/events",
    status_code=status.HTTP_201_CREATED,
    response_model=EventOut,
    responses=_ERRORS,
    summary="Create an event (as a draft)",
)
async def create_event(
    body: EventCreate, session: SessionDep, res: ResourcesDep, admin: AdminUser
) -> EventOut:
    event = await events.create_event(
        session,
        venue_id=body.venue_id,
        name=body.name,
        description=body.description,
        event_type=body.event_type,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        capacity=body.capacity,
        price=body.price,
        currency=body.currency,
        created_by=admin.id,
    )
    out = EventOut.of(event)
    await session.commit()
    await _after_commit(res, session, event.id, seats_changed=False)
    return out


@router.patch(
    "/events/{event_id}",
    response_model=EventOut,
    responses={**_ERRORS, 404: {"description": "no such event"}, 409: {"description": "state"}},
    summary="Change an event (fields, capacity, or status along its life cycle)",
)
async def update_event(
    event_id: uuid.UUID,
    body: EventPatch,
    session: SessionDep,
    res: ResourcesDep,
    admin: AdminUser,
) -> EventOut:
    changes = body.changes()
    event = await events.get_event(session, event_id)
    if event is None:
        raise events.event_not_found(event_id)
    # a status equal to the current one is no change; any other must be a valid transition,
    # checked before any field changes
    target = body.status if body.status != event.status else None
    if target is not None:
        events.check_transition(event.status, target)
    if changes:
        event = await events.update_event(session, event_id, changes)
        await session.commit()
    if target == "cancelled":
        await _cancel(res, session, event, admin.id)
    elif target == "published":
        await events.publish_event(session, event_id)
    elif target == "completed":
        await events.complete_event(session, event_id)
    await session.commit()
    fresh = await events.get_event(session, event_id, refresh=True)
    assert fresh is not None
    out = EventOut.of(fresh)
    await _after_commit(
        res, session, event_id, seats_changed="capacity" in changes or target is not None
    )
    return out


@router.post(
    "/events/{event_id}/publish",
    response_model=EventOut,
    responses={**_ERRORS, 404: {"description": "no such event"}, 409: {"description": "state"}},
    summary="Publish a draft: it goes on sale",
)
async def publish_event(
    event_id: uuid.UUID, session: SessionDep, res: ResourcesDep, admin: AdminUser
) -> EventOut:
    event = await events.publish_event(session, event_id)
    out = EventOut.of(event)
    await session.commit()
    await _after_commit(res, session, event_id, seats_changed=True)
    return out


@router.delete(
    "/events/{event_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CancellationAccepted,
    responses={**_ERRORS, 404: {"description": "no such event"}, 409: {"description": "state"}},
    summary="Cancel a published event: every booking is cancelled and refunded",
)
async def cancel_event(
    event_id: uuid.UUID, session: SessionDep, res: ResourcesDep, admin: AdminUser
) -> CancellationAccepted:
    event = await events.get_event(session, event_id)
    if event is None:
        raise events.event_not_found(event_id)
    workflow_id = await _cancel(res, session, event, admin.id)
    return CancellationAccepted(event_id=event_id, workflow_id=workflow_id)
