"""Issue 34: each ticket of a seated booking carries its reserved seat — in the tickets answer,
the PDF, the confirmation email, the organizer's CSV exports and the door's redeem answer; a
partial cancellation frees the cancelled ticket's seat; general admission is unchanged. And an
event names its plan when it is created or edited as a draft (``seating_plan_id``)."""

from __future__ import annotations

import csv
import io
import uuid
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from temporalio.client import Client

from evently.db.models import DEFAULT_ORGANIZATION_ID
from evently.infra.resources import Resources
from evently.invariants import check
from tests.support.door import door_member
from tests.support.events import event_body
from tests.support.factories import Account, make_account
from tests.support.mail import confirmation_notice, running_mail
from tests.support.organizations import confirmed_booking as paid_booking
from tests.support.organizations import make_org, org_event, org_venue
from tests.support.seating import make_seated_event, plan_body
from tests.support.tickets import confirmed_booking, new_nonce, pdf_text, wait_for

pytestmark = pytest.mark.usefixtures("running_workers")

ORG = f"/api/v1/organizations/{DEFAULT_ORGANIZATION_ID}"
DOT = " \N{MIDDLE DOT} "


async def _tickets(client: httpx.AsyncClient, buyer: Account, booking_id: str) -> Any:
    r = await client.get(f"/api/v1/bookings/{booking_id}/tickets", headers=buyer.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def _redeem(client: httpx.AsyncClient, door: Account, secret: str) -> httpx.Response:
    return await client.post(
        "/api/v1/checkin/redeem",
        json={"secret": secret, "nonce": new_nonce(), "device_id": "gate-1"},
        headers=door.headers,
    )


async def _csv(client: httpx.AsyncClient, who: Account, path: str) -> list[dict[str, str]]:
    r = await client.get(f"{ORG}{path}", headers=who.headers)
    assert r.status_code == 200, r.text
    return list(csv.DictReader(io.StringIO(r.text)))


async def _owners(res: Resources, event_id: uuid.UUID) -> dict[str, uuid.UUID]:
    async with res.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT seat_id, booking_id FROM event_seats WHERE event_id = :e"),
            {"e": event_id},
        )
        return {r.seat_id: r.booking_id for r in rows if r.booking_id is not None}


async def _seat_count(res: Resources, event_id: str) -> int:
    async with res.engine.connect() as conn:
        n = await conn.scalar(
            text("SELECT count(*) FROM event_seats WHERE event_id = :e"), {"e": event_id}
        )
    return int(n or 0)


