"""A 2xx means committed: a client that acts on an answer at once sees its write. Checked the
only way the bug shows (the commit running after the response left): against a real server
process over TCP, in tight loops, each next request sent the moment the answer arrives.

Async on purpose: the session's event loop also runs the shared Temporal workers; a blocking
client would freeze them for the minute these loops take."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text
from temporalio.client import Client

from evently.infra.resources import Resources
from evently.settings import Settings
from tests.conftest import register_namespace
from tests.factories import Account, make_account, make_accounts, make_event
from tests.servers import api_process

ITERATIONS = 1000


@pytest.fixture(scope="module")
async def api(settings: Settings, temporal_client: Client) -> AsyncIterator[httpx.AsyncClient]:
    # the fast password profile: a thousand registrations and logins in seconds, not minutes;
    # a namespace of its own: the thousand events' index writes must not queue up in front of
    # the next tests' bookings on the session's workers
    namespace = await register_namespace(temporal_client)
    with api_process(
        settings, EVENTLY_PASSWORD_HASH_PROFILE="fast", EVENTLY_TEMPORAL_NAMESPACE=namespace
    ) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            yield client


@pytest.fixture(scope="module")
async def admin(resources: Resources) -> Account:
    return await make_account(resources, "admin")


def _report(what: str, stale: int) -> None:
    print(f"\n{what}: {ITERATIONS} iterations, {stale} stale reads")


async def test_a_new_venue_is_usable_at_once(api: httpx.AsyncClient, admin: Account) -> None:
    starts = datetime.now(UTC) + timedelta(days=30)
    stale = 0
    for i in range(ITERATIONS):
        venue = await api.post(
            "/api/v1/admin/venues",
            json={"name": f"Hall {i}", "address": "Main st 1", "city": "Oslo", "capacity": 100},
            headers=admin.headers,
        )
        assert venue.status_code == 201, venue.text
        event = await api.post(
            "/api/v1/admin/events",
            json={
                "name": f"Gig {i}",
                "venue_id": venue.json()["id"],
                "event_type": "concert",
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=2)).isoformat(),
                "capacity": 50,
                "price": "10.00",
                "currency": "EUR",
            },
            headers=admin.headers,
        )
        if event.status_code == 422 and event.json()["code"] == "venue_not_found":
            stale += 1
        else:
            assert event.status_code == 201, event.text
    _report("venue → event", stale)
    assert stale == 0


async def test_a_new_account_can_log_in_at_once(api: httpx.AsyncClient) -> None:
    stale = 0
    for _ in range(ITERATIONS):
        email = f"loop-{uuid.uuid4().hex[:16]}@example.com"
        body = {"email": email, "password": "correct-horse-battery"}
        assert (await api.post("/api/v1/auth/register", json=body)).status_code == 202
        login = await api.post("/api/v1/auth/login", json=body)
        if login.status_code == 401:
            stale += 1
        else:
            assert login.status_code == 200, login.text
    _report("register → login", stale)
    assert stale == 0


async def test_a_logout_is_a_logout_at_once(api: httpx.AsyncClient) -> None:
    body = {"email": f"loop-{uuid.uuid4().hex[:16]}@example.com", "password": "correct-horse-1"}
    assert (await api.post("/api/v1/auth/register", json=body)).status_code == 202
    stale = 0
    for _ in range(ITERATIONS):
        login = await api.post("/api/v1/auth/login", json=body)
        assert login.status_code == 200, login.text
        token = {"refresh_token": login.json()["refresh_token"]}
        assert (await api.post("/api/v1/auth/logout", json=token)).status_code == 204
        again = await api.post("/api/v1/auth/refresh", json=token)
        if again.status_code == 200:
            stale += 1
        else:
            assert again.status_code == 401, again.text
    _report("logout → refresh", stale)
    assert stale == 0


async def test_a_waitlist_entry_is_readable_at_once(
    api: httpx.AsyncClient, resources: Resources
) -> None:
    event = await make_event(resources, capacity=1)
    async with resources.engine.begin() as conn:  # sold out: the one seat is sold
        await conn.execute(
            text("UPDATE events SET available = 0, sold = 1 WHERE id = :id"), {"id": event.id}
        )
    buyers = await make_accounts(resources, ITERATIONS)
    stale = 0
    for buyer in buyers:
        joined = await api.post(
            "/api/v1/waitlist/join",
            json={"event_id": str(event.id), "quantity": 1},
            headers=buyer.headers,
        )
        assert joined.status_code == 201, joined.text
        entry = await api.get(
            f"/api/v1/waitlist/{joined.json()['entry_id']}", headers=buyer.headers
        )
        if entry.status_code == 404:
            stale += 1
        else:
            assert entry.status_code == 200, entry.text
    _report("join waitlist → entry", stale)
    assert stale == 0
