"""Guest checkout (issue 32) on the real stack: a reserve without an account, the booking's
access key wherever the buyer's token works (header or ?key=), nothing for other bookings or
tampered keys, revocation, the per-account limits, and the account of that email seeing the
booking only once verified."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from evently import account_tokens
from evently.infra.resources import Resources
from evently.security import hash_refresh_token
from tests.api.auth.helpers import AUTH, PASSWORD, bearer, log_in, sign_up
from tests.conftest import AppFactory
from tests.factories import make_account, make_event, unique_email

pytestmark = pytest.mark.usefixtures("running_workers")

RESERVE = "/api/v1/bookings/reserve"
KEY = "Evently-Booking-Key"


def _guest(event_id: uuid.UUID, email: str, quantity: int = 1) -> dict[str, Any]:
    return {
        "event_id": str(event_id),
        "quantity": quantity,
        "buyer": {"email": email, "name": "Grace Guest"},
    }


async def _buy_as_guest(
    client: httpx.AsyncClient, event_id: uuid.UUID, email: str, quantity: int = 1
) -> dict[str, Any]:
    r = await client.post(RESERVE, json=_guest(event_id, email, quantity))
    assert r.status_code == 201, r.text
    held: dict[str, Any] = r.json()
    r = await client.post(
        "/api/v1/bookings/confirm",
        json={"booking_id": held["booking_id"], "payment_method": "pm_card_visa"},
        headers={KEY: held["access_key"]},
    )
    assert r.status_code == 200, r.text
    return held


async def test_a_guest_buys_and_the_key_opens_that_booking_only(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    event = await make_event(resources, capacity=10, price=Decimal("25.00"))
    email = unique_email("guest")
    r = await client.post(RESERVE, json=_guest(event.id, email, 2))
    assert r.status_code == 201, r.text
    held = r.json()
    booking_id, key = held["booking_id"], held["access_key"]
    assert held["status"] == "held"
    assert held["amount"] == "50.00"
    assert held["access_url"].endswith(f"/checkout/{booking_id}?key={key}")
    assert len(key) >= 43  # 256 bits
    # unpaid, anyone without the key gets nothing
    assert (await client.get(f"/api/v1/bookings/{booking_id}")).status_code == 401
    r = await client.post(
        "/api/v1/bookings/confirm",
        json={"booking_id": booking_id, "payment_method": "pm_card_visa"},
        headers={KEY: key},
    )
    assert r.status_code == 200, r.text
    # the key works as the header and as ?key=, wherever the buyer's token would
    got = await client.get(f"/api/v1/bookings/{booking_id}", headers={KEY: key})
    assert got.status_code == 200, got.text
    assert got.json()["status"] == "confirmed"
    tickets = await client.get(f"/api/v1/bookings/{booking_id}/tickets", params={"key": key})
    assert tickets.status_code == 200, tickets.text
    assert len(tickets.json()["tickets"]) == 2
    pdf = await client.get(f"/api/v1/bookings/{booking_id}/tickets.pdf", params={"key": key})
    assert pdf.status_code == 200, pdf.text
    assert pdf.content.startswith(b"%PDF")
    # only a hash is stored
    async with resources.engine.connect() as conn:
        stored = await conn.scalar(
            text("SELECT key_hash FROM booking_access_keys WHERE booking_id = :b"),
            {"b": uuid.UUID(booking_id)},
        )
    assert stored == hash_refresh_token(key)

    # another booking's key, a tampered key: 404, as for a stranger's token
    other = await _buy_as_guest(client, event.id, unique_email("guest-other"))
    for path in (f"/api/v1/bookings/{booking_id}", f"/api/v1/bookings/{booking_id}/tickets"):
        for wrong in (other["access_key"], key[:-1] + ("A" if key[-1] != "A" else "B")):
            r = await client.get(path, headers={KEY: wrong})
            assert r.status_code == 404, r.text
            assert r.json()["code"] == "booking_not_found"
    stranger = await make_account(resources)
    r = await client.get(f"/api/v1/bookings/{booking_id}", headers=stranger.headers)
    assert r.status_code == 404


async def test_the_key_is_revocable_and_a_retry_gets_the_same_one(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    event = await make_event(resources, capacity=10)
    email = unique_email("guest-rot")
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    first = await client.post(RESERVE, json=_guest(event.id, email), headers=headers)
    again = await client.post(RESERVE, json=_guest(event.id, email), headers=headers)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json()["booking_id"] == first.json()["booking_id"]
    assert again.json()["access_key"] == first.json()["access_key"]
    booking_id, old = first.json()["booking_id"], first.json()["access_key"]

    r = await client.post(f"/api/v1/bookings/{booking_id}/access-key", headers={KEY: old})
    assert r.status_code == 200, r.text
    new = r.json()["access_key"]
    assert new != old
    assert r.json()["access_url"].endswith(f"?key={new}")
    assert (
        await client.get(f"/api/v1/bookings/{booking_id}", headers={KEY: old})
    ).status_code == 404
    assert (
        await client.get(f"/api/v1/bookings/{booking_id}", headers={KEY: new})
    ).status_code == 200
    # an account's own booking has no key to rotate
    buyer = await make_account(resources)
    r = await client.post(
        RESERVE, json={"event_id": str(event.id), "quantity": 1}, headers=buyer.headers
    )
    own = r.json()["booking_id"]
    assert "access_key" not in r.json() or r.json()["access_key"] is None
    r = await client.post(f"/api/v1/bookings/{own}/access-key", headers=buyer.headers)
    assert r.status_code == 409
    assert r.json()["code"] == "not_a_guest_booking"


async def test_guest_input_rules(client: httpx.AsyncClient, resources: Resources) -> None:
    event = await make_event(resources, capacity=10)
    r = await client.post(RESERVE, json={"event_id": str(event.id), "quantity": 1})
    assert r.status_code == 401
    assert "guest" in r.json()["detail"]
    buyer = await make_account(resources)
    r = await client.post(RESERVE, json=_guest(event.id, unique_email("g")), headers=buyer.headers)
    assert r.status_code == 422
    for bad in ({"email": "not-an-email", "name": "X"}, {"email": unique_email("g"), "name": ""}):
        body = {"event_id": str(event.id), "quantity": 1, "buyer": bad}
        r = await client.post(RESERVE, json=body)
        assert r.status_code == 422, r.text


async def test_an_account_of_the_email_sees_guest_bookings_once_verified(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    event = await make_event(resources, capacity=10)
    email = unique_email("guest-claim")
    held = await _buy_as_guest(client, event.id, email.upper())  # any case: one account row
    booking_id = held["booking_id"]
    # signing up with that email (the same 202 as any sign-up) makes the guest row an account
    await sign_up(client, email)
    pair = await log_in(client, email)
    auth = bearer(pair["access_token"])
    assert pair["user"]["email_verified"] is False
    mine = await client.get("/api/v1/users/bookings", headers=auth)
    assert booking_id not in [b["id"] for b in mine.json()["items"]]
    assert (await client.get(f"/api/v1/bookings/{booking_id}", headers=auth)).status_code == 404
    # ... until the address is verified
    async with resources.engine.connect() as conn:
        payload = await conn.scalar(
            text(
                "SELECT n.payload FROM notifications n JOIN users u ON u.id = n.user_id "
                "WHERE u.email = :e AND n.kind = 'account_welcome'"
            ),
            {"e": email},
        )
    token = account_tokens.token_for(
        resources.settings, "email_verification", uuid.UUID(payload["token_id"])
    )
    assert (await client.post(f"{AUTH}/verify-email", json={"token": token})).status_code == 200
    mine = await client.get("/api/v1/users/bookings", headers=auth)
    assert booking_id in [b["id"] for b in mine.json()["items"]]
    got = await client.get(f"/api/v1/bookings/{booking_id}", headers=auth)
    assert got.status_code == 200
    # the guest's key still works too
    assert (
        await client.get(f"/api/v1/bookings/{booking_id}", params={"key": held["access_key"]})
    ).status_code == 200
    # a guest row cannot be logged into before it becomes an account (no password at all)
    other = unique_email("guest-nopw")
    await _buy_as_guest(client, event.id, other)
    for pw in ("", "!guest", PASSWORD):
        r = await client.post(f"{AUTH}/login", json={"email": other, "password": pw or "x"})
        assert r.status_code == 401


@asynccontextmanager
async def _limited(
    res: Resources, app_factory: AppFactory, ip: str, **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    changed = res.settings.model_copy(update=settings)
    app = app_factory(dataclasses.replace(res, settings=changed), changed)
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


async def test_guests_count_against_the_same_per_account_limit(
    resources: Resources, app_factory: AppFactory
) -> None:
    event = await make_event(resources, capacity=50)
    email = unique_email("guest-rl")
    codes = []
    for i in range(3):  # a new address each time: the email's account is what is counted
        async with _limited(
            resources, app_factory, f"10.99.{i}.{uuid.uuid4().int % 250 + 1}", reserve_rate_limit=2
        ) as c:
            codes.append((await c.post(RESERVE, json=_guest(event.id, email))).status_code)
    assert codes == [201, 201, 429]
