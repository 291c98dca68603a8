"""Live updates as Server-Sent Events (evently/live.py has the channels and their messages).

- ``GET /api/v1/events/{event_id}/stream`` (public): a ``snapshot`` first (availability and
  the waiting room's line), then ``availability``, ``sold_out`` and ``queue`` messages.
- ``GET /api/v1/users/stream`` (the buyer, bearer token): ``ready`` at once, ``admitted`` (with
  the admission token), ``booking`` (a booking's status changed), ``waitlist_offer``, and
  ``queue`` (the buyer's place in each line they joined, whenever it changes: position, state).

Messages from a channel carry an ``id`` (the Redis stream entry): reconnect with
``Last-Event-ID`` and the stream goes on right after it, whichever API process answers.
``ready``, ``snapshot`` and ``queue`` messages are derived state, sent without an ``id`` (so
they never move the client's ``Last-Event-ID``) and again after every reconnect. A ``reset``
message says the client was away longer than the retained window (re-read the state over
REST).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from redis.asyncio import Redis
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.auth.deps import TokenClaims
from api.deps import ResourcesDep
from api.problems import problem_responses
from api.waitingroom import service as waitingroom_service
from api.waitingroom.endpoints import waiting_room
from evently import live
from evently.errors import EventNotFound
from evently.infra.resources import Resources
from evently.settings import Settings
from evently.waitingroom import WaitingRoom

router = APIRouter(tags=["live updates"])

BLOCK_MS = 1_000  # one read waits this long for news (then the derived state is looked at)
PING_SECONDS = 15  # a comment line keeps proxies from closing an idle stream

LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        max_length=100,
        description="Resume right after this message (browsers send it on reconnect).",
    ),
]


def _stream_doc(what: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": f"An endless Server-Sent Events stream: {what}",
            "content": {
                "text/event-stream": {
                    "schema": {
                        "type": "string",
                        "description": "`id:` (resumable messages), `event:` (the type) and "
                        "`data:` (one JSON object) lines per message; `:` comment lines "
                        "keep the connection alive.",
                    }
                }
            },
        }
    }


def stream_redis(request: Request, res: Resources) -> Redis:
    """A Redis client for blocking stream reads (the shared one has sub-second timeouts)."""
    state = request.app.state
    if not hasattr(state, "live_redis"):
        state.live_redis = Redis.from_url(
            res.endpoints.redis_url,
            decode_responses=True,
            socket_timeout=BLOCK_MS / 1000 + 5,
            socket_connect_timeout=1,
        )
    found: Redis = state.live_redis
    return found


def _sse(message: live.Message) -> ServerSentEvent:
    return ServerSentEvent(id=message.id, event=message.type, data=json.dumps(message.data))


async def _resume_point(redis: Redis, channel: str, last_event_id: str | None) -> tuple[str, bool]:
    """(read after this entry, the client missed trimmed entries)."""
    after = live.valid_id(last_event_id)
    if after is None:
        return await live.last_id(redis, channel), False
    return after, await live.is_gap(redis, channel, after)


@router.get(
    "/events/{event_id}/stream",
    response_class=EventSourceResponse,
    responses={
        **_stream_doc("the event's availability and waiting room."),
        **problem_responses(EventNotFound),
    },
    summary="Live updates of an event (Server-Sent Events)",
)
async def event_stream(
    event_id: uuid.UUID,
    request: Request,
    res: ResourcesDep,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    """`snapshot` (no id), then `availability` after each seat change, `sold_out`, and
    `queue` (`admitted_through`, `waiting`, the admission `rate`) as the line moves."""
    async with res.engine.connect() as conn:
        counts = await live.event_counts(conn, event_id)
    if counts is None:
        raise EventNotFound()
    redis = stream_redis(request, res)
    channel = live.event_channel(event_id)
    after, gap = await _resume_point(redis, channel, last_event_id)
    line = await waiting_room(request).line(event_id)
    snapshot = {
        "event_id": str(event_id),
        "available": counts.available,
        "held": counts.held,
        "sold": counts.sold,
        "status": counts.status,
        "queue": counts.queue,
        "admitted_through": line.admitted_through,
        "waiting": line.waiting,
    }

    async def messages() -> AsyncIterator[ServerSentEvent]:
        if gap:
            yield ServerSentEvent(event="reset", data="{}")
        yield ServerSentEvent(event="snapshot", data=json.dumps(snapshot))
        position = after
        while True:
            for message in await live.read(redis, channel, position, BLOCK_MS):
                position = message.id
                yield _sse(message)

    return EventSourceResponse(messages(), ping=PING_SECONDS)


@router.get(
    "/users/stream",
    response_class=EventSourceResponse,
    responses=_stream_doc("the buyer's waiting rooms, admissions, bookings and waitlist offers."),
    summary="Live updates for the signed-in buyer (Server-Sent Events)",
)
async def user_stream(
    request: Request,
    claims: TokenClaims,
    res: ResourcesDep,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    """`ready` (no id) at once, then `queue` (no id: your place in each line you joined,
    when it changes — `position`, `state`, and the `admission_token` once admitted),
    `admitted`, `booking` (`booking_id`, `status`), `waitlist_offer` (`entry_id`, `seats`,
    `expires_at`)."""
    redis = stream_redis(request, res)
    user_id = claims.user_id
    channel = live.user_channel(user_id)
    after, gap = await _resume_point(redis, channel, last_event_id)
    room = waiting_room(request)
    settings = res.settings

    async def messages() -> AsyncIterator[ServerSentEvent]:
        if gap:
            yield ServerSentEvent(event="reset", data="{}")
        # at once: the client knows the stream is open (and a proxy sends the headers on)
        yield ServerSentEvent(event="ready", data=json.dumps({"user_id": str(user_id)}))
        position = after
        seen: dict[uuid.UUID, tuple[str, int]] = {}
        while True:
            for event in await _queue_changes(settings, room, user_id, seen):
                yield event
            for message in await live.read(redis, channel, position, BLOCK_MS):
                position = message.id
                yield _sse(message)

    return EventSourceResponse(messages(), ping=PING_SECONDS)


async def _queue_changes(
    settings: Settings,
    room: WaitingRoom,
    user_id: uuid.UUID,
    seen: dict[uuid.UUID, tuple[str, int]],
) -> list[ServerSentEvent]:
    """The buyer's place in each line they joined, where it changed since the last look."""
    out: list[ServerSentEvent] = []
    for event_id, place in await room.lines_of(user_id):
        status = waitingroom_service.status(
            settings, event_id, user_id, place, await room.line(event_id, place)
        )
        key = (str(status.state), status.position)
        if seen.get(event_id) != key:
            seen[event_id] = key
            out.append(ServerSentEvent(event="queue", data=status.model_dump_json()))
    return out
