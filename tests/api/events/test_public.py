"""Public browsing: published events only, filters, stable paging, drafts invisible."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx

from tests.support.events import ADMIN, EVENTS, create_event, create_venue, future, unique
from tests.support.factories import Account
from tests.support.problems import assert_problem


async def _list(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    r = await client.get(EVENTS, params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_listing_shows_published_events_only_soonest_first(
    client: httpx.AsyncClient, admin: Account
) -> None:
    city = unique("Tromso")
    venue = await create_venue(client, admin, city=city)
    base = future(days=10)
    later = await create_event(
        client,
        admin,
        venue,
        publish=True,
        starts_at=(base + timedelta(days=2)).isoformat(),
        ends_at=(base + timedelta(days=2, hours=2)).isoformat(),
    )
    sooner = await create_event(
        client,
        admin,
        venue,
        publish=True,
        starts_at=base.isoformat(),
        ends_at=(base + timedelta(hours=2)).isoformat(),
    )
    await create_event(client, admin, venue)  # draft
    cancelled = await create_event(client, admin, venue, publish=True)
    completed = await create_event(client, admin, venue, publish=True)
    r = await client.patch(
        f"{ADMIN}/events/{completed['id']}", json={"status": "completed"}, headers=admin.headers
    )
    assert r.status_code == 200
    r = await client.delete(f"{ADMIN}/events/{cancelled['id']}", headers=admin.headers)
    assert r.status_code == 202, r.text
    page = await _list(client, city=city)
    assert [e["id"] for e in page["items"]] == [sooner["id"], later["id"]]
    assert page["total"] == 2
    assert all(e["status"] == "published" for e in page["items"])
    assert page["items"][0]["venue"]["city"] == city
    # cancelled and completed events stay readable by id (buyers holding tickets look them up)
    r = await client.get(f"{EVENTS}/{cancelled['id']}")
    assert r.json()["status"] == "cancelled"


async def test_city_and_type_filters_are_case_insensitive(
    client: httpx.AsyncClient, admin: Account
) -> None:
    city = unique("Bergen")
    venue = await create_venue(client, admin, city=city)
    gig = await create_event(client, admin, venue, publish=True, event_type="Concert")
    play = await create_event(client, admin, venue, publish=True, event_type="theatre")
    assert (await _list(client, city=city.upper()))["total"] == 2
    page = await _list(client, city=city.upper(), type="CONCERT")
    assert [e["id"] for e in page["items"]] == [gig["id"]]
    page = await _list(client, city=city, type="theatre")
    assert [e["id"] for e in page["items"]] == [play["id"]]
    page = await _list(client, city=city, type="opera")
    assert page == {"items": [], "total": 0, "page": 1, "limit": 20}


async def test_date_filters_by_day_and_by_instant(
    client: httpx.AsyncClient, admin: Account
) -> None:
    city = unique("Oslo")
    venue = await create_venue(client, admin, city=city)
    day = future(days=60).replace(hour=12, minute=0, second=0)
    events = []
    for offset in (0, 1, 2):  # noon on three consecutive days
        start = day + timedelta(days=offset)
        events.append(
            await create_event(
                client,
                admin,
                venue,
                publish=True,
                starts_at=start.isoformat(),
                ends_at=(start + timedelta(hours=1)).isoformat(),
            )
        )
    ids = [e["id"] for e in events]

    async def listed(**params: Any) -> list[str]:
        return [e["id"] for e in (await _list(client, city=city, **params))["items"]]

    d0, d1, d2 = (str((day + timedelta(days=i)).date()) for i in range(3))
    assert await listed(date_from=d1) == ids[1:]
    assert await listed(date_to=d1) == ids[:2]  # a date covers its whole day
    assert await listed(date_from=d1, date_to=d1) == [ids[1]]
    assert await listed(date_from=d0, date_to=d2) == ids
    noon1 = (day + timedelta(days=1)).isoformat()
    assert await listed(date_from=noon1) == ids[1:]  # inclusive instant
    assert await listed(date_to=noon1) == ids[:2]
    assert await listed(date_from=(day + timedelta(days=1, seconds=1)).isoformat()) == [ids[2]]
    assert_problem(
        await client.get(EVENTS, params={"date_from": d2, "date_to": d0}), 422, "invalid_date_range"
    )
    for bad in ({"date_from": "yesterday"}, {"date_to": "2026-13-01"}, {"date_from": "0001-01-01"}):
        assert_problem(await client.get(EVENTS, params=bad), 422, "validation_error")


async def test_pages_are_stable_and_capped(client: httpx.AsyncClient, admin: Account) -> None:
    city = unique("Stavanger")
    venue = await create_venue(client, admin, city=city)
    start = future(days=20)
    same = {"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat()}
    made = [await create_event(client, admin, venue, publish=True, **same) for _ in range(5)]
    expected = sorted(e["id"] for e in made)  # same start: ordered by id

    seen = []
    for page in (1, 2, 3):
        body = await _list(client, city=city, page=page, limit=2)
        assert (body["total"], body["page"], body["limit"]) == (5, page, 2)
        seen += [e["id"] for e in body["items"]]
    assert seen == expected
    assert (await _list(client, city=city, page=4, limit=2))["items"] == []

    for bad in ({"limit": 101}, {"limit": 0}, {"page": 0}, {"page": "x"}, {"limit": -1}):
        assert_problem(await client.get(EVENTS, params=bad), 422, "validation_error")
    body = await _list(client, city=city, limit=100)
    assert len(body["items"]) == 5


async def test_one_event_with_its_venue_and_drafts_are_404(
    client: httpx.AsyncClient, admin: Account
) -> None:
    venue = await create_venue(client, admin)
    published = await create_event(client, admin, venue, publish=True)
    r = await client.get(f"{EVENTS}/{published['id']}")
    assert r.status_code == 200
    body = r.json()
    assert body["venue"] == {k: venue[k] for k in body["venue"]}
    assert body["price"] == "25.00"

    draft = await create_event(client, admin, venue)
    assert_problem(await client.get(f"{EVENTS}/{draft['id']}"), 404, "event_not_found")
    assert_problem(await client.get(f"{EVENTS}/{draft['id']}/availability"), 404, "event_not_found")
    assert_problem(await client.get(f"{EVENTS}/{uuid.uuid4()}"), 404, "event_not_found")
    assert_problem(
        await client.get(f"{EVENTS}/{uuid.uuid4()}/availability"), 404, "event_not_found"
    )
    assert_problem(await client.get(f"{EVENTS}/not-an-id"), 422, "validation_error")
    # drafts never appear in the listing either
    listed = await _list(client, city=venue["city"])
    assert [e["id"] for e in listed["items"]] == [published["id"]]


async def test_hostile_query_strings_are_4xx_never_500(client: httpx.AsyncClient) -> None:
    for query in (
        "city=%00",
        "type=a%00b",
        "city=%ff%fe",
        "city=%ED%A0%80",
        "date_from=2026-01-01T00:00:00%2B99:00",
        "date_from=9999-12-31T23:59:59-14:00",
        "page=99999999999999999999",
        "limit=1e3",
        "city=" + "x" * 500,
    ):
        r = await client.get(f"{EVENTS}?{query}")
        assert r.status_code < 500, (query, r.text)
        if r.status_code >= 400:
            assert r.headers["content-type"].startswith("application/problem+json")
