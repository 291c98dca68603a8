"""Deprecated: the platform admin's ``/admin/...`` routes, kept for old clients as thin aliases
of the organization routes, which are the one API for event management (a platform admin uses
them for any organization). Each alias calls the same service as its successor and gives the
same answers, plus ``Deprecation: true`` and ``Link: </api/v1/organizations/{org_id}/...>;
rel="successor-version"`` (api/http/deprecation.py), the organization being the resource's
(for ``POST /admin/venues`` and ``POST /admin/events``: the one it was created in).

Role ``admin`` only. A venue goes to the default organization unless the body names another; an
event belongs to its venue's organization. Every change is audited in that organization's log,
as the platform admin (actor ``admin:<id>``).

| alias                                                   | successor (api/…)                 |
|---------------------------------------------------------|-----------------------------------|
| ``POST /admin/venues``                                  | organizer: ``POST .../venues``    |
| ``POST /admin/events``, ``PATCH``/``DELETE .../{id}``, ``POST .../{id}/publish`` | organizer |
| ``GET /admin/events/{id}/analytics``, ``/checkins``      | organizer                         |
| ``/admin/events/{id}/ticket-types``, ``/promo-codes``    | ticket_types                      |
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from sqlalchemy.ext.asyncio import AsyncSession

from api.admin.schemas import AdminVenueCreate
from api.analytics.schemas import EventAnalyticsOut
from api.auth.deps import AdminUser
from api.checkin.schemas import CheckinStatsOut
from api.deps import ResourcesDep, SessionDep, TemporalDep
from api.events.schemas import EventOut, VenueOut
from api.http.deprecation import DeprecatedAlias, Successor, SuccessorDep
from api.organizer import service
from api.organizer.schemas import CancellationAccepted, EventCreate, EventPatch
from api.problems import problem_responses
from api.ticket_types import endpoints as ticket_type_routes
from api.ticket_types import service as ticket_type_service
from api.ticket_types.schemas import (
    PromoCodeCreate,
    PromoCodeList,
    PromoCodeOut,
    TicketTypeCreate,
    TicketTypeList,
    TicketTypeOut,
    TicketTypePatch,
)
from evently import organizations
from evently.audit import Actor
from evently.db.models import Event
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
    TaxRuleInvalid,
    VenueNotFound,
)
from evently.infra.resources import Resources
from workflows.connection import TemporalClient

router = APIRouter(prefix="/admin", tags=["admin (deprecated)"], route_class=DeprecatedAlias)

EVENT_RULES = (
    InvalidCurrency,
    InvalidSchedule,
    CapacityExceedsVenue,
    VenueNotFound,
    TaxRuleInvalid,  # issue 31: a fee's tax_rule_id
)
CHANGE = (EventNotFound, EventNotEditable, InvalidTransition, ConcurrentChange)


@dataclass
class Alias:
    """What every alias works with: the services' context, the platform admin as the actor
    (``admin:<id>``), and its successor link to name."""

    session: AsyncSession
    res: Resources
    temporal: TemporalClient
    actor: Actor
    successor: Successor

    async def event(self, event_id: uuid.UUID) -> Event:
        """The event, in whichever organization (404 ``event_not_found`` as its organization
        route answers); its successor is that organization's route."""
        event = await service.own_event(self.session, event_id, None)
        self.successor.organization(event.organization_id)
        return event


async def _alias(
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
    admin: AdminUser,
    successor: SuccessorDep,
) -> Alias:
    return Alias(session, res, temporal, Actor.admin(admin.id), successor)


AliasDep = Annotated[Alias, Depends(_alias)]


# ---- venues and events (successors: api/organizer/endpoints.py) -----------------------------


@router.post(
    "/venues",
    status_code=status.HTTP_201_CREATED,
    response_model=VenueOut,
    responses=problem_responses(InvalidOrganization),
    summary="Create a venue (in the default organization unless the body names one)",
)
async def create_venue(body: AdminVenueCreate, a: AliasDep) -> VenueOut:
    if body.organization_id is not None and (
        await organizations.get_organization(a.session, body.organization_id) is None
    ):
        raise InvalidOrganization(
            f"organization_id: there is no organization {body.organization_id}."
        )
    venue = await service.create_venue(
        a.session, body, organization_id=body.organization_id, actor=a.actor
    )
    a.successor.organization(venue.organization_id)
    return VenueOut.of(venue)


@router.post(
    "/events",
    status_code=status.HTTP_201_CREATED,
    response_model=EventOut,
    responses=problem_responses(*EVENT_RULES),
    summary="Create an event (as a draft, in its venue's organization)",
)
async def create_event(body: EventCreate, a: AliasDep) -> EventOut:
    event = await service.create_event(
        a.session, a.res, a.temporal, body, organization_id=None, actor=a.actor
    )
    a.successor.organization(event.organization_id)
    return event


