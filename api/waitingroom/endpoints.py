"""The waiting room of an event's on-sale: join it, read your place (and, once admitted, your
admission token)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Path, Request
from redis.exceptions import RedisError

from api.auth.deps import OptionalClaims, RateLimiterDep, client_ip
from api.deps import ResourcesDep, TemporalDep
from api.problems import problem_responses
from api.waitingroom import service
from api.waitingroom.schemas import QueueJoinRequest, QueueTicketOut
from evently import accounts, ratelimit, waitingroom
from evently.errors import (
    EventNotFound,
    EventNotOnSale,
    QueueOff,
    QueueTicketNotFound,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
)
from evently.waitingroom import WaitingRoom

router = APIRouter(prefix="/events", tags=["waiting room"])


def waiting_room(request: Request) -> WaitingRoom:
    """The process's waiting room (its caches are per process)."""
    state = request.app.state
    if not hasattr(state, "waiting_room"):
        state.waiting_room = WaitingRoom(state.resources.redis)
    found: WaitingRoom = state.waiting_room
    return found


@router.post(
    "/{event_id}/queue",
    response_model=QueueTicketOut,
    responses=problem_responses(
        EventNotFound,
        EventNotOnSale,
        QueueOff,
        ServiceUnavailable,
        Unauthorized,
        Unprocessable,
        TooManyRequests,
    ),
    summary="Join the event's waiting room (again: the same place)",
)
async def join_queue(
    event_id: uuid.UUID,
    request: Request,
    claims: OptionalClaims,
    res: ResourcesDep,
    temporal: TemporalDep,
    limiter: RateLimiterDep,
    body: QueueJoinRequest | None = None,
) -> QueueTicketOut:
    """One place per buyer and event, first come, first served. In `auto` mode a buyer who
    joins while the reserve path has room and nobody waits is admitted at once. Poll
    `GET .../queue/{queue_ticket}` after `poll_after_seconds` or listen to
    `GET /api/v1/users/stream`.

    **A guest** (no token) sends `buyer: {email, name}`: a new place at the back of the line,
    whose admission token is good for a guest reserve with that email only. Limited per client
    address and per email (docs/buyers.md)."""
    if claims is not None and body is not None:
        raise Unprocessable("buyer: only for a guest, without a bearer token.")
    if claims is None and body is None:
        raise Unauthorized(
            "Send 'Authorization: Bearer <access token>', or buyer {email, name} to wait as "
            "a guest."
        )
    room = waiting_room(request)
    try:
        if body is not None:
            email = accounts.normalize_email(body.buyer.email)
            await limiter.enforce(
                f"queue:guest:{client_ip(request)}",
                res.settings.reserve_rate_limit,
                60,
                detail="Too many waiting-room joins from this address; retry shortly.",
            )
            await limiter.enforce(
                f"queue:guestemail:{ratelimit.hashed(email)}",
                res.settings.queue_guest_joins_per_email,
                3600,
                detail="Too many waiting-room places for this email; keep the one you have.",
            )
            return await service.join_as_guest(
                res.engine, res.settings, temporal, room, event_id=event_id, email=email
            )
        assert claims is not None
        return await service.join(
            res.engine, res.settings, temporal, room, event_id=event_id, user_id=claims.user_id
        )
    except RedisError as exc:
        raise ServiceUnavailable("The waiting room is unavailable; retry shortly.") from exc


@router.get(
    "/{event_id}/queue/{queue_ticket}",
    response_model=QueueTicketOut,
    responses=problem_responses(QueueTicketNotFound, ServiceUnavailable, Unauthorized),
    summary="Your place in the waiting room; once admitted, your admission token",
)
async def read_queue(
    event_id: uuid.UUID,
    queue_ticket: str = Path(max_length=200),
    *,
    request: Request,
    claims: OptionalClaims,
    res: ResourcesDep,
) -> QueueTicketOut:
    """`waiting` (with `position`, 1 = next), `admitted` (with `admission_token`),
    `sold_out` (join the waitlist: `POST /api/v1/waitlist`) or `expired` (the admission
    token's time ran out). No database read: the ticket is signed, the line is in Redis.
    A guest's ticket (from a guest join) needs no token: holding it is what counts."""
    found = waitingroom.read_queue_ticket(res.settings.jwt_secret, event_id, queue_ticket)
    if found is not None and found.guest_tag is None:
        if claims is None:
            raise Unauthorized("Send 'Authorization: Bearer <access token>'.")
        if found.user_id != claims.user_id:
            found = None
    if found is None:
        raise QueueTicketNotFound()
    try:
        line = await waiting_room(request).line(event_id, found.place)
    except RedisError as exc:
        raise ServiceUnavailable("The waiting room is unavailable; retry shortly.") from exc
    return service.status(res.settings, event_id, found.user_id, found.place, line, found.guest_tag)
