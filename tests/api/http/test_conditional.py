"""Conditional GETs (api/http/conditional.py): ETag + If-None-Match → 304 on an event and on
its availability; the 304 needs no Postgres when Redis has the snapshot."""

from __future__ import annotations

import dataclasses
import uuid

import httpx
import pytest

from api.http.conditional import etag, matches
from evently.infra.embedded import free_port
from evently.infra.resources import Resources, make_engine, make_sessionmaker
from evently.inventory import availability
from tests.support.factories import Account, make_account, make_event
from tests.support.temporal import AppFactory

EVENTS = "/api/v1/events"


@pytest.fixture(scope="module")
async def admin(resources: Resources) -> Account:
    return await make_account(resources, "admin")


def test_if_none_match_comparison() -> None:
    tag = etag("x", 1)
    assert tag[0] == tag[-1] == '"'
    assert tag != etag("x", 2)
    assert matches(tag, tag)
    assert matches(f"W/{tag}", tag)  # weak comparison
    assert matches(f'"other", {tag}', tag)
    assert matches("*", tag)
    assert not matches(None, tag)
    assert not matches("", tag)
    assert not matches('"other"', tag)
    assert not matches(tag[1:-1], tag)  # unquoted is another tag


async def test_availability_answers_304_to_its_etag(
    client: httpx.AsyncClient, resources: Resources, admin: Account
) -> None:
    event = await make_event(resources, capacity=10)
    url = f"{EVENTS}/{event.id}/availability"
    first = await client.get(url)
    assert first.status_code == 200
    tag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache"

    again = await client.get(url, headers={"If-None-Match": tag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == tag
    assert again.headers["cache-control"] == "no-cache"
    assert again.headers["x-content-type-options"] == "nosniff"
    assert (await client.get(url, headers={"If-None-Match": f'"x", W/{tag}'})).status_code == 304
    assert (await client.get(url, headers={"If-None-Match": '"stale"'})).status_code == 200

    # any change to what the body shows changes the tag
    r = await client.patch(
        f"/api/v1/admin/events/{event.id}", json={"capacity": 12}, headers=admin.headers
    )
    assert r.status_code == 200, r.text
    changed = await client.get(url, headers={"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.json()["capacity"] == 12
    assert changed.headers["etag"] != tag
    # ...also a write that keeps the version (counters without one, a waitlist length)
    snap = await availability.read(resources.redis, resources.sessionmaker(), event.id)
    assert snap is not None
    await availability.store(
        resources.redis, snap.model_copy(update={"available": 11, "held": 1, "version": None})
    )
    third = await client.get(url, headers={"If-None-Match": changed.headers["etag"]})
    assert third.status_code == 200
    assert third.json()["held"] == 1


async def test_a_304_from_the_cache_needs_no_postgres(
    client: httpx.AsyncClient, resources: Resources, app_factory: AppFactory
) -> None:
    event = await make_event(resources, capacity=5)
    url = f"{EVENTS}/{event.id}/availability"
    tag = (await client.get(url)).headers["etag"]  # the snapshot is in Redis now
    dead = make_engine(
        f"postgresql+asyncpg://nobody:x@127.0.0.1:{free_port()}/none", resources.settings
    )
    try:
        no_db = dataclasses.replace(resources, engine=dead, sessionmaker=make_sessionmaker(dead))
        transport = httpx.ASGITransport(app=app_factory(no_db), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as without_pg:
            r = await without_pg.get(url, headers={"If-None-Match": tag})
            assert r.status_code == 304
            # the proof that Postgres really is out of reach: a cache miss cannot be answered
            await availability.invalidate(resources.redis, event.id)
            miss = await without_pg.get(url, headers={"If-None-Match": tag})
            assert miss.status_code == 503, miss.text
            # rendered by the last-resort handler, outside the middleware: same headers
            assert miss.headers["x-content-type-options"] == "nosniff"
            assert miss.headers["content-security-policy"].startswith("default-src 'none'")
    finally:
        await dead.dispose()


async def test_an_event_answers_304_until_it_changes(
    client: httpx.AsyncClient, resources: Resources, admin: Account
) -> None:
    event = await make_event(resources, capacity=10)
    url = f"{EVENTS}/{event.id}"
    first = await client.get(url)
    assert first.status_code == 200
    tag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache"
    assert (await client.get(url, headers={"If-None-Match": tag})).status_code == 304

    r = await client.patch(
        f"/api/v1/admin/events/{event.id}", json={"name": "Renamed"}, headers=admin.headers
    )
    assert r.status_code == 200, r.text
    changed = await client.get(url, headers={"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.json()["name"] == "Renamed"
    assert changed.headers["etag"] != tag
    # an unknown event is still a 404, whatever the client sends
    missing = await client.get(f"{EVENTS}/{uuid.uuid4()}", headers={"If-None-Match": "*"})
    assert missing.status_code == 404


async def test_the_openapi_document_describes_the_conditional_gets(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path in (f"{EVENTS}/{{event_id}}", f"{EVENTS}/{{event_id}}/availability"):
        op = spec["paths"][path]["get"]
        assert any(p["name"] == "If-None-Match" and p["in"] == "header" for p in op["parameters"])
        for status in ("200", "304"):
            headers = op["responses"][status]["headers"]
            assert headers["ETag"]["required"] is True
            assert headers["Cache-Control"]["required"] is True
