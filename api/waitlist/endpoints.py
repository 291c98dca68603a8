"""The waitlist of a sold-out event: join, see your place and offer, accept, leave/decline."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from api.auth.deps import CurrentUser
from api.deps import ResourcesDep, SessionDep, TemporalDep, end_transaction
from api.problems import problem_responses
from api.waitlist import service
from api.waitlist.schemas import (
    AcceptResponse,
    EntryOut,
    JoinRequest,
    JoinResponse,
    LeaveResponse,
    OfferOut,
)
from evently import waitlist
from evently.db.models import WaitlistEntry
from evently.errors import (
    AlreadyWaitlisted,
    EventNotFound,
    EventNotOnSale,
    NoOpenOffer,
    OfferExpired,
    OfferNotOpen,
    QuantityAboveCapacity,
    QuantityTooLarge,
    ReserveTimeout,
    SeatsAvailable,
    TicketTypeNotFound,
    TooManyOfType,
    Unprocessable,
    WaitlistEntryNotActive,
    WaitlistEntryNotFound,
)
from workflows.booking.contract import booking_workflow_id

router = APIRouter(prefix="/waitlist", tags=["waitlist"])


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
        ticket_type_id=entry.ticket_type_id,
    )


@router.post(
    "/join",
    status_code=201,
    response_model=JoinResponse,
    responses=problem_responses(
        EventNotFound,
        EventNotOnSale,
        SeatsAvailable,
        AlreadyWaitlisted,
        QuantityTooLarge,
        QuantityAboveCapacity,
        TicketTypeNotFound,
        TooManyOfType,
        Unprocessable,
    ),
)
async def join(
    body: JoinRequest,
    user: CurrentUser,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
) -> JoinResponse:
    """Join a sold-out event's waitlist (409 `seats_available` while seats are on sale). Freed
    seats are offered in join order; an entry wanting more seats than are free keeps its place.
    On a seated event, `ticket_type_id` waits for that type's seat category only."""
    joined = await waitlist.join(
        session,
        user_id=user.id,
        event_id=body.event_id,
        quantity=body.quantity,
        max_quantity=res.settings.max_tickets_per_booking,
        ticket_type_id=body.ticket_type_id,
    )
    out = JoinResponse(
        entry_id=joined.entry.id,
        event_id=joined.entry.event_id,
        quantity=joined.entry.quantity,
        status="waiting",
        position=joined.position,
        ticket_type_id=joined.entry.ticket_type_id,
    )
    await end_transaction(session)  # the join is committed before the snapshot and the poke
    await service.after_join(res, temporal, session, body.event_id, joined)
    return out


@router.get(
    "/{entry_id}", response_model=EntryOut, responses=problem_responses(WaitlistEntryNotFound)
)
async def get_entry(entry_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> EntryOut:
    """Your entry: status, live position among those waiting, and the offer (with `expires_at`,
    and `booking_id` once accepted)."""
    entry = await waitlist.own_entry(session, user.id, entry_id)
    return await _entry_out(session, entry)


@router.post(
    "/{entry_id}/accept",
    status_code=201,
    response_model=AcceptResponse,
    responses=problem_responses(
        WaitlistEntryNotFound, NoOpenOffer, OfferExpired, OfferNotOpen, ReserveTimeout
    ),
)
async def accept(
    entry_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
) -> AcceptResponse:
    """Take your open offer: a HELD booking of the offered seats with the normal payment window;
    pay it with `POST /bookings/confirm`. Accepting again returns the same booking."""
    result = await service.accept(res, temporal, session, user_id=user.id, entry_id=entry_id)
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


@router.delete(
    "/{entry_id}",
    response_model=LeaveResponse,
    responses=problem_responses(WaitlistEntryNotFound, WaitlistEntryNotActive),
)
async def leave(
    entry_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    res: ResourcesDep,
    temporal: TemporalDep,
) -> LeaveResponse:
    """Leave the waitlist, or decline an open offer (its seats pass to the next in line)."""
    result = await service.leave(res, temporal, session, user_id=user.id, entry_id=entry_id)
    return LeaveResponse(
        entry_id=entry_id, status="left", declined_offer=result.declined_offer is not None
    )
