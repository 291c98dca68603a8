"""The platform admin's venue and event routes (role ``admin``), kept from before
organizations: they act on any organization's venues and events. A venue goes to the default
organization unless the body names another; an event belongs to its venue's organization. Every
change is audited in that organization's log (actor ``admin:<id>``). Organizers use
``/organizations/{org_id}/...`` (api/organizer/endpoints.py)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from api.admin.schemas import (
    AdminVenueCreate,
    CancellationAccepted,
    EventCreate,
    EventPatch,
)
from api.auth.deps import AdminUser
from api.deps import ResourcesDep, SessionDep, TemporalDep
from api.events.schemas import EventOut, VenueOut
from api.organizer import service
from api.problems import problem_responses
from evently import organizations
from evently.audit import Actor
from evently.errors import (
    CapacityBelowCommitted,
    CapacityExceedsVenue,
    ConcurrentChange,
    EventNotEditable,
    EventNotFound,
    InvalidCurrency,
    InvalidOrganization,
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
    responses=problem_responses(InvalidOrganization),
    summary="Create a venue (in the default organization unless the body names one)",
)
async def create_venue(body: AdminVenueCreate, session: SessionDep, admin: AdminUser) -> VenueOut:
    if body.organization_id is not None and (
        await organizations.get_organization(session, body.organization_id) is None
    ):
        raise InvalidOrganization(
            f"organization_id: there is no organization {body.organization_id}."
        )
    venue = await service.create_venue(
        session, body, organization_id=body.organization_id, actor=Actor.admin(admin.id)
    )
    return VenueOut.of(venue)


@router.post(
    "/events",
    status_code=status.HTTP_201_CREATED,
    response_model=EventOut,
    responses=problem_responses(*_EVENT_RULES),
    summary="Create an event (as a draft, in its venue's organization)",
)
async def create_event(
    body: EventCreate,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
    admin: AdminUser,
) -> EventOut:
    return await service.create_event(
        session, res, temporal, body, organization_id=None, actor=Actor.admin(admin.id)
    )


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
    return await service.change_event(
        session, res, temporal, event_id, body, organization_id=None, actor=Actor.admin(admin.id)
    )


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
    return await service.publish_event(
        session, res, temporal, event_id, organization_id=None, actor=Actor.admin(admin.id)
    )


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
    workflow_id = await service.cancel_event(
        session, res, temporal, event_id, organization_id=None, actor=Actor.admin(admin.id)
    )
    return CancellationAccepted(event_id=event_id, workflow_id=workflow_id)