@router.patch(
    "/events/{event_id}",
    response_model=EventOut,
    responses=problem_responses(*CHANGE, *EVENT_RULES, CapacityBelowCommitted),
    summary="Change an event (fields, capacity, or status along its life cycle)",
)
async def update_event(event_id: uuid.UUID, body: EventPatch, a: AliasDep) -> EventOut:
    event = await a.event(event_id)
    return await service.change_event(
        a.session,
        a.res,
        a.temporal,
        event_id,
        body,
        organization_id=event.organization_id,
        actor=a.actor,
    )


@router.post(
    "/events/{event_id}/publish",
    response_model=EventOut,
    responses=problem_responses(*CHANGE),
    summary="Publish a draft: it goes on sale",
)
async def publish_event(event_id: uuid.UUID, a: AliasDep) -> EventOut:
    event = await a.event(event_id)
    return await service.publish_event(
        a.session, a.res, a.temporal, event_id, organization_id=event.organization_id, actor=a.actor
    )


@router.delete(
    "/events/{event_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CancellationAccepted,
    responses=problem_responses(*CHANGE),
    summary="Cancel a published event: every booking is cancelled and refunded",
)
async def cancel_event(event_id: uuid.UUID, a: AliasDep) -> CancellationAccepted:
    event = await a.event(event_id)
    workflow_id = await service.cancel_event(
        a.session, a.res, a.temporal, event_id, organization_id=event.organization_id, actor=a.actor
    )
    return CancellationAccepted(event_id=event_id, workflow_id=workflow_id)


@router.get(
    "/events/{event_id}/analytics",
    response_model=EventAnalyticsOut,
    responses=problem_responses(EventNotFound),
    summary="Sales analytics of one event",
)
async def get_event_analytics(event_id: uuid.UUID, a: AliasDep) -> EventAnalyticsOut:
    event = await a.event(event_id)
    return await service.analytics(a.session, event_id, event.organization_id)


@router.get(
    "/events/{event_id}/checkins",
    response_model=CheckinStatsOut,
    responses=problem_responses(EventNotFound),
    summary="Check-in counts and the latest scans",
)
async def get_checkins(
    event_id: uuid.UUID,
    a: AliasDep,
    limit: Annotated[int, Query(ge=1, le=200, description="latest scans shown")] = 20,
) -> CheckinStatsOut:
    event = await a.event(event_id)
    return await service.checkin_counts(a.session, event_id, event.organization_id, limit=limit)


# ---- ticket types and promo codes (successors: api/ticket_types/endpoints.py) ---------------


@router.post(
    "/events/{event_id}/ticket-types",
    status_code=status.HTTP_201_CREATED,
    response_model=TicketTypeOut,
    responses=ticket_type_routes.TYPE_ERRORS,
    summary="Add a ticket type to an event",
)
async def create_type(event_id: uuid.UUID, body: TicketTypeCreate, a: AliasDep) -> TicketTypeOut:
    event = await a.event(event_id)
    return await ticket_type_service.create_type(
        a.session, a.res, a.temporal, event, body, actor=a.actor
    )


@router.get(
    "/events/{event_id}/ticket-types",
    response_model=TicketTypeList,
    responses=ticket_type_routes.READ_ERRORS,
    summary="An event's ticket types (hidden ones included), with their counters",
)
async def list_types(event_id: uuid.UUID, a: AliasDep) -> TicketTypeList:
    return await ticket_type_service.list_types(a.session, await a.event(event_id))


@router.patch(
    "/events/{event_id}/ticket-types/{ticket_type_id}",
    response_model=TicketTypeOut,
    responses=ticket_type_routes.PATCH_ERRORS,
    summary="Change a ticket type (a cap never below its seats held or sold)",
)
async def change_type(
    event_id: uuid.UUID, ticket_type_id: uuid.UUID, body: TicketTypePatch, a: AliasDep
) -> TicketTypeOut:
    event = await a.event(event_id)
    return await ticket_type_service.change_type(
        a.session, a.res, a.temporal, event, ticket_type_id, body, actor=a.actor
    )


@router.post(
    "/events/{event_id}/promo-codes",
    status_code=status.HTTP_201_CREATED,
    response_model=PromoCodeOut,
    responses=ticket_type_routes.CODE_ERRORS,
    summary="Add a promo code to an event",
)
async def create_code(event_id: uuid.UUID, body: PromoCodeCreate, a: AliasDep) -> PromoCodeOut:
    event = await a.event(event_id)
    return await ticket_type_service.create_code(
        a.session, a.res, a.temporal, event, body, actor=a.actor
    )


@router.get(
    "/events/{event_id}/promo-codes",
    response_model=PromoCodeList,
    responses=ticket_type_routes.READ_ERRORS,
    summary="An event's promo codes with their uses",
)
async def list_codes(event_id: uuid.UUID, a: AliasDep) -> PromoCodeList:
    return await ticket_type_service.list_codes(a.session, await a.event(event_id))
