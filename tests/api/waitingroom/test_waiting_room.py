"""The waiting room on the real stack (in-process API, real workers, Postgres, Redis, Temporal):
one place per buyer, admission in join order by the admission workflow, the reserve path's
admission-token step, sold out for everyone still waiting."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from evently import invariants, waitingroom
from evently.infra.resources import Resources
from tests.support.factories import make_account, make_event
from tests.support.problems import assert_problem as _problem

pytestmark = pytest.mark.usefixtures("running_workers")
API = "/api/v1"


async def _until(client: httpx.AsyncClient, url: str, headers: Any, state: str) -> Any:
    for _ in range(100):
        r = await client.get(url, headers=headers)
        assert r.status_code == 200, r.text
        if r.json()["state"] == state:
            return r.json()
        await asyncio.sleep(0.1)
    raise AssertionError(f"never {state}: {r.json()}")


async def test_a_queued_on_sale_admits_in_join_order_and_tells_the_rest_it_sold_out(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    res = resources
    admin = await make_account(res, "admin")
    event = await make_event(res, capacity=1)
    eid = str(event.id)
    a, b, c = [await make_account(res) for _ in range(3)]

    r = await client.patch(f"{API}/admin/events/{eid}", json={"queue": "on"}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["queue"] == "on"
    r = await client.patch(
        f"{API}/admin/events/{eid}", json={"queue": "sometimes"}, headers=admin.headers
    )
    assert r.status_code == 422

    # a queued on-sale: no reserve without an admission token (fast path and endpoint)
    reserve = {"event_id": eid, "quantity": 1}
    r = await client.post(f"{API}/bookings/reserve", json=reserve, headers=a.headers)
    _problem(r, 403, "admission_required")
    r = await client.post(
        f"{API}/bookings/reserve", json=reserve, headers={**a.headers, "Idempotency-Key": "k1"}
    )
    _problem(r, 403, "admission_required")
    forged = waitingroom.admission_token("not the secret", event.id, a.user.id, 1, 2**40)
    r = await client.post(
        f"{API}/bookings/reserve", json=reserve, headers={**a.headers, "Admission-Token": forged}
    )
    _problem(r, 403, "admission_invalid")

    # one place per buyer, in join order; asking again gives the same place
    places = []
    for buyer in (a, b, c):
        r = await client.post(f"{API}/events/{eid}/queue", headers=buyer.headers)
        assert r.status_code == 200, r.text
        places.append(r.json())
    again = (await client.post(f"{API}/events/{eid}/queue", headers=b.headers)).json()
    assert again["queue_ticket"] == places[1]["queue_ticket"]
    # "on": nobody is let in at join; the workflow (running since the PATCH) may admit up to
    # 1.5 x the seats left between two joins, never c (third in line for one seat)
    assert places[2]["state"] == "waiting"
    assert places[2]["position"] >= 1
    # the admission tick copies the line to Postgres, in join order
    rows: list[Any] = []
    for _ in range(100):
        async with res.engine.connect() as conn:
            rows = list(
                await conn.execute(
                    text("SELECT user_id, position FROM queue_entries WHERE event_id = :e"),
                    {"e": event.id},
                )
            )
        if len(rows) == 3:
            break
        await asyncio.sleep(0.1)
    assert sorted((r.position, r.user_id) for r in rows) == [
        (1, a.user.id),
        (2, b.user.id),
        (3, c.user.id),
    ]

    # someone else's ticket, or a forged one, is not found
    url_a = f"{API}/events/{eid}/queue/{places[0]['queue_ticket']}"
    _problem(await client.get(url_a, headers=b.headers), 404, "queue_ticket_not_found")
    _problem(
        await client.get(f"{API}/events/{eid}/queue/1.{a.user.id.hex}.x", headers=a.headers),
        404,
        "queue_ticket_not_found",
    )

    # the admission workflow admits a (1 seat: b may be admitted too, c waits behind b)
    admitted = await _until(client, url_a, a.headers, "admitted")
    token = admitted["admission_token"]
    assert admitted["position"] == 0
    assert admitted["admission_expires_at"] > 0
    r = await client.post(
        f"{API}/bookings/reserve", json=reserve, headers={**b.headers, "Admission-Token": token}
    )
    _problem(r, 403, "admission_invalid")  # a's token is a's
    r = await client.post(
        f"{API}/bookings/reserve", json=reserve, headers={**a.headers, "Admission-Token": token}
    )
    assert r.status_code == 201, r.text
    booking_id = r.json()["booking_id"]
    # one booking per admission: asking again answers the same booking
    r = await client.post(
        f"{API}/bookings/reserve", json=reserve, headers={**a.headers, "Admission-Token": token}
    )
    assert r.status_code == 201
    assert r.json()["booking_id"] == booking_id

    # sold out: whoever still waits learns it
    url_c = f"{API}/events/{eid}/queue/{places[2]['queue_ticket']}"
    done = await _until(client, url_c, c.headers, "sold_out")
    assert done["admission_token"] is None
    async with res.engine.connect() as conn:
        assert await invariants.check(conn, event.id) == []


async def test_no_queue_when_off_and_unknown_events(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    admin = await make_account(resources, "admin")
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=5)
    r = await client.patch(
        f"{API}/admin/events/{event.id}", json={"queue": "off"}, headers=admin.headers
    )
    assert r.status_code == 200
    _problem(
        await client.post(f"{API}/events/{event.id}/queue", headers=buyer.headers), 409, "queue_off"
    )
    _problem(
        await client.post(f"{API}/events/{uuid.uuid4()}/queue", headers=buyer.headers),
        404,
        "event_not_found",
    )
    draft = await make_event(resources, status="draft")
    _problem(
        await client.post(f"{API}/events/{draft.id}/queue", headers=buyer.headers),
        409,
        "event_not_on_sale",
    )
    # off: reserving needs no token
    r = await client.post(
        f"{API}/bookings/reserve",
        json={"event_id": str(event.id), "quantity": 1},
        headers=buyer.headers,
    )
    assert r.status_code == 201, r.text


async def test_auto_admits_at_once_while_the_reserve_path_has_room(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=5)  # auto by default
    r = await client.post(f"{API}/events/{event.id}/queue", headers=buyer.headers)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "admitted"
    assert r.json()["position"] == 0
    r = await client.post(
        f"{API}/bookings/reserve",
        json={"event_id": str(event.id), "quantity": 2},
        headers={**buyer.headers, "Admission-Token": r.json()["admission_token"]},
    )
    assert r.status_code == 201, r.text
