"""Ticket types and promo codes of an event, for the platform admin
(``/admin/events/{event_id}/ticket-types``, ``/promo-codes``) and for an organization's owners
and managers (``/organizations/{org_id}/events/{event_id}/...``; anything of another
organization is 404). Every change is audited in the event's organization's log, and the
event's availability snapshot and search document are refreshed after the commit."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, status
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.deps import AdminUser
from api.deps import ResourcesDep, SessionDep, TemporalDep
from api.organizations.deps import EventManager
from api.organizer.service import after_commit
from api.problems import problem_responses
from api.ticket_types.schemas import (
    PromoCodeCreate,
    PromoCodeList,
    PromoCodeOut,
    TicketTypeCreate,
    TicketTypeList,
    TicketTypeOut,
    TicketTypePatch,
)
from evently import audit, events, ticket_types
from evently.audit import Actor
from evently.db.models import Event
from evently.errors import (
    EventNotFound,
    PromoCodeExists,
    PromoCodeInvalid,
    TicketTypeInvalid,
    TicketTypeNotFound,
)
from evently.infra.resources import Resources
from workflows.connection import TemporalClient

router = APIRouter(tags=["ticket types"])

ADMIN = "/admin/events/{event_id}"
ORG = "/organizations/{org_id}/events/{event_id}"


async def _event(session: AsyncSession, event_id: uuid.UUID, org: uuid.UUID | None) -> Event:
    event = await events.get_event(session, event_id, organization_id=org)
    if event is None:
        raise events.event_not_found(event_id)
    return event


async def _changed(
    session: AsyncSession,
    res: Resources,
    temporal: TemporalClient,
    event: Event,
    actor: Actor,
    action: str,
    target: uuid.UUID,
    details: dict[str, Any],
) -> None:
    """Audit, bump the event's version (cached availability and ETags move on), commit, then
    refresh the snapshot and the search document."""
    await audit.record_by(
        session,
        actor,
        organization_id=event.organization_id,
        action=action,
        target_type=action.split(".")[0],
        target_id=target,
        details=details,
    )
    await session.execute(
        text(
            "UPDATE events SET updated_at = GREATEST(clock_timestamp(), "
            "updated_at + interval '1 microsecond') WHERE id = :id"
        ),
        {"id": event.id},
    )
    await session.commit()
    await after_commit(res, temporal, session, event, seats_changed=False)


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (str(v) if v is not None and not isinstance(v, bool | int) else v)
        for k, v in values.items()
    }


# ---- the work, shared by both route families ----------------------------------------------


async def _create_type(
    body: TicketTypeCreate,
    event: Event,
    session: AsyncSession,
    res: Resources,
    temporal: TemporalClient,
    actor: Actor,
) -> TicketTypeOut:
    values = body.model_dump()
    tt = await ticket_types.create_type(session, event, values)
    out = TicketTypeOut.model_validate(tt)
    await _changed(
        session, res, temporal, event, actor, "ticket_type.create", tt.id, _jsonable(values)
    )
    return out


async def _patch_type(
    body: TicketTypePatch,
    event: Event,
    type_id: uuid.UUID,
    session: AsyncSession,
    res: Resources,
    temporal: TemporalClient,
    actor: Actor,
) -> TicketTypeOut:
    changes = body.model_dump(exclude_unset=True)
    tt = await ticket_types.update_type(session, event, type_id, changes)
    out = TicketTypeOut.model_validate(tt)
    await _changed(
        session, res, temporal, event, actor, "ticket_type.update", tt.id, _jsonable(changes)
    )
    return out


async def _list_types(session: AsyncSession, event: Event) -> TicketTypeList:
    found = await ticket_types.list_types(session, event.id)
    return TicketTypeList(items=[TicketTypeOut.model_validate(t) for t in found])


async def _create_code(
    body: PromoCodeCreate,
    event: Event,
    session: AsyncSession,
    res: Resources,
    temporal: TemporalClient,
    actor: Actor,
) -> PromoCodeOut:
    values = body.model_dump()
    code = await ticket_types.create_code(session, event, values)
    out = PromoCodeOut.model_validate(code)
    details = _jsonable({k: v for k, v in values.items() if k != "ticket_type_ids"})
    await _changed(session, res, temporal, event, actor, "promo_code.create", code.id, details)
    return out


async def _list_codes(session: AsyncSession, event: Event) -> PromoCodeList:
    found = await ticket_types.list_codes(session, event.id)
    return PromoCodeList(items=[PromoCodeOut.model_validate(c) for c in found])


_TYPE_ERRORS = problem_responses(EventNotFound, TicketTypeInvalid)
_PATCH_ERRORS = problem_responses(EventNotFound, TicketTypeNotFound, TicketTypeInvalid)
_CODE_ERRORS = problem_responses(EventNotFound, PromoCodeInvalid, PromoCodeExists)
_READ_ERRORS = problem_responses(EventNotFound)


# ---- the platform admin --------------------------------------------------------------------


@router.post(
    f"{ADMIN}/ticket-types",
    status_code=status.HTTP_201_CREATED,
    response_model=TicketTypeOut,
    responses=_TYPE_ERRORS,
    summary="Add a ticket type to an event",
)
async def admin_create_type(
    event_id: uuid.UUID,
    body: TicketTypeCreate,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
    admin: AdminUser,
) -> TicketTypeOut:
    event = await _event(session, event_id, None)
    return await _create_type(body, event, session, res, temporal, Actor.admin(admin.id))


@router.get(
    f"{ADMIN}/ticket-types",
    response_model=TicketTypeList,
    responses=_READ_ERRORS,
    summary="An event's ticket types (hidden ones included), with their counters",
)
async def admin_list_types(
    event_id: uuid.UUID, session: SessionDep, admin: AdminUser
) -> TicketTypeList:
    return await _list_types(session, await _event(session, event_id, None))


@router.patch(
    f"{ADMIN}/ticket-types/{{ticket_type_id}}",
    response_model=TicketTypeOut,
    responses=_PATCH_ERRORS,
    summary="Change a ticket type (a cap never below its seats held or sold)",
)
async def admin_patch_type(
    event_id: uuid.UUID,
    ticket_type_id: uuid.UUID,
    body: TicketTypePatch,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
    admin: AdminUser,
) -> TicketTypeOut:
    event = await _event(session, event_id, None)
    return await _patch_type(
        body, event, ticket_type_id, session, res, temporal, Actor.admin(admin.id)
    )


@router.post(
    f"{ADMIN}/promo-codes",
    status_code=status.HTTP_201_CREATED,
    response_model=PromoCodeOut,
    responses=_CODE_ERRORS,
    summary="Add a promo code to an event",
)
async def admin_create_code(
    event_id: uuid.UUID,
    body: PromoCodeCreate,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
    admin: AdminUser,
) -> PromoCodeOut:
    event = await _event(session, event_id, None)
    return await _create_code(body, event, session, res, temporal, Actor.admin(admin.id))


@router.get(
    f"{ADMIN}/promo-codes",
    response_model=PromoCodeList,
    responses=_READ_ERRORS,
    summary="An event's promo codes with their uses",
)
async def admin_list_codes(
    event_id: uuid.UUID, session: SessionDep, admin: AdminUser
) -> PromoCodeList:
    return await _list_codes(session, await _event(session, event_id, None))


# ---- an organization's owners and managers ------------------------------------------------


@router.post(
    f"{ORG}/ticket-types",
    status_code=status.HTTP_201_CREATED,
    response_model=TicketTypeOut,
    responses=_TYPE_ERRORS,
    summary="Add a ticket type to one of the organization's events (owners, managers)",
)
async def org_create_type(
    event_id: uuid.UUID,
    body: TicketTypeCreate,
    access: EventManager,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
) -> TicketTypeOut:
    event = await _event(session, event_id, access.organization.id)
    return await _create_type(body, event, session, res, temporal, access.actor)


@router.get(
    f"{ORG}/ticket-types",
    response_model=TicketTypeList,
    responses=_READ_ERRORS,
    summary="An event's ticket types with their counters (owners, managers)",
)
async def org_list_types(
    event_id: uuid.UUID, access: EventManager, session: SessionDep
) -> TicketTypeList:
    return await _list_types(session, await _event(session, event_id, access.organization.id))


@router.patch(
    f"{ORG}/ticket-types/{{ticket_type_id}}",
    response_model=TicketTypeOut,
    responses=_PATCH_ERRORS,
    summary="Change a ticket type (owners, managers)",
)
async def org_patch_type(
    event_id: uuid.UUID,
    ticket_type_id: uuid.UUID,
    body: TicketTypePatch,
    access: EventManager,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
) -> TicketTypeOut:
    event = await _event(session, event_id, access.organization.id)
    return await _patch_type(body, event, ticket_type_id, session, res, temporal, access.actor)


@router.post(
    f"{ORG}/promo-codes",
    status_code=status.HTTP_201_CREATED,
    response_model=PromoCodeOut,
    responses=_CODE_ERRORS,
    summary="Add a promo code to one of the organization's events (owners, managers)",
)
async def org_create_code(
    event_id: uuid.UUID,
    body: PromoCodeCreate,
    access: EventManager,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
) -> PromoCodeOut:
    event = await _event(session, event_id, access.organization.id)
    return await _create_code(body, event, session, res, temporal, access.actor)


@router.get(
    f"{ORG}/promo-codes",
    response_model=PromoCodeList,
    responses=_READ_ERRORS,
    summary="An event's promo codes with their uses (owners, managers)",
)
async def org_list_codes(
    event_id: uuid.UUID, access: EventManager, session: SessionDep
) -> PromoCodeList:
    return await _list_codes(session, await _event(session, event_id, access.organization.id))
