"""The issue's hand-computed case end to end (issue 31): an organization's tax rule, a fee on
its event and a promo code, made through the API; the buyer reserves and pays through Stripe
(localstripe); the reserve and booking answers, the PaymentIntent, the invoice (its PDF's text)
and the finance CSV equal the table below to the cent; then one line is refunded: the credit
note, the Stripe refund and `evently check` agree."""

from __future__ import annotations

import csv
import io
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from evently.invariants import check
from tests.support.factories import make_account
from tests.support.organizations import make_org, org_event, org_venue
from tests.support.payments import StripeStack
from tests.support.stripe import attempts, card, intent, until
from tests.support.tickets import pdf_text

# 2 x 19.00 gross at 19 % VAT (included), a 1.50 fee per ticket taxed at 19 %, 10 % off:
#   tickets 38.00 - 3.80 = 34.20, VAT in it 34.20 x 19/119 = 5.4605 -> 5.46
#   fees 2 x 1.50 = 3.00, VAT in it 3.00 x 19/119 = 0.4790 -> 0.48
#   total 37.20, VAT 5.94, net 31.26
# one ticket refunded: 1 x 19.00 - 1.90 = 17.10 (VAT 2.73) + 1.50 (VAT 0.24) = 18.60 left,
#   so the refund (and its credit note) is 37.20 - 18.60 = 18.60 with VAT 5.94 - 2.97 = 2.97
TABLE = {
    "subtotal": "38.00",
    "discount": "3.80",
    "fees": "3.00",
    "vat": "5.94",
    "total": "37.20",
    "net": "31.26",
}
# stripe 16.1's httpx client posts bytes through data=, which httpx deprecates
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

CREDIT = {"subtotal": "19.00", "discount": "1.90", "fees": "1.50", "vat": "2.97", "total": "18.60"}


async def _exported(client: httpx.AsyncClient, org: Any, event_id: str) -> tuple[str, ...]:
    r = await client.get(
        org.url(f"/events/{event_id}/bookings.csv"), headers=org.members["finance"].headers
    )
    assert r.status_code == 200, r.text
    [row] = list(csv.DictReader(io.StringIO(r.text)))
    return row["amount"], row["tax"], row["fees"], row["net"]


async def _priced_event(stack: StripeStack) -> tuple[Any, dict[str, Any], str]:
    client = stack.client
    admin = await make_account(stack.res, "admin")
    org = await make_org(client, stack.res, admin, roles=("owner", "finance"))
    r = await client.patch(
        org.url(),
        json={
            "legal_name": "Fest GmbH",
            "legal_address": "Hauptstr. 1, 10115 Berlin",
            "vat_id": "DE123456789",
            "invoice_prefix": "FEST",
        },
        headers=org.owner.headers,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["legal_name"], r.json()["invoice_prefix"]) == ("Fest GmbH", "FEST")
    r = await client.post(
        org.url("/tax-rules"),
        json={"name": "VAT", "rate": "19.00", "price_includes_tax": True},
        headers=org.owner.headers,
    )
    assert r.status_code == 201, r.text
    rule = r.json()["id"]
    fee = {"name": "Service fee", "amount": "1.50", "per": "ticket", "tax_rule_id": rule}
    # a fee names one of the organization's rules, and only one of amount and percent
    for bad, code in (
        ({**fee, "tax_rule_id": str(uuid.uuid4())}, "tax_rule_invalid"),
        ({**fee, "percent": "5"}, "validation_error"),
    ):
        venue = await org_venue(client, org)
        r = await client.post(
            org.url("/events"),
            json={
                "name": "x",
                "venue_id": venue["id"],
                "event_type": "concert",
                "starts_at": "2031-01-01T20:00:00Z",
                "ends_at": "2031-01-01T23:00:00Z",
                "capacity": 10,
                "price": "19.00",
                "currency": "EUR",
                "fees": [bad],
            },
            headers=org.owner.headers,
        )
        assert r.status_code == 422, r.text
        assert r.json()["code"] == code, r.text
    venue = await org_venue(client, org)
    event = await org_event(client, org, venue, capacity=10, price="19.00", fees=[fee])
    assert event["fees"] == [{**fee, "percent": None, "passed_on": True}]
    types = await client.get(
        org.url(f"/events/{event['id']}/ticket-types"), headers=org.owner.headers
    )
    [default] = types.json()["items"]
    r = await client.patch(
        org.url(f"/events/{event['id']}/ticket-types/{default['id']}"),
        json={"tax_rule_id": rule},
        headers=org.owner.headers,
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        org.url(f"/events/{event['id']}/promo-codes"),
        json={"code": "TEN", "percent_off": "10", "max_uses": 5},
        headers=org.owner.headers,
    )
    assert r.status_code == 201, r.text
    r = await client.post(org.url(f"/events/{event['id']}/publish"), headers=org.owner.headers)
    assert r.status_code == 200, r.text
    return org, event, default["id"]


def _price(total: dict[str, str]) -> dict[str, Any]:
    return {
        "subtotal": total["subtotal"],
        "discount": total["discount"],
        "fees": total["fees"],
        "taxes": [{"name": "VAT", "rate": "19.00", "amount": total["vat"], "included": True}],
        "total": total["total"],
        "currency": "EUR",
    }


