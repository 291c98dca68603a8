"""GET /search and /search/suggestions on the real app, with the index written by the real
``index_event`` activity (directly, or through the sync workflow on the running workers)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from temporalio.client import Client

from evently.infra.resources import Resources
from tests.support.factories import make_event, make_venue
from tests.support.histories import record
from tests.support.search import SEARCH, found, index_event, token
from workflows.search_sync.client import request_index_write
from workflows.search_sync.contract import search_sync_workflow_id

SUGGEST = "/api/v1/search/suggestions"


async def set_event(res: Resources, event_id: uuid.UUID, sql: str) -> None:
    async with res.engine.begin() as conn:
        await conn.execute(text(f"UPDATE events SET {sql} WHERE id = :id"), {"id": event_id})


async def test_only_published_events_are_searchable(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    tok = token()
    venue = await make_venue(resources, city=f"Bergen {tok}")
    event = await make_event(resources, venue=venue, name=f"{tok} Gala", status="draft")

    assert await index_event(resources, event.id) == "deleted"
    assert await found(client, q=tok) == []

    await set_event(resources, event.id, "status = 'published', published_at = now()")
    assert await index_event(resources, event.id) == "upserted"
    assert await index_event(resources, event.id) == "upserted"  # a retry changes nothing
    r = await client.get(SEARCH, params={"q": tok})
    body = r.json()
    assert body["total"] == 1
    assert body["page"] == 1
    assert body["limit"] == 20
    [item] = body["items"]
    assert item["id"] == str(event.id)
    assert item["name"] == f"{tok} Gala"
    assert item["price"] == "25.00"
    assert item["currency"] == "EUR"
    assert item["has_seats"] is True
    assert item["venue"] == {"id": str(venue.id), "name": venue.name, "city": venue.city}

    for status in ("cancelled", "completed"):
        await set_event(resources, event.id, f"status = '{status}'")
        assert await index_event(resources, event.id) == "deleted"
        assert await found(client, q=tok) == []
        assert await found(client, city=venue.city) == []

    assert await index_event(resources, uuid.uuid4()) == "deleted"  # no such event


async def test_filters_sort_and_pagination_through_the_api(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    tok = token()
    city = f"Ålesund {tok}"
    venue = await make_venue(resources, city=city)

    async def make(days: int, price: str, kind: str, name: str = "Night") -> str:
        ev = await make_event(
            resources,
            venue=venue,
            name=f"{tok} {name}",
            price=Decimal(price),
            event_type=kind,
            starts_in=timedelta(days=days),
        )
        await index_event(resources, ev.id)
        return str(ev.id)

    soon = await make(2, "40.00", "concert")
    later = await make(20, "15.00", "comedy")
    latest = await make(40, "99.00", "concert", name="Jazz Night")
    sold_out = await make(30, "10.00", "concert")
    async with resources.engine.begin() as conn:
        await conn.execute(
            text("UPDATE events SET available = 0, sold = capacity WHERE id = :id"),
            {"id": uuid.UUID(sold_out)},
        )
    await index_event(resources, uuid.UUID(sold_out))

    assert await found(client, city=city.lower().replace("å", "a"), sort="date") == [
        soon,
        later,
        sold_out,
        latest,
    ]
    assert await found(client, city=city, type="COMEDY") == [later]
    day = (datetime.now(UTC) + timedelta(days=20)).date().isoformat()
    assert await found(client, city=city, date_from=day, date_to=day) == [later]
    assert await found(client, city=city, date_to=day) == [soon, later]
    assert await found(client, city=city, price_max="15") == [later, sold_out]
    assert await found(client, city=city, available_only="true", sort="price") == [
        later,
        soon,
        latest,
    ]
    assert (await found(client, q=f"jazz {tok}"))[0] == latest  # both words first
    page2 = (await client.get(SEARCH, params={"city": city, "limit": 3, "page": 2})).json()
    assert page2["items"][0]["id"] == latest
    assert (page2["total"], page2["page"], page2["limit"]) == (4, 2, 3)


async def test_events_that_have_ended_are_not_offered(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    tok = token()
    past = await make_event(resources, name=f"{tok} Past", starts_in=timedelta(days=-3))
    await index_event(resources, past.id)
    assert await found(client, q=tok) == []


async def test_suggestions_forgive_a_typo(client: httpx.AsyncClient, resources: Resources) -> None:
    tok = token()
    venue = await make_venue(resources, city=f"Trondheim{tok}")
    event = await make_event(resources, venue=venue, name=f"Festival {tok}")
    await index_event(resources, event.id)

    typo = tok[:5] + tok[6:]  # one letter dropped
    r = await client.get(SUGGEST, params={"q": typo})
    assert r.status_code == 200
    items = r.json()["items"]
    assert {"text": f"Festival {tok}", "kind": "event"} in items
    r = await client.get(SUGGEST, params={"q": f"trondheim{tok[:4]}"})
    assert {"text": venue.city, "kind": "city"} in r.json()["items"]


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "popularity"},
        {"limit": "0"},
        {"limit": "101"},
        {"page": "0"},
        {"page": "-1"},
        {"page": "501", "limit": "20"},  # beyond the 10,000-hit window
        {"page": "99999999999999999999999"},
        {"date_from": "yesterday"},
        {"date_from": "2026-13-01"},
        {"date_from": "0001-01-01T00:00:00+14:00"},
        {"date_from": "2026-12-02", "date_to": "2026-12-01"},
        {"price_max": "-1"},
        {"price_max": "abc"},
        {"price_max": "NaN"},
        {"price_max": "Infinity"},
        {"price_max": "1.001"},
        {"available_only": "maybe"},
        {"q": "x" * 201},
        {"q": "jazz\x00"},
        {"city": "Ber\x00gen"},
        {"city": ""},
        {"type": "c" * 51},
    ],
)
async def test_bad_search_parameters_are_problem_json(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    r = await client.get(SEARCH, params=params)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "validation_error"


@pytest.mark.parametrize(
    "params", [{}, {"q": ""}, {"q": "x" * 101}, {"q": "a\x00"}, {"q": "ab", "limit": "21"}]
)
async def test_bad_suggestion_parameters_are_problem_json(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    r = await client.get(SUGGEST, params=params)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "validation_error"


@pytest.mark.parametrize("q", ["&|!", "'; DROP TABLE events; --", "   ", "a:*", "()"])
async def test_hostile_text_is_just_text(client: httpx.AsyncClient, q: str) -> None:
    r = await client.get(SEARCH, params={"q": q})
    assert r.status_code == 200, r.text
    r = await client.get(SUGGEST, params={"q": q})
    assert r.status_code in (200, 422), r.text  # blank after trimming: 422


async def test_readiness_checks_the_search_index(client: httpx.AsyncClient) -> None:
    r = await client.get("/health/ready")
    assert r.json()["checks"]["search"] == "ok"


async def _poll(client: httpx.AsyncClient, params: dict[str, Any], want: bool, eid: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if (eid in await found(client, **params)) == want:
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"index did not {'show' if want else 'drop'} {eid} for {params} within 30 s")


async def test_availability_flip_reaches_the_index_through_the_worker(
    client: httpx.AsyncClient,
    resources: Resources,
    temporal_client: Client,
    running_workers: None,
) -> None:
    tok = token()
    event = await make_event(resources, name=f"{tok} Flash Sale", capacity=5)
    eid = str(event.id)
    await request_index_write(temporal_client, event.id)
    await _poll(client, {"q": tok, "available_only": "true"}, True, eid)

    await set_event(resources, event.id, "available = 0, sold = 5")
    await request_index_write(temporal_client, event.id)
    await _poll(client, {"q": tok, "available_only": "true"}, False, eid)
    [item] = (await client.get(SEARCH, params={"q": tok})).json()["items"]
    assert item["has_seats"] is False  # still listed, marked sold out

    await set_event(resources, event.id, "available = 2, sold = 3")  # refunds free seats
    await request_index_write(temporal_client, event.id)
    await _poll(client, {"q": tok, "available_only": "true"}, True, eid)
    handle = temporal_client.get_workflow_handle(search_sync_workflow_id(event.id))
    await handle.result()
    await record(temporal_client, search_sync_workflow_id(event.id), "search-sync")
