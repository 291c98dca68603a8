"""Issue 29's "a 0.00 booking makes no call to the payment provider", on the Stripe stack
(localstripe as Stripe's API): a free ticket type and a 100% promo code each confirm at once
with tickets and a confirmation email caught by a real SMTP server (aiosmtpd), and
localstripe's PaymentIntents are the same before and after."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from temporalio.client import Client

from tests.support.factories import make_account
from tests.support.mail import confirmation_notice, running_mail
from tests.support.organizations import make_org, org_event, org_venue
from tests.support.payments import StripeStack
from tests.support.tickets import wait_for

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


async def _intents(http: httpx.AsyncClient) -> set[str]:
    listed = (await http.get("/v1/payment_intents", params={"limit": "100"})).json()
    return {pi["id"] for pi in listed["data"]}


async def test_zero_bookings_confirm_with_tickets_and_mail_and_no_stripe_call(
    stripe_stack: StripeStack,
    localstripe_http: httpx.AsyncClient,
    temporal_client: Client,
    tmp_path: Path,
    task_queue: str,
) -> None:
    client, res = stripe_stack.client, stripe_stack.res
    admin = await make_account(res, "admin")
    org = await make_org(client, res, admin)
    venue = await org_venue(client, org, capacity=50)
    event = await org_event(client, org, venue, publish=True, capacity=10, price="40.00")
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
    free = r.json()
    r = await client.post(
        org.url(f"/events/{event['id']}/promo-codes"),
        json={"code": "ALLFREE", "percent_off": "100", "max_uses": 5},
        headers=org.owner.headers,
    )
    assert r.status_code == 201, r.text
    buyer = await make_account(res)

    before = await _intents(localstripe_http)
    async with running_mail(temporal_client, res, tmp_path / "mail", task_queue) as mail:
        booked = []
        for body in (
            {"event_id": event["id"], "lines": [{"ticket_type_id": free["id"], "quantity": 2}]},
            {"event_id": event["id"], "quantity": 1, "promo_code": "ALLFREE"},
        ):
            r = await client.post("/api/v1/bookings/reserve", json=body, headers=buyer.headers)
            assert r.status_code == 201, r.text
            assert (r.json()["status"], r.json()["amount"]) == ("confirmed", "0.00")
            booked.append(r.json()["booking_id"])
        for booking_id, seats in zip(booked, (2, 1), strict=True):
            got = await client.get(f"/api/v1/bookings/{booking_id}/tickets", headers=buyer.headers)
            assert len(got.json()["tickets"]) == seats

            async def sent(booking_id: str = booking_id) -> bool:
                n = await confirmation_notice(res, booking_id)
                return n is not None and n.mail_status == "sent"

            await wait_for(sent, seconds=30)
            notice = await confirmation_notice(res, booking_id)
            eml = BytesParser(policy=policy.default).parsebytes(mail.eml(notice.id).read_bytes())
            assert buyer.user.email in str(eml["To"])
            assert mail.deliveries(notice.id) == 1
    # no PaymentIntent was created (nor any other call that makes one)
    assert await _intents(localstripe_http) == before
    async with res.engine.connect() as conn:
        attempts = await conn.scalar(
            text("SELECT count(*) FROM payment_attempts WHERE booking_id = ANY(:b)"),
            {"b": booked},
        )
        providers = list(
            await conn.scalars(
                text("SELECT provider FROM payments WHERE booking_id = ANY(:b)"), {"b": booked}
            )
        )
    assert (attempts, providers) == (0, ["free", "free"])
