"""Bank transfer (issue 29) through the API on the real stack: the organization's account, the
event's window, the buyer's 202 ``awaiting_transfer`` with its reference, staff seeing and
filtering it, and finance's mark-paid (roles, audit, idempotent) confirming it with tickets."""

from __future__ import annotations

import csv
import io
import re

import httpx
import pytest

from evently import bank_transfer
from evently.infra.resources import Resources
from tests.support.factories import Account, make_account
from tests.support.organizations import Org, confirmed_booking, make_org, org_event, org_venue

pytestmark = pytest.mark.usefixtures("running_workers")

IBAN = "DE89 3704 0044 0532 0130 00"


@pytest.fixture(scope="module")
async def admin(resources: Resources) -> Account:
    return await make_account(resources, "admin")


def _problem(r: httpx.Response, status: int, code: str | None = None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    if code is not None:
        assert r.json()["code"] == code, r.json()


async def _transfer_event(client: httpx.AsyncClient, org: Org) -> dict[str, object]:
    venue = await org_venue(client, org, capacity=50)
    event = await org_event(
        client,
        org,
        venue,
        publish=True,
        capacity=10,
        price="15.00",
        bank_transfer={"enabled": True, "window_days": 3},
    )
    r = await client.patch(
        org.url(f"/events/{event['id']}"), json={"queue": "off"}, headers=org.owner.headers
    )
    assert r.status_code == 200, r.text
    return event


async def test_bank_transfer_from_reserve_to_mark_paid(
    client: httpx.AsyncClient, resources: Resources, admin: Account
) -> None:
    org = await make_org(client, resources, admin)
    # the organization's account: owners only, the IBAN checked
    r = await client.put(
        org.url("/bank-account"),
        json={"account_holder": "Hall AS", "iban": "DE00 1234"},
        headers=org.owner.headers,
    )
    _problem(r, 422)
    r = await client.put(
        org.url("/bank-account"),
        json={"account_holder": "Hall AS", "iban": IBAN, "bic": "COBADEFFXXX"},
        headers=org.members["manager"].headers,
    )
    _problem(r, 403)
    r = await client.put(
        org.url("/bank-account"),
        json={"account_holder": "Hall AS", "iban": IBAN, "bic": "COBADEFFXXX"},
        headers=org.owner.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["bank_account"] == {
        "account_holder": "Hall AS",
        "iban": "DE89370400440532013000",
        "bic": "COBADEFFXXX",
    }

    event = await _transfer_event(client, org)
    assert event["bank_transfer"] == {"enabled": True, "window_days": 3}
    r = await client.patch(
        org.url(f"/events/{event['id']}"),
        json={"bank_transfer": {"enabled": True, "window_days": 0}},
        headers=org.owner.headers,
    )
    _problem(r, 422)
    # an event without it refuses the method
    venue = await org_venue(client, org)
    plain = await org_event(client, org, venue, publish=True, capacity=5)
    buyer = await make_account(resources)
    r = await client.post(
        "/api/v1/bookings/reserve",
        json={"event_id": plain["id"], "quantity": 1, "payment_method": "bank_transfer"},
        headers=buyer.headers,
    )
    _problem(r, 409, "bank_transfer_not_offered")

    # the buyer: 202 awaiting_transfer, a reference and where to pay
    r = await client.post(
        "/api/v1/bookings/reserve",
        json={"event_id": event["id"], "quantity": 2, "payment_method": "bank_transfer"},
        headers=buyer.headers,
    )
    assert r.status_code == 202, r.text
    body = r.json()
    assert (body["status"], body["amount"], body["currency"]) == (
        "awaiting_transfer",
        "30.00",
        "EUR",
    )
    assert re.fullmatch(r"EV-[0-9A-Z]{5}-[0-9A-Z]{5}-.", body["payment_reference"])
    assert bank_transfer.normalize_reference(body["payment_reference"]) is not None
    assert body["bank_account"]["iban"] == "DE89370400440532013000"
    booking_id = body["booking_id"]
    got = await client.get(f"/api/v1/bookings/{booking_id}", headers=buyer.headers)
    assert got.status_code == 200, got.text
    assert (got.json()["status"], got.json()["payment_reference"]) == (
        "awaiting_transfer",
        body["payment_reference"],
    )

    # staff see it, filter it, export it
    bookings = org.url(f"/events/{event['id']}/bookings")
    finance = org.members["finance"].headers
    r = await client.get(bookings, params={"status": "awaiting_transfer"}, headers=finance)
    assert [b["id"] for b in r.json()["items"]] == [booking_id]
    assert r.json()["items"][0]["payment_reference"] == body["payment_reference"]
    r = await client.get(bookings, params={"status": "held"}, headers=finance)
    assert r.json()["items"] == []
    r = await client.get(f"{bookings}.csv", headers=finance)
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["status"], x["payment_reference"]) for x in rows] == [
        ("awaiting_transfer", body["payment_reference"])
    ]

    # mark-paid: owners and finance only; confirms with tickets; asked again, the same answer
    mark = f"{bookings}/{booking_id}/mark-paid"
    _problem(await client.post(mark, headers=org.members["manager"].headers), 403)
    r = await client.post(mark, headers=finance)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "booking_id": booking_id,
        "status": "confirmed",
        "payment_reference": body["payment_reference"],
    }
    r = await client.post(mark, headers=org.owner.headers)
    assert (r.status_code, r.json()["status"]) == (200, "confirmed")
    tickets = await client.get(f"/api/v1/bookings/{booking_id}/tickets", headers=buyer.headers)
    assert len(tickets.json()["tickets"]) == 2
    log = await client.get(
        org.url("/audit"), params={"action": "booking.marked_paid"}, headers=org.owner.headers
    )
    assert [e["target_id"] for e in log.json()["items"]] == [booking_id]  # audited once

    # a card booking is not marked paid
    card = await confirmed_booking(client, buyer, event["id"])
    _problem(
        await client.post(f"{bookings}/{card}/mark-paid", headers=finance),
        409,
        "not_a_bank_transfer",
    )
