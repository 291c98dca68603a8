"""Ticket transfer (issue 32) on the real stack: the old QR is refused at the door
(409 ticket_revoked), the new one admitted; retries answer the same new ticket; 20 concurrent
transfers of one ticket make exactly one new ticket; the event's switch and deadline; the
booking keeps one valid ticket per seat; the new name is on the PDF; the change is audited and
mailed (a notice for the new attendee)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pypdfium2 as pdfium  # type: ignore[import-untyped]
import pytest
from sqlalchemy import text

from evently.infra.resources import Resources
from evently.invariants import check
from tests.api.organizations.helpers import confirmed_booking as org_booking
from tests.api.organizations.helpers import make_org, org_event, org_venue
from tests.api.tickets.helpers import Confirmed, confirmed_booking, new_nonce, tickets_of
from tests.factories import make_account, unique_email
from tests.support.door import door_member

pytestmark = pytest.mark.usefixtures("running_workers")

REDEEM = "/api/v1/checkin/redeem"


def _transfer_url(c: Confirmed, ticket_id: str) -> str:
    return f"/api/v1/bookings/{c.booking_id}/tickets/{ticket_id}/transfer"


def _scan(secret: str) -> dict[str, Any]:
    return {"secret": secret, "nonce": new_nonce(), "device_id": "gate-1"}


async def test_a_transferred_ticket_is_refused_at_the_door_and_its_replacement_admitted(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    c = await confirmed_booking(client, resources, quantity=2)
    first, second = await tickets_of(client, c)
    carol = {"name": "Carol Newman", "email": unique_email("carol")}
    r = await client.post(_transfer_url(c, first["id"]), json=carol, headers=c.buyer.headers)
    assert r.status_code == 200, r.text
    new_id = r.json()["ticket_id"]
    assert r.json()["old_ticket_id"] == first["id"]
    # a retry: the same new ticket; to someone else: refused
    again = await client.post(_transfer_url(c, first["id"]), json=carol, headers=c.buyer.headers)
    assert again.status_code == 200
    assert again.json()["ticket_id"] == new_id
    other = {"name": "Mallory", "email": unique_email("mallory")}
    r = await client.post(_transfer_url(c, first["id"]), json=other, headers=c.buyer.headers)
    assert r.status_code == 409
    assert r.json()["code"] == "ticket_revoked"

    tickets = {t["id"]: t for t in await tickets_of(client, c)}
    assert tickets[first["id"]]["status"] == "revoked"
    assert tickets[new_id]["status"] == "valid"
    assert tickets[second["id"]]["status"] == "valid"
    staff = await door_member(resources)
    r = await client.post(REDEEM, json=_scan(first["secret"]), headers=staff.headers)
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "ticket_revoked"
    r = await client.post(REDEEM, json=_scan(tickets[new_id]["secret"]), headers=staff.headers)
    assert r.status_code == 200, r.text
    assert r.json()["result"] == "admitted"
    # an admitted ticket cannot be transferred any more
    r = await client.post(_transfer_url(c, new_id), json=other, headers=c.buyer.headers)
    assert r.status_code == 409
    assert r.json()["code"] == "already_checked_in"

    pdf = await client.get(f"/api/v1/bookings/{c.booking_id}/tickets.pdf", headers=c.buyer.headers)
    doc = pdfium.PdfDocument(pdf.content)
    text_of = " ".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))
    assert "Carol Newman" in text_of
    async with resources.engine.connect() as conn:
        assert await check(conn, c.event.id, grace_seconds=0) == []  # one valid ticket a seat
        audited = await conn.scalar(
            text(
                "SELECT count(*) FROM audit_log WHERE action = 'ticket.transferred' "
                "AND target_id = :t"
            ),
            {"t": first["id"]},
        )
        assert audited == 1
        notices = await conn.scalar(
            text(
                "SELECT count(*) FROM notifications WHERE kind = 'ticket_transferred' "
                "AND payload->>'ticket_id' = :t"
            ),
            {"t": new_id},
        )
        assert notices == 1
    # a stranger cannot transfer it
    stranger = await make_account(resources)
    r = await client.post(_transfer_url(c, second["id"]), json=other, headers=stranger.headers)
    assert r.status_code == 404


async def test_twenty_concurrent_transfers_of_one_ticket_make_exactly_one_new_ticket(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    c = await confirmed_booking(client, resources, quantity=1)
    (ticket,) = await tickets_of(client, c)
    body = {"name": "Dana", "email": unique_email("dana")}
    answers = await asyncio.gather(
        *(
            client.post(_transfer_url(c, ticket["id"]), json=body, headers=c.buyer.headers)
            for _ in range(20)
        )
    )
    assert {r.status_code for r in answers} == {200}, [r.text for r in answers]
    assert len({r.json()["ticket_id"] for r in answers}) == 1
    async with resources.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT status, count(*) FROM tickets WHERE booking_id = :b GROUP BY status"),
                {"b": uuid.UUID(c.booking_id)},
            )
        ).all()
    assert dict(rows) == {"revoked": 1, "valid": 1}
    # twenty different recipients at once: one wins, the others are refused
    (current,) = [t for t in await tickets_of(client, c) if t["status"] == "valid"]
    answers = await asyncio.gather(
        *(
            client.post(
                _transfer_url(c, current["id"]),
                json={"name": f"P{i}", "email": unique_email(f"p{i}")},
                headers=c.buyer.headers,
            )
            for i in range(20)
        )
    )
    assert sorted(r.status_code for r in answers) == [200] + [409] * 19


async def test_the_event_switch_and_deadline(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    admin = await make_account(resources, "admin")
    org = await make_org(client, resources, admin, roles=("owner",))
    venue = await org_venue(client, org)
    event = await org_event(client, org, venue, publish=True)
    buyer = await make_account(resources)
    booking_id = await org_booking(client, buyer, event["id"])
    r = await client.get(f"/api/v1/bookings/{booking_id}/tickets", headers=buyer.headers)
    (ticket,) = r.json()["tickets"]
    url = f"/api/v1/bookings/{booking_id}/tickets/{ticket['id']}/transfer"
    body = {"name": "Eve", "email": unique_email("eve")}
    policy = org.url(f"/events/{event['id']}/transfer-policy")
    r = await client.put(policy, json={"allowed": False}, headers=org.owner.headers)
    assert r.status_code == 200, r.text
    r = await client.post(url, json=body, headers=buyer.headers)
    assert r.status_code == 409
    assert r.json()["code"] == "transfer_closed"
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    r = await client.put(
        policy, json={"allowed": True, "deadline": past}, headers=org.owner.headers
    )
    assert r.status_code == 200
    r = await client.post(url, json=body, headers=buyer.headers)
    assert r.status_code == 409
    assert "deadline" in r.json()["detail"]
    r = await client.put(policy, json={"allowed": True}, headers=org.owner.headers)
    r = await client.post(url, json=body, headers=buyer.headers)
    assert r.status_code == 200, r.text
