"""The organizer API: validation, status transitions, capacity rules, roles. Every refused
request is problem+json and changes nothing (the row is re-read after it)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from evently.infra.resources import Resources
from tests.support.events import (
    ADMIN,
    EVENTS,
    ORGS,
    assert_deprecated_alias,
    count_events_described,
    count_events_named,
    create_event,
    create_venue,
    event_body,
    event_row,
    future,
    take_seats,
    unique,
)
from tests.support.factories import Account, make_account
from tests.support.organizations import make_org
from tests.support.problems import assert_problem


async def _post_json(
    client: httpx.AsyncClient, url: str, body: Any, account: Account
) -> httpx.Response:
    """ASCII-escaped JSON, so hostile strings (lone surrogates) reach the server intact."""
    return await client.post(
        url,
        content=json.dumps(body),
        headers={**account.headers, "content-type": "application/json"},
    )


# ---------------------------------------------------------------------------------------------
# venues


async def test_admin_creates_a_venue(client: httpx.AsyncClient, admin: Account) -> None:
    r = await client.post(
        f"{ADMIN}/venues",
        json={
            "name": "  Grieghallen ",
            "address": "Edvard Griegs plass 1",
            "city": "Bergen",
            "capacity": 1500,
        },
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == "Grieghallen"  # trimmed
    assert body["capacity"] == 1500
    uuid.UUID(body["id"])


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"capacity": 0}, "capacity"),
        ({"capacity": -5}, "capacity"),
        ({"capacity": "100"}, "capacity"),  # strict: a number, not a string
        ({"capacity": 10.5}, "capacity"),
        ({"capacity": True}, "capacity"),
        ({"capacity": 10**12}, "capacity"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "bad\u0000name"}, "name"),
        ({"city": None}, "city"),
        ({"city": "\udfff"}, "city"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_invalid_venue_is_422_and_creates_nothing(
    client: httpx.AsyncClient,
    admin: Account,
    resources: Resources,
    change: dict[str, Any],
    where: str,
) -> None:
    name = unique("Venue")
    body = {"name": name, "address": "a", "city": "Oslo", "capacity": 100} | change
    r = await _post_json(client, f"{ADMIN}/venues", body, admin)
    problem = assert_problem(r, 422, "validation_error")
    assert where in problem["detail"]
    async with resources.engine.connect() as conn:
        from sqlalchemy import text

        n = await conn.scalar(text("SELECT count(*) FROM venues WHERE name = :n"), {"n": name})
    assert n == 0


# ---------------------------------------------------------------------------------------------
# events: create


async def test_event_starts_as_draft_with_all_seats_free(
    client: httpx.AsyncClient, admin: Account
) -> None:
    venue = await create_venue(client, admin, capacity=300)
    r = await client.post(
        f"{ADMIN}/events",
        json=event_body(venue["id"], capacity=250, price=19.9, event_type="  Concert "),
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    e = r.json()
    assert e["status"] == "draft"
    assert (e["capacity"], e["available"], e["held"], e["sold"]) == (250, 250, 0, 0)
    assert e["price"] == "19.90"  # money out as a decimal string
    assert e["currency"] == "EUR"
    assert e["event_type"] == "concert"
    assert e["venue"]["id"] == venue["id"]
    assert e["published_at"] is None


async def test_price_may_be_a_string_or_a_number(client: httpx.AsyncClient, admin: Account) -> None:
    venue = await create_venue(client, admin)
    for given, shown in (("0", "0.00"), (12, "12.00"), ("1e2", "100.00"), ("99999.99", "99999.99")):
        e = await create_event(client, admin, venue, price=given)
        assert e["price"] == shown


def _shift(hours: float) -> str:
    return (future() + timedelta(hours=hours)).isoformat()


INVALID_EVENTS: list[tuple[dict[str, Any], str]] = [
    ({"capacity": 0}, "validation_error"),
    ({"capacity": -1}, "validation_error"),
    ({"capacity": "10"}, "validation_error"),
    ({"capacity": 501}, "capacity_exceeds_venue"),  # the venue holds 500
    ({"price": "-0.01"}, "validation_error"),
    ({"price": -1}, "validation_error"),
    ({"price": "1.234"}, "validation_error"),
    ({"price": "abc"}, "validation_error"),
    ({"price": "NaN"}, "validation_error"),
    ({"price": "Infinity"}, "validation_error"),
    ({"price": "1e400"}, "validation_error"),
    ({"price": True}, "validation_error"),
    ({"price": None}, "validation_error"),
    ({"currency": "eur"}, "validation_error"),
    ({"currency": "EURO"}, "validation_error"),
    ({"currency": "XYZ"}, "invalid_currency"),
    ({"currency": "ABC"}, "invalid_currency"),
    ({"currency": 978}, "validation_error"),
    ({"ends_at": _shift(0)}, "invalid_schedule"),  # equal to starts_at
    ({"ends_at": _shift(-1)}, "invalid_schedule"),
    ({"starts_at": "2026-12-01T20:00:00"}, "validation_error"),  # no time zone
    ({"starts_at": "not a date"}, "validation_error"),
    ({"starts_at": "0001-01-01T00:00:00+14:00"}, "validation_error"),
    ({"venue_id": str(uuid.uuid4())}, "venue_not_found"),
    ({"venue_id": "not-a-uuid"}, "validation_error"),
    ({"name": ""}, "validation_error"),
    ({"name": "a\u0000b"}, "validation_error"),
    ({"name": "\ud800"}, "validation_error"),  # a lone surrogate
    ({"description": "x\u0000"}, "validation_error"),
    ({"description": "x" * 10_001}, "validation_error"),
    ({"event_type": ""}, "validation_error"),
    ({"event_type": "<script>"}, "validation_error"),
    ({"status": "published"}, "validation_error"),  # starts as draft, always
    ({"available": 5}, "validation_error"),  # inventory is not the API's to set
]


@pytest.mark.parametrize(("change", "code"), INVALID_EVENTS)
async def test_invalid_event_is_422_with_a_clear_code_and_creates_nothing(
    client: httpx.AsyncClient,
    admin: Account,
    resources: Resources,
    change: dict[str, Any],
    code: str,
) -> None:
    venue = await create_venue(client, admin, capacity=500)
    marker = unique("marker")
    body = event_body(venue["id"], description=marker)
    body["ends_at"] = _shift(3)
    body["starts_at"] = future().isoformat()
    body.update(change)
    r = await _post_json(client, f"{ADMIN}/events", body, admin)
    assert_problem(r, 422, code)
    assert await count_events_described(resources, marker) == 0


async def test_missing_fields_and_non_objects_are_422(
    client: httpx.AsyncClient, admin: Account
) -> None:
    venue = await create_venue(client, admin)
    body = event_body(venue["id"])
    for field in ("name", "venue_id", "starts_at", "ends_at", "capacity", "price", "currency"):
        partial = {k: v for k, v in body.items() if k != field}
        problem = assert_problem(
            await client.post(f"{ADMIN}/events", json=partial, headers=admin.headers), 422
        )
        assert field in problem["detail"]
    for junk in ([], "x", 1, None):
        assert_problem(await client.post(f"{ADMIN}/events", json=junk, headers=admin.headers), 422)


async def test_malformed_json_is_400(client: httpx.AsyncClient, admin: Account) -> None:
    for path in ("/venues", "/events"):
        r = await client.post(
            f"{ADMIN}{path}",
            content=b'{"name": "x",',
            headers={**admin.headers, "content-type": "application/json"},
        )
        assert_problem(r, 400, "malformed_json")


# ---------------------------------------------------------------------------------------------
# roles


async def test_buyers_and_strangers_cannot_use_admin_routes(
    client: httpx.AsyncClient, admin: Account, buyer: Account, resources: Resources
) -> None:
    event = await create_event(client, admin)
    eid = event["id"]
    before = await event_row(resources, eid)
    venue_body = {"name": unique("V"), "address": "a", "city": "c", "capacity": 10}
    calls = [
        ("POST", f"{ADMIN}/venues", venue_body),
        ("POST", f"{ADMIN}/events", event_body(event["venue_id"])),
        ("PATCH", f"{ADMIN}/events/{eid}", {"name": "hijacked"}),
        ("POST", f"{ADMIN}/events/{eid}/publish", None),
        ("DELETE", f"{ADMIN}/events/{eid}", None),
    ]
    for method, url, body in calls:
        r = await client.request(method, url, json=body, headers=buyer.headers)
        assert_problem(r, 403, "forbidden")
        r = await client.request(method, url, json=body)
        assert_problem(r, 401, "unauthorized")
        # a buyer's malformed body is still 403: roles are checked first
        r = await client.request(method, url, json={"junk": True}, headers=buyer.headers)
        assert_problem(r, 403, "forbidden")
    assert await event_row(resources, eid) == before
    assert await count_events_named(resources, "hijacked") == 0


# ---------------------------------------------------------------------------------------------
# status transitions


async def test_publish_then_complete_and_nothing_else(
    client: httpx.AsyncClient, admin: Account, resources: Resources
) -> None:
    event = await create_event(client, admin)
    eid = event["id"]
    url = f"{ADMIN}/events/{eid}"

    # a draft can only be published
    for bad in ("completed", "cancelled"):
        assert_problem(
            await client.patch(url, json={"status": bad}, headers=admin.headers),
            409,
            "invalid_transition",
        )
    assert_problem(await client.delete(url, headers=admin.headers), 409, "invalid_transition")
    assert (await event_row(resources, eid))["status"] == "draft"  # type: ignore[index]

    r = await client.post(f"{url}/publish", headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "published"
    assert r.json()["published_at"] is not None

    before = await event_row(resources, eid)
    assert_problem(
        await client.post(f"{url}/publish", headers=admin.headers), 409, "invalid_transition"
    )
    assert_problem(
        await client.patch(url, json={"status": "draft"}, headers=admin.headers),
        409,
        "invalid_transition",
    )
    assert await event_row(resources, eid) == before

    r = await client.patch(url, json={"status": "completed"}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed"

    before = await event_row(resources, eid)
    for body in ({"status": "published"}, {"status": "cancelled"}, {"status": "draft"}):
        assert_problem(
            await client.patch(url, json=body, headers=admin.headers), 409, "invalid_transition"
        )
    assert_problem(
        await client.post(f"{url}/publish", headers=admin.headers), 409, "invalid_transition"
    )
    assert_problem(await client.delete(url, headers=admin.headers), 409, "invalid_transition")
    assert_problem(
        await client.patch(url, json={"name": "renamed"}, headers=admin.headers),
        409,
        "event_not_editable",
    )
    assert await event_row(resources, eid) == before


async def test_a_refused_transition_applies_no_other_field(
    client: httpx.AsyncClient, admin: Account, resources: Resources
) -> None:
    event = await create_event(client, admin)
    r = await client.patch(
        f"{ADMIN}/events/{event['id']}",
        json={"name": "should not stick", "status": "completed"},
        headers=admin.headers,
    )
    assert_problem(r, 409, "invalid_transition")
    assert (await event_row(resources, event["id"]))["name"] == event["name"]  # type: ignore[index]


async def test_patch_can_publish_and_change_fields_together(
    client: httpx.AsyncClient, admin: Account
) -> None:
    event = await create_event(client, admin)
    r = await client.patch(
        f"{ADMIN}/events/{event['id']}",
        json={"status": "published", "price": 30, "description": "now on sale"},
        headers=admin.headers,
    )
    assert r.status_code == 200, r.text
    e = r.json()
    assert (e["status"], e["price"], e["description"]) == ("published", "30.00", "now on sale")


# ---------------------------------------------------------------------------------------------
# changes and capacity


async def test_patch_changes_fields_and_validates_them(
    client: httpx.AsyncClient, admin: Account, resources: Resources
) -> None:
    event = await create_event(client, admin, publish=True)
    url = f"{ADMIN}/events/{event['id']}"
    new_start = future(days=40)
    r = await client.patch(
        url,
        json={
            "name": "Renamed",
            "starts_at": new_start.isoformat(),
            "ends_at": (new_start + timedelta(hours=2)).isoformat(),
            "price": "40.5",
            "currency": "NOK",
            "event_type": "Theatre",
        },
        headers=admin.headers,
    )
    assert r.status_code == 200, r.text
    e = r.json()
    assert (e["name"], e["price"], e["currency"], e["event_type"]) == (
        "Renamed",
        "40.50",
        "NOK",
        "theatre",
    )
    assert e["status"] == "published"

    before = await event_row(resources, event["id"])
    refused: list[tuple[dict[str, Any], int, str]] = [
        ({}, 422, "validation_error"),
        ({"name": None}, 422, "validation_error"),
        ({"capacity": None}, 422, "validation_error"),
        ({"capacity": 0}, 422, "validation_error"),
        ({"price": "-1"}, 422, "validation_error"),
        ({"currency": "ZZZ"}, 422, "invalid_currency"),
        ({"ends_at": (new_start - timedelta(hours=1)).isoformat()}, 422, "invalid_schedule"),
        ({"starts_at": (new_start + timedelta(hours=5)).isoformat()}, 422, "invalid_schedule"),
        ({"venue_id": str(uuid.uuid4())}, 422, "venue_not_found"),
        ({"status": "sold-out"}, 422, "validation_error"),
        ({"held": 3}, 422, "validation_error"),
    ]
    for body, status, code in refused:
        assert_problem(await client.patch(url, json=body, headers=admin.headers), status, code)
    assert await event_row(resources, event["id"]) == before


async def test_unknown_event_ids_are_404_and_malformed_ids_422(
    client: httpx.AsyncClient, admin: Account
) -> None:
    missing = uuid.uuid4()
    url = f"{ADMIN}/events/{missing}"
    assert_problem(
        await client.patch(url, json={"name": "x"}, headers=admin.headers), 404, "event_not_found"
    )
    assert_problem(
        await client.post(f"{url}/publish", headers=admin.headers), 404, "event_not_found"
    )
    assert_problem(await client.delete(url, headers=admin.headers), 404, "event_not_found")
    for path in (f"{ADMIN}/events/nope/publish", f"{ADMIN}/events/12"):
        r = (
            await client.post(path, headers=admin.headers)
            if path.endswith("publish")
            else (await client.delete(path, headers=admin.headers))
        )
        assert_problem(r, 422, "validation_error")


async def test_capacity_grows_after_publishing_and_shrinks_only_to_held_plus_sold(
    client: httpx.AsyncClient, admin: Account, resources: Resources
) -> None:
    venue = await create_venue(client, admin, capacity=200)
    event = await create_event(client, admin, venue, capacity=100, publish=True)
    eid = event["id"]
    url = f"{ADMIN}/events/{eid}"
    await take_seats(resources, eid, held=7, sold=5)

    r = await client.patch(url, json={"capacity": 150}, headers=admin.headers)
    assert r.status_code == 200, r.text
    e = r.json()
    assert (e["capacity"], e["available"], e["held"], e["sold"]) == (150, 138, 7, 5)

    before = await event_row(resources, eid)
    problem = assert_problem(
        await client.patch(url, json={"capacity": 11}, headers=admin.headers),
        409,
        "capacity_below_committed",
    )
    assert "12" in problem["detail"]
    assert_problem(
        await client.patch(url, json={"capacity": 201}, headers=admin.headers),
        422,
        "capacity_exceeds_venue",
    )
    assert await event_row(resources, eid) == before

    r = await client.patch(url, json={"capacity": 12}, headers=admin.headers)
    assert r.status_code == 200, r.text
    e = r.json()
    assert (e["capacity"], e["available"], e["held"], e["sold"]) == (12, 0, 7, 5)
    row = await event_row(resources, eid)
    assert row is not None
    assert row["available"] + row["held"] + row["sold"] == row["capacity"]


async def test_capacity_must_fit_a_new_venue(client: httpx.AsyncClient, admin: Account) -> None:
    big = await create_venue(client, admin, capacity=1000)
    small = await create_venue(client, admin, capacity=50)
    event = await create_event(client, admin, big, capacity=100)
    url = f"{ADMIN}/events/{event['id']}"
    assert_problem(
        await client.patch(url, json={"venue_id": small["id"]}, headers=admin.headers),
        422,
        "capacity_exceeds_venue",
    )
    r = await client.patch(
        url, json={"venue_id": small["id"], "capacity": 50}, headers=admin.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["venue"]["id"] == small["id"]


async def test_admin_changes_are_public_at_once(client: httpx.AsyncClient, admin: Account) -> None:
    event = await create_event(client, admin, publish=True, capacity=40)
    eid = event["id"]
    assert (await client.get(f"{EVENTS}/{eid}/availability")).json()["capacity"] == 40
    r = await client.patch(
        f"{ADMIN}/events/{eid}", json={"capacity": 60, "price": "1"}, headers=admin.headers
    )
    assert r.status_code == 200
    a = (await client.get(f"{EVENTS}/{eid}/availability")).json()
    assert (a["capacity"], a["available"]) == (60, 60)
    assert (await client.get(f"{EVENTS}/{eid}")).json()["price"] == "1.00"
    assert Decimal((await client.get(f"{EVENTS}/{eid}")).json()["price"]) == Decimal(1)


async def test_every_change_requests_the_search_index_write(
    client: httpx.AsyncClient, admin: Account, temporal_client: Client
) -> None:
    """Each create/change/publish signals-with-start the event's search-sync workflow."""
    from temporalio.api.enums.v1 import EventType

    from workflows.search_sync.contract import search_sync_workflow_id

    async def signals(event_id: str) -> int:
        """`changed` signals over every run of the event's sync workflow."""
        wid = search_sync_workflow_id(event_id)
        total = 0
        async for run in temporal_client.list_workflows(f"WorkflowId = '{wid}'"):
            history = await temporal_client.get_workflow_handle(
                wid, run_id=run.run_id
            ).fetch_history()
            total += sum(
                1
                for e in history.events
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
            )
        return total

    async def wait_for_signals(event_id: str, n: int) -> int:
        got = 0
        for _ in range(50):  # visibility is eventually consistent
            got = await signals(event_id)
            if got >= n:
                break
            await asyncio.sleep(0.1)
        return got

    event = await create_event(client, admin)
    assert await wait_for_signals(event["id"], 1) == 1
    r = await client.post(f"{ADMIN}/events/{event['id']}/publish", headers=admin.headers)
    assert r.status_code == 200
    r = await client.patch(
        f"{ADMIN}/events/{event['id']}", json={"name": "New name"}, headers=admin.headers
    )
    assert r.status_code == 200
    assert await wait_for_signals(event["id"], 3) == 3
    # a refused change requests nothing
    r = await client.patch(
        f"{ADMIN}/events/{event['id']}", json={"capacity": 10**6}, headers=admin.headers
    )
    assert r.status_code == 422
    await asyncio.sleep(0.3)
    assert await signals(event["id"]) == 3


