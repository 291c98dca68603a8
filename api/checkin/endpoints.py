"""The door: redeem a scanned ticket; the scanners' public keys. The organizer's counts:
``GET /organizations/{org_id}/events/{event_id}/checkins`` (api/organizer/endpoints.py)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.auth.deps import DoorUser
from api.checkin import service
from api.checkin.schemas import (
    KeysOut,
    RedeemOut,
    RedeemRequest,
)
from api.deps import ResourcesDep, SettingsDep
from api.problems import problem_responses
from evently.errors import (
    AlreadyCheckedIn,
    InvalidScanTime,
    InvalidTicket,
    NonceReused,
    TicketNotFound,
    TicketRevoked,
    WrongEvent,
)
from evently.tickets import store

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
async def redeem(body: RedeemRequest, user: DoorUser, res: ResourcesDep) -> RedeemOut:
    """200 `admitted` for the first scan of a valid ticket; 409 `already_checked_in` (with
    `checked_in_at` and `device_id` of the admission) for every later one, `ticket_revoked`
    for a cancelled or refunded booking, `wrong_event` when `event_id` is given and differs.
    The same `nonce` again gets the same answer (`replay: true`). Roles: door, admin."""
    return await service.redeem(res, user.id, body)
