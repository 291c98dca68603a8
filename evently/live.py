"""Live updates: one Redis stream per channel, read by the SSE routes (api/live/).

Two kinds of channel:

- ``live:event:<event_id>`` — an event's availability after each seat change, its sell-out,
  and its waiting room's progress (admitted through position N, N waiting);
- ``live:user:<user_id>`` — one buyer's admission out of a waiting room, their bookings'
  status changes and their waitlist offers.

Every message is appended with ``XADD`` (capped at about ``MAXLEN`` entries per channel), so
any API process can serve any subscriber (Redis is the bus between processes: ``XREAD BLOCK``
wakes up on the append as a pub/sub subscriber would) and the stream entry id is the SSE
``id``: a client that reconnects with ``Last-Event-ID`` reads on from exactly that entry
(``XREAD`` after it), so nothing within the retained window is missed. A ``Last-Event-ID``
older than the window gets a ``reset`` message first (the client should re-read its state).

Publishing is best effort (a message is never worth failing a booking): Redis down means no
live update, and the state can always be read from the REST API.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

log = logging.getLogger("evently.live")

MAXLEN = 10_000  # entries kept per channel: the resumption window
_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


def event_channel(event_id: uuid.UUID) -> str:
    return f"live:event:{event_id}"


def user_channel(user_id: uuid.UUID) -> str:
    return f"live:user:{user_id}"


@dataclass(frozen=True)
class Message:
    id: str  # the stream entry id, sent as the SSE id
    type: str  # the SSE event name
    data: dict[str, Any]


def _encode(type_: str, data: Mapping[str, Any]) -> Any:
    return {"type": type_, "data": json.dumps(data, default=str, separators=(",", ":"))}


async def publish(redis: Redis, channel: str, type_: str, data: Mapping[str, Any]) -> str | None:
    """Append one message; its id, or None when Redis is unreachable (logged)."""
    try:
        entry = await redis.xadd(channel, _encode(type_, data), maxlen=MAXLEN, approximate=True)
        return str(entry)
    except (RedisError, OSError) as exc:
        log.warning("live update %s on %s not published: %s", type_, channel, exc)
        return None


async def publish_many(redis: Redis, messages: list[tuple[str, str, Mapping[str, Any]]]) -> None:
    """Several messages ``(channel, type, data)`` in one round trip (best effort)."""
    if not messages:
        return
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for channel, type_, data in messages:
                pipe.xadd(channel, _encode(type_, data), maxlen=MAXLEN, approximate=True)
            await pipe.execute()
    except (RedisError, OSError) as exc:
        log.warning("%d live updates not published: %s", len(messages), exc)


def valid_id(value: str | None) -> str | None:
    """A ``Last-Event-ID`` we can resume from (a stream entry id), else None."""
    if value and _STREAM_ID.match(value.strip()):
        return value.strip()
    return None


async def last_id(redis: Redis, channel: str) -> str:
    """Where a new subscriber starts: after the newest entry (``0-0`` for an empty channel)."""
    newest = await redis.xrevrange(channel, count=1)
    return str(newest[0][0]) if newest else "0-0"


async def is_gap(redis: Redis, channel: str, after: str) -> bool:
    """True when entries after ``after`` were trimmed away (the client missed some)."""
    oldest = await redis.xrange(channel, count=1)
    if not oldest:
        return False
    first = str(oldest[0][0])
    return (
        _key(first) > _key(after)
        and _key(after) != (0, 0)
        and not await _present(redis, channel, after)
    )


async def _present(redis: Redis, channel: str, entry: str) -> bool:
    return bool(await redis.xrange(channel, min=entry, max=entry, count=1))


def _key(entry: str) -> tuple[int, int]:
    ms, _, seq = entry.partition("-")
    return int(ms), int(seq or 0)


async def read(redis: Redis, channel: str, after: str, block_ms: int | None) -> list[Message]:
    """Messages after ``after``, waiting up to ``block_ms`` for the first one (None: no wait;
    never 0, which Redis reads as "forever")."""
    found: Any = await redis.xread({channel: after}, count=100, block=block_ms or None)
    return [message for _name, entries in found or [] for message in decode(entries)]


def decode(entries: Any) -> list[Message]:
    """One channel's ``XREAD``/``XRANGE`` entries as messages."""
    out: list[Message] = []
    for entry_id, fields in entries:
        try:
            data = json.loads(fields.get("data", "{}"))
        except ValueError:
            data = {}
        out.append(Message(str(entry_id), str(fields.get("type", "message")), data))
    return out


@dataclass(frozen=True)
class EventCounts:
    """What an event stream's first ``snapshot`` says about the event (from Postgres)."""

    available: int
    held: int
    sold: int
    status: str
    queue: str  # the waiting room mode: on, off, auto


async def event_counts(conn: AsyncConnection, event_id: uuid.UUID) -> EventCounts | None:
    row = (
        await conn.execute(
            text("SELECT available, held, sold, status, queue FROM events WHERE id = :id"),
            {"id": event_id},
        )
    ).first()
    if row is None:
        return None
    return EventCounts(row.available, row.held, row.sold, row.status, row.queue)


def entry_key(entry: str) -> tuple[int, int]:
    """A stream entry id as a comparable pair (``"5-1"`` < ``"10-0"``)."""
    return _key(entry)


# a user's session ended (logout): their streams of that session end (api/live/); never sent
# to the client
LOGOUT = "logout"


async def publish_logout(redis: Redis, user_id: uuid.UUID, family_id: uuid.UUID) -> None:
    """Tell every API process that the session ``family_id`` logged out (best effort)."""
    await publish(redis, user_channel(user_id), LOGOUT, {"family_id": str(family_id)})