async def test_the_issue_case_to_the_cent_then_one_line_refunded(
    stripe_stack: StripeStack, localstripe_http: httpx.AsyncClient
) -> None:
    client = stripe_stack.client
    org, event, type_id = await _priced_event(stripe_stack)
    buyer = await make_account(stripe_stack.res)
    r = await client.post(
        "/api/v1/bookings/reserve",
        json={"event_id": event["id"], "quantity": 2, "promo_code": "ten"},
        headers={**buyer.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code == 201, r.text
    reserved = r.json()
    assert (reserved["amount"], reserved["discount"]) == ("37.20", "3.80")
    assert reserved["price"] == _price(TABLE)
    booking_id = reserved["booking_id"]
    r = await client.post(
        "/api/v1/bookings/confirm",
        json={
            "booking_id": booking_id,
            "payment_method": await card(localstripe_http),
            "billing": {"name": "Acme AG", "address": "Ring 2, Wien", "vat_id": "ATU1234567"},
        },
        headers=buyer.headers,
    )
    assert r.status_code == 200, r.text
    [attempt] = await attempts(stripe_stack.res, booking_id)
    pi = await intent(localstripe_http, attempt.provider_payment_id)
    assert (pi["status"], pi["amount"], pi["currency"]) == ("succeeded", 3720, "eur")

    r = await client.get(f"/api/v1/bookings/{booking_id}", headers=buyer.headers)
    assert r.json()["price"] == _price(TABLE)
    r = await client.get(f"/api/v1/bookings/{booking_id}/invoices", headers=buyer.headers)
    assert r.status_code == 200, r.text
    [invoice] = r.json()["items"]
    year = invoice["issued_at"][:4]
    assert invoice["number"] == f"FEST-{year}-1"
    assert invoice["kind"] == "invoice"
    for k in ("subtotal", "discount", "fees", "total", "net"):
        assert invoice[k] == TABLE[k], k
    assert invoice["taxes"] == _price(TABLE)["taxes"]
    r = await client.get(invoice["pdf_url"], headers=buyer.headers)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/pdf"
    text = pdf_text(r.content)
    for fragment in (
        f"Invoice FEST-{year}-1",
        "Fest GmbH",
        "VAT ID: DE123456789",
        "Acme AG",
        "VAT ID: ATU1234567",
        "Subtotal 38.00 EUR",
        "Discount -3.80 EUR",
        "Fees 3.00 EUR",
        "VAT 19.00% (incl.) 5.94 EUR",
        "Net 31.26 EUR",
        "Total 37.20 EUR",
    ):
        assert fragment in " ".join(text.split()), (fragment, text)
    # the organizer's bookings export: the booking's tax, fees and net beside its amount; net
    # of tax AND fees like analytics (34.20 - 5.46 = 28.74), not the invoice's net of tax only
    assert await _exported(client, org, event["id"]) == ("37.20", "5.94", "3.00", "28.74")

    # one line refunded: a credit note, a Stripe refund, and the books reconcile
    r = await client.post(
        f"/api/v1/bookings/{booking_id}/cancel-lines",
        json={"lines": [{"ticket_type_id": type_id, "quantity": 1}]},
        headers=buyer.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["refund_amount"] == CREDIT["total"]

    async def credited() -> bool:
        r = await client.get(f"/api/v1/bookings/{booking_id}/invoices", headers=buyer.headers)
        return len(r.json()["items"]) == 2

    await until(credited)
    r = await client.get(f"/api/v1/bookings/{booking_id}/invoices", headers=buyer.headers)
    note = r.json()["items"][1]
    assert (note["kind"], note["number"], note["refers_to"]) == (
        "credit_note",
        f"FEST-{year}-2",
        invoice["id"],
    )
    for k in ("subtotal", "discount", "fees", "total"):
        assert note[k] == CREDIT[k], k
    assert note["taxes"][0]["amount"] == CREDIT["vat"]
    refunds = (
        await localstripe_http.get("/v1/refunds", params={"payment_intent": pi["id"]})
    ).json()["data"]
    assert [(x["status"], x["amount"]) for x in refunds] == [("succeeded", 1860)]
    r = await client.get(f"/api/v1/bookings/{booking_id}", headers=buyer.headers)
    assert r.json()["price"]["total"] == "18.60"
    async with stripe_stack.res.engine.connect() as conn:
        assert await check(conn, uuid.UUID(event["id"])) == []

    # finance: the organization's list and CSV say the same
    r = await client.get(org.url("/invoices.csv"), headers=org.members["finance"].headers)
    assert r.status_code == 200, r.text
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["number"], x["kind"]) for x in rows] == [
        (f"FEST-{year}-1", "invoice"),
        (f"FEST-{year}-2", "credit_note"),
    ]
    first, second = rows
    for k in ("subtotal", "discount", "fees", "total", "net"):
        assert first[k] == TABLE[k], k
    assert (first["tax"], first["buyer_name"], first["buyer_vat_id"]) == (
        "5.94",
        "Acme AG",
        "ATU1234567",
    )
    assert (second["total"], second["tax"], second["refers_to"]) == (
        "18.60",
        "2.97",
        f"FEST-{year}-1",
    )
    assert sum(Decimal(x["total"]) * (1 if x["kind"] == "invoice" else -1) for x in rows) == (
        Decimal("18.60")
    )
    # analytics: revenue 18.60 net of VAT (2.97) and of the fee (1.50, VAT 0.24 inside)
    r = await client.get(
        org.url(f"/events/{event['id']}/analytics"), headers=org.members["finance"].headers
    )
    a = r.json()
    assert (a["revenue"]["amount"], a["taxes"]["amount"], a["fees"]["amount"]) == (
        "18.60",
        "2.97",
        "1.50",
    )
    assert a["net_revenue"]["amount"] == "14.37"  # 17.10 - 2.73: the ticket's net
    # ... and the export's net after the refund is the analytics' net revenue
    assert await _exported(client, org, event["id"]) == ("37.20", "2.97", "1.50", "14.37")
    r = await client.get(org.url("/invoices"), headers=org.members["finance"].headers)
    assert [x["number"] for x in r.json()["items"]] == [f"FEST-{year}-1", f"FEST-{year}-2"]