async def test_a_seated_booking_shows_its_seats_everywhere_and_ga_is_unchanged(
    client: httpx.AsyncClient,
    resources: Resources,
    temporal_client: Client,
    tmp_path: Path,
    task_queue: str,
) -> None:
    event = await make_seated_event(resources, plan_body(1, 2, 4), prices={"std": "45.00"})
    buyer = await make_account(resources)
    async with running_mail(temporal_client, resources, tmp_path / "mail", task_queue) as mail:
        booking_id = await paid_booking(client, buyer, event.id, seats=["A-1-4", "A-1-2", "A-1-3"])

        # the tickets answer: one ticket per seat, in plan order with the serials
        body = await _tickets(client, buyer, booking_id)
        tickets = body["tickets"]
        assert [(t["seat_id"], t["section"], t["row"], t["seat_label"]) for t in tickets] == [
            ("A-1-2", "A", "1", "2"),
            ("A-1-3", "A", "1", "3"),
            ("A-1-4", "A", "1", "4"),
        ]
        assert tickets[0]["label"] == f"Section A{DOT}Row 1{DOT}Seat 2"
        assert [t["seat"] for t in tickets] == sorted(t["seat"] for t in tickets)

        # the PDF
        pdf = await client.get(body["pdf_url"], headers=buyer.headers)
        assert pdf.status_code == 200
        printed = " ".join(pdf_text(pdf.content).split())
        for seat in (2, 3, 4):
            assert f"Section A{DOT}Row 1{DOT}Seat {seat}" in printed, printed

        # the confirmation email, html and text
        async def sent() -> bool:
            n = await confirmation_notice(resources, booking_id)
            return n is not None and n.mail_status == "sent"

        await wait_for(sent, seconds=60)
        eml = BytesParser(policy=policy.default).parsebytes(
            mail.eml((await confirmation_notice(resources, booking_id)).id).read_bytes()
        )
        for kind in ("plain", "html"):
            part = eml.get_body(preferencelist=(kind,))
            assert part is not None, kind
            content = part.get_content()  # type: ignore[attr-defined]
            for seat in (2, 3, 4):
                assert f"Section A{DOT}Row 1{DOT}Seat {seat}" in content, (kind, content)

    # the door: where to send the guest
    door = await door_member(resources)
    admitted = await _redeem(client, door, tickets[2]["secret"])
    assert admitted.status_code == 200, admitted.text
    brief = admitted.json()["ticket"]
    assert brief["place"] == "Section A, row 1, seat 4"
    assert (brief["seat_id"], brief["section"], brief["row"], brief["seat_label"]) == (
        "A-1-4",
        "A",
        "1",
        "4",
    )
    again = await _redeem(client, door, tickets[2]["secret"])
    assert again.status_code == 409
    assert again.json()["ticket"]["place"] == "Section A, row 1, seat 4"

    # the organizer's exports
    finance = await door_member(resources, role="finance", platform_role="buyer")
    rows = await _csv(client, finance, f"/events/{event.id}/bookings.csv")
    assert [(x["section"], x["row"], x["seat"]) for x in rows] == [
        ("A | A | A", "1 | 1 | 1", "2 | 3 | 4")
    ]
    people = await _csv(client, finance, f"/events/{event.id}/attendees.csv")
    assert [(x["section"], x["row"], x["seat"]) for x in people] == [
        ("A | A | A", "1 | 1 | 1", "2 | 3 | 4")
    ]

    # a partial cancellation: the ticket revoked (not the scanned one: the highest unscanned,
    # A-1-3) is the seat freed — not the highest seat id (A-1-4, where a guest already sits)
    async with resources.engine.connect() as conn:
        std = await conn.scalar(
            text("SELECT id FROM ticket_types WHERE event_id = :e AND seat_category = 'std'"),
            {"e": event.id},
        )
    r = await client.post(
        f"/api/v1/bookings/{booking_id}/cancel-lines",
        json={"lines": [{"ticket_type_id": str(std), "quantity": 1}]},
        headers=buyer.headers,
    )
    assert r.status_code == 200, r.text

    async def freed() -> bool:
        return "A-1-3" not in await _owners(resources, event.id)

    await wait_for(freed, seconds=60)
    assert await _owners(resources, event.id) == {
        "A-1-2": uuid.UUID(booking_id),
        "A-1-4": uuid.UUID(booking_id),
    }
    after = (await _tickets(client, buyer, booking_id))["tickets"]
    assert {(t["seat_id"], t["status"]) for t in after} == {
        ("A-1-2", "valid"),
        ("A-1-3", "revoked"),
        ("A-1-4", "valid"),
    }
    got = await client.get(f"/api/v1/bookings/{booking_id}", headers=buyer.headers)
    assert [s["id"] for s in got.json()["seats"]] == ["A-1-2", "A-1-4"]
    async with resources.engine.connect() as conn:
        assert await check(conn, event.id) == []
    # `evently check` sees a valid ticket on a seat its booking does not hold
    moved = {"t": next(t["id"] for t in after if t["seat_id"] == "A-1-2")}
    async with resources.engine.begin() as conn:
        await conn.execute(text("UPDATE tickets SET seat_id = 'A-1-3' WHERE id = :t"), moved)
        found = await check(conn, event.id)
        await conn.execute(text("UPDATE tickets SET seat_id = 'A-1-2' WHERE id = :t"), moved)
    assert [(v.rule, v.subject) for v in found] == [("ticket_seat", moved["t"])], found

    # general admission: exactly as before
    ga = await confirmed_booking(client, resources, quantity=2)
    ga_tickets = await _tickets(client, ga.buyer, ga.booking_id)
    for t in ga_tickets["tickets"]:
        assert (t["seat_id"], t["section"], t["row"], t["seat_label"]) == (None,) * 4
        assert t["label"] == f"General admission #{t['seat']}"
    pdf = await client.get(ga_tickets["pdf_url"], headers=ga.buyer.headers)
    assert "General admission #" in pdf_text(pdf.content)
    ga_admitted = await _redeem(client, door, ga_tickets["tickets"][0]["secret"])
    assert ga_admitted.status_code == 200, ga_admitted.text
    assert ga_admitted.json()["ticket"]["place"] is None
    assert ga_admitted.json()["ticket"]["label"].startswith("General admission #")
    ga_rows = await _csv(client, finance, f"/events/{ga.event.id}/bookings.csv")
    assert [(x["section"], x["row"], x["seat"]) for x in ga_rows] == [("", "", "")]


