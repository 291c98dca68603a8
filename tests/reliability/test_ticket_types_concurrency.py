"""Ticket types and promo codes under contention, on the real stack (API, workers, Postgres,
Redis, Temporal): no type and no event oversold, no spurious refusal, a code's uses exact, and
seats and uses given back exactly once by cancellations."""

from __future__ import annotations

import asyncio
import random
import uuid
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text

from evently.infra.resources import Resources
from evently.invariants import check
from tests.factories import Account, make_account, make_accounts, make_event

pytestmark = pytest.mark.usefixtures("running_workers")

RESERVE = "/api/v1/bookings/reserve"


async def _reserve(
    client: httpx.AsyncClient, buyer: Account, body: dict[str, object]
) -> httpx.Response:
    """As a well-behaved client: one Idempotency-Key per purchase; a shed (503) or late (202)
    answer is retried with it."""
    headers = {**buyer.headers, "Idempotency-Key": uuid.uuid4().hex}
    for _ in range(200):
        r = await client.post(RESERVE, json=body, headers=headers)
        if r.status_code not in (202, 503):
            return r
        await asyncio.sleep(0.2)
    raise AssertionError(f"no final answer: {r.status_code} {r.text}")


async def _types(client: httpx.AsyncClient, admin: Account, event_id: uuid.UUID) -> dict[str, str]:
    base = f"/api/v1/admin/events/{event_id}/ticket-types"
    for name, cap in (("A", 30), ("B", 50)):
        r = await client.post(
            base, json={"name": name, "price": "10.00", "capacity": cap}, headers=admin.headers
        )
        assert r.status_code == 201, r.text
    items = (await client.get(base, headers=admin.headers)).json()["items"]
    return {t["name"]: t["id"] for t in items}


async def test_a_thousand_buyers_over_three_capped_types_and_a_shared_quota(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    admin = await make_account(resources, "admin")
    event = await make_event(resources, capacity=120, price=Decimal("10.00"))
    ids = await _types(client, admin, event.id)
    caps = {"A": 30, "B": 50, "General admission": None}
    buyers = await make_accounts(resources, 500)
    rng = random.Random(15)
    wanted = [rng.choice(list(caps)) for _ in range(1000)]

    async def attempt(i: int) -> tuple[str, int, str | None]:
        name = wanted[i]
        body = {"event_id": str(event.id), "lines": [{"ticket_type_id": ids[name], "quantity": 1}]}
        r = await _reserve(client, buyers[i % len(buyers)], body)
        code = r.json().get("code") if r.status_code != 201 else None
        return name, r.status_code, code

    answers = await asyncio.gather(*(attempt(i) for i in range(1000)))
    held = [name for name, status, _ in answers if status == 201]
    refused = [(name, status, code) for name, status, code in answers if status != 201]
    assert len(held) == 120  # the shared quota sells out exactly
    assert held.count("A") == 30  # each cap fills exactly, never more
    assert held.count("B") == 50
    for name, status, code in refused:
        assert status == 409, (name, status, code)
        # a type's own refusal only for a capped type; otherwise the event really is sold out
        assert code in ("sold_out", "ticket_type_sold_out"), code
        if code == "ticket_type_sold_out":
            assert caps[name] is not None
    async with resources.engine.connect() as conn:
        counts = dict(
            (
                await conn.execute(
                    text("SELECT name, held FROM ticket_types WHERE event_id = :e"), {"e": event.id}
                )
            ).all()
        )
        assert counts == {"A": 30, "B": 50, "General admission": 40}
        assert await check(conn, event.id) == []


async def test_two_hundred_reserves_with_a_fifty_use_code_and_uses_given_back_once(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    admin = await make_account(resources, "admin")
    event = await make_event(resources, capacity=1000, price=Decimal("10.00"))
    r = await client.post(
        f"/api/v1/admin/events/{event.id}/promo-codes",
        json={"code": "FIFTY", "amount_off": "2.50", "max_uses": 50},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    buyers = await make_accounts(resources, 100)
    body = {"event_id": str(event.id), "quantity": 1, "promo_code": "fifty"}

    answers = await asyncio.gather(
        *(_reserve(client, buyers[i % len(buyers)], body) for i in range(200))
    )
    ok = [(i, r.json()) for i, r in enumerate(answers) if r.status_code == 201]
    assert len(ok) == 50
    assert all(a["amount"] == "7.50" for _, a in ok)
    assert {r.json()["code"] for r in answers if r.status_code != 201} == {"promo_code_used_up"}

    async def uses() -> int:
        async with resources.engine.connect() as conn:
            return int(
                await conn.scalar(
                    text("SELECT uses FROM promo_codes WHERE event_id = :e"), {"e": event.id}
                )
            )

    assert await uses() == 50
    # ten buyers cancel, each three times at once: ten uses and ten seats back, once each
    cancels = [
        client.delete(
            f"/api/v1/bookings/{a['booking_id']}", headers=buyers[i % len(buyers)].headers
        )
        for i, a in ok[:10]
        for _ in range(3)
    ]
    for r in await asyncio.gather(*cancels):
        assert r.status_code in (200, 409), r.text
    assert await uses() == 40
    again = await asyncio.gather(*(_reserve(client, buyers[i], body) for i in range(30)))
    assert sum(r.status_code == 201 for r in again) == 10
    assert await uses() == 50
    async with resources.engine.connect() as conn:
        assert await check(conn, event.id) == []
