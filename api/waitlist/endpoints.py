"""The waitlist of a sold-out event: join, see your place and offer, accept, leave/decline."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import APIRouter

from activities.waitlist_models import LeaveInput
from api.auth.deps import CurrentUser
from api.deps import ResourcesDep, SessionDep
from api.waitlist.schemas import (
    AcceptResponse,
    EntryOut,
    JoinRequest,
    JoinResponse,
    LeaveResponse,
    OfferOut,
)
from evently import availability, waitlist
from evently.db.models import WaitlistEntry
from evently.errors import Conflict
from workflows.booking_models import booking_workflow_id

router = APIRouter(prefix="/waitlist", tags=["waitlist"])
log = logging.getLogger("evently.api.waitlist")

_P: dict[str, Any] = {"content": {"application/problem+json": {}}}
PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not authenticated", **_P},
    404: {"description": "unknown event or entry (or someone else's entry)", **_P},
    409: {"description": "seats on sale, already waitlisted, offer not open", **_P},
    422: {"description": "invalid body or quantity", **_P},
    503: {"description": "Temporal unavailable; nothing changed", **_P},
}


async def _entry_out(session: SessionDep, entry: WaitlistEntry) -> EntryOut:
    offer = None
    if entry.offer_id is not None:
        offer = OfferOut(
            seats=entry.offered_quantity,
            expires_at=entry.offer_expires_at,
            booking_id=entry.booking_id,
        )
    return EntryOut(
        entry_id=entry.id,
        event_id=entry.event_id,
        quantity=entry.quantity,
        status=entry.status,
        position=await waitlist.position(session, entry),
        offer=offer,
        created_at=entry.created_at,
    )


@router.post("/join", status_code=201, response_model=JoinResponse, responses=PROBLEMS)
async def join(
    body: JoinRequest, user: CurrentUser, session: SessionDep, res: ResourcesDep
) -> JoinResponse:
    """Join a sold-out event's waitlist (409 `seats_available` while seats are on sale). Freed
    seats are offered in join order; an entry wanting more seats than are free keeps its place."""
    joined = await waitlist.join(
        session, res.settings, user_id=user.id, event_id=body.event_id, quantity=body.quantity
    )
    out = JoinResponse(
        entry_id=joined.entry.id,
        event_id=joined.entry.event_id,
        quantity=joined.entry.quantity,
        status="waiting",
        position=joined.position,
    )
    await session.commit()
    await availability.refresh(res.redis, session, body.event_id)
    if joined.pooled:
        # seats are already kept for the waitlist (nobody ahead fitted them): maybe this one does
        try:
            await waitlist.poke(res.temporal, res.settings, body.event_id)
        except Exception as exc:  # the pool waits in Postgres; the next release pokes again
            log.warning("could not poke the waitlist of %s: %s", body.event_id, exc)
    return out


@router.get("/{entry_id}", response_model=EntryOut, responses=PROBLEMS)
async def get_entry(entry_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> EntryOut:
    """Your entry: status, live position among those waiting, and the offer (with `expires_at`,
    and `booking_id` once accepted)."""
    entry = await waitlist.own_entry(session, user.id, entry_id)
    return await _entry_out(session, entry)


@router.post(
    "/{entry_id}/accept", status_code=201, response_model=AcceptResponse, responses=PROBLEMS
)
async def accept(
    entry_id: uuid.UUID, user: CurrentUser, session: SessionDep, res: ResourcesDep
) -> AcceptResponse:
    """Take your open offer: a HELD booking of the offered seats with the normal payment window;
    pay it with `POST /bookings/confirm`. Accepting again returns the same booking."""
    result = await waitlist.accept(res, session, user_id=user.id, entry_id=entry_id)
    return AcceptResponse(
        entry_id=entry_id,
        booking_id=result.booking_id,
        status=result.status,
        quantity=result.quantity,
        hold_expires_at=result.hold_expires_at,
        amount=result.amount,
        currency=result.currency,
        workflow_id=booking_workflow_id(result.booking_id),
    )


@router.delete("/{entry_id}", response_model=LeaveResponse, responses=PROBLEMS)
async def leave(
    entry_id: uuid.UUID, user: CurrentUser, session: SessionDep, res: ResourcesDep
) -> LeaveResponse:
    """Leave the waitlist, or decline an open offer (its seats pass to the next in line)."""
    entry = await waitlist.own_entry(session, user.id, entry_id)
    if entry.status not in ("waiting", "offered"):
        raise Conflict(f"This waitlist entry is {entry.status}.", code="waitlist_entry_not_active")
    event_id = entry.event_id
    await session.commit()
    result = await waitlist.request_leave(
        res.temporal,
        res.settings,
        LeaveInput(event_id=event_id, entry_id=entry_id, user_id=user.id),
    )
    if result.status != "left":
        raise Conflict(f"This waitlist entry is {result.status}.", code="waitlist_entry_not_active")
    return LeaveResponse(
        entry_id=entry_id, status="left", declined_offer=result.declined_offer is not None
    )
