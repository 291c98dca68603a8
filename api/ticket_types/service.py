"""Ticket types and promo codes of an event, the one copy: what the organization routes
(api/ticket_types/endpoints.py) and their deprecated ``/admin`` aliases (api/admin/endpoints.py)
both call. Every change is audited in the event's organization's log and moves the event's
version on (cached availability and ETags follow); after the commit the availability snapshot
and the search document are refreshed."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import end_transaction
from api.organizer.service import after_commit
from api.ticket_types.schemas import (
    PromoCodeCreate,
    PromoCodeList,
    PromoCodeOut,
    TicketTypeCreate,
    TicketTypeList,
    TicketTypeOut,
    TicketTypePatch,
)
from evently import audit, events, tax, ticket_types
from evently.audit import Actor
from evently.db.models import Event
from evently.infra.resources import Resources
from workflows.connection import TemporalClient


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
    """Audit and bump the event's version in the change's transaction; commit; then refresh the
    snapshot and the search document (a Temporal round trip: after the commit)."""
    await audit.record_by(
        session,
        actor,
        organization_id=event.organization_id,
        action=action,
        target_type=action.split(".")[0],
        target_id=target,
        details=details,
    )
    await events.bump_version(session, event.id)
    await end_transaction(session)
    await after_commit(res, temporal, session, event, seats_changed=False)


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (str(v) if v is not None and not isinstance(v, bool | int) else v)
        for k, v in values.items()
    }


async def create_type(
    session: AsyncSession,
    res: Resources,
    temporal: TemporalClient,
    event: Event,
    body: TicketTypeCreate,
    *,
    actor: Actor,
) -> TicketTypeOut:
    values = body.model_dump()
    if values.get("tax_rule_id") is not None:
        await tax.check_rule_ids(session, event.organization_id, {values["tax_rule_id"]})
    tt = await ticket_types.create_type(session, event, values)
    out = TicketTypeOut.model_validate(tt)
    await _changed(
        session, res, temporal, event, actor, "ticket_type.create", tt.id, _jsonable(values)
    )
    return out


async def change_type(
    session: AsyncSession,
    res: Resources,
    temporal: TemporalClient,
    event: Event,
    type_id: uuid.UUID,
    body: TicketTypePatch,
    *,
    actor: Actor,
) -> TicketTypeOut:
    changes = body.model_dump(exclude_unset=True)
    if changes.get("tax_rule_id") is not None:
        await tax.check_rule_ids(session, event.organization_id, {changes["tax_rule_id"]})
    tt = await ticket_types.update_type(session, event, type_id, changes)
    out = TicketTypeOut.model_validate(tt)
    await _changed(
        session, res, temporal, event, actor, "ticket_type.update", tt.id, _jsonable(changes)
    )
    return out


async def list_types(session: AsyncSession, event: Event) -> TicketTypeList:
    found = await ticket_types.list_types(session, event.id)
    return TicketTypeList(items=[TicketTypeOut.model_validate(t) for t in found])


async def create_code(
    session: AsyncSession,
    res: Resources,
    temporal: TemporalClient,
    event: Event,
    body: PromoCodeCreate,
    *,
    actor: Actor,
) -> PromoCodeOut:
    values = body.model_dump()
    code = await ticket_types.create_code(session, event, values)
    out = PromoCodeOut.model_validate(code)
    details = _jsonable({k: v for k, v in values.items() if k != "ticket_type_ids"})
    await _changed(session, res, temporal, event, actor, "promo_code.create", code.id, details)
    return out


async def list_codes(session: AsyncSession, event: Event) -> PromoCodeList:
    found = await ticket_types.list_codes(session, event.id)
    return PromoCodeList(items=[PromoCodeOut.model_validate(c) for c in found])
