"""Signed payment webhooks, and random interleavings of reserve / pay / decline / cancel /
expire against the real stack with the invariant checker after every step."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from decimal import Decimal

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from evently.infra.resources import Resources
from evently.invariants import check
from evently.payments import webhooks
from tests.support.bookings import counters, payment_event, reserve_body, signed, wait_status
from tests.support.factories import make_account, make_accounts, make_event
from tests.support.problems import assert_problem as is_problem
from tests.support.temporal import AppFactory

pytestmark = pytest.mark.usefixtures("running_workers")


async def test_signed_webhook_confirms_once_and_replays_are_acknowledged(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=4, price=Decimal("15.00"))
    r = await client.post(
        "/api/v1/bookings/reserve", json=reserve_body(event.id, 2), headers=buyer.headers
    )
    booking_id = r.json()["booking_id"]
    body, headers = signed(resources, payment_event(booking_id, "30.00"))
    first = await client.post("/api/v1/payments/webhook", content=body, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "processed"
    await wait_status(resources, booking_id, "confirmed")
    replay = await client.post("/api/v1/payments/webhook", content=body, headers=headers)
    assert replay.json()["status"] == "duplicate"
    assert await counters(resources, event.id) == (2, 0, 2)
    async with resources.engine.connect() as conn:
        charges = await conn.scalar(
            text("SELECT count(*) FROM payments WHERE booking_id = :b"), {"b": booking_id}
        )
        assert charges == 1
        assert await check(conn, event.id) == []


async def test_bad_webhooks_are_refused_and_change_nothing(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=4, price=Decimal("15.00"))
    r = await client.post(
        "/api/v1/bookings/reserve", json=reserve_body(event.id), headers=buyer.headers
    )
    booking_id = r.json()["booking_id"]
    good = payment_event(booking_id, "15.00")
    raw = json.dumps(good).encode()
    url = "/api/v1/payments/webhook"
    is_problem(await client.post(url, content=raw), 401, "invalid_signature")
    _, wrong_secret = signed(resources, good, secret="not-the-secret")
    is_problem(await client.post(url, content=raw, headers=wrong_secret), 401, "invalid_signature")
    _, stale = signed(resources, good, t=int(time.time()) - 301)
    is_problem(await client.post(url, content=raw, headers=stale), 401, "signature_expired")
    is_problem(
        await client.post(url, content=raw, headers={"Evently-Signature": "t=abc,v1=00"}),
        401,
        "invalid_signature",
    )
    tampered = json.dumps({**good, "data": {**good["data"], "amount": "0.01"}}).encode()  # type: ignore[dict-item]
    is_problem(await client.post(url, content=tampered, headers=signed(resources, good)[1]), 401)
    for payload, status in (
        ({**good, "type": "payment.refunded_twice"}, 422),
        ({**good, "data": {**good["data"], "booking_id": str(uuid.uuid4())}}, 404),  # type: ignore[dict-item]
        ({**good, "data": {**good["data"], "amount": "14.99"}}, 422),  # type: ignore[dict-item]
        ({"id": "x"}, 422),
    ):
        body, headers = signed(resources, payload)
        is_problem(await client.post(url, content=body, headers=headers), status)
    body = b'{"id": "evt_1", "type": '
    header = webhooks.sign(resources.settings.payment_webhook_secret, body)
    is_problem(
        await client.post(url, content=body, headers={"Evently-Signature": header}),
        400,
        "malformed_json",
    )
    is_problem(
        await client.post(url, content=b"x" * 70_000, headers={"Evently-Signature": header}),
        413,
    )
    assert (await client.get(f"/api/v1/bookings/{booking_id}", headers=buyer.headers)).json()[
        "status"
    ] == "held"
    assert await counters(resources, event.id) == (3, 1, 0)


OPS = st.lists(
    st.tuples(
        st.sampled_from(["reserve", "pay", "decline", "cancel", "expire"]),
        st.integers(min_value=0, max_value=5),  # which buyer / which booking
        st.integers(min_value=1, max_value=3),  # quantity
    ),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=OPS)
async def test_random_interleavings_keep_every_invariant(
    resources: Resources, ops: list[tuple[str, int, int]], app_factory: AppFactory
) -> None:
    res = dataclasses.replace(
        resources, settings=resources.settings.model_copy(update={"hold_seconds": 3})
    )
    app = app_factory(res)
    event = await make_event(res, capacity=4)
    buyers = await make_accounts(res, 3)
    booked: list[tuple[str, dict[str, str]]] = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        for op, which, quantity in ops:
            if op == "reserve" or not booked:
                buyer = buyers[which % len(buyers)]
                r = await c.post(
                    "/api/v1/bookings/reserve",
                    json=reserve_body(event.id, quantity),
                    headers=buyer.headers,
                )
                assert r.status_code in (201, 409), r.text
                if r.status_code == 201:
                    booked.append((r.json()["booking_id"], buyer.headers))
            else:
                booking_id, headers = booked[which % len(booked)]
                if op in ("pay", "decline"):
                    method = "pm_card_visa" if op == "pay" else "pm_card_chargeDeclined"
                    r = await c.post(
                        "/api/v1/bookings/confirm",
                        json={"booking_id": booking_id, "payment_method": method},
                        headers=headers,
                    )
                    assert r.status_code in (200, 402, 409), r.text
                elif op == "cancel":
                    r = await c.delete(f"/api/v1/bookings/{booking_id}", headers=headers)
                    assert r.status_code in (200, 409), r.text
                else:  # expire: let this booking's hold run out (if it is still held)
                    deadline = time.monotonic() + 10
                    while (await c.get(f"/api/v1/bookings/{booking_id}", headers=headers)).json()[
                        "status"
                    ] == "held":
                        assert time.monotonic() < deadline, "a hold outlived its window"
                        await asyncio.sleep(0.1)
            async with res.engine.connect() as conn:
                assert await check(conn, event.id, grace_seconds=10) == []
