"""Organizer endpoints: venues and events (admin role)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from api.admin import service
from api.admin.schemas import CancellationAccepted, EventCreate, EventPatch, VenueCreate
from api.auth.deps import AdminUser
from api.deps import ResourcesDep, SessionDep, TemporalDep
from api.events.schemas import EventOut, VenueOut
from api.problems import problem_responses
from evently import events
from evently.enums import EventStatus
from evently.errors import (
    CapacityBelowCommitted,
    CapacityExceedsVenue,
    ConcurrentChange,
    EventNotEditable,
    EventNotFound,
    InvalidCurrency,
    InvalidSchedule,
    InvalidTransition,
    VenueNotFound,
)

router = APIRouter(prefix="/admin", tags=["admin"])

_EVENT_RULES = (InvalidCurrency, InvalidSchedule, CapacityExceedsVenue, VenueNotFound)
_CHANGE = (EventNotFound, EventNotEditable, InvalidTransition, ConcurrentChange)


@router.post(
    "/venues",
    status_code=status.HTTP_201_CREATED,
    response_model=VenueOut,
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
    responses=problem_responses(*_EVENT_RULES),
    summary="Create an event (as a draft)",
)
async def create_event(
    body: EventCreate,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
    admin: AdminUser,
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
    await service.after_commit(res, temporal, session, event.id, seats_changed=False)
    return out


@router.patch(
    "/events/{event_id}",
    response_model=EventOut,
    responses=problem_responses(*_CHANGE, *_EVENT_RULES, CapacityBelowCommitted),
    summary="Change an event (fields, capacity, or status along its life cycle)",
)
async def update_event(
    event_id: uuid.UUID,
    body: EventPatch,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
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
    if target == EventStatus.CANCELLED:
        await service.cancel_event(res, temporal, session, event, admin.id)
    elif target == EventStatus.PUBLISHED:
        await events.publish_event(session, event_id)
    elif target == EventStatus.COMPLETED:
        await events.complete_event(session, event_id)
    await session.commit()
    fresh = await events.get_event(session, event_id, refresh=True)
    assert fresh is not None
    out = EventOut.of(fresh)
    await service.after_commit(
        res, temporal, session, event_id, seats_changed="capacity" in changes or target is not None
    )
    return out


@router.post(
    "/events/{event_id}/publish",
    response_model=EventOut,
    responses=problem_responses(*_CHANGE),
    summary="Publish a draft: it goes on sale",
)
async def publish_event(
    event_id: uuid.UUID,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
    admin: AdminUser,
) -> EventOut:
    event = await events.publish_event(session, event_id)
    out = EventOut.of(event)
    await session.commit()
    await service.after_commit(res, temporal, session, event_id, seats_changed=True)
    return out


@router.delete(
    "/events/{event_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CancellationAccepted,
    responses=problem_responses(*_CHANGE),
    summary="Cancel a published event: every booking is cancelled and refunded",
)
async def cancel_event(
    event_id: uuid.UUID,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
    admin: AdminUser,
) -> CancellationAccepted:
    event = await events.get_event(session, event_id)
    if event is None:
        raise events.event_not_found(event_id)
    workflow_id = await service.cancel_event(res, temporal, session, event, admin.id)
    return CancellationAccepted(event_id=event_id, workflow_id=workflow_id)
