"""The booking API end to end: real API, real workers, real Postgres/Redis/Temporal."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from temporalio.client import Client

from evently.infra.resources import Resources, open_resources
from evently.invariants import check
from evently.inventory.gate import Gate
from tests.support.bookings import counters, reserve_body, wait_status
from tests.support.factories import Account, make_account, make_accounts, make_event
from tests.support.problems import assert_problem as is_problem
from tests.support.temporal import AppFactory
from workers.main import build_workers
from workflows import common

pytestmark = pytest.mark.usefixtures("running_workers")


async def test_reserve_then_pay_confirms(client: httpx.AsyncClient, resources: Resources) -> None:
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=10, price=Decimal("40.00"))
    r = await client.post(
        "/api/v1/bookings/reserve",
        json={"event_id": str(event.id), "quantity": 2},
        headers=buyer.headers,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "held"
    assert body["amount"] == "80.00"
    assert body["currency"] == "EUR"
    assert body["hold_expires_at"]
    assert body["workflow_id"] == f"booking-{body['booking_id']}"
    assert await counters(resources, event.id) == (8, 2, 0)

    r = await client.post(
        "/api/v1/bookings/confirm",
        json={"booking_id": body["booking_id"], "payment_method": "pm_card_visa"},
        headers=buyer.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "confirmed"
    assert await counters(resources, event.id) == (8, 0, 2)
    got = await client.get(f"/api/v1/bookings/{body['booking_id']}", headers=buyer.headers)
    assert got.json()["status"] == "confirmed"


async def booking_count(res: Resources, event_id: uuid.UUID) -> int:
    async with res.engine.connect() as conn:
        n = await conn.scalar(
            text("SELECT count(*) FROM bookings WHERE event_id = :id"), {"id": event_id}
        )
    return int(n or 0)


async def test_idempotency_key_returns_the_same_booking_and_holds_once(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=10)
    other = await make_event(resources, capacity=10)
    headers = {**buyer.headers, "Idempotency-Key": f"k-{uuid.uuid4()}"}
    first = await client.post(
        "/api/v1/bookings/reserve", json=reserve_body(event.id, 3), headers=headers
    )
    again = await client.post(
        "/api/v1/bookings/reserve", json=reserve_body(event.id, 3), headers=headers
    )
    assert first.status_code == again.status_code == 201
    assert first.json()["booking_id"] == again.json()["booking_id"]
    assert await counters(resources, event.id) == (7, 3, 0)
    assert await booking_count(resources, event.id) == 1
    reused = await client.post(
        "/api/v1/bookings/reserve", json=reserve_body(other.id, 3), headers=headers
    )
    is_problem(reused, 409, "idempotency_key_reused")
    assert await counters(resources, other.id) == (10, 0, 0)


async def test_sold_out_is_answered_without_a_workflow_or_a_write(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=2)
    ok = await client.post(
        "/api/v1/bookings/reserve", json=reserve_body(event.id, 2), headers=buyer.headers
    )
    assert ok.status_code == 201
    for quantity in (1, 2):
        r = await client.post(
            "/api/v1/bookings/reserve", json=reserve_body(event.id, quantity), headers=buyer.headers
        )
        is_problem(r, 409, "sold_out")
    assert await booking_count(resources, event.id) == 1  # no rejected booking row either
    # the gate rebuilds itself from Postgres when its counter is missing
    await Gate(resources.redis).reset(event.id)
    r = await client.post(
        "/api/v1/bookings/reserve", json=reserve_body(event.id), headers=buyer.headers
    )
    is_problem(r, 409, "sold_out")
    assert await booking_count(resources, event.id) == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"quantity": 1}, 422),
        ({"event_id": "not-a-uuid", "quantity": 1}, 422),
        ({"event_id": "{event}", "quantity": 0}, 422),
        ({"event_id": "{event}", "quantity": -3}, 422),
        ({"event_id": "{event}", "quantity": 11}, 422),
        ({"event_id": "{event}", "quantity": 10**12}, 422),
        ({"event_id": "{event}", "quantity": "two"}, 422),
        ({"event_id": "{event}", "quantity": 1, "price": "0"}, 422),
        ([], 422),
    ],
)
async def test_hostile_reserve_bodies_change_nothing(
    client: httpx.AsyncClient, resources: Resources, body: object, status: int
) -> None:
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=5)
    if isinstance(body, dict):
        body = {k: (str(event.id) if v == "{event}" else v) for k, v in body.items()}
    r = await client.post("/api/v1/bookings/reserve", json=body, headers=buyer.headers)
    is_problem(r, status)
    assert await counters(resources, event.id) == (5, 0, 0)
    assert await booking_count(resources, event.id) == 0


async def test_reserve_refuses_unknown_draft_and_cancelled_events_and_strangers(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await make_account(resources)
    draft = await make_event(resources, status="draft")
    cancelled = await make_event(resources, status="cancelled")
    r = await client.post(
        "/api/v1/bookings/reserve", json=reserve_body(uuid.uuid4()), headers=buyer.headers
    )
    is_problem(r, 404, "event_not_found")
    for event in (draft, cancelled):
        r = await client.post(
            "/api/v1/bookings/reserve", json=reserve_body(event.id), headers=buyer.headers
        )
        is_problem(r, 409, "event_not_on_sale")
        assert await booking_count(resources, event.id) == 0
    r = await client.post("/api/v1/bookings/reserve", json=reserve_body(draft.id))
    is_problem(r, 401)
    r = await client.post(
        "/api/v1/bookings/reserve",
        content=b'{"event_id": ',
        headers={**buyer.headers, "content-type": "application/json"},
    )
    is_problem(r, 400, "malformed_json")


async def test_other_buyers_cannot_see_pay_or_cancel_a_booking(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    owner, stranger = await make_account(resources), await make_account(resources)
    support = await make_account(resources, role="support")
    event = await make_event(resources, capacity=5)
    r = await client.post(
        "/api/v1/bookings/reserve", json=reserve_body(event.id), headers=owner.headers
    )
    booking_id = r.json()["booking_id"]
    is_problem(await client.get(f"/api/v1/bookings/{booking_id}", headers=stranger.headers), 404)
    is_problem(
        await client.post(
            "/api/v1/bookings/confirm",
            json={"booking_id": booking_id, "payment_method": "pm_card_visa"},
            headers=stranger.headers,
        ),
        404,
    )
    is_problem(await client.delete(f"/api/v1/bookings/{booking_id}", headers=stranger.headers), 404)
    is_problem(await client.get(f"/api/v1/bookings/{uuid.uuid4()}", headers=owner.headers), 404)
    is_problem(await client.get("/api/v1/bookings/not-a-uuid", headers=owner.headers), 422)
    seen = await client.get(f"/api/v1/bookings/{booking_id}", headers=support.headers)
    assert seen.status_code == 200
    assert seen.json()["status"] == "held"
    assert await counters(resources, event.id) == (4, 1, 0)
    mine = await client.get("/api/v1/users/bookings", headers=owner.headers)
    assert [b["id"] for b in mine.json()["items"]] == [booking_id]
    assert (await client.get("/api/v1/users/bookings", headers=stranger.headers)).json()[
        "total"
    ] == 0


async def test_declined_payment_keeps_the_hold_then_cancel_releases_it(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=5)
    r = await client.post(
        "/api/v1/bookings/reserve", json=reserve_body(event.id, 2), headers=buyer.headers
    )
    booking_id = r.json()["booking_id"]
    declined = await client.post(
        "/api/v1/bookings/confirm",
        json={"booking_id": booking_id, "payment_method": "pm_card_chargeDeclined"},
        headers=buyer.headers,
    )
    is_problem(declined, 402, "payment_declined")
    assert (await client.get(f"/api/v1/bookings/{booking_id}", headers=buyer.headers)).json()[
        "status"
    ] == "held"
    bad_method = await client.post(
        "/api/v1/bookings/confirm",
        json={"booking_id": booking_id, "payment_method": "4242 4242 4242 4242"},
        headers=buyer.headers,
    )
    is_problem(bad_method, 422)
    cancelled = await client.delete(f"/api/v1/bookings/{booking_id}", headers=buyer.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json() == {"booking_id": booking_id, "status": "cancelled", "refunded": False}
    assert await counters(resources, event.id) == (5, 0, 0)
    again = await client.delete(f"/api/v1/bookings/{booking_id}", headers=buyer.headers)
    is_problem(again, 409, "booking_not_active")


async def test_cancelling_a_confirmed_booking_refunds_it(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=5)
    r = await client.post(
        "/api/v1/bookings/reserve", json=reserve_body(event.id, 2), headers=buyer.headers
    )
    booking_id = r.json()["booking_id"]
    paid = await client.post(
        "/api/v1/bookings/confirm",
        json={"booking_id": booking_id, "payment_method": "pm_card_visa"},
        headers=buyer.headers,
    )
    assert paid.status_code == 200
    cancelled = await client.delete(f"/api/v1/bookings/{booking_id}", headers=buyer.headers)
    assert cancelled.json() == {"booking_id": booking_id, "status": "cancelled", "refunded": True}
    assert await counters(resources, event.id) == (5, 0, 0)
    async with resources.engine.connect() as conn:
        assert await check(conn, event.id) == []


async def test_paying_after_the_hold_ended_is_409_hold_expired(
    resources: Resources, app_factory: AppFactory
) -> None:
    short = dataclasses.replace(
        resources, settings=resources.settings.model_copy(update={"hold_seconds": 1})
    )
    app = app_factory(short)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        buyer = await make_account(resources)
        event = await make_event(resources, capacity=5)
        r = await c.post(
            "/api/v1/bookings/reserve", json=reserve_body(event.id), headers=buyer.headers
        )
        booking_id = r.json()["booking_id"]
        await wait_status(resources, booking_id, "expired")
        late = await c.post(
            "/api/v1/bookings/confirm",
            json={"booking_id": booking_id, "payment_method": "pm_card_visa"},
            headers=buyer.headers,
        )
        is_problem(late, 409, "hold_expired")
    assert await counters(resources, event.id) == (5, 0, 0)
    async with resources.engine.connect() as conn:
        assert await check(conn, event.id) == []


async def test_reserve_works_with_redis_down(
    resources: Resources, state_dir: Path, app_factory: AppFactory
) -> None:
    broken = resources.settings.model_copy(
        update={"redis_url": f"unix://{state_dir}/no-such-redis.sock"}
    )
    async with open_resources(broken) as res:
        app = app_factory(res, broken)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            buyer = await make_account(resources)
            event = await make_event(resources, capacity=1)
            r = await c.post(
                "/api/v1/bookings/reserve", json=reserve_body(event.id), headers=buyer.headers
            )
            assert r.status_code == 201, r.text
            r = await c.post(
                "/api/v1/bookings/reserve", json=reserve_body(event.id), headers=buyer.headers
            )
            is_problem(r, 409, "sold_out")  # the conditional update is the authority
    assert await counters(resources, event.id) == (0, 1, 0)


async def test_five_hundred_buyers_race_for_fifty_seats(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    event = await make_event(resources, capacity=50)
    buyers = await make_accounts(resources, 100)
    requests = [buyers[i % len(buyers)] for i in range(500)]

    async def attempt(buyer: Account) -> int:
        # as a well-behaved client: one Idempotency-Key per purchase, and a shed (503), late
        # (202 pending) or cut-off (503 deadline_exceeded) answer is retried with it
        headers = {**buyer.headers, "Idempotency-Key": uuid.uuid4().hex}
        for _ in range(100):
            r = await client.post(
                "/api/v1/bookings/reserve", json=reserve_body(event.id), headers=headers
            )
            if r.status_code not in (202, 503):
                break
            await asyncio.sleep(0.2)
        assert r.status_code in (201, 409), r.text
        if r.status_code == 409:
            assert r.json()["code"] == "sold_out"
        return r.status_code

    statuses = await asyncio.gather(*(attempt(b) for b in requests))
    assert statuses.count(201) == 50
    assert statuses.count(409) == 450
    assert await counters(resources, event.id) == (0, 50, 0)
    async with resources.engine.connect() as conn:
        assert await check(conn, event.id) == []


async def test_reserve_is_rate_limited_per_buyer(
    resources: Resources, app_factory: AppFactory
) -> None:
    limited = dataclasses.replace(
        resources, settings=resources.settings.model_copy(update={"reserve_rate_limit": 2})
    )
    app = app_factory(limited)
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=10)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        for _ in range(2):
            r = await c.post(
                "/api/v1/bookings/reserve", json=reserve_body(event.id), headers=buyer.headers
            )
            assert r.status_code == 201
        r = await c.post(
            "/api/v1/bookings/reserve", json=reserve_body(event.id), headers=buyer.headers
        )
        is_problem(r, 429, "rate_limited")
        assert int(r.headers["Retry-After"]) >= 1
    assert await counters(resources, event.id) == (8, 2, 0)


async def test_support_finds_bookings_by_search_attributes_and_reads_their_state(
    client: httpx.AsyncClient, resources: Resources, temporal_client: Client
) -> None:
    from workflows.booking.contract import QUERY_STATE, BookingState

    buyer = await make_account(resources)
    event = await make_event(resources, capacity=3)
    r = await client.post(
        "/api/v1/bookings/reserve", json=reserve_body(event.id), headers=buyer.headers
    )
    booking_id = r.json()["booking_id"]
    await client.post(
        "/api/v1/bookings/confirm",
        json={"booking_id": booking_id, "payment_method": "pm_card_visa"},
        headers=buyer.headers,
    )
    query = f'EventId="{event.id}" AND UserId="{buyer.id}" AND BookingStatus="confirmed"'
    deadline = time.monotonic() + 15
    while True:  # visibility is eventually consistent
        found = [w.id async for w in temporal_client.list_workflows(query)]
        if found:
            break
        assert time.monotonic() < deadline, "the booking never showed up as confirmed"
        await asyncio.sleep(0.2)
    assert found == [f"booking-{booking_id}"]
    handle = temporal_client.get_workflow_handle(f"booking-{booking_id}")
    state = await handle.query(QUERY_STATE, result_type=BookingState)
    assert state.status == "confirmed"
    assert state.quantity == 1
    assert any("payment succeeded" in line for line in state.history)


async def test_beyond_the_in_flight_cap_requests_are_shed_and_give_their_seats_back(
    resources: Resources,
    app_factory: AppFactory,
) -> None:
    # no wait for a slot: beyond the cap a request is shed at once
    capped = dataclasses.replace(
        resources,
        settings=resources.settings.model_copy(
            update={"reserve_max_in_flight": 2, "reserve_max_wait_seconds": 0}
        ),
    )
    app = app_factory(capped)
    event = await make_event(resources, capacity=40)
    sold_out = await make_event(resources, capacity=1)
    buyers = await make_accounts(resources, 41)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.post(
            "/api/v1/bookings/reserve", json=reserve_body(sold_out.id), headers=buyers[40].headers
        )
        assert r.status_code == 201
        burst = await asyncio.gather(
            *(
                c.post("/api/v1/bookings/reserve", json=reserve_body(event.id), headers=b.headers)
                for b in buyers[:40]
            ),
            *(
                c.post(
                    "/api/v1/bookings/reserve", json=reserve_body(sold_out.id), headers=b.headers
                )
                for b in buyers[:20]
            ),
        )
        held = [r for r in burst[:40] if r.status_code == 201]
        shed = [r for r in burst[:40] if r.status_code == 503]
        assert len(held) + len(shed) == 40
        assert shed, "a cap of 2 in flight must shed part of a burst of 40"
        for r in shed:
            is_problem(r, 503, "overloaded")
            assert r.headers["Retry-After"]
        for r in burst[40:]:  # sold-out answers come from the gate, never shed
            is_problem(r, 409, "sold_out")
        assert await counters(resources, event.id) == (40 - len(held), len(held), 0)
        # the shed requests gave their seats back to the gate: retrying one by one fills the event
        for r, b in zip(burst[:40], buyers[:40], strict=True):
            if r.status_code == 503:
                again = await c.post(
                    "/api/v1/bookings/reserve", json=reserve_body(event.id), headers=b.headers
                )
                assert again.status_code == 201, again.text
    assert await counters(resources, event.id) == (0, 40, 0)


async def test_beyond_the_in_flight_cap_requests_wait_for_a_slot_first_come_first_served(
    resources: Resources,
    app_factory: AppFactory,
) -> None:
    """The default: at the cap a reserve waits (bounded) for a slot instead of a 503 the client
    would retry; the burst is served in full, and the buyers beyond the seats hear sold out."""
    capped = dataclasses.replace(
        resources,
        settings=resources.settings.model_copy(
            update={"reserve_max_in_flight": 2, "reserve_max_wait_seconds": 8}
        ),
    )
    app = app_factory(capped)
    event = await make_event(resources, capacity=30)
    buyers = await make_accounts(resources, 40)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        burst = await asyncio.gather(
            *(
                c.post("/api/v1/bookings/reserve", json=reserve_body(event.id), headers=b.headers)
                for b in buyers
            )
        )
    statuses = sorted(r.status_code for r in burst)
    assert statuses == [201] * 30 + [409] * 10, [r.text for r in burst if r.status_code >= 500]
    for r in burst:
        if r.status_code == 409:
            is_problem(r, 409, "sold_out")
    assert await counters(resources, event.id) == (0, 30, 0)
    async with resources.engine.connect() as conn:
        assert await check(conn, event.id) == []


async def test_a_late_reserve_answers_pending_and_the_buyer_finds_the_booking(
    resources: Resources, app_factory: AppFactory, ns_client: Client
) -> None:
    """No worker answers yet (a fresh namespace): the API stops waiting for a reserve whose
    outcome it does not know and answers 202 pending with the booking id and Retry-After,
    never a bare 503; the gate seat is given back and the gate doubted (rebuilt from
    Postgres). The buyer reads the booking (202 pending while its workflow runs) and, once a
    worker is up, finds it held; the same Idempotency-Key again answers that same booking."""
    impatient = resources.settings.model_copy(update={"reserve_timeout_seconds": 1.0})
    app = app_factory(dataclasses.replace(resources, settings=impatient), impatient, ns_client)
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=3)
    headers = {**buyer.headers, "Idempotency-Key": "late-one"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await client_reserve(c, event.id, 2, headers)
        assert r.status_code == 202, r.text
        pending = r.json()
        assert pending["status"] == "pending"
        assert int(r.headers["Retry-After"]) >= 1
        booking_id = pending["booking_id"]
        # the gate never reads low: the seat is back (a later hold leaves it high), and the
        # counter is doubted: dropped, to be rebuilt from Postgres
        state = await Gate(resources.redis).state(event.id)
        assert (state.counter, state.suspect) == (None, True)
        got = await c.get(f"/api/v1/bookings/{booking_id}", headers=buyer.headers)
        assert (got.status_code, got.json()["status"]) == (202, "pending"), got.text
        other = await make_account(resources)  # nobody else learns it exists
        got = await c.get(f"/api/v1/bookings/{booking_id}", headers=other.headers)
        assert got.status_code == 404

        async def held() -> bool:
            got = await c.get(f"/api/v1/bookings/{booking_id}", headers=buyer.headers)
            assert got.status_code in (200, 202), got.text
            return got.status_code == 200 and got.json()["status"] == "held"

        workers = build_workers(ns_client, resources, list(common.QUEUES.values()), impatient)
        async with contextlib.AsyncExitStack() as stack:
            for w in workers:
                await stack.enter_async_context(w)
            await wait_for_condition(held)
            again = await client_reserve(c, event.id, 2, headers)
    assert again.status_code == 201, again.text
    assert again.json()["booking_id"] == booking_id  # the same booking, held once
    assert await counters(resources, event.id) == (1, 2, 0)


async def client_reserve(
    c: httpx.AsyncClient, event_id: uuid.UUID, quantity: int, headers: dict[str, str]
) -> httpx.Response:
    return await c.post(
        "/api/v1/bookings/reserve", json=reserve_body(event_id, quantity), headers=headers
    )


async def wait_for_condition(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)
