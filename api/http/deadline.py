"""Every request answers within a deadline: a pure-ASGI layer that waits for the app's first
byte for at most ``EVENTLY_REQUEST_DEADLINE_SECONDS`` and, past it, cancels the request and
answers ``503 deadline_exceeded`` (problem+json, ``Retry-After``) itself.

Only the time to the first byte is bounded: an answer that has started (a CSV export, a
stream) goes on. The routes that wait on a workflow bound their own waits below this deadline
and answer something truer first (``202 pending`` for a reserve, ``503`` with what to check
for a payment); this is the net under every other wait — a hung connection to a server that
is down, a pool that never hands out a connection. A write cut off here may or may not have
happened: the answer says to retry, and every write is idempotent or keyed.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import render
from evently.errors import DeadlineExceeded

log = logging.getLogger("evently.api.deadline")


class RequestDeadline:
    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # the app runs in this task (context variables bound inside, such as the user id for
        # the access log, stay visible to the layers outside); the deadline is lifted as soon
        # as the answer starts
        started = False
        try:
            async with asyncio.timeout(self.seconds) as deadline:

                async def send_and_lift(message: Message) -> None:
                    nonlocal started
                    if message["type"] == "http.response.start":
                        started = True
                        if not deadline.expired():
                            deadline.reschedule(None)
                    await send(message)

                await self.app(scope, receive, send_and_lift)
                return
        except TimeoutError:
            if not deadline.expired():
                raise  # the app's own timeout, not ours
            if started:  # it began to answer while being cut off: nothing to add
                return
        log.warning(
            "%s %s cut off after %.1f s", scope.get("method"), scope.get("path"), self.seconds
        )
        answer = render(DeadlineExceeded(retry_after=2))
        await answer(scope, receive, send)
