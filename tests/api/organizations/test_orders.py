"""Issue 29 on the real stack: a 0.00 booking is confirmed with no payment step, and an
organization's staff order tickets for a buyer (comp, box office) — the same seat accounting
as a buyer's, confirmed at once, mailed, recorded, exported and counted apart."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from temporalio.client import Client

from evently.accounts import NO_PASSWORD
from evently.infra.resources import Resources
from evently.invariants import check
from tests.api.events.conftest import unique
from tests.api.organizations.helpers import Org, make_org, org_event, org_venue
from tests.factories import Account, make_account, make_accounts
from tests.workflows.histories import record

pytestmark = pytest.mark.usefixtures("running_workers")


@pytest.fixture(scope="module")
async def admin(resources: Resources) -> Account:
    return await make_account(resources, "admin")


def _problem(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code, r.json()


async def _payments(res: Resources, booking_id: str) -> list[Any]:
    async with res.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT kind, status, provider, amount FROM payments WHERE booking_id = :b "
                "ORDER BY created_at"
            ),
            {"b": booking_id},
        )
        return list(rows)


async def _facts(res: Resources, booking_id: str) -> Any:
    async with res.engine.connect() as conn:
        return (
            await conn.execute(
                text(
                    "SELECT b.status, b.channel, b.note, b.amount, "
                    "(SELECT count(*) FROM tickets t WHERE t.booking_id = b.id "
                    " AND t.status = 'valid') AS tickets, "
                    "(SELECT count(*) FROM payment_attempts a WHERE a.booking_id = b.id) "
                    " AS attempts, "
                    "(SELECT count(*) FROM notifications n WHERE n.booking_id = b.id "
                    " AND n.kind = 'booking_confirmed') AS confirmations "
                    "FROM bookings b WHERE b.id = :b"
                ),
                {"b": booking_id},
            )
        ).one()


async def _event_with_types(
    client: httpx.AsyncClient, org: Org, *, capacity: int, price: str = "40.00"
) -> tuple[dict[str, Any], dict[str, Any]]:
    venue = await org_venue(client, org, capacity=max(capacity, 50))
    event = await org_event(client, org, venue, publish=True, capacity=capacity, price=price)
    r = await client.patch(
        org.url(f"/events/{event['id']}"), json={"queue": "off"}, headers=org.owner.headers
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        org.url(f"/events/{event['id']}/ticket-types"),
        json={"name": "Free entry", "price": "0.00"},
        headers=org.owner.headers,
    )
    assert r.status_code == 201, r.text
    return event, r.json()


async def test_a_zero_booking_confirms_at_once_with_tickets_and_no_payment(
    client: httpx.AsyncClient, resources: Resources, admin: Account, temporal_client: Client
) -> None:
    org = await make_org(client, resources, admin)
    event, free = await _event_with_types(client, org, capacity=10)
    r = await client.post(
        org.url(f"/events/{event['id']}/promo-codes"),
        json={"code": "ALLFREE", "percent_off": "100", "max_uses": 5},
        headers=org.owner.headers,
    )
    assert r.status_code == 201, r.text
    buyer = await make_account(resources)

    # a free ticket type: confirmed in the reserve answer, no confirm call needed
    r = await client.post(
        "/api/v1/bookings/reserve",
        json={"event_id": event["id"], "lines": [{"ticket_type_id": free["id"], "quantity": 2}]},
        headers=buyer.headers,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["status"], body["amount"], body["hold_expires_at"]) == ("confirmed", "0.00", None)
    by_type = body["booking_id"]
    # a paid type with a 100% code
    r = await client.post(
        "/api/v1/bookings/reserve",
        json={"event_id": event["id"], "quantity": 1, "promo_code": "allfree"},
        headers=buyer.headers,
    )
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["amount"], r.json()["discount"]) == (
        "confirmed",
        "0.00",
        "40.00",
    )
    by_code = r.json()["booking_id"]

    for booking_id, seats in ((by_type, 2), (by_code, 1)):
        facts = await _facts(resources, booking_id)
        assert (facts.status, facts.channel, facts.tickets) == ("confirmed", "online", seats)
        assert facts.attempts == 0  # no charge was ever attempted at a provider
        assert facts.confirmations == 1  # the confirmation email's notice
        assert [
            (p.kind, p.status, p.provider, p.amount) for p in await _payments(resources, booking_id)
        ] == [("charge", "succeeded", "free", Decimal("0.00"))]
        got = await client.get(f"/api/v1/bookings/{booking_id}/tickets", headers=buyer.headers)
        assert got.status_code == 200, got.text
        assert len(got.json()["tickets"]) == seats
    # paying again is answered as confirmed, and nothing is charged
    r = await client.post(
        "/api/v1/bookings/confirm",
        json={"booking_id": by_type, "payment_method": "pm_card_visa"},
        headers=buyer.headers,
    )
    assert r.status_code == 200, r.text
    assert (await _facts(resources, by_type)).attempts == 0
    await record(temporal_client, f"booking-{by_type}", "booking-free-confirmed")

    # the buyer may still cancel it: "refunded" with no provider call, the seats back
    r = await client.delete(f"/api/v1/bookings/{by_code}", headers=buyer.headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert [(p.kind, p.provider) for p in await _payments(resources, by_code)] == [
        ("charge", "free"),
        ("refund", "free"),
    ]
    async with resources.engine.connect() as conn:
        assert await check(conn, uuid.UUID(event["id"])) == []
        counters = (
            await conn.execute(
                text("SELECT available, held, sold FROM events WHERE id = :e"), {"e": event["id"]}
            )
        ).one()
    assert tuple(counters) == (8, 0, 2)


async def test_staff_order_comps_and_box_office_sales(
    client: httpx.AsyncClient, resources: Resources, admin: Account, temporal_client: Client
) -> None:
    org = await make_org(client, resources, admin)
    event, free = await _event_with_types(client, org, capacity=6)
    orders = org.url(f"/events/{event['id']}/orders")
    guest_email = f"{unique('guest').lower()}@example.com"
    comp = {
        "quantity": 2,
        "buyer": {"email": guest_email, "name": "Guest List"},
        "payment": "comp",
        "note": "band's family",
    }

    # door staff may not; another organization's event is 404
    _problem(
        await client.post(orders, json=comp, headers=org.members["door"].headers),
        403,
        "organization_role_required",
    )
    other = await make_org(client, resources, admin, roles=("owner",))
    _problem(
        await client.post(
            other.url(f"/events/{event['id']}/orders"), json=comp, headers=other.owner.headers
        ),
        404,
        "event_not_found",
    )

    r = await client.post(orders, json=comp, headers=org.members["manager"].headers)
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["status"], out["amount"], out["channel"], out["payment"], out["note"]) == (
        "confirmed",
        "0.00",
        "comp",
        "comp",
        "band's family",
    )
    assert out["buyer"]["email"] == guest_email
    assert out["buyer_account_created"] is True
    comp_id = out["booking_id"]
    await record(temporal_client, f"booking-{comp_id}", "booking-organizer-order")

    # the account made for the order has no usable password
    async with resources.engine.connect() as conn:
        pw = await conn.scalar(
            text("SELECT password_hash FROM users WHERE email = :e"), {"e": guest_email}
        )
    assert pw == NO_PASSWORD
    _problem(
        await client.post(
            "/api/v1/auth/login", json={"email": guest_email, "password": NO_PASSWORD}
        ),
        401,
        "invalid_credentials",
    )

    # box office: an existing buyer's account is used, the full price recorded as paid
    walk_in = await make_account(resources)
    r = await client.post(
        orders,
        json={
            "lines": [{"ticket_type_id": free["id"], "quantity": 1}],
            "buyer": {"email": walk_in.user.email.upper(), "name": "ignored"},
            "payment": "box_office",
        },
        headers={**org.members["finance"].headers, "Idempotency-Key": "door-1"},
    )
    assert r.status_code == 201, r.text
    assert (r.json()["buyer"]["id"], r.json()["buyer_account_created"]) == (
        str(walk_in.id),
        False,
    )
    r = await client.post(
        orders,
        json={"quantity": 2, "buyer": {"email": walk_in.user.email}, "payment": "box_office"},
        headers={**org.owner.headers, "Idempotency-Key": "door-2"},
    )
    assert r.status_code == 201, r.text
    box_id = r.json()["booking_id"]
    assert r.json()["amount"] == "80.00"
    # the same order sent again: the same booking, nothing taken twice
    again = await client.post(
        orders,
        json={"quantity": 2, "buyer": {"email": walk_in.user.email}, "payment": "box_office"},
        headers={**org.owner.headers, "Idempotency-Key": "door-2"},
    )
    assert again.status_code == 201, again.text
    assert again.json()["booking_id"] == box_id

    for booking_id, provider, amount, channel, tickets in (
        (comp_id, "comp", Decimal("0.00"), "comp", 2),
        (box_id, "box_office", Decimal("80.00"), "box_office", 2),
    ):
        facts = await _facts(resources, booking_id)
        assert (facts.status, facts.channel, facts.tickets, facts.attempts) == (
            "confirmed",
            channel,
            tickets,
            0,
        )
        assert facts.confirmations == 1
        assert [(p.provider, p.amount) for p in await _payments(resources, booking_id)] == [
            (provider, amount)
        ]

    # 5 of 6 seats taken: an order for 2 is sold out, one for 1 fits
    _problem(
        await client.post(
            orders,
            json={"quantity": 2, "buyer": {"email": guest_email}, "payment": "comp"},
            headers=org.owner.headers,
        ),
        409,
        "sold_out",
    )
    buyer = await make_account(resources)
    r = await client.post(
        "/api/v1/bookings/reserve",
        json={"event_id": event["id"], "quantity": 1},
        headers=buyer.headers,
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        "/api/v1/bookings/confirm",
        json={"booking_id": r.json()["booking_id"], "payment_method": "pm_card_visa"},
        headers=buyer.headers,
    )
    assert r.status_code == 200, r.text

    # the bookings list, its CSV and the analytics tell the channels apart
    listed = await client.get(org.url(f"/events/{event['id']}/bookings"), headers=org.owner.headers)
    assert sorted(b["channel"] for b in listed.json()["items"]) == [
        "box_office",
        "box_office",
        "comp",
        "online",
    ]
    exported = await client.get(
        org.url(f"/events/{event['id']}/bookings.csv"), headers=org.members["finance"].headers
    )
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    by_id = {row["booking_id"]: row for row in rows}
    assert (by_id[comp_id]["channel"], by_id[comp_id]["payment"], by_id[comp_id]["note"]) == (
        "comp",
        "comp",
        "band's family",
    )
    assert (by_id[box_id]["channel"], by_id[box_id]["payment"]) == ("box_office", "box_office")
    assert sorted(row["payment"] for row in rows) == [
        "box_office",
        "box_office",
        "comp",
        "simulated",
    ]
    stats = await client.get(org.url(f"/events/{event['id']}/analytics"), headers=org.owner.headers)
    split = {c["channel"]: c for c in stats.json()["by_channel"]}
    assert {k: (c["bookings"], c["seats"], c["revenue"]["amount"]) for k, c in split.items()} == {
        "box_office": (2, 3, "80.00"),
        "comp": (1, 2, "0.00"),
        "online": (1, 1, "40.00"),
    }

    # the author is audited
    log = await client.get(
        org.url("/audit"), params={"action": "booking.ordered"}, headers=org.owner.headers
    )
    entries = {e["target_id"]: e for e in log.json()["items"]}
    assert entries[comp_id]["actor_user_id"] == str(org.members["manager"].id)
    assert entries[comp_id]["details"]["payment"] == "comp"
    assert entries[comp_id]["details"]["note"] == "band's family"
    assert entries[box_id]["actor_user_id"] == str(org.owner.id)

    # an organizer refund of a box-office sale calls no provider (paid back at the door)
    r = await client.post(
        org.url(f"/events/{event['id']}/bookings/{box_id}/refund"),
        headers=org.members["finance"].headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["refunded"] is True
    assert [(p.kind, p.provider) for p in await _payments(resources, box_id)] == [
        ("charge", "box_office"),
        ("refund", "box_office"),
    ]
    async with resources.engine.connect() as conn:
        assert await check(conn, uuid.UUID(event["id"])) == []


async def test_buyers_and_staff_comps_at_once_never_oversell(
    client: httpx.AsyncClient, resources: Resources, admin: Account
) -> None:
    """200 buyers and 20 staff comp orders at once on 50 seats: exactly 50 taken, every
    refusal a true sold_out (nothing is released meanwhile)."""
    org = await make_org(client, resources, admin)
    venue = await org_venue(client, org, capacity=50)
    event = await org_event(client, org, venue, publish=True, capacity=50, price="10.00")
    r = await client.patch(
        org.url(f"/events/{event['id']}"), json={"queue": "off"}, headers=org.owner.headers
    )
    assert r.status_code == 200, r.text
    buyers = await make_accounts(resources, 200)
    staff = [org.owner, org.members["manager"], org.members["finance"]]

    async def retrying(url: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        # a well-behaved client: one Idempotency-Key per purchase, 202/503 retried with it
        headers = {**headers, "Idempotency-Key": uuid.uuid4().hex}
        for _ in range(100):
            r = await client.post(url, json=body, headers=headers)
            if r.status_code not in (202, 503):
                return r
            await asyncio.sleep(0.2)
        return r

    async def buy(b: Account) -> tuple[str, int, str | None]:
        r = await retrying(
            "/api/v1/bookings/reserve", {"event_id": event["id"], "quantity": 1}, b.headers
        )
        return "buyer", r.status_code, r.json().get("code") or r.json().get("status")

    async def comp(i: int) -> tuple[str, int, str | None]:
        r = await retrying(
            org.url(f"/events/{event['id']}/orders"),
            {
                "quantity": 1,
                "buyer": {"email": f"comp-{uuid.uuid4().hex[:8]}-{i}@example.com"},
                "payment": "comp",
            },
            staff[i % len(staff)].headers,
        )
        return "staff", r.status_code, r.json().get("code") or r.json().get("status")

    answers = await asyncio.gather(*(buy(b) for b in buyers), *(comp(i) for i in range(20)))
    taken = [a for a in answers if a[1] == 201]
    refused = [a for a in answers if a[1] != 201]
    assert len(taken) == 50, answers
    assert {(status, code) for _, status, code in refused} == {(409, "sold_out")}
    assert {code for who, _, code in taken if who == "staff"} <= {"confirmed"}
    assert {code for who, _, code in taken if who == "buyer"} == {"held"}
    async with resources.engine.connect() as conn:
        assert await check(conn, uuid.UUID(event["id"])) == []
        counters = (
            await conn.execute(
                text("SELECT available, held, sold FROM events WHERE id = :e"), {"e": event["id"]}
            )
        ).one()
        comps = await conn.scalar(
            text(
                "SELECT count(*) FROM bookings WHERE event_id = :e AND channel = 'comp' "
                "AND status = 'confirmed'"
            ),
            {"e": event["id"]},
        )
    staff_taken = sum(1 for who, _, _ in taken if who == "staff")
    assert comps == staff_taken
    assert (counters.available, counters.held + counters.sold) == (0, 50)
    assert counters.sold == staff_taken
