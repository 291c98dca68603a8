"""Reserving reserved seats through the real API and workers (issue 34): seats by id (all or
none, 409 ``seats_taken`` naming them), best available together, the seats in the reserve and
booking answers, expiry and cancellation giving the seats back, and a race of 50 buyers for 5
seats with no seat sold twice."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid

import httpx
import pytest
from sqlalchemy import text

from evently.infra.resources import Resources
from evently.invariants import check
from tests.support.factories import make_account, make_accounts, make_event
from tests.support.organizations import confirmed_booking
from tests.support.seating import make_seated_event, plan_body
from tests.support.temporal import AppFactory

pytestmark = pytest.mark.usefixtures("running_workers")

RESERVE = "/api/v1/bookings/reserve"


async def owners(res: Resources, event_id: uuid.UUID) -> dict[str, uuid.UUID]:
    """seat id → the booking holding it (free seats left out)."""
    async with res.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT seat_id, booking_id FROM event_seats "
                "WHERE event_id = :e AND booking_id IS NOT NULL"
            ),
            {"e": event_id},
        )
        return {r.seat_id: r.booking_id for r in rows}


async def wait_free(res: Resources, event_id: uuid.UUID, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while await owners(res, event_id):
        assert time.monotonic() < deadline, "seats still held"
        await asyncio.sleep(0.05)


async def no_violations(res: Resources, event_id: uuid.UUID) -> None:
    async with res.engine.connect() as conn:
        assert await check(conn, event_id) == []


async def test_seats_by_id_best_available_and_refusals(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    event = await make_seated_event(resources, plan_body(2, 3, 6), prices={"std": "45.00"})
    a, b = await make_account(resources), await make_account(resources)
    r = await client.post(
        RESERVE,
        json={"event_id": str(event.id), "seats": ["A-2-3", "A-2-4"]},
        headers=a.headers,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["amount"] == "90.00"
    assert [s["id"] for s in body["seats"]] == ["A-2-3", "A-2-4"]
    assert body["seats"][0] == {"id": "A-2-3", "section": "A", "row": "2", "label": "3"}
    got = await client.get(f"/api/v1/bookings/{body['booking_id']}", headers=a.headers)
    assert [s["id"] for s in got.json()["seats"]] == ["A-2-3", "A-2-4"]

    # all or none: one taken seat refuses the lot and names it
    r = await client.post(
        RESERVE,
        json={"event_id": str(event.id), "seats": ["A-2-4", "A-2-5"]},
        headers=b.headers,
    )
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "seats_taken"
    assert r.json()["seats"] == ["A-2-4"]
    assert "A-2-5" not in await owners(resources, event.id)

    # best available, together: two adjacent seats of the best row
    types = await client.get(f"/api/v1/events/{event.id}/seating")
    assert types.status_code == 200
    async with resources.engine.connect() as conn:
        std = await conn.scalar(
            text("SELECT id FROM ticket_types WHERE event_id = :e AND seat_category = 'std'"),
            {"e": event.id},
        )
    r = await client.post(
        RESERVE,
        json={
            "event_id": str(event.id),
            "lines": [{"ticket_type_id": str(std), "quantity": 2, "together": True}],
        },
        headers=b.headers,
    )
    assert r.status_code == 201, r.text
    seats = r.json()["seats"]
    assert len(seats) == 2
    assert seats[0]["row"] == seats[1]["row"]
    assert abs(int(seats[0]["label"]) - int(seats[1]["label"])) == 1

    # seats by id on a general-admission event: 422, nothing taken
    ga = await make_event(resources, capacity=5)
    r = await client.post(
        RESERVE, json={"event_id": str(ga.id), "seats": ["A-1-1"]}, headers=a.headers
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "seats_invalid"
    # a GA booking answers no seats
    r = await client.post(RESERVE, json={"event_id": str(ga.id), "quantity": 1}, headers=b.headers)
    assert r.status_code == 201
    assert r.json()["seats"] == []
    await no_violations(resources, event.id)


async def test_paid_then_cancelled_gives_the_seats_back(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    event = await make_seated_event(resources, plan_body(1, 2, 4))
    buyer = await make_account(resources)
    booking_id = await confirmed_booking(client, buyer, event.id, seats=["A-1-1", "A-1-2"])
    assert set(await owners(resources, event.id)) == {"A-1-1", "A-1-2"}  # confirm keeps them
    await no_violations(resources, event.id)
    cancelled = await client.delete(f"/api/v1/bookings/{booking_id}", headers=buyer.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert await owners(resources, event.id) == {}
    got = await client.get(f"/api/v1/bookings/{booking_id}", headers=buyer.headers)
    assert got.json()["seats"] == []
    await no_violations(resources, event.id)


async def test_hold_expiry_frees_the_seats(resources: Resources, app_factory: AppFactory) -> None:
    short = dataclasses.replace(
        resources, settings=resources.settings.model_copy(update={"hold_seconds": 1})
    )
    app = app_factory(short)
    event = await make_seated_event(resources, plan_body(1, 1, 4))
    buyer = await make_account(resources)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.post(
            RESERVE, json={"event_id": str(event.id), "seats": ["A-1-3"]}, headers=buyer.headers
        )
        assert r.status_code == 201, r.text
        assert set(await owners(resources, event.id)) == {"A-1-3"}
        await wait_free(resources, event.id)
        seats = await c.get(f"/api/v1/events/{event.id}/seats")
        assert "A-1-3" not in seats.json()["taken"]
    await no_violations(resources, event.id)


async def test_fifty_buyers_for_five_seats_none_sold_twice(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    event = await make_seated_event(resources, plan_body(1, 1, 10))
    wanted = [f"A-1-{k}" for k in range(3, 8)]  # the five best seats
    buyers = await make_accounts(resources, 50)

    async def buy(i: int) -> httpx.Response:
        # everybody asks for a pair among the five, overlapping their neighbours'
        pair = [wanted[i % 5], wanted[(i + 1) % 5]]
        return await client.post(
            RESERVE, json={"event_id": str(event.id), "seats": pair}, headers=buyers[i].headers
        )

    answers = await asyncio.gather(*(buy(i) for i in range(50)))
    won = [r for r in answers if r.status_code == 201]
    refused = [r for r in answers if r.status_code != 201]
    assert won, [r.text for r in answers[:3]]
    assert all(r.status_code == 409 and r.json()["code"] == "seats_taken" for r in refused), {
        (r.status_code, r.text) for r in refused
    }
    held = await owners(resources, event.id)
    # every seat held belongs to exactly the booking that got 201 for it, and no more
    by_booking = {
        uuid.UUID(r.json()["booking_id"]): {s["id"] for s in r.json()["seats"]} for r in won
    }
    assert sum(len(s) for s in by_booking.values()) == len(held)
    for booking_id, seats in by_booking.items():
        assert all(held[s] == booking_id for s in seats)
    # five seats asked in overlapping pairs (a ring): two disjoint pairs fit, and a refusal
    # only ever meets a seat of a winner (holds last minutes), so exactly two win
    assert len(won) == 2
    await no_violations(resources, event.id)


async def test_freed_seats_of_a_seated_event_go_to_the_waitlist(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    event = await make_seated_event(resources, plan_body(1, 1, 3))
    eid = str(event.id)
    a, b, c = (
        await make_account(resources),
        await make_account(resources),
        await make_account(resources),
    )
    r = await client.post(
        RESERVE, json={"event_id": eid, "seats": ["A-1-1", "A-1-2", "A-1-3"]}, headers=a.headers
    )
    assert r.status_code == 201, r.text
    booking_a = r.json()["booking_id"]
    r = await client.post(
        "/api/v1/waitlist/join", json={"event_id": eid, "quantity": 2}, headers=b.headers
    )
    assert r.status_code == 201, r.text
    entry_id = r.json()["entry_id"]
    r = await client.delete(f"/api/v1/bookings/{booking_a}", headers=a.headers)
    assert r.status_code == 200, r.text
    await no_violations(resources, event.id)

    deadline = time.monotonic() + 20
    while (await client.get(f"/api/v1/waitlist/{entry_id}", headers=b.headers)).json()[
        "status"
    ] != "offered":
        assert time.monotonic() < deadline, "no offer"
        await asyncio.sleep(0.05)
    # 3 seats freed, 2 offered: one seat is public again (any seat: the offer's are picked at
    # its acceptance), the two kept for the offer are not for sale, not even by id
    r = await client.post(RESERVE, json={"event_id": eid, "seats": ["A-1-2"]}, headers=c.headers)
    assert r.status_code == 201, r.text
    d = await make_account(resources)
    r = await client.post(RESERVE, json={"event_id": eid, "seats": ["A-1-3"]}, headers=d.headers)
    assert r.status_code == 409, r.text
    assert "A-1-3" not in await owners(resources, event.id)
    r = await client.post(f"/api/v1/waitlist/{entry_id}/accept", headers=b.headers)
    assert r.status_code == 201, r.text
    booking_b = r.json()["booking_id"]
    got = await client.get(f"/api/v1/bookings/{booking_b}", headers=b.headers)
    seats = [s["id"] for s in got.json()["seats"]]
    assert sorted(seats) == ["A-1-1", "A-1-3"]
    held = await owners(resources, event.id)
    assert {s for s, owner in held.items() if owner == uuid.UUID(booking_b)} == set(seats)
    await no_violations(resources, event.id)


async def _entry_status(client: httpx.AsyncClient, entry_id: str, headers: dict[str, str]) -> str:
    r = await client.get(f"/api/v1/waitlist/{entry_id}", headers=headers)
    assert r.status_code == 200, r.text
    return str(r.json()["status"])


async def _available(res: Resources, event_id: uuid.UUID) -> int:
    async with res.engine.connect() as conn:
        n: int = await conn.scalar(
            text("SELECT available FROM events WHERE id = :e"), {"e": event_id}
        )
    return n


async def test_a_waitlist_entry_for_a_ticket_type_is_offered_only_seats_of_its_category(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    """Issue 34, waitlist offers per category: a buyer waiting for the back seats (type Back,
    20.00) is not offered the front seats (Front, 50.00) a cancellation frees. Those stay kept
    for the waitlist (the event stays sold out to the public), so a buyer who can use them
    joins and is offered one at once. The back seat freed next is offered to the first buyer,
    and accepting it buys Back at its price, with that seat on the ticket."""
    event = await make_seated_event(
        resources,
        plan_body(2, 1, 2, categories=["front", "back"]),
        prices={"front": "50.00", "back": "20.00"},
    )
    eid = str(event.id)
    async with resources.engine.connect() as conn:
        types = {
            r.seat_category: str(r.id)
            for r in await conn.execute(
                text(
                    "SELECT id, seat_category FROM ticket_types "
                    "WHERE event_id = :e AND seat_category IS NOT NULL"
                ),
                {"e": event.id},
            )
        }
    a, c, d, w, x = await make_accounts(resources, 5)
    held: dict[str, str] = {}
    for who, seats in ((a, ["A-1-1", "A-1-2"]), (c, ["B-1-1"]), (d, ["B-1-2"])):
        r = await client.post(RESERVE, json={"event_id": eid, "seats": seats}, headers=who.headers)
        assert r.status_code == 201, r.text
        held[seats[0]] = r.json()["booking_id"]

    join = "/api/v1/waitlist/join"
    # the type must be this event's, and able to hold the quantity
    other = await make_seated_event(resources, plan_body(1, 1, 2), prices={"std": "5.00"})
    async with resources.engine.connect() as conn:
        foreign = await conn.scalar(
            text("SELECT id FROM ticket_types WHERE event_id = :e AND NOT is_default"),
            {"e": other.id},
        )
    r = await client.post(
        join,
        json={"event_id": eid, "quantity": 1, "ticket_type_id": str(foreign)},
        headers=w.headers,
    )
    assert r.status_code == 404, r.text
    assert r.json()["code"] == "ticket_type_not_found"
    r = await client.post(
        join,
        json={"event_id": eid, "quantity": 3, "ticket_type_id": types["back"]},
        headers=w.headers,
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "quantity_above_capacity"
    ga = await make_event(resources, capacity=1)
    r = await client.post(
        join,
        json={"event_id": str(ga.id), "quantity": 1, "ticket_type_id": types["back"]},
        headers=w.headers,
    )
    assert r.status_code == 422, r.text
    r = await client.post(
        join,
        json={"event_id": eid, "quantity": 1, "ticket_type_id": types["back"]},
        headers=w.headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["ticket_type_id"] == types["back"]
    entry_id = r.json()["entry_id"]

    # the front seats are freed: not for this entry, and not for sale either
    r = await client.delete(f"/api/v1/bookings/{held['A-1-1']}", headers=a.headers)
    assert r.status_code == 200, r.text
    r = await client.post(
        join,
        json={"event_id": eid, "quantity": 1, "ticket_type_id": types["front"]},
        headers=x.headers,
    )
    assert r.status_code == 201, r.text  # still sold out to the public: x may join
    front_entry = r.json()["entry_id"]
    deadline = time.monotonic() + 20
    while await _entry_status(client, front_entry, x.headers) != "offered":
        assert time.monotonic() < deadline, "the front seat was not offered to the front entry"
        await asyncio.sleep(0.05)
    assert await _entry_status(client, entry_id, w.headers) == "waiting"
    assert await _available(resources, event.id) == 0
    r = await client.post(RESERVE, json={"event_id": eid, "seats": ["A-1-2"]}, headers=a.headers)
    assert r.status_code == 409, r.text  # kept for the waitlist, even by id
    await no_violations(resources, event.id)

    # a back seat is freed: offered to the entry, bought as Back at 20.00, on its ticket
    r = await client.delete(f"/api/v1/bookings/{held['B-1-1']}", headers=c.headers)
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 20
    while await _entry_status(client, entry_id, w.headers) != "offered":
        assert time.monotonic() < deadline, "no offer"
        await asyncio.sleep(0.05)
    # nobody waits any more: the front seat still kept (A-1-2) is back on sale
    assert await _available(resources, event.id) == 1
    r = await client.post(f"/api/v1/waitlist/{entry_id}/accept", headers=w.headers)
    assert r.status_code == 201, r.text
    assert r.json()["amount"] == "20.00"
    booking = r.json()["booking_id"]
    r = await client.post(
        "/api/v1/bookings/confirm",
        json={"booking_id": booking, "payment_method": "pm_card_visa"},
        headers=w.headers,
    )
    assert r.status_code == 200, r.text
    got = (await client.get(f"/api/v1/bookings/{booking}", headers=w.headers)).json()
    assert [s["id"] for s in got["seats"]] == ["B-1-1"]
    assert [(line["ticket_type_id"], line["quantity"]) for line in got["lines"]] == [
        (types["back"], 1)
    ]
    async with resources.engine.connect() as conn:
        tickets = (
            await conn.execute(
                text("SELECT seat_id, ticket_type_id FROM tickets WHERE booking_id = :b"),
                {"b": uuid.UUID(booking)},
            )
        ).all()
    assert [(t.seat_id, str(t.ticket_type_id)) for t in tickets] == [("B-1-1", types["back"])]
    await no_violations(resources, event.id)
