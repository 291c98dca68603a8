"""A booking's tickets on the real stack: issued at confirm, served as JSON/SVG/PDF, verified
with the public key alone, revoked by a cancellation; the event's .ics."""

from __future__ import annotations

import uuid

import httpx
import pytest
from icalendar import Calendar
from sqlalchemy import text

from evently.infra.resources import Resources
from evently.invariants import check
from tests.support.factories import make_account, make_event
from tests.support.tickets import (
    confirmed_booking,
    decode_pdf,
    decode_svg,
    scanner_verify,
    tickets_of,
)

pytestmark = pytest.mark.usefixtures("running_workers")


async def test_confirm_issues_one_signed_ticket_per_seat(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    c = await confirmed_booking(client, resources, quantity=3)

    tickets = await tickets_of(client, c)
    assert len(tickets) == 3
    assert [t["status"] for t in tickets] == ["valid"] * 3
    assert [t["seat"] for t in tickets] == [1, 2, 3]  # the event's first serials
    assert tickets[0]["label"] == "General admission #1"
    for t in tickets:
        claims = await scanner_verify(client, t["secret"])
        assert str(claims.ticket_id) == t["id"]
        assert str(claims.event_id) == str(c.event.id)
        assert claims.seat == t["seat"]
    # the same secret every time (deterministic signatures over the stored row)
    again = await tickets_of(client, c)
    assert [t["secret"] for t in again] == [t["secret"] for t in tickets]
    # the next booking of the event continues the serials
    c2 = await confirmed_booking(client, resources, quantity=1, event=c.event)
    assert [t["seat"] for t in await tickets_of(client, c2)] == [4]

    async with resources.engine.connect() as conn:
        assert await check(conn, c.event.id) == []


@pytest.mark.filterwarnings("ignore:.*viewBox")
async def test_svg_and_pdf_carry_qr_codes_a_scanner_verifies(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    c = await confirmed_booking(client, resources, quantity=2)
    tickets = await tickets_of(client, c)

    svg = await client.get(tickets[0]["qr_svg_url"], headers=c.buyer.headers)
    assert svg.status_code == 200, svg.text
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert decode_svg(svg.content) == [tickets[0]["secret"]]

    r = await client.get(f"/api/v1/bookings/{c.booking_id}/tickets", headers=c.buyer.headers)
    pdf = await client.get(r.json()["pdf_url"], headers=c.buyer.headers)
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    decoded = decode_pdf(pdf.content)
    assert decoded == [t["secret"] for t in tickets]
    assert [str((await scanner_verify(client, s)).ticket_id) for s in decoded] == [
        t["id"] for t in tickets
    ]


async def test_who_may_read_tickets(client: httpx.AsyncClient, resources: Resources) -> None:
    c = await confirmed_booking(client, resources, quantity=1)
    (ticket,) = await tickets_of(client, c)
    stranger = await make_account(resources)
    support = await make_account(resources, role="support")
    base = f"/api/v1/bookings/{c.booking_id}/tickets"
    for path in (base, f"{base}.pdf", f"{base}/{ticket['id']}.svg"):
        r = await client.get(path, headers=stranger.headers)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["code"] == "booking_not_found"
        assert (await client.get(path, headers=support.headers)).status_code == 200, path
        assert (await client.get(path)).status_code == 401, path
    # a ticket id of another booking is not found under this one
    other = await confirmed_booking(client, resources, quantity=1, buyer=c.buyer)
    (foreign,) = await tickets_of(client, other)
    r = await client.get(f"{base}/{foreign['id']}.svg", headers=c.buyer.headers)
    assert r.status_code == 404
    assert r.json()["code"] == "ticket_not_found"


async def test_a_held_booking_has_no_tickets_yet(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=5)
    r = await client.post(
        "/api/v1/bookings/reserve",
        json={"event_id": str(event.id), "quantity": 1},
        headers=buyer.headers,
    )
    booking_id = r.json()["booking_id"]
    r = await client.get(f"/api/v1/bookings/{booking_id}/tickets", headers=buyer.headers)
    assert r.json()["tickets"] == []
    assert r.json()["pdf_url"] is None
    r = await client.get(f"/api/v1/bookings/{booking_id}/tickets.pdf", headers=buyer.headers)
    assert r.status_code == 409
    assert r.json()["code"] == "no_valid_tickets"
    await client.delete(f"/api/v1/bookings/{booking_id}", headers=buyer.headers)


async def test_cancelling_a_confirmed_booking_revokes_its_tickets(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    c = await confirmed_booking(client, resources, quantity=2)
    before = await tickets_of(client, c)

    r = await client.delete(f"/api/v1/bookings/{c.booking_id}", headers=c.buyer.headers)
    assert r.status_code == 200, r.text

    after = await tickets_of(client, c)
    assert [t["status"] for t in after] == ["revoked", "revoked"]
    assert all(t["revoked_at"] and t["secret"] is None for t in after)
    r = await client.get(
        f"/api/v1/bookings/{c.booking_id}/tickets/{before[0]['id']}.svg", headers=c.buyer.headers
    )
    assert r.status_code == 409
    assert r.json()["code"] == "ticket_revoked"
    r = await client.get(f"/api/v1/bookings/{c.booking_id}/tickets.pdf", headers=c.buyer.headers)
    assert r.json()["code"] == "no_valid_tickets"
    async with resources.engine.connect() as conn:
        assert await check(conn, c.event.id) == []


async def test_event_ics(client: httpx.AsyncClient, resources: Resources) -> None:
    event = await make_event(resources, name="Calendar night")
    r = await client.get(f"/api/v1/events/{event.id}.ics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/calendar")
    (vevent,) = Calendar.from_ical(r.content).walk("VEVENT")
    assert str(vevent["SUMMARY"]) == "Calendar night"
    assert str(vevent["UID"]) == f"event-{event.id}@evently"
    assert vevent.decoded("DTSTART") == event.starts_at.replace(microsecond=0)
    assert str(vevent["STATUS"]) == "CONFIRMED"
    # the plain event route still answers (the .ics route is matched first, only for .ics)
    assert (await client.get(f"/api/v1/events/{event.id}")).status_code == 200

    draft = await make_event(resources, status="draft")
    assert (await client.get(f"/api/v1/events/{draft.id}.ics")).status_code == 404
    assert (await client.get(f"/api/v1/events/{uuid.uuid4()}.ics")).status_code == 404
    r = await client.get("/api/v1/events/not-a-uuid.ics")
    assert r.status_code == 422

    async with resources.engine.begin() as conn:
        await conn.execute(
            text("UPDATE events SET status = 'cancelled' WHERE id = :id"), {"id": event.id}
        )
    (vevent,) = Calendar.from_ical(
        (await client.get(f"/api/v1/events/{event.id}.ics")).content
    ).walk("VEVENT")
    assert str(vevent["STATUS"]) == "CANCELLED"
