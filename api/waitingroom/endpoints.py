"""The waiting room of an event's on-sale: join it, read your place (and, once admitted, your
admission token)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Path, Request
from redis.exceptions import RedisError

from api.auth.deps import TokenClaims
from api.deps import ResourcesDep, TemporalDep
from api.problems import problem_responses
from api.waitingroom import service
from api.waitingroom.schemas import QueueTicketOut
from evently import waitingroom
from evently.errors import (
    EventNotFound,
    EventNotOnSale,
    QueueOff,
    QueueTicketNotFound,
    ServiceUnavailable,
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
    responses=problem_responses(EventNotFound, EventNotOnSale, QueueOff, ServiceUnavailable),
    summary="Join the event's waiting room (again: the same place)",
)
async def join_queue(
    event_id: uuid.UUID,
    request: Request,
    claims: TokenClaims,
    res: ResourcesDep,
    temporal: TemporalDep,
) -> QueueTicketOut:
    """One place per buyer and event, first come, first served. In `auto` mode a buyer who
    joins while the reserve path has room and nobody waits is admitted at once. Poll
    `GET .../queue/{queue_ticket}` after `poll_after_seconds` or listen to
    `GET /api/v1/users/stream`."""
    try:
        return await service.join(
            res.engine,
            res.settings,
            temporal,
            waiting_room(request),
            event_id=event_id,
            user_id=claims.user_id,
        )
    except RedisError as exc:
        raise ServiceUnavailable("The waiting room is unavailable; retry shortly.") from exc


@router.get(
    "/{event_id}/queue/{queue_ticket}",
    response_model=QueueTicketOut,
    responses=problem_responses(QueueTicketNotFound, ServiceUnavailable),
    summary="Your place in the waiting room; once admitted, your admission token",
)
async def read_queue(
    event_id: uuid.UUID,
    queue_ticket: str = Path(max_length=200),
    *,
    request: Request,
    claims: TokenClaims,
    res: ResourcesDep,
) -> QueueTicketOut:
    """`waiting` (with `position`, 1 = next), `admitted` (with `admission_token`),
    `sold_out` (join the waitlist: `POST /api/v1/waitlist`) or `expired` (the admission
    token's time ran out). No database read: the ticket is signed, the line is in Redis."""
    found = waitingroom.read_queue_ticket(res.settings.jwt_secret, event_id, queue_ticket)
    if found is None or found.user_id != claims.user_id:
        raise QueueTicketNotFound()
    try:
        line = await waiting_room(request).line(event_id, found.place)
    except RedisError as exc:
        raise ServiceUnavailable("The waiting room is unavailable; retry shortly.") from exc
    return service.status(res.settings, event_id, claims.user_id, found.place, line)
