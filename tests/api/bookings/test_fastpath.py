"""The reserve fast path (api/bookings/fastpath.py): sold-out and overloaded answers before
the FastAPI stack, everything else through the endpoint unchanged."""

from __future__ import annotations

import dataclasses
import uuid

import httpx
import pytest
from sqlalchemy import text

from api.bookings import service
from evently.infra.resources import Resources
from tests.support.factories import make_account, make_event
from tests.support.problems import assert_problem as is_problem
from tests.support.temporal import AppFactory

pytestmark = pytest.mark.usefixtures("running_workers")

RESERVE = "/api/v1/bookings/reserve"


def body(event_id: uuid.UUID, quantity: int = 1) -> dict[str, object]:
    return {"event_id": str(event_id), "quantity": quantity}


async def booking_count(res: Resources, event_id: uuid.UUID) -> int:
    async with res.engine.connect() as conn:
        return int(
            await conn.scalar(
                text("SELECT count(*) FROM bookings WHERE event_id = :e"), {"e": event_id}
            )
            or 0
        )


async def test_sold_out_is_answered_before_the_stack(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer, other = await make_account(resources), await make_account(resources)
    event = await make_event(resources, capacity=2)
    r = await client.post(RESERVE, json=body(event.id, 2), headers=buyer.headers)
    assert r.status_code == 201, r.text
    is_problem(
        await client.post(RESERVE, json=body(event.id), headers=other.headers), 409, "sold_out"
    )
    # public information: no token needed to learn it is sold out (no workflow, no Postgres)
    is_problem(await client.post(RESERVE, json=body(event.id)), 409, "sold_out")
    # a request with an Idempotency-Key takes the full path (it may be the retry of a hold)
    keyed = await client.post(
        RESERVE, json=body(event.id), headers={**other.headers, "Idempotency-Key": "k1"}
    )
    is_problem(keyed, 409, "sold_out")
    assert await booking_count(resources, event.id) == 1  # sold-out answers started nothing


@pytest.mark.parametrize(
    "payload",
    [
        b"{not json",
        b'{"event_id": "nope", "quantity": 1}',
        b'{"quantity": 1}',
        b'{"event_id": "00000000-0000-0000-0000-000000000000", "quantity": 0}',
        b'{"event_id": "00000000-0000-0000-0000-000000000000", "quantity": 1, "x": 1}',
        b'{"event_id": "00000000-0000-0000-0000-000000000000", "quantity": true}',
        b"[1, 2]",
        b'{"event_id": "00000000-0000-0000-0000-000000000000", "quantity": 1, "pad": "'
        + b"a" * 5000
        + b'"}',
    ],
)
async def test_anything_else_reaches_the_endpoint(
    client: httpx.AsyncClient, resources: Resources, payload: bytes
) -> None:
    buyer = await make_account(resources)
    r = await client.post(
        RESERVE,
        content=payload,
        headers={**buyer.headers, "Content-Type": "application/json"},
    )
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_at_the_cap_a_request_is_shed_before_the_stack(
    resources: Resources, app_factory: AppFactory
) -> None:
    capped = dataclasses.replace(
        resources, settings=resources.settings.model_copy(update={"reserve_max_in_flight": 1})
    )
    app = app_factory(capped)
    valve = service.ReserveValve(1)
    app.state.reserve_valve = valve
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=5)
    sold_out = await make_event(resources, capacity=1)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (
            await c.post(RESERVE, json=body(sold_out.id), headers=buyer.headers)
        ).status_code == 201
        async with valve:  # one reservation in flight, none may wait: shed at once
            r = await c.post(RESERVE, json=body(event.id), headers=buyer.headers)
            is_problem(r, 503, "overloaded")
            assert r.headers["Retry-After"] == "1"
            # answered before the token check (the endpoint itself would say 401)
            is_problem(await c.post(RESERVE, json=body(event.id)), 503, "overloaded")
            # a sold-out event still answers 409 at the cap
            r = await c.post(RESERVE, json=body(sold_out.id), headers=buyer.headers)
            is_problem(r, 409, "sold_out")
        assert await booking_count(resources, event.id) == 0  # shed: nothing started
        r = await c.post(RESERVE, json=body(event.id), headers=buyer.headers)
        assert r.status_code == 201, r.text
