"""Attendees and questions (issue 32) on the real stack: organizers' questions, the public
event lists them, attendees per seat with answers (token or guest key), and a required answer
missing blocks confirmation with 422 answers_required naming the question."""

from __future__ import annotations

import csv
import io

import httpx
import pypdfium2 as pdfium  # type: ignore[import-untyped]
import pytest

from evently.infra.resources import Resources
from tests.api.organizations.helpers import Org, make_org, org_event, org_venue
from tests.factories import make_account, unique_email

pytestmark = pytest.mark.usefixtures("running_workers")


async def _setup(client: httpx.AsyncClient, res: Resources) -> tuple[Org, dict[str, str]]:
    admin = await make_account(res, "admin")
    org = await make_org(client, res, admin, roles=("owner", "finance"))
    venue = await org_venue(client, org)
    event = await org_event(client, org, venue, publish=True)
    return org, event


async def test_questions_crud_public_and_required_answers_block_confirmation(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    org, event = await _setup(client, resources)
    base = org.url(f"/events/{event['id']}/questions")
    owner = org.owner.headers
    r = await client.post(
        base,
        json={"label": "Company", "kind": "text", "required": True, "per": "ticket"},
        headers=owner,
    )
    assert r.status_code == 201, r.text
    company = r.json()
    r = await client.post(
        base,
        json={
            "label": "T-shirt size",
            "kind": "choice",
            "options": ["S", "M", "L"],
            "per": "ticket",
        },
        headers=owner,
    )
    shirt = r.json()
    r = await client.post(
        base,
        json={"label": "Invoice needed", "kind": "checkbox", "required": True, "per": "booking"},
        headers=owner,
    )
    invoice = r.json()
    # a choice without options, a text with options: 422
    for bad in (
        {"label": "X", "kind": "choice", "options": []},
        {"label": "X", "kind": "text", "options": ["a"]},
    ):
        r = await client.post(base, json=bad, headers=owner)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "question_invalid"
    # a finance member cannot define questions; another organization's event is 404
    r = await client.post(
        base, json={"label": "Y", "kind": "text"}, headers=org.members["finance"].headers
    )
    assert r.status_code == 403
    r = await client.patch(f"{base}/{shirt['id']}", json={"label": "Shirt size"}, headers=owner)
    assert r.status_code == 200, r.text
    assert r.json()["label"] == "Shirt size"
    listed = (await client.get(base, headers=owner)).json()["items"]
    assert [q["label"] for q in listed] == ["Company", "Shirt size", "Invoice needed"]
    public = (await client.get(f"/api/v1/events/{event['id']}")).json()["questions"]
    assert [q["id"] for q in public] == [company["id"], shirt["id"], invoice["id"]]

    # a guest books two seats; confirming without the answers is refused, naming them
    r = await client.post(
        "/api/v1/bookings/reserve",
        json={
            "event_id": event["id"],
            "quantity": 2,
            "buyer": {"email": unique_email("q-guest"), "name": "Employer"},
        },
    )
    assert r.status_code == 201, r.text
    booking_id, key = r.json()["booking_id"], r.json()["access_key"]
    pay = {"booking_id": booking_id, "payment_method": "pm_card_visa"}
    r = await client.post(
        "/api/v1/bookings/confirm", json=pay, headers={"Evently-Booking-Key": key}
    )
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "answers_required"
    assert company["id"] in problem["detail"]
    assert invoice["id"] in problem["detail"]
    assert shirt["id"] not in problem["detail"]  # not required

    attendees_url = f"/api/v1/bookings/{booking_id}/attendees"
    # one attendee per seat; answers are checked against the questions
    r = await client.put(
        attendees_url,
        json={"attendees": [{"name": "Ada"}], "answers": {}},
        params={"key": key},
    )
    assert r.status_code == 422
    assert r.json()["code"] == "answers_invalid"
    r = await client.put(
        attendees_url,
        json={
            "attendees": [
                {"name": "Ada", "answers": {company["id"]: "ACME", shirt["id"]: "XXL"}},
                {"name": "Bob", "answers": {company["id"]: "ACME"}},
            ]
        },
        params={"key": key},
    )
    assert r.status_code == 422  # XXL is not an option
    body = {
        "attendees": [
            {
                "name": "Ada Lovelace",
                "email": "ada@example.com",
                "answers": {company["id"]: "ACME", shirt["id"]: "M"},
            },
            {"name": "Bob", "answers": {company["id"]: "  "}},  # blank: not an answer
        ],
        "answers": {invoice["id"]: True},
    }
    r = await client.put(attendees_url, json=body, params={"key": key})
    assert r.status_code == 200, r.text
    r = await client.post(
        "/api/v1/bookings/confirm", json=pay, headers={"Evently-Booking-Key": key}
    )
    assert r.status_code == 422
    assert company["id"] in r.json()["detail"]
    assert invoice["id"] not in r.json()["detail"]
    body["attendees"][1]["answers"] = {company["id"]: "Initech"}  # type: ignore[index]
    r = await client.put(attendees_url, json=body, params={"key": key})
    assert r.status_code == 200, r.text
    got = (await client.get(attendees_url, params={"key": key})).json()
    assert [a["name"] for a in got["attendees"]] == ["Ada Lovelace", "Bob"]
    r = await client.post(
        "/api/v1/bookings/confirm", json=pay, headers={"Evently-Booking-Key": key}
    )
    assert r.status_code == 200, r.text

    # the attendees' names are on the tickets (PDF text), the answers in the CSV export
    pdf = await client.get(f"/api/v1/bookings/{booking_id}/tickets.pdf", params={"key": key})
    assert pdf.status_code == 200, pdf.text
    doc = pdfium.PdfDocument(pdf.content)
    pages = [doc[i].get_textpage().get_text_range() for i in range(len(doc))]
    assert len(pages) == 2
    assert "Ada Lovelace" in pages[0]
    assert "Bob" in pages[1]
    export = await client.get(org.url(f"/events/{event['id']}/attendees.csv"), headers=owner)
    assert export.status_code == 200, export.text
    (row,) = [r for r in csv.DictReader(io.StringIO(export.text)) if r["booking_id"] == booking_id]
    assert row["attendee_names"] == "Ada Lovelace | Bob"
    assert row["attendee_emails"] == "ada@example.com | "
    assert row["Company"] == "ACME | Initech"
    assert row["Shirt size"] == "M | "
    assert row["Invoice needed"] == "yes"

    # a removed question is no longer asked
    r = await client.delete(f"{base}/{invoice['id']}", headers=owner)
    assert r.status_code == 204
    r = await client.delete(f"{base}/{invoice['id']}", headers=owner)
    assert r.status_code == 404
    assert r.json()["code"] == "question_not_found"
