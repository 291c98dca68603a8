"""Guests in the waiting room (issue 32), on the real stack: a guest reserve during a queued
on-sale needs an admission like everyone's; a guest joins without an account (a place of its
own, bound to the email), is admitted in join order and buys with that admission; the
admission is no good for another email nor for an account, and knowing a guest's email gets
no one their place; the per-address and per-email limits hold."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.support.factories import make_account, make_event, unique_email
from tests.support.problems import assert_problem

pytestmark = pytest.mark.usefixtures("running_workers")
API = "/api/v1"


async def _until_admitted(client: httpx.AsyncClient, url: str) -> Any:
    """Poll the guest's place (no token: the ticket is enough) until admitted."""
    for _ in range(150):
        r = await client.get(url)
        assert r.status_code == 200, r.text
        if r.json()["state"] == "admitted":
            return r.json()
        await asyncio.sleep(0.1)
    raise AssertionError(f"never admitted: {r.json()}")


async def test_a_guest_waits_in_line_like_everyone_and_buys_once_admitted(
    client: httpx.AsyncClient, resources: Any
) -> None:
    admin = await make_account(resources, "admin")
    account = await make_account(resources)
    event = await make_event(resources, capacity=3)
    eid = str(event.id)
    r = await client.patch(f"{API}/admin/events/{eid}", json={"queue": "on"}, headers=admin.headers)
    assert r.status_code == 200, r.text
    email = unique_email("queued-guest")
    buyer = {"email": email, "name": "Quinn Queue"}
    reserve = {"event_id": eid, "quantity": 1, "buyer": buyer}

    # no way around the queued on-sale with a guest form
    assert_problem(
        await client.post(f"{API}/bookings/reserve", json=reserve), 403, "admission_required"
    )

    # joining: a token or a guest buyer, not both, not neither
    assert_problem(await client.post(f"{API}/events/{eid}/queue"), 401, "unauthorized")
    assert_problem(
        await client.post(
            f"{API}/events/{eid}/queue", json={"buyer": buyer}, headers=account.headers
        ),
        422,
        "validation_error",
    )
    r = await client.post(f"{API}/events/{eid}/queue", json={"buyer": buyer})
    assert r.status_code == 200, r.text
    place = r.json()
    assert place["queue_ticket"].startswith("g")
    assert place["state"] in ("waiting", "admitted")
    # the same email again (someone who knows it, or a second tab): a place of its own, later
    r = await client.post(f"{API}/events/{eid}/queue", json={"buyer": buyer})
    assert r.status_code == 200, r.text
    other_place = r.json()
    assert other_place["queue_ticket"] != place["queue_ticket"]
    assert int(other_place["queue_ticket"][1:].split(".")[0]) > int(
        place["queue_ticket"][1:].split(".")[0]
    )

    # the guest's ticket needs no token; a forged one is nobody's; an account's needs its token
    url = f"{API}/events/{eid}/queue/{place['queue_ticket']}"
    forged = place["queue_ticket"][:-2] + (
        "AA" if not place["queue_ticket"].endswith("AA") else "BB"
    )
    assert_problem(
        await client.get(f"{API}/events/{eid}/queue/{forged}"), 404, "queue_ticket_not_found"
    )
    r = await client.post(f"{API}/events/{eid}/queue", headers=account.headers)
    assert r.status_code == 200, r.text
    account_ticket = r.json()["queue_ticket"]
    assert_problem(
        await client.get(f"{API}/events/{eid}/queue/{account_ticket}"), 401, "unauthorized"
    )

    admitted = await _until_admitted(client, url)
    token = admitted["admission_token"]
    assert token.startswith("g")
    # the admission is the guest's email's: not another email's, not an account's
    r = await client.post(
        f"{API}/bookings/reserve",
        json={**reserve, "buyer": {"email": unique_email("thief"), "name": "Tom Thief"}},
        headers={"Admission-Token": token},
    )
    assert_problem(r, 403, "admission_invalid")
    r = await client.post(
        f"{API}/bookings/reserve",
        json={"event_id": eid, "quantity": 1},
        headers={**account.headers, "Admission-Token": token},
    )
    assert_problem(r, 403, "admission_invalid")

    # the guest buys (the email as typed, in any case), and gets the booking's key
    r = await client.post(
        f"{API}/bookings/reserve",
        json={**reserve, "buyer": {**buyer, "email": email.upper()}},
        headers={"Admission-Token": token},
    )
    assert r.status_code == 201, r.text
    booking_id = r.json()["booking_id"]
    key = r.json()["access_key"]
    assert key
    # one booking per admission: the same admission answers the same booking
    r = await client.post(
        f"{API}/bookings/reserve", json=reserve, headers={"Admission-Token": token}
    )
    assert r.status_code == 201, r.text
    assert r.json()["booking_id"] == booking_id
    r = await client.get(f"{API}/bookings/{booking_id}", headers={"Evently-Booking-Key": key})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "held"


async def test_guest_joins_are_limited_per_email(client: httpx.AsyncClient, resources: Any) -> None:
    event = await make_event(resources, capacity=5)  # auto: joins answer at once
    buyer = {"email": unique_email("many-tabs"), "name": "Tabby Tabs"}
    limit = resources.settings.queue_guest_joins_per_email
    for _ in range(limit):
        r = await client.post(f"{API}/events/{event.id}/queue", json={"buyer": buyer})
        assert r.status_code == 200, r.text
    r = await client.post(f"{API}/events/{event.id}/queue", json={"buyer": buyer})
    assert_problem(r, 429, "rate_limited")
    assert int(r.headers["Retry-After"]) > 0
    # another email is not held back by it
    other = {"email": unique_email("one-tab"), "name": "Una Tab"}
    r = await client.post(f"{API}/events/{event.id}/queue", json={"buyer": other})
    assert r.status_code == 200, r.text