async def test_an_event_names_its_plan_when_created_or_edited_as_a_draft(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    admin = await make_account(resources, "admin")
    org = await make_org(client, resources, admin)
    venue = await org_venue(client, org, capacity=500)
    plans = []
    for shape in ((1, 2, 4), (2, 3, 5)):
        r = await client.post(
            org.url(f"/venues/{venue['id']}/seating-plans"),
            json=plan_body(*shape),
            headers=org.owner.headers,
        )
        assert r.status_code == 201, r.text
        plans.append(r.json())
    assert [p["seats"] for p in plans] == [8, 30]

    event = await org_event(client, org, venue, capacity=100, seating_plan_id=plans[0]["id"])
    assert (event["seating_plan_id"], event["capacity"], event["available"]) == (
        plans[0]["id"],
        8,
        8,
    )
    assert await _seat_count(resources, event["id"]) == 8  # the plan's copy

    url = org.url(f"/events/{event['id']}")
    r = await client.patch(url, json={"seating_plan_id": plans[1]["id"]}, headers=org.owner.headers)
    assert r.status_code == 200, r.text
    assert (r.json()["seating_plan_id"], r.json()["capacity"]) == (plans[1]["id"], 30)
    assert await _seat_count(resources, event["id"]) == 30
    got = await client.get(url, headers=org.owner.headers)
    assert got.json()["seating_plan_id"] == plans[1]["id"]

    # another organization's plan, or none at all: 404 like the PUT
    r = await client.patch(
        url, json={"seating_plan_id": str(uuid.uuid4())}, headers=org.owner.headers
    )
    assert (r.status_code, r.json()["code"]) == (404, "seating_plan_not_found")
    r = await client.post(
        org.url("/events"),
        json=event_body(venue["id"], seating_plan_id=str(uuid.uuid4())),
        headers=org.owner.headers,
    )
    assert (r.status_code, r.json()["code"]) == (404, "seating_plan_not_found")

    # null removes the plan (the capacity stays); a GA event answers null
    r = await client.patch(url, json={"seating_plan_id": None}, headers=org.owner.headers)
    assert r.status_code == 200, r.text
    assert (r.json()["seating_plan_id"], r.json()["capacity"]) == (None, 30)
    assert await _seat_count(resources, event["id"]) == 0
    r = await client.patch(
        url,
        json={"seating_plan_id": plans[0]["id"], "status": "published"},
        headers=org.owner.headers,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["seating_plan_id"], r.json()["capacity"]) == (
        "published",
        plans[0]["id"],
        8,
    )
    # published: the plan is fixed (as the PUT answers)
    r = await client.patch(url, json={"seating_plan_id": plans[1]["id"]}, headers=org.owner.headers)
    assert (r.status_code, r.json()["code"]) == (409, "seats_not_changeable")
    r = await client.patch(url, json={"seating_plan_id": None}, headers=org.owner.headers)
    assert (r.status_code, r.json()["code"]) == (409, "seats_not_changeable")
    ga = await org_event(client, org, venue, capacity=10)
    assert ga["seating_plan_id"] is None
