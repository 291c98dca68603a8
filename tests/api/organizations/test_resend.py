"""Issue 30: an organization's staff mail a buyer's tickets again — a new confirmation notice
in the mail outbox (the booking's tickets as they are now), once per Idempotency-Key, audited;
only for a confirmed booking."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import text

from evently.enums import NotificationKind
from evently.infra.resources import Resources
from evently.mail import outbox
from evently.mail.render import BookingConfirmed
from tests.support.factories import make_account, make_accounts
from tests.support.organizations import confirmed_booking, make_org, org_event, org_venue

pytestmark = pytest.mark.usefixtures("running_workers")


async def test_tickets_are_mailed_again_once_per_key_and_audited(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    admin = await make_account(resources, "admin")
    org = await make_org(client, resources, admin)
    event = await org_event(client, org, await org_venue(client, org), publish=True)
    (buyer,) = await make_accounts(resources, 1)
    booking = await confirmed_booking(client, buyer, event["id"], quantity=2)
    path = org.url(f"/events/{event['id']}/bookings/{booking}/resend-tickets")
    finance = org.members["finance"].headers
    key = {"Idempotency-Key": uuid.uuid4().hex}

    first = await client.post(path, headers={**finance, **key})
    assert first.status_code == 202, first.text
    assert first.json()["queued"] is True
    again = await client.post(path, headers={**finance, **key})  # a retried request
    assert again.status_code == 202
    assert again.json() == {**first.json(), "queued": False}
    other = await client.post(path, headers=finance)  # no key: another mail
    assert other.status_code == 202
    assert other.json()["queued"] is True
    assert other.json()["notification_id"] != first.json()["notification_id"]

    # a pending confirmation notice in the outbox, which becomes the tickets' mail
    notice_id = uuid.UUID(first.json()["notification_id"])
    async with resources.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT kind, user_id, booking_id, payload, created_at FROM notifications "
                    "WHERE id = :id"
                ),
                {"id": notice_id},
            )
        ).one()
        assert row.kind == NotificationKind.BOOKING_CONFIRMED
        assert str(row.booking_id) == booking
        assert row.user_id == buyer.id
        composed = await outbox.compose(
            conn,
            outbox.Claimed(
                notice_id,
                row.kind,
                row.user_id,
                row.booking_id,
                None,
                row.payload,
                row.created_at,
                1,
            ),
            resources.settings,
        )
    assert isinstance(composed, outbox.Composed)
    assert isinstance(composed.mail, BookingConfirmed)
    assert len(composed.mail.tickets) == 2

    # audited once per mail queued, as the member who asked
    r = await client.get(
        org.url("/audit"), params={"action": "booking.tickets_resent"}, headers=org.owner.headers
    )
    entries = r.json()["items"]
    assert len(entries) == 2
    assert {e["target_id"] for e in entries} == {booking}

    # the door staff may not; a refunded booking has no tickets to send
    door = await client.post(path, headers=org.members["door"].headers)
    assert door.status_code == 403
    refund = await client.post(
        org.url(f"/events/{event['id']}/bookings/{booking}/refund"), headers=finance
    )
    assert refund.status_code == 200, refund.text
    late = await client.post(path, headers=finance)
    assert late.status_code == 409
    assert late.json()["code"] == "booking_not_confirmed"
