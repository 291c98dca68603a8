"""Live streams cannot take the service down (issue 28), over a real uvicorn server in this
event loop (tests/servers.py ``serve_app``), real Postgres and Redis: 200 streams from one
client address are capped (429 ``too_many_streams``) while Redis's connected clients stay
within a fixed bound and a buyer from another address still gets their stream; a draft
event has no stream; a buyer's stream ends at logout and their token no longer opens one."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from evently.infra.resources import Resources
from evently.live_hub import SHORT_READS
from evently.settings import Settings
from tests.support.auth import AUTH, PASSWORD, register
from tests.support.factories import make_event, unique_email
from tests.support.servers import serve_app
from tests.support.temporal import AppFactory

API = "/api/v1"
PER_CLIENT = 50  # the old code held one Redis connection per stream: 50 would be +50
PER_USER = 3
CROWD = "198.51.100.7"  # the client opening 200 streams (behind the trusted proxy)
BUYER = "203.0.113.9"  # someone else
DEADLINE = 20.0  # seconds: generous, for a shared CI machine


@pytest.fixture
async def api(
    settings: Settings, resources: Resources, app_factory: AppFactory
) -> AsyncIterator[str]:
    limited = settings.model_copy(
        update={
            "streams_per_client": PER_CLIENT,
            "streams_per_user": PER_USER,
            "trusted_proxies": "127.0.0.1/32",  # the test client is "the proxy"
            "login_rate_limit": 1_000_000,
            "register_rate_limit": 1_000_000,
        }
    )
    app = app_factory(dataclasses.replace(resources, settings=limited), limited)
    async with serve_app(app) as url:
        yield url


def _from(url: str, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url,
        headers={"X-Forwarded-For": address},
        timeout=httpx.Timeout(30, read=None),
        limits=httpx.Limits(max_connections=300, max_keepalive_connections=0),
    )


async def _connected_clients(resources: Resources) -> int:
    info = await resources.redis.info("clients")
    return int(info["connected_clients"])


async def _first_event(lines: AsyncIterator[str]) -> str:
    async for line in lines:
        if line.startswith("event:"):
            return line.partition(":")[2].strip()
    raise AssertionError("the stream ended before its first message")


async def test_a_crowd_from_one_address_is_capped_and_does_not_exhaust_redis(
    api: str, resources: Resources
) -> None:
    event = await make_event(resources)
    path = f"{API}/events/{event.id}/stream"
    before = await _connected_clients(resources)
    opened = asyncio.Event()
    statuses: list[int] = []
    refusals: list[httpx.Response] = []

    async def one(http: httpx.AsyncClient) -> None:
        async with http.stream("GET", path) as r:
            statuses.append(r.status_code)
            if r.status_code == 200:
                lines = r.aiter_lines()
                assert await _first_event(lines) == "snapshot"
                if statuses.count(200) == PER_CLIENT:
                    opened.set()
                async for _line in lines:
                    pass
                raise AssertionError("a stream ended while the crowd was still there")
            else:
                await r.aread()
                refusals.append(r)

    async with _from(api, CROWD) as crowd, _from(api, BUYER) as buyer:
        tasks = [asyncio.create_task(one(crowd)) for _ in range(200)]
        try:
            async with asyncio.timeout(DEADLINE * 3):
                while len(statuses) < 200:
                    await asyncio.sleep(0.05)
                await opened.wait()
            failed = [t.exception() for t in tasks if t.done() and not t.cancelled()]
            assert not [e for e in failed if e is not None], failed
            assert sorted(set(statuses)) == [200, 429]
            assert statuses.count(200) == PER_CLIENT
            r = refusals[0]
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["code"] == "too_many_streams"
            assert int(r.headers["retry-after"]) >= 1
            # 50 streams are open: Redis sees the hub's one reader, not a connection each
            during = await _connected_clients(resources)
            assert during - before <= 2 * SHORT_READS, (before, during)  # not one per stream
            print(f"Redis connected clients: {before} before, {during} with {PER_CLIENT} open")
            # another client is unaffected
            async with buyer.stream("GET", path) as mine:
                assert mine.status_code == 200
                assert await _first_event(mine.aiter_lines()) == "snapshot"
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        # the slots come back when the streams end
        async with asyncio.timeout(DEADLINE):
            while True:
                async with crowd.stream("GET", path) as again:
                    if again.status_code == 200:
                        break
                await asyncio.sleep(0.1)


async def test_a_draft_event_has_no_stream(api: str, resources: Resources) -> None:
    draft = await make_event(resources, status="draft")
    async with _from(api, BUYER) as http:
        r = await http.get(f"{API}/events/{draft.id}/stream")
    assert r.status_code == 404
    assert r.json()["code"] == "event_not_found"


async def test_a_buyers_stream_ends_at_logout_and_is_capped_per_user(api: str) -> None:
    async with _from(api, BUYER) as http, _from(api, CROWD) as elsewhere:
        pair = await register(http, unique_email("live-logout"), PASSWORD)
        headers = {"Authorization": f"Bearer {pair['access_token']}"}
        async with http.stream("GET", f"{API}/users/stream", headers=headers) as mine:
            assert mine.status_code == 200
            lines = mine.aiter_lines()
            assert await _first_event(lines) == "ready"
            # the per-user cap counts across addresses
            others = [
                await elsewhere.send(
                    elsewhere.build_request("GET", f"{API}/users/stream", headers=headers),
                    stream=True,
                )
                for _ in range(PER_USER)
            ]
            try:
                assert [r.status_code for r in others] == [200] * (PER_USER - 1) + [429]
                await others[-1].aread()
                assert others[-1].json()["code"] == "too_many_streams"
            finally:
                for r in others:
                    await r.aclose()
            r = await http.post(f"{AUTH}/logout", json={"refresh_token": pair["refresh_token"]})
            assert r.status_code == 204
            started = time.monotonic()
            async with asyncio.timeout(DEADLINE):
                async for _line in lines:
                    pass  # the stream ends (the server closes it)
            print(f"stream ended {time.monotonic() - started:.2f} s after logout")
        r = await http.get(f"{API}/users/stream", headers=headers)
        assert r.status_code == 401
        assert r.json()["code"] == "token_revoked"
