"""The reserve fast path: answer ``409 sold_out`` and ``503 overloaded`` before the FastAPI
stack (routing, dependencies, token check, rate limit) runs.

In a flash sale most reserve requests are rejections: ~15 per seat sold in the 5,000-buyer
benchmark, each a full FastAPI request of ~1.5 ms CPU on the API's single event loop, which
made the API the largest CPU consumer per hold (docs/performance.md). This pure-ASGI layer
reads the small JSON body, looks at the sold-out gate read-only (one Redis GET) and at the
process's in-flight cap, and answers those cases itself (and a queued on-sale's reserve
without a genuine admission token: api/bookings/service.py ``admitted``) with the same
problem+json the endpoint gives. Everything else (bad JSON, other fields, an
Idempotency-Key — possibly the retry of a request that already holds seats —, a missing gate,
Redis down) goes through the normal endpoint unchanged, with the body replayed. A sold-out or
overloaded answer reveals nothing the public availability endpoint does not, so it needs no
authentication; neither does a refusal for a missing or forged admission token.
"""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import render
from evently.errors import EventlyError

RESERVE_PATH = "/api/v1/bookings/reserve"
MAX_BODY = 2048  # a reserve body is ~70 bytes; anything bigger takes the normal path
_ROUTE = SimpleNamespace(path=RESERVE_PATH)  # the metrics label of the endpoint


class ReserveFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != RESERVE_PATH
            or any(name == b"idempotency-key" for name, _ in scope["headers"])
        ):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        body = b""
        more = True
        while more and len(body) <= MAX_BODY:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                more = False
                break
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if not more:
            answer = await self._answer(scope, body)
            if answer is not None:
                scope["route"] = _ROUTE
                await answer(scope, _replay([], receive), send)
                return
        await self.app(scope, _replay(messages, receive), send)

    async def _answer(self, scope: Scope, body: bytes) -> Any:
        from api.bookings.endpoints import gate, reserve_valve
        from api.bookings.service import admitted, refused_at_gate
        from api.waitingroom.endpoints import waiting_room
        from evently.inventory.gate import Shape

        try:
            data = json.loads(body)
            event_id = uuid.UUID(data["event_id"])
            quantity = data["quantity"] if "quantity" in data else len(set(data["seats"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        app = scope.get("app")
        if (
            app is None
            or not hasattr(app.state, "resources")
            or type(quantity) is not int
            or not 1 <= quantity <= app.state.resources.settings.max_tickets_per_booking
            or set(data) not in ({"event_id", "quantity"}, {"event_id", "seats"})
        ):
            return None
        seat_ids: list[str] | None = data.get("seats")
        if seat_ids is not None and not all(
            type(x) is str and 1 <= len(x) <= 130 for x in seat_ids
        ):
            return None  # the endpoint's 422
        request = Request(scope)
        token = request.headers.get("admission-token")
        # sold out, or (a seated event: ``quantity`` is the best n together of any seat) no
        # block of n left, as noted by an earlier reserve; seats by id: an asked seat known
        # taken (never ``sold_out``: on a general-admission event they are a 422)
        if token is None:
            look = gate(request).refused
            try:
                if seat_ids is None:
                    refused_at_gate(await look(event_id, quantity, [Shape(None, quantity)]))
                else:
                    refused_at_gate(await look(event_id, 0, seat_ids=seat_ids))
            except EventlyError as refusal:
                return render(refusal)
        try:
            # the waiting room's step: during a queued on-sale, no reserve without a
            # genuine admission token for this event (signature and expiry: no database;
            # the buyer is compared behind, with the access token)
            await admitted(
                app.state.resources.settings,
                waiting_room(request),
                reserve_valve(request),
                user_id=None,
                event_id=event_id,
                token=token,
            )
        except EventlyError as refused:
            return render(refused)
        if token is not None or not reserve_valve(request).saturated:
            # one booking per admission: a token's reserve may be the retry of one that
            # holds seats already, so the endpoint answers it (as with an Idempotency-Key)
            return None
        return render(reserve_valve(request).overloaded())


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """The messages already read, then the real receive (a disconnect, a later message)."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
