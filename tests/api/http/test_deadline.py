"""RequestDeadline: every request answers within its deadline (time to the first byte)."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from api.http.deadline import RequestDeadline

pytestmark = pytest.mark.unit

who: contextvars.ContextVar[str | None] = contextvars.ContextVar("who", default=None)
seen_outside: list[str | None] = []


async def slow(request: Request) -> JSONResponse:
    await asyncio.sleep(5)
    return JSONResponse({"late": True})


async def quick(request: Request) -> JSONResponse:
    who.set("user-1")  # as the auth dependency binds the user id for the access log
    return JSONResponse({"ok": True})


async def streaming(request: Request) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        for i in range(5):
            yield f"{i}\n".encode()
            await asyncio.sleep(0.1)  # 0.5 s in all, past the 0.2 s deadline

    return StreamingResponse(body(), media_type="text/plain")


async def own_timeout(request: Request) -> JSONResponse:
    raise TimeoutError("the app's own")


class Outside:
    """A layer outside the deadline (as the access log is): what does it see afterwards?"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        seen_outside.append(who.get())


app = Starlette(
    routes=[
        Route("/slow", slow),
        Route("/quick", quick),
        Route("/stream", streaming),
        Route("/own-timeout", own_timeout),
    ]
)
wrapped = Outside(RequestDeadline(app, seconds=0.2))


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=wrapped, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


async def test_a_request_past_its_deadline_is_answered_503_with_retry_after(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/slow")
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "deadline_exceeded"
    assert int(r.headers["retry-after"]) > 0


async def test_an_answer_that_has_started_goes_on_past_the_deadline(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/stream")
    assert r.status_code == 200
    assert r.text == "0\n1\n2\n3\n4\n"


async def test_what_the_app_binds_is_seen_by_the_layers_outside(
    client: httpx.AsyncClient,
) -> None:
    seen_outside.clear()
    r = await client.get("/quick")
    assert r.status_code == 200
    assert seen_outside == ["user-1"]


async def test_the_apps_own_timeout_is_not_mistaken_for_the_deadline(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/own-timeout")
    assert r.status_code == 500  # an error of the app's, not a deadline answer
