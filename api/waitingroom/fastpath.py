"""The waiting room's fast path: answer ``GET /events/{id}/queue/{ticket}`` and
``POST /events/{id}/queue`` before the FastAPI stack (routing, dependencies, validation).

In a queued on-sale these two are nearly all the traffic (every buyer joins once and polls
until admitted or sold out: ~3 requests a buyer in the 2,000-buyer benchmark), and the full
FastAPI request (~1.5 ms CPU on the API's one event loop) made the API the bottleneck of the
waiting room. This pure-ASGI layer does what the endpoints do — the signed access token, the
signed ticket, one Redis pipeline; a join adds the Lua script and a per-process cached read of
the event — and answers the same JSON. Anything else (no or bad token, an unknown event, a
forged ticket, Redis down, any error at all) goes to the endpoint unchanged, which answers it
with its documented problem; the fast path never answers an error itself.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from types import SimpleNamespace

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.waitingroom.schemas import QueueTicketOut
from evently.errors import EventlyError
from evently.security import decode_access_token

_PATH = re.compile(
    r"^/api/v1/events/(?P<event>[0-9a-fA-F-]{36})/queue(?:/(?P<ticket>[A-Za-z0-9._-]{1,200}))?$"
)
_JOIN_ROUTE = SimpleNamespace(path="/api/v1/events/{event_id}/queue")
_READ_ROUTE = SimpleNamespace(path="/api/v1/events/{event_id}/queue/{queue_ticket}")


# Waiting-room answers worked on at once per API process; the rest wait their turn (FIFO)
# without taking the event loop's time. In a rush the joins come 100 at a time, and each step
# of a reserve (gate, Temporal, Postgres) waited behind a step of every one of them: admitted
# buyers' reserves took 0.5-1.4 s while the joins took 30 ms. The line's own answers are no
# slower for it (the process does the same work, in the same order).
CONCURRENCY = 8


class WaitingRoomFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._turns = asyncio.Semaphore(CONCURRENCY)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "POST"):
            match = _PATH.match(scope["path"])
            if match is not None:
                async with self._turns:
                    try:
                        body = await self._answer(scope, match)
                    except Exception:  # the endpoint answers it, with its documented problem
                        body = None
                if body is not None:
                    route = _READ_ROUTE if match["ticket"] else _JOIN_ROUTE
                    scope["route"] = route
                    response = Response(body, media_type="application/json")
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, match: re.Match[str]) -> bytes | None:
        from api.waitingroom import service
        from api.waitingroom.endpoints import waiting_room
        from evently import waitingroom

        app = scope.get("app")
        if app is None or not hasattr(app.state, "resources"):
            return None
        ticket = match["ticket"]
        if (scope["method"] == "GET") != (ticket is not None):
            return None
        request = Request(scope)
        res = app.state.resources
        event_id = uuid.UUID(match["event"])
        room = waiting_room(request)
        out: QueueTicketOut
        if ticket is not None and ticket.startswith("g"):
            # a guest's place (issue 32): the signed ticket is all it takes
            guest = waitingroom.read_queue_ticket(res.settings.jwt_secret, event_id, ticket)
            if guest is None or guest.guest_tag is None:
                return None
            line = await room.line(event_id, guest.place)
            out = service.status(
                res.settings, event_id, guest.user_id, guest.place, line, guest.guest_tag
            )
            return out.model_dump_json().encode()
        if request.headers.get("content-length", "0") != "0" or "transfer-encoding" in (
            request.headers
        ):
            return None  # a body (a guest's join, or a mistake): the endpoint judges it
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            claims = decode_access_token(res.settings, token.strip())
        except EventlyError:
            return None
        if ticket is None:
            out = await service.join(
                res.engine,
                res.settings,
                app.state.temporal,
                room,
                event_id=event_id,
                user_id=claims.user_id,
            )
        else:
            found = waitingroom.read_queue_ticket(res.settings.jwt_secret, event_id, ticket)
            if found is None or found.guest_tag is not None or found.user_id != claims.user_id:
                return None
            line = await room.line(event_id, found.place)
            out = service.status(res.settings, event_id, claims.user_id, found.place, line)
        return out.model_dump_json().encode()
