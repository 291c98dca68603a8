"""The door: redeem a scanned ticket; the scanners' public keys and the offline list. The
organizer's counts: ``GET /organizations/{org_id}/events/{event_id}/checkins``
(api/organizer/endpoints.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Response

from api.auth.deps import CurrentUser
from api.checkin import service
from api.checkin.schemas import (
    AdmittedOut,
    DoorListOut,
    KeysOut,
    RedeemOut,
    RedeemRequest,
)
from api.deps import ResourcesDep, SessionDep, SettingsDep
from api.problems import problem_responses
from evently import organizations
from evently.errors import (
    AlreadyCheckedIn,
    EventNotFound,
    InvalidScanTime,
    InvalidTicket,
    NonceReused,
    TicketNotFound,
    TicketRevoked,
    WrongEvent,
)
from evently.events import event_not_found
from evently.tickets import checkin, store

router = APIRouter(tags=["check-in"])


@router.get("/checkin/keys", response_model=KeysOut, summary="Public keys that verify tickets")
async def keys(settings: SettingsDep, response: Response) -> KeysOut:
    """What a scanner needs to check tickets offline: the platform's Ed25519 public key(s).
    A ticket secret is `EVT1.` + base32 of a 42-byte body (version, flags, ticket id, event
    id, seat, issued-at) + a 64-byte signature over `evently/ticket/v1\\0` + body."""
    response.headers["Cache-Control"] = "public, max-age=3600"
    return KeysOut.model_validate(
        {
            "format": "EVT1",
            "description": "EVT1.<base32(body || Ed25519(context || body))>; context "
            "'evently/ticket/v1\\x00'; body: version(1) flags(1) ticket_id(16) event_id(16) "
            "seat(u32 BE) issued_at(u32 BE unix s) [ticket_type_id(16) when flags&1]",
            "keys": store.signer(settings).published(),
        }
    )


@router.post(
    "/checkin/redeem",
    response_model=RedeemOut,
    summary="Admit a scanned ticket (the first scan wins)",
    responses=problem_responses(
        InvalidTicket,
        InvalidScanTime,
        TicketNotFound,
        AlreadyCheckedIn,
        TicketRevoked,
        WrongEvent,
        NonceReused,
    ),
)
async def redeem(body: RedeemRequest, user: CurrentUser, res: ResourcesDep) -> RedeemOut:
    """200 `admitted` for the first scan of a valid ticket; 409 `already_checked_in` (with
    `checked_in_at` and `device_id` of the admission) for every later one, `ticket_revoked`
    for a cancelled or refunded booking, `wrong_event` when `event_id` is given and differs.
    The same `nonce` again gets the same answer (`replay: true`). Who: a `door`, `owner` or
    `manager` member of the organization whose event the ticket is for (found from the
    ticket, not from the request), or the platform admin; anyone else gets 404
    `ticket_not_found`, as for a ticket that does not exist."""
    return await service.redeem(res, user, body)


@router.get(
    "/checkin/events/{event_id}/revocations",
    response_model=DoorListOut,
    summary="What an offline door refuses: revoked and admitted tickets",
    responses=problem_responses(EventNotFound),
)
async def revocations(
    event_id: uuid.UUID, user: CurrentUser, session: SessionDep, response: Response
) -> DoorListOut:
    """The event's revoked tickets and the ones already admitted (when, by which device), for
    a scanner that keeps working offline (the door page). Scoped like redeem: a `door`,
    `owner` or `manager` member of the event's organization, or the platform admin; anyone
    else gets 404 `event_not_found`."""
    if await organizations.door_event(session, event_id, user) is None:
        raise event_not_found(event_id)
    found = await checkin.door_list(session, event_id)
    response.headers["Cache-Control"] = "no-store"
    return DoorListOut(
        event_id=event_id,
        as_of=datetime.now(UTC),
        revoked=found.revoked,
        checked_in=[
            AdmittedOut(
                ticket_id=a.ticket_id, checked_in_at=a.checked_in_at, device_id=a.checked_in_device
            )
            for a in found.checked_in
        ],
    )
