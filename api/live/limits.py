"""How many live streams one client address and one user may hold open in this API process.

``EVENTLY_STREAMS_PER_CLIENT`` per client address (the one api/proxies.py derives: behind
trusted proxies, the real client's) and ``EVENTLY_STREAMS_PER_USER`` per signed-in user;
beyond either, 429 ``too_many_streams`` with ``Retry-After``. A stream takes its slots before
its answer starts and gives them back when its answer ends, however it ends
(:class:`LeasedStream`). The counts are per process, like the streams (and the hub that feeds
them): N API processes hold at most N times the caps.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from sse_starlette import EventSourceResponse
from starlette.types import Receive, Scope, Send

from evently.errors import TooManyStreams
from evently.infra import metrics

RETRY_AFTER_SECONDS = 10


class StreamSlots:
    def __init__(self) -> None:
        self.clients: Counter[str] = Counter()
        self.users: Counter[uuid.UUID] = Counter()

    def take(self, client: str, user: uuid.UUID | None, per_client: int, per_user: int) -> Lease:
        """A lease on one stream for ``client`` (and ``user``), or 429 ``too_many_streams``."""
        if self.clients[client] >= per_client:
            metrics.LIVE_STREAMS_REFUSED.labels(cap="client").inc()
            raise TooManyStreams(
                f"At most {per_client} live streams per client address.",
                retry_after=RETRY_AFTER_SECONDS,
            )
        if user is not None and self.users[user] >= per_user:
            metrics.LIVE_STREAMS_REFUSED.labels(cap="user").inc()
            raise TooManyStreams(
                f"At most {per_user} live streams per account.", retry_after=RETRY_AFTER_SECONDS
            )
        self.clients[client] += 1
        if user is not None:
            self.users[user] += 1
        return Lease(self, client, user)


class Lease:
    def __init__(self, slots: StreamSlots, client: str, user: uuid.UUID | None) -> None:
        self._slots, self._client, self._user = slots, client, user
        self._held = True

    def release(self) -> None:
        """Give the slots back (once; later calls do nothing)."""
        if not self._held:
            return
        self._held = False
        _decrement(self._slots.clients, self._client)
        if self._user is not None:
            _decrement(self._slots.users, self._user)


def _decrement(counter: Counter[Any], key: Any) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


class LeasedStream(EventSourceResponse):
    """An SSE answer that releases its stream's lease when it ends (sent, failed, cancelled)."""

    def __init__(self, content: Any, lease: Lease, **kw: Any) -> None:
        super().__init__(content, **kw)
        self.lease = lease

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.lease.release()
