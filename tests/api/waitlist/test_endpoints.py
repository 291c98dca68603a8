"""The waitlist end to end on the real stack: real API, real workers, real Postgres, Redis and
Temporal dev server. Freed seats never become public while someone waits, the invariant checker
passes after every step, and bad input changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from temporalio.client import Client

from evently.infra.resources import Resources
from tests.support.factories import make_account, make_accounts, make_event
from tests.support.problems import assert_problem as _problem
from tests.support.waitlist import counters, entry, eventually, invariants_hold, row
from workflows.waitlist.client import poke

pytestmark = pytest.mark.usefixtures("running_workers")
API = "/api/v1"


async def _state(res: Resources, event_id: uuid.UUID) -> Any:
    """Everything a request could change: counters and every entry of the event."""
    async with res.engine.connect() as conn:
        entries = (
            await conn.execute(
                text(
                    "SELECT id, status, offered_quantity, booking_id FROM waitlist_entries "
                    "WHERE event_id = :e ORDER BY id"
                ),
                {"e": event_id},
            )
        ).all()
    return await counters(res, event_id), [tuple(e) for e in entries]


async def test_freed_seats_go_to_the_waitlist_never_to_the_public(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    res = resources
    event = await make_event(res, capacity=3)
    eid = str(event.id)
    a, b, d, e, f = [await make_account(res) for _ in range(5)]

    r = await client.post(
        f"{API}/waitlist/join", json={"event_id": eid, "quantity": 1}, headers=b.headers
    )
    _problem(r, 409, "seats_available")  # seats are on sale: buy them instead

    r = await client.post(
        f"{API}/bookings/reserve", json={"event_id": eid, "quantity": 3}, headers=a.headers
    )
    assert r.status_code == 201, r.text
    booking_a = r.json()["booking_id"]
    r = await client.post(
        f"{API}/bookings/reserve", json={"event_id": eid, "quantity": 1}, headers=b.headers
    )
    _problem(r, 409, "sold_out")

    r = await client.post(
        f"{API}/waitlist/join", json={"event_id": eid, "quantity": 2}, headers=b.headers
    )
    assert r.status_code == 201, r.text
    wb = r.json()
    assert wb["position"] == 1
    assert wb["status"] == "waiting"
    r = await client.post(
        f"{API}/waitlist/join", json={"event_id": eid, "quantity": 2}, headers=d.headers
    )
    assert (r.status_code, r.json()["position"]) == (201, 2)
    wd = r.json()
    await invariants_hold(res, event.id)

    # bad input: 4xx problem+json, nothing changes
    before = await _state(res, event.id)
    bad = [
        (b, {"event_id": eid, "quantity": 1}, 409, "already_waitlisted"),
        (e, {"event_id": eid, "quantity": 4}, 422, "quantity_above_capacity"),
        (e, {"event_id": eid, "quantity": 0}, 422, "validation_error"),
        (e, {"event_id": eid, "quantity": 11}, 422, "quantity_too_large"),
        (e, {"event_id": str(uuid.uuid4()), "quantity": 1}, 404, "event_not_found"),
        (e, {"event_id": "nope", "quantity": 1}, 422, "validation_error"),
        (e, {"event_id": eid, "quantity": 1, "extra": 1}, 422, "validation_error"),
    ]
    for who, body, status, code in bad:
        _problem(
            await client.post(f"{API}/waitlist/join", json=body, headers=who.headers), status, code
        )
    r = await client.post(f"{API}/waitlist/join", json={"event_id": eid, "quantity": 1})
    assert r.status_code == 401
    draft = await make_event(res, capacity=3, status="draft")
    r = await client.post(
        f"{API}/waitlist/join", json={"event_id": str(draft.id), "quantity": 1}, headers=e.headers
    )
    _problem(r, 409, "event_not_on_sale")
    _problem(
        await client.get(f"{API}/waitlist/not-a-uuid", headers=e.headers), 422, "validation_error"
    )
    _problem(
        await client.post(f"{API}/waitlist/{uuid.uuid4()}/accept", headers=e.headers),
        404,
        "waitlist_entry_not_found",
    )
    _problem(
        await client.get(f"{API}/waitlist/{wb['entry_id']}", headers=e.headers),
        404,
        "waitlist_entry_not_found",
    )  # someone else's entry does not exist for you
    _problem(
        await client.post(f"{API}/waitlist/{wb['entry_id']}/accept", headers=e.headers),
        404,
        "waitlist_entry_not_found",
    )
    _problem(
        await client.post(f"{API}/waitlist/{wb['entry_id']}/accept", headers=b.headers),
        409,
        "no_open_offer",
    )
    _problem(
        await client.delete(f"{API}/waitlist/{wd['entry_id']}", headers=b.headers),
        404,
        "waitlist_entry_not_found",
    )
    assert await _state(res, event.id) == before

    avail = (await client.get(f"{API}/events/{eid}/availability")).json()
    assert (avail["available"], avail["waitlist_length"]) == (0, 2)

    # the holder cancels: 3 seats freed; b (2) is offered at once, d (2) does not fit the last
    # seat and keeps first place; that seat stays kept for the waitlist, never public
    r = await client.delete(f"{API}/bookings/{booking_a}", headers=a.headers)
    assert r.status_code == 200, r.text
    assert (await counters(res, event.id))[0] == 0
    await invariants_hold(res, event.id)

    async def offered() -> Any:
        got = (await client.get(f"{API}/waitlist/{wb['entry_id']}", headers=b.headers)).json()
        return got if got["status"] == "offered" else None

    got = await eventually(offered)
    assert got["offer"]["seats"] == 2
    assert got["offer"]["expires_at"]
    assert got["position"] is None
    assert await counters(res, event.id) == (0, 3, 0, 1)
    await invariants_hold(res, event.id)
    got_d = (await client.get(f"{API}/waitlist/{wd['entry_id']}", headers=d.headers)).json()
    assert (got_d["status"], got_d["position"], got_d["offer"]) == ("waiting", 1, None)
    avail = (await client.get(f"{API}/events/{eid}/availability")).json()
    assert (avail["available"], avail["held"], avail["waitlist_length"]) == (0, 3, 2)
    r = await client.post(
        f"{API}/bookings/reserve", json={"event_id": eid, "quantity": 1}, headers=f.headers
    )
    _problem(r, 409, "sold_out")  # the kept seat is not for sale

    # b accepts: a held booking of the offered seats, paid as usual
    r = await client.post(f"{API}/waitlist/{wb['entry_id']}/accept", headers=b.headers)
    assert r.status_code == 201, r.text
    accepted = r.json()
    assert (accepted["status"], accepted["quantity"]) == ("held", 2)
    assert await counters(res, event.id) == (0, 3, 0, 1)
    await invariants_hold(res, event.id)
    r = await client.post(f"{API}/waitlist/{wb['entry_id']}/accept", headers=b.headers)
    assert (r.status_code, r.json()["booking_id"]) == (201, accepted["booking_id"])
    r = await client.post(
        f"{API}/bookings/confirm",
        json={"booking_id": accepted["booking_id"], "payment_method": "pm_card_visa"},
        headers=b.headers,
    )
    assert r.status_code == 200, r.text
    assert await counters(res, event.id) == (0, 1, 2, 1)
    await invariants_hold(res, event.id)
    got = (await client.get(f"{API}/waitlist/{wb['entry_id']}", headers=b.headers)).json()
    assert got["status"] == "accepted"
    assert got["offer"]["booking_id"] == accepted["booking_id"]

    # d leaves: nobody waits any more, the kept seat goes back on sale
    r = await client.delete(f"{API}/waitlist/{wd['entry_id']}", headers=d.headers)
    assert (r.status_code, r.json()["status"]) == (200, "left")

    async def public_again() -> bool:
        return await counters(res, event.id) == (1, 0, 2, 0)

    await eventually(public_again)
    await invariants_hold(res, event.id)
    _problem(
        await client.delete(f"{API}/waitlist/{wd['entry_id']}", headers=d.headers),
        409,
        "waitlist_entry_not_active",
    )
    avail = (await client.get(f"{API}/events/{eid}/availability")).json()
    assert (avail["available"], avail["waitlist_length"]) == (1, 0)

    r = await client.get(f"{API}/users/notifications", headers=b.headers)
    assert r.status_code == 200, r.text
    page = r.json()
    assert [n["kind"] for n in page["items"]] == ["booking_confirmed", "waitlist_offer"]
    assert page["total"] == 2
    r = await client.get(f"{API}/users/notifications?limit=1&page=2", headers=b.headers)
    assert [n["kind"] for n in r.json()["items"]] == ["waitlist_offer"]
    r = await client.get(f"{API}/users/notifications", headers=a.headers)
    assert [n["kind"] for n in r.json()["items"]] == ["booking_cancelled"]
    _problem(
        await client.get(f"{API}/users/notifications?limit=0", headers=a.headers),
        422,
        "validation_error",
    )


async def test_accepting_a_lapsed_offer_changes_nothing(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    res = resources
    event = await make_event(res, capacity=1)
    eid = str(event.id)
    a, b, c = [await make_account(res) for _ in range(3)]
    r = await client.post(
        f"{API}/bookings/reserve", json={"event_id": eid, "quantity": 1}, headers=a.headers
    )
    booking_a = r.json()["booking_id"]
    r = await client.post(
        f"{API}/waitlist/join", json={"event_id": eid, "quantity": 1}, headers=b.headers
    )
    wb = r.json()["entry_id"]
    r = await client.post(
        f"{API}/waitlist/join", json={"event_id": eid, "quantity": 1}, headers=c.headers
    )
    wc = r.json()["entry_id"]
    await client.delete(f"{API}/bookings/{booking_a}", headers=a.headers)

    async def offered() -> bool:
        return bool((await entry(res, uuid.UUID(wb))).status == "offered")

    await eventually(offered)
    # the window has passed by the wall clock while the workflow has not yet run its timer
    async with res.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE waitlist_entries SET offer_expires_at = now() - interval '1 second' "
                "WHERE id = :id"
            ),
            {"id": wb},
        )
    before = await _state(res, event.id)
    _problem(
        await client.post(f"{API}/waitlist/{wb}/accept", headers=b.headers), 409, "offer_expired"
    )
    _problem(
        await client.post(f"{API}/waitlist/{wc}/accept", headers=c.headers), 409, "no_open_offer"
    )
    assert await _state(res, event.id) == before
    n = await row(res, "SELECT count(*) AS n FROM bookings WHERE event_id = :e", e=event.id)
    assert n.n == 1
    await invariants_hold(res, event.id)

    # declining the (lapsed-by-clock) offer still passes the seat on
    r = await client.delete(f"{API}/waitlist/{wb}", headers=b.headers)
    assert r.json() == {"entry_id": wb, "status": "left", "declined_offer": True}

    async def next_one() -> bool:
        return bool((await entry(res, uuid.UUID(wc))).status == "offered")

    await eventually(next_one)
    assert await counters(res, event.id) == (0, 1, 0, 0)
    await invariants_hold(res, event.id)


async def test_cancelling_the_event_closes_its_waitlist(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    res = resources
    event = await make_event(res, capacity=2)
    eid = str(event.id)
    admin = await make_account(res, "admin")
    a, b, c = [await make_account(res) for _ in range(3)]
    r = await client.post(
        f"{API}/bookings/reserve", json={"event_id": eid, "quantity": 2}, headers=a.headers
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        f"{API}/waitlist/join", json={"event_id": eid, "quantity": 1}, headers=b.headers
    )
    wb = uuid.UUID(r.json()["entry_id"])
    r = await client.post(
        f"{API}/waitlist/join", json={"event_id": eid, "quantity": 2}, headers=c.headers
    )
    wc = uuid.UUID(r.json()["entry_id"])

    r = await client.delete(f"{API}/admin/events/{eid}", headers=admin.headers)
    assert r.status_code in (200, 202), r.text

    async def closed() -> bool:
        got = [(await entry(res, w)).status for w in (wb, wc)]
        return got == ["expired", "expired"] and await counters(res, event.id) == (2, 0, 0, 0)

    await eventually(closed, timeout=30)
    await invariants_hold(res, event.id)
    r = await client.post(f"{API}/waitlist/{wb}/accept", headers=b.headers)
    _problem(r, 409, "offer_expired")


async def test_fifty_buyers_leave_or_decline_at_once_and_all_succeed(
    client: httpx.AsyncClient, resources: Resources, temporal_client: Client
) -> None:
    """Half of them decline an open offer, half leave while waiting, all in the same moment:
    every answer is 200 (no workflow update is involved: Temporal caps those at 10 in flight
    per workflow), and the seats end up back on sale once nobody waits."""
    res = resources
    event = await make_event(res, capacity=25)
    async with res.engine.begin() as conn:  # sold out
        await conn.execute(
            text("UPDATE events SET available = 0, sold = 25 WHERE id = :id"), {"id": event.id}
        )
    buyers = await make_accounts(res, 50)
    entries = []
    for buyer in buyers:
        r = await client.post(
            f"{API}/waitlist/join",
            json={"event_id": str(event.id), "quantity": 1},
            headers=buyer.headers,
        )
        assert r.status_code == 201, r.text
        entries.append(r.json()["entry_id"])
    async with res.engine.begin() as conn:  # 25 seats freed, kept for the waitlist
        await conn.execute(
            text("UPDATE events SET sold = 0, held = 25, waitlist_pool = 25 WHERE id = :id"),
            {"id": event.id},
        )
    await poke(temporal_client, event.id, offer_seconds=600)

    async def offered() -> bool:
        return [(await entry(res, uuid.UUID(e))).status for e in entries[:25]] == ["offered"] * 25

    await eventually(offered, timeout=60)
    answers = await asyncio.gather(
        *(
            client.delete(f"{API}/waitlist/{e}", headers=b.headers)
            for e, b in zip(entries, buyers, strict=True)
        )
    )
    assert sorted(r.status_code for r in answers) == [200] * 50, [
        r.text for r in answers if r.status_code != 200
    ]
    # the first 25 declined their offers; seats they gave back may already have been offered
    # to someone else in line, who then declined too
    assert sum(r.json()["declined_offer"] for r in answers) >= 25
    assert {(await entry(res, uuid.UUID(e))).status for e in entries} == {"left"}

    async def back_on_sale() -> bool:
        return await counters(res, event.id) == (25, 0, 0, 0)

    await eventually(back_on_sale, timeout=60)
    await invariants_hold(res, event.id)
