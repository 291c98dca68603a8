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

Protection (issue 28): every stream of this process is fed by ONE Redis reader
(evently/live_hub.py), not a connection each; a client address and a user hold at most
``EVENTLY_STREAMS_PER_CLIENT`` / ``EVENTLY_STREAMS_PER_USER`` streams (api/live/limits.py:
429 ``too_many_streams`` beyond); a stream with no message for ``EVENTLY_STREAM_IDLE_SECONDS``
closes; a draft event has no stream (404); a buyer's stream ends when their access token
expires or their session logs out (a ``logout`` notice on their channel, and a re-read of the
session every ``EVENTLY_STREAM_SESSION_CHECK_SECONDS``).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from redis.asyncio import Redis
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.auth.deps import TokenClaims, client_ip
from api.deps import ResourcesDep
from api.live.limits import LeasedStream, StreamSlots
from api.problems import problem_responses
from api.waitingroom import service as waitingroom_service
from api.waitingroom.endpoints import waiting_room
from evently import live, tokens
from evently.enums import EventStatus
from evently.errors import EventNotFound, TokenRevoked, TooManyStreams
from evently.infra.resources import Resources
from evently.live_hub import Hub, Subscription
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


def live_hub(request: Request, res: Resources) -> Hub:
    """The process's one reader of live channels (evently/live_hub.py)."""
    state = request.app.state
    if not hasattr(state, "live_hub"):
        state.live_hub = Hub(res.endpoints.redis_url, block_ms=BLOCK_MS)
    found: Hub = state.live_hub
    return found


def stream_slots(request: Request) -> StreamSlots:
    state = request.app.state
    if not hasattr(state, "stream_slots"):
        state.stream_slots = StreamSlots()
    found: StreamSlots = state.stream_slots
    return found


# a user stream's periodic look at its state: events to send, or None (the stream ends)
Tick = Callable[[], Awaitable[list[ServerSentEvent] | None]]


async def _relay(
    sub: Subscription,
    redis: Redis,
    settings: Settings,
    *,
    tick: Tick | None = None,
    family_id: uuid.UUID | None = None,
) -> AsyncIterator[ServerSentEvent]:
    """The channel's messages (first what Redis holds after the resume point, then what the
    hub delivers), until the stream is idle for ``EVENTLY_STREAM_IDLE_SECONDS``, the
    ``tick`` says it is over, or ``family_id``'s session logs out."""
    clock = asyncio.get_running_loop().time
    last_sent = clock()
    behind = True  # read Redis directly until caught up
    while clock() - last_sent < settings.stream_idle_seconds:
        if behind or sub.lagging:
            batch = await sub.catch_up(redis)
            behind = False
        else:
            message = await sub.next(BLOCK_MS / 1000)
            batch = [message] if message is not None else []
        for message in batch:
            if message.type == live.LOGOUT:  # a notice for the server, never sent on
                if family_id is not None and message.data.get("family_id") == str(family_id):
                    return
                continue
            last_sent = clock()
            yield _sse(message)
        if tick is not None:
            events = await tick()
            if events is None:
                return
            for event in events:
                last_sent = clock()
                yield event


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
        **problem_responses(EventNotFound, TooManyStreams),
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
    if counts is None or counts.status == EventStatus.DRAFT:
        raise EventNotFound()
    settings = res.settings
    lease = stream_slots(request).take(
        client_ip(request), None, settings.streams_per_client, settings.streams_per_user
    )
    redis = res.redis
    hub = live_hub(request, res)
    channel = live.event_channel(event_id)
    try:
        async with hub.short_reads:  # a burst of streams opening takes turns
            after, gap = await _resume_point(redis, channel, last_event_id)
            line = await waiting_room(request).line(event_id)
    except BaseException:
        lease.release()
        raise
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
        async with hub.subscribe(redis, channel, after) as sub:
            async for event in _relay(sub, redis, settings):
                yield event

    return LeasedStream(messages(), lease, ping=PING_SECONDS)


@router.get(
    "/users/stream",
    response_class=EventSourceResponse,
    responses={
        **_stream_doc("the buyer's waiting rooms, admissions, bookings and waitlist offers."),
        **problem_responses(TokenRevoked, TooManyStreams),
    },
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
    `expires_at`). The stream ends when the access token expires or its session logs out
    (401 `token_revoked` for a logged-out session's token)."""
    settings = res.settings
    user_id = claims.user_id
    family_id = claims.family_id
    if family_id is not None and not await _session_active(res, family_id):
        raise TokenRevoked("This session has logged out.")
    lease = stream_slots(request).take(
        client_ip(request), user_id, settings.streams_per_client, settings.streams_per_user
    )
    redis = res.redis
    hub = live_hub(request, res)
    channel = live.user_channel(user_id)
    try:
        async with hub.short_reads:
            after, gap = await _resume_point(redis, channel, last_event_id)
    except BaseException:
        lease.release()
        raise
    room = waiting_room(request)
    ends_at = claims.expires_at.timestamp()
    seen: dict[uuid.UUID, tuple[str, int]] = {}
    next_check = time.monotonic() + settings.stream_session_check_seconds

    async def tick() -> list[ServerSentEvent] | None:
        nonlocal next_check
        if time.time() >= ends_at:
            return None
        if family_id is not None and time.monotonic() >= next_check:
            next_check = time.monotonic() + settings.stream_session_check_seconds
            if not await _session_active(res, family_id):
                return None
        async with hub.short_reads:
            return await _queue_changes(settings, room, user_id, seen)

    async def messages() -> AsyncIterator[ServerSentEvent]:
        if gap:
            yield ServerSentEvent(event="reset", data="{}")
        # at once: the client knows the stream is open (and a proxy sends the headers on)
        yield ServerSentEvent(event="ready", data=json.dumps({"user_id": str(user_id)}))
        async with hub.subscribe(redis, channel, after) as sub:
            async for event in _relay(sub, redis, settings, tick=tick, family_id=family_id):
                yield event

    return LeasedStream(messages(), lease, ping=PING_SECONDS)


async def _session_active(res: Resources, family_id: uuid.UUID) -> bool:
    async with res.sessionmaker() as session:
        return await tokens.family_active(session, family_id)


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