# ---------------------------------------------------------------------------------------------
# /admin: deprecated aliases of the organization routes


async def test_every_admin_alias_answers_deprecation_and_its_successor(
    client: httpx.AsyncClient, admin: Account, resources: Resources
) -> None:
    """Each /admin route answers ``Deprecation: true`` and ``Link: <its organization route>;
    rel="successor-version"`` with the event's organization; the successor answers the same
    body, without them."""
    org = await make_org(client, resources, admin, roles=("owner",))
    r = await client.post(
        f"{ADMIN}/venues",
        json={
            "name": unique("Hall"),
            "address": "a",
            "city": "Oslo",
            "capacity": 500,
            "organization_id": org.id,
        },
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    assert_deprecated_alias(r, f"{ORGS}/{org.id}/venues")  # the organization it was made in
    event = await create_event(client, admin, r.json(), publish=True)
    assert event["organization_id"] == org.id
    alias, successor = f"{ADMIN}/events/{event['id']}", org.url(f"/events/{event['id']}")

    reads = ["/analytics", "/checkins", "/ticket-types", "/promo-codes"]
    for path in reads:
        r = await client.get(alias + path, headers=admin.headers)
        assert r.status_code == 200, (path, r.text)
        assert_deprecated_alias(r, successor + path)
        same = await client.get(successor + path, headers=admin.headers)
        assert same.status_code == 200, (path, same.text)
        assert "deprecation" not in same.headers
        if path != "/analytics":  # analytics carry the time they were computed
            assert same.json() == r.json(), path

    r = await client.patch(alias, json={"description": "Changed"}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert_deprecated_alias(r, successor)
    r = await client.post(
        f"{alias}/ticket-types", json={"name": "VIP", "price": "50.00"}, headers=admin.headers
    )
    assert r.status_code == 201, r.text
    assert_deprecated_alias(r, f"{successor}/ticket-types")
    type_id = r.json()["id"]
    r = await client.patch(
        f"{alias}/ticket-types/{type_id}", json={"description": "x"}, headers=admin.headers
    )
    assert r.status_code == 200, r.text
    assert_deprecated_alias(r, f"{successor}/ticket-types/{type_id}")
    r = await client.post(
        f"{alias}/promo-codes",
        json={"code": f"C{uuid.uuid4().hex[:10]}", "percent_off": "10", "max_uses": 5},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    assert_deprecated_alias(r, f"{successor}/promo-codes")
    r = await client.delete(alias, headers=admin.headers)
    assert r.status_code == 202, r.text
    assert_deprecated_alias(r, successor)
    # a refusal once the event is known names the successor too
    r = await client.post(f"{alias}/publish", headers=admin.headers)
    assert_problem(r, 409, "invalid_transition")
    assert_deprecated_alias(r, f"{successor}/publish")


async def test_admin_alias_refusals_are_deprecated_too(
    client: httpx.AsyncClient, admin: Account, resources: Resources
) -> None:
    """Refusals keep their status and problem code; they answer ``Deprecation`` (no ``Link``
    while the organization is unknown)."""
    buyer = await make_account(resources, "buyer")
    missing = f"{ADMIN}/events/{uuid.uuid4()}"
    for path in ("/analytics", "/checkins", "/ticket-types", "/promo-codes"):
        r = await client.get(missing + path, headers=admin.headers)
        assert_problem(r, 404, "event_not_found")
        assert_deprecated_alias(r, None)
        r = await client.get(missing + path, headers=buyer.headers)
        assert_problem(r, 403, "forbidden")
        assert_deprecated_alias(r, None)
    r = await client.patch(missing, json={"name": "x"}, headers=admin.headers)
    assert_problem(r, 404, "event_not_found")
    assert_deprecated_alias(r, None)
    r = await client.get(f"{ADMIN}/events/not-a-uuid/analytics", headers=admin.headers)
    assert_problem(r, 422, "validation_error")
    assert_deprecated_alias(r, None)
    r = await client.post(f"{ADMIN}/venues", json={}, headers=admin.headers)
    assert_problem(r, 422, "validation_error")
    assert_deprecated_alias(r, None)
    r = await client.post(f"{ADMIN}/venues", json={"name": "x"})
    assert_problem(r, 401, "unauthorized")
    assert_deprecated_alias(r, None)
