"""One Redis reader per API process for every live stream it serves (evently/live.py has the
channels and their messages; api/live/ the SSE routes).

A stream :meth:`Hub.subscribe`\\ s to one channel and gets an asyncio queue. The hub keeps ONE
connection of its own and runs ONE task that ``XREAD BLOCK``\\ s on every channel some stream
of this process follows (one command over many stream keys), from the newest entry it has
seen on each, and puts each message into the queue of every subscriber of that channel. The
task stops when the last stream leaves and starts again with the next one. So Redis sees one
blocked client per API process, however many streams are open (before: one per stream).

Resuming (``Last-Event-ID``) stays exact: a subscription joins the hub first, then reads the
entries after its resume point with non-blocking ``XREAD`` on the shared client
(:meth:`Subscription.catch_up`) — anything the hub also delivers is skipped by entry id, so
every message arrives once, in order. A subscriber whose queue fills (a slow client) is
dropped from the hub's deliveries until it catches up from Redis again by itself. Those short
reads (and a stream's other reads while it opens: :attr:`Hub.short_reads`) take turns, at
most ``SHORT_READS`` at once, so a burst of streams opening cannot grow the shared client's
pool (each connection a Redis client) beyond that either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from evently import live

log = logging.getLogger("evently.live")

BLOCK_MS = 1_000  # one XREAD waits this long (then the channel set is read again)
QUEUE_SIZE = 1_000  # messages a subscriber may fall behind before it reads Redis itself
RETRY_SECONDS = 1.0  # after a failed read
SHORT_READS = 8  # streams reading the shared client at once (opening, catching up)


def _after(a: str, b: str) -> bool:
    return live.entry_key(a) > live.entry_key(b)


@dataclass(eq=False)
class Subscription:
    """One stream's place in one channel: ``position`` is the last entry it has taken."""

    channel: str
    position: str
    queue: asyncio.Queue[live.Message] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_SIZE)
    )
    lagging: bool = False  # the queue overflowed: read Redis directly before the queue
    turns: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(SHORT_READS))

    def deliver(self, message: live.Message) -> None:
        if self.lagging:
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.lagging = True

    async def catch_up(self, redis: Redis) -> list[live.Message]:
        """What Redis holds after ``position`` (non-blocking reads; empties a lagging queue)."""
        if self.lagging:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.lagging = False
        out: list[live.Message] = []
        while True:
            async with self.turns:
                found = await live.read(redis, self.channel, self.position, None)
            if not found:
                return out
            self.position = found[-1].id
            out.extend(found)

    async def next(self, wait_seconds: float) -> live.Message | None:
        """The next new message from the hub (waiting up to ``wait_seconds``), or None."""
        deadline = asyncio.get_running_loop().time() + wait_seconds
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0 or self.lagging:
                return None
            try:
                message = await asyncio.wait_for(self.queue.get(), left)
            except TimeoutError:
                return None
            if _after(message.id, self.position):
                self.position = message.id
                return message


@dataclass(eq=False)
class _Channel:
    cursor: str  # the newest entry the hub has read (or the newest when the channel joined)
    subscribers: set[Subscription] = field(default_factory=set)


class Hub:
    """The process's reader of live channels (create one per app; it connects lazily)."""

    def __init__(self, redis_url: str, *, block_ms: int = BLOCK_MS) -> None:
        self._redis_url = redis_url
        self._block_ms = block_ms
        self._reader: Redis | None = None
        self._channels: dict[str, _Channel] = {}
        self._task: asyncio.Task[None] | None = None
        self.short_reads = asyncio.Semaphore(SHORT_READS)

    @property
    def streams(self) -> int:
        return sum(len(c.subscribers) for c in self._channels.values())

    def _connection(self) -> Redis:
        if self._reader is None:
            # one connection: only the hub's task uses it, one command at a time
            self._reader = Redis.from_url(
                self._redis_url,
                decode_responses=True,
                socket_timeout=self._block_ms / 1000 + 5,
                socket_connect_timeout=1,
                max_connections=1,
            )
        return self._reader

    @contextlib.asynccontextmanager
    async def subscribe(
        self, redis: Redis, channel: str, after: str
    ) -> AsyncIterator[Subscription]:
        """Follow ``channel`` from after entry ``after``; ``redis``: the shared client for the
        short reads (the newest entry now, :meth:`Subscription.catch_up`)."""
        sub = Subscription(channel, after, turns=self.short_reads)
        known = self._channels.get(channel)
        if known is None:
            async with self.short_reads:
                newest = await live.last_id(redis, channel)
            known = self._channels.setdefault(channel, _Channel(newest))
        known.subscribers.add(sub)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="evently-live-hub")
        try:
            yield sub
        finally:
            known.subscribers.discard(sub)
            if not known.subscribers and self._channels.get(channel) is known:
                del self._channels[channel]

    async def _run(self) -> None:
        while self._channels:
            cursors = {name: ch.cursor for name, ch in self._channels.items()}
            try:
                found: Any = await self._connection().xread(
                    cursors,  # type: ignore[arg-type]
                    count=100,
                    block=self._block_ms,
                )
            except (RedisError, OSError) as exc:
                log.warning("live hub: reading %d channels failed: %r", len(cursors), exc)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            for name, entries in found or []:
                ch = self._channels.get(name)
                if ch is None:
                    continue
                for message in live.decode(entries):
                    if _after(message.id, ch.cursor):
                        ch.cursor = message.id
                    for sub in list(ch.subscribers):
                        sub.deliver(message)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._reader is not None:
            await self._reader.aclose()
