"""Ticket types and promo codes of an organization's event, for its owners and managers:
``/organizations/{org_id}/events/{event_id}/ticket-types`` and ``/promo-codes`` (anything of
another organization is 404). The platform admin's ``/admin/events/{event_id}/...`` routes are
deprecated aliases of these (api/admin/endpoints.py); both call api/ticket_types/service.py."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from api.deps import ResourcesDep, SessionDep, TemporalDep
from api.organizations.deps import EventManager
from api.organizer.service import own_event
from api.problems import problem_responses
from api.ticket_types import service
from api.ticket_types.schemas import (
    PromoCodeCreate,
    PromoCodeList,
    PromoCodeOut,
    TicketTypeCreate,
    TicketTypeList,
    TicketTypeOut,
    TicketTypePatch,
)
from evently.errors import (
    EventNotFound,
    PromoCodeExists,
    PromoCodeInvalid,
    TaxRuleInvalid,
    TicketTypeInvalid,
    TicketTypeNotFound,
)

router = APIRouter(prefix="/organizations/{org_id}/events/{event_id}", tags=["ticket types"])

TYPE_ERRORS = problem_responses(EventNotFound, TicketTypeInvalid, TaxRuleInvalid)
PATCH_ERRORS = problem_responses(
    EventNotFound, TicketTypeNotFound, TicketTypeInvalid, TaxRuleInvalid
)
CODE_ERRORS = problem_responses(EventNotFound, PromoCodeInvalid, PromoCodeExists)
READ_ERRORS = problem_responses(EventNotFound)


@router.post(
    "/ticket-types",
    status_code=status.HTTP_201_CREATED,
    response_model=TicketTypeOut,
    responses=TYPE_ERRORS,
    summary="Add a ticket type to one of the organization's events (owners, managers)",
)
async def create_type(
    event_id: uuid.UUID,
    body: TicketTypeCreate,
    access: EventManager,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
) -> TicketTypeOut:
    event = await own_event(session, event_id, access.organization.id)
    return await service.create_type(session, res, temporal, event, body, actor=access.actor)


@router.get(
    "/ticket-types",
    response_model=TicketTypeList,
    responses=READ_ERRORS,
    summary="An event's ticket types (hidden ones included) with their counters (owners, managers)",
)
async def list_types(
    event_id: uuid.UUID, access: EventManager, session: SessionDep
) -> TicketTypeList:
    return await service.list_types(
        session, await own_event(session, event_id, access.organization.id)
    )


@router.patch(
    "/ticket-types/{ticket_type_id}",
    response_model=TicketTypeOut,
    responses=PATCH_ERRORS,
    summary="Change a ticket type: a cap never below its seats held or sold (owners, managers)",
)
async def change_type(
    event_id: uuid.UUID,
    ticket_type_id: uuid.UUID,
    body: TicketTypePatch,
    access: EventManager,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
) -> TicketTypeOut:
    event = await own_event(session, event_id, access.organization.id)
    return await service.change_type(
        session, res, temporal, event, ticket_type_id, body, actor=access.actor
    )


@router.post(
    "/promo-codes",
    status_code=status.HTTP_201_CREATED,
    response_model=PromoCodeOut,
    responses=CODE_ERRORS,
    summary="Add a promo code to one of the organization's events (owners, managers)",
)
async def create_code(
    event_id: uuid.UUID,
    body: PromoCodeCreate,
    access: EventManager,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
) -> PromoCodeOut:
    event = await own_event(session, event_id, access.organization.id)
    return await service.create_code(session, res, temporal, event, body, actor=access.actor)


@router.get(
    "/promo-codes",
    response_model=PromoCodeList,
    responses=READ_ERRORS,
    summary="An event's promo codes with their uses (owners, managers)",
)
async def list_codes(
    event_id: uuid.UUID, access: EventManager, session: SessionDep
) -> PromoCodeList:
    return await service.list_codes(
        session, await own_event(session, event_id, access.organization.id)
    )
