"""The load generator's lean HTTP client (bench/wire.py) against a real uvicorn server, and its
follow-ups-first request slots (bench/flash_sale.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bench.flash_sale import Slots
from bench.wire import WireClient, WireError, WireTimeout
from tests.support.servers import serve_app


async def _app(scope: Any, receive: Any, send: Any) -> None:
    """Echoes the method, path, headers and body; ``/slow`` answers after 2 s, ``/close``
    answers with ``Connection: close``."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/slow":
        await asyncio.sleep(2)
    headers = [(b"content-type", b"application/json")]
    if scope["path"] == "/close":
        headers.append((b"connection", b"close"))
    echo = {
        "method": scope["method"],
        "path": scope["path"],
        "auth": dict(scope["headers"]).get(b"authorization", b"").decode(),
        "body": body.decode(),
        "client_port": scope["client"][1],
    }
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(echo).encode()})


@pytest.fixture
async def server() -> AsyncIterator[str]:
    async with serve_app(_app) as url:
        yield url


async def test_requests_reuse_kept_alive_connections(server: str) -> None:
    http = WireClient(server, connections=2)
    try:
        first = await http.post("/a", json={"x": 1}, headers={"Authorization": "Bearer t"})
        assert first.status_code == 201
        assert first.headers["content-type"] == "application/json"
        echo = first.json()
        assert echo["method"] == "POST"
        assert echo["path"] == "/a"
        assert echo["auth"] == "Bearer t"
        assert json.loads(echo["body"]) == {"x": 1}
        # one at a time: the same connection (the same client port) every time
        ports = {(await http.get("/b")).json()["client_port"] for _ in range(5)}
        assert ports == {echo["client_port"]}
        # at most 2 at once: 10 concurrent requests use 2 connections
        many = await asyncio.gather(*(http.get(f"/c{i}") for i in range(10)))
        assert {r.json()["path"] for r in many} == {f"/c{i}" for i in range(10)}
        assert len({r.json()["client_port"] for r in many}) <= 2
    finally:
        await http.aclose()


async def test_a_closed_connection_is_replaced_and_a_timeout_is_an_error(server: str) -> None:
    http = WireClient(server, connections=1)
    try:
        a = (await http.get("/close")).json()["client_port"]
        b = (await http.get("/b")).json()["client_port"]
        assert a != b  # the server closed the first one: a new connection
        with pytest.raises(WireTimeout):
            await http.get("/slow", timeout=0.2)
        assert (await http.get("/after")).json()["path"] == "/after"  # usable afterwards
    finally:
        await http.aclose()
    with pytest.raises(WireError):
        await WireClient("http://127.0.0.1:1", connections=1).get("/")  # nothing listens
    with pytest.raises(ValueError, match="only http"):
        WireClient("https://example.org", connections=1)


async def test_slots_serve_follow_ups_before_new_joins() -> None:
    slots = Slots(1)
    order: list[str] = []
    gate = asyncio.Event()

    async def one(name: str, follow_up: bool) -> None:
        async with slots.slot(follow_up):
            order.append(name)
            if name == "first":
                await gate.wait()

    first = asyncio.create_task(one("first", False))
    await asyncio.sleep(0)
    joins = [asyncio.create_task(one(f"join{i}", False)) for i in range(3)]
    await asyncio.sleep(0)
    poll = asyncio.create_task(one("poll", True))  # asked after the joins, served before
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(first, poll, *joins)
    assert order == ["first", "poll", "join0", "join1", "join2"]
    assert slots.free == 1
